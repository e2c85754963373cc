//! Policy evaluation for keyless: pure functions, no I/O.
//!
//! This crate owns three things:
//! - the organization access policy document (`OrgPolicy`) and its validation,
//! - the table that maps every S3 operation to its IAM action and resource kind
//!   (`actions`),
//! - the evaluator, which returns a decision together with a trace of every
//!   statement it considered, so that an administrator can see why a request was
//!   allowed or denied.
//!
//! Terms: a *principal* is the identity a request acts as (`user/admin`,
//! `role/<issuer>:<sub>`); an *action* is an IAM-style name (`s3:GetObject`,
//! `cwobject:CreateAccessKeyOIDC`); a *resource* is `*` for global actions, or
//! `<bucket>` or `<bucket>/<key>` for S3 actions.

pub mod actions;
mod bucket;
mod document;
mod eval;
mod pattern;

pub use bucket::{BucketPolicy, BucketStatement, MalformedPolicy};
pub use document::{Effect, OrgPolicy, OrgStatement, PolicyError};
pub use eval::{Decision, DecisionReason, Request, StatementTrace, evaluate_org};
pub use pattern::{glob_match, principal_match};
