//! Policy evaluation for keyless: pure functions, no I/O.
//!
//! This crate owns:
//! - the organization access policy document (`OrgPolicy`) and its validation,
//! - bucket policies and session policies in the AWS policy grammar
//!   (`BucketPolicy`, `SessionPolicy`),
//! - the IAM condition language (`Conditions`) and policy variables
//!   (`${aws:username}`, `${jwt:sub}`, …), evaluated against the request
//!   context (`Context`),
//! - the table that maps every S3 operation to its IAM action and resource kind
//!   (`actions`),
//! - the evaluators, which return a decision together with a trace of every
//!   statement and condition they considered, so that an administrator can see
//!   why a request was allowed or denied,
//! - `OrgPolicySet`, org policies indexed by principal, action and resource
//!   pattern, which decides a request without testing the statements that
//!   cannot apply to it.
//!
//! Terms:
//! - *principal*: the identity a request acts as (`user/admin`,
//!   `role/<issuer>:<sub>`).
//! - *action*: an IAM-style name (`s3:GetObject`, `cwobject:CreateAccessKeyOIDC`).
//! - *resource*: `*` for global actions, or `<bucket>` or `<bucket>/<key>` for S3
//!   actions.
//! - *condition key*: the name of a fact about the request (`aws:SourceIp`,
//!   `jwt:sub`).

pub mod actions;
mod bucket;
mod conditions;
mod context;
mod document;
mod eval;
mod grammar;
mod index;
mod pattern;
mod session;
mod variables;

pub use bucket::{BucketPolicy, BucketStatement, MAX_POLICY_BYTES};
pub use conditions::{ConditionError, ConditionTrace, Conditions};
pub use context::{Context, ContextBuilder};
pub use document::{Effect, OrgPolicy, OrgStatement, PolicyError};
pub use eval::{Decision, DecisionReason, Request, StatementTrace, decide_org, evaluate_org};
pub use grammar::MalformedPolicy;
pub use index::OrgPolicySet;
pub use pattern::{glob_match, principal_match};
pub use session::{MAX_SESSION_POLICY_BYTES, SessionPolicy, SessionStatement, evaluate_session};
