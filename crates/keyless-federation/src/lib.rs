//! Identity federation: trading an OIDC token or a SAML response for an
//! identity keyless trusts. The SAML side (`saml`, behind the `saml` feature)
//! contains the SAML configuration document and derives `role/<Role>` from an
//! assertion that `keyless-saml` verified.
//!
//! This crate owns the OIDC WIF configuration document (`config`), the cache of
//! issuers' discovery documents and key sets (`jwks`), the keys of a set parsed
//! for signature verification (`keys`), and the token validation
//! pipeline (`verify`), which runs the checks in a fixed order and names the
//! failing step in its error. It does not mint credentials or evaluate org
//! policies: the API layer does both with the `VerifiedToken` returned here.
//!
//! Terms: the *issuer* is the `iss` of a token and must equal a configuration's
//! `issuerUrl` exactly; the *audience* is what the token's `aud` must contain;
//! the derived *principal* is `role/<iss>:<sub>`.

pub mod config;
pub mod jwks;
pub mod keys;
#[cfg(feature = "saml")]
pub mod saml;
pub mod verify;

pub use config::{OidcConfig, OidcConfigInput};
pub use jwks::{JwksCache, JwksError};
pub use verify::{OidcVerifier, VerifiedToken, VerifyError};
