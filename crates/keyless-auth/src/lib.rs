//! Credentials and authorization state for keyless.
//!
//! This crate owns:
//! - the master key and what it seals: static secret keys at rest, and the
//!   session tokens of temporary credentials (`master`, `session`);
//! - the secret types, which redact themselves and compare in constant time
//!   (`secret`);
//! - `Credentials`: minting and verifying access keys and API tokens, with
//!   in-memory caches and the revocation state that a background poller of the
//!   store's change feed keeps current (`credentials`);
//! - `Authorizer`: cached org policies and the single `authorize` entry point
//!   that every S3 and control-plane request goes through (`authz`).
//!
//! Temporary credentials are stateless: the secret key is derived from the access
//! key id with a server key, and the session token is an AEAD-sealed record of
//! the session. Verifying them reads no database; revocations reach every node
//! through the change feed within the poll interval.

pub mod authz;
pub mod context;
pub mod credentials;
pub mod master;
pub mod secret;
pub mod session;

pub use authz::{AuthDecision, Authorizer};
pub use context::{Connection, request_context};
pub use credentials::{Caller, CallerKind, Credentials, KeyError, MintedKey, StaticKeyInfo};
pub use master::MasterKey;
pub use secret::Secret;
pub use session::{SessionClaims, SessionError};
