//! The S3 endpoint.
//!
//! Layers, outermost first:
//! - `front`: mints the request id, rejects what s3s would accept but keyless
//!   must not (SigV2, SigV4 headers that leave `host`, `x-amz-date`,
//!   `x-amz-content-sha256` or the session token unsigned, a foreign region,
//!   `X-Amz-Expires` outside 1..604800), and stamps the request id on every
//!   response, error bodies included;
//! - s3s: SigV4 verification in every payload mode, routing, XML;
//! - `access`: who the caller is (static or temporary key, revocation applied)
//!   and whether the org policies allow the operation, through the one table in
//!   `keyless_policy::actions`;
//! - `ops`: the operations themselves, on `keyless_store`.

mod access;
mod body;
mod errors;
mod front;
mod ops;

use std::sync::Arc;

use keyless_auth::{Authorizer, Credentials};
use keyless_store::Store;

pub use front::S3Front;

/// Settings of the S3 endpoint.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// The one region this server serves. Signatures scoped to another region
    /// are rejected.
    pub region: String,
    /// Base domain for virtual-hosted-style addressing (`<bucket>.<domain>`),
    /// or `None` for path-style only.
    pub virtual_host_domain: Option<String>,
}

/// State shared by every layer of the S3 endpoint.
pub struct S3State {
    pub store: Store,
    pub journal: keyless_audit::Journal,
    pub metrics: Arc<keyless_audit::Metrics>,
    pub credentials: Arc<Credentials>,
    pub authorizer: Arc<Authorizer>,
    pub settings: S3Settings,
}

/// Parses `Host` for virtual-hosted-style addressing after removing the port,
/// which clients send whenever it is not 80 or 443.
struct PortlessHost(s3s::host::SingleDomain);

impl s3s::host::S3Host for PortlessHost {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> s3s::S3Result<s3s::host::VirtualHost<'a>> {
        let without_port = match host.rsplit_once(':') {
            Some((name, port)) if !name.ends_with(']') && port.bytes().all(|b| b.is_ascii_digit()) => name,
            Some((name, port)) if name.starts_with('[') && port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        };
        self.0.parse_host_header(without_port)
    }
}

/// Builds the S3 endpoint as a hyper service.
pub fn build(state: Arc<S3State>) -> Result<S3Front, String> {
    let mut builder = s3s::service::S3ServiceBuilder::new(ops::KeylessS3 { state: state.clone() });
    builder.set_auth(access::KeylessAuth { state: state.clone() });
    builder.set_access(access::KeylessAccess { state: state.clone() });
    if let Some(domain) = &state.settings.virtual_host_domain {
        let host = s3s::host::SingleDomain::new(domain).map_err(|err| format!("invalid virtual host domain {domain:?}: {err}"))?;
        builder.set_host(PortlessHost(host));
    }
    Ok(S3Front::new(builder.build(), state))
}
