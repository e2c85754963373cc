//! The condition keys every request carries, from its caller and transport.

use std::net::{IpAddr, SocketAddr};

use keyless_policy::{Context, ContextBuilder};

use crate::credentials::Caller;

/// Prefixes of session attributes that the server itself derived.
pub const SERVER_KEY_PREFIXES: &[&str] = &["jwt:", "saml:", "aws:PrincipalTag/", "sts:"];

/// The connection a request arrived on: the client's address (for logs,
/// audit and `aws:SourceIp`) and whether it was TLS (`aws:SecureTransport`).
/// The listeners attach it to every request as an extension.
#[derive(Debug, Clone, Copy)]
pub struct Connection {
    pub client: SocketAddr,
    pub secure: bool,
}

/// Starts the condition context of a request: `aws:SourceIp`,
/// `aws:SecureTransport`, `aws:CurrentTime`, `aws:EpochTime`, `aws:userid`,
/// `aws:username` (for `user/<name>` principals), `cw:PrincipalOrgID`, and the
/// session's attributes and mapped claims (`jwt:<claim>`,
/// `aws:PrincipalTag/<tag>`, …) as the exchange stored them.
pub fn request_context(caller: Option<&Caller>, source_ip: Option<IpAddr>, secure_transport: bool) -> ContextBuilder {
    let now = time::OffsetDateTime::now_utc();
    let mut builder = Context::builder()
        .value("aws:SecureTransport", if secure_transport { "true" } else { "false" })
        .value("aws:CurrentTime", now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
        .value("aws:EpochTime", now.unix_timestamp().to_string());
    if let Some(ip) = source_ip {
        builder = builder.value("aws:SourceIp", ip.to_string());
    }
    if let Some(caller) = caller {
        builder = builder.value("aws:userid", caller.principal.clone()).value("cw:PrincipalOrgID", caller.org.clone());
        if let Some(name) = caller.principal.strip_prefix("user/") {
            builder = builder.value("aws:username", name);
        }
        if let Some(session) = caller.session() {
            // Only keys the server derived become condition keys. Attributes a
            // caller sent at exchange are stored under `attr/` and left out,
            // so nobody can name their own `jwt:sub` or `aws:SourceIp`.
            for (key, value) in &session.attrs {
                if SERVER_KEY_PREFIXES.iter().any(|p| key.starts_with(p)) {
                    builder = builder.value(key, value.clone());
                }
            }
        }
    }
    builder
}
