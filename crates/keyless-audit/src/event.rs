//! The audit event record. Versioned by `v`; never holds a secret key, session
//! token, API token, JWT, SAML assertion or signature.

use serde::{Deserialize, Serialize};

pub const EVENT_FORMAT: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A change through the control plane: keys, tokens, policies, WIF
    /// configurations, settings.
    Control,
    /// A token exchange, accepted or rejected.
    Exchange,
    /// An S3 request.
    Data,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Control => "control",
            EventKind::Exchange => "exchange",
            EventKind::Data => "data",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// One audit record. Optional fields are omitted where they do not apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub v: u32,
    /// RFC 3339, UTC, millisecond precision.
    pub time: String,
    pub kind: EventKind,
    pub org: String,
    /// The IAM-style action: `s3:GetObject`, `cwobject:CreateAccessKeyOIDC`, ….
    pub action: String,
    pub decision: Decision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// Links data-plane events to the exchange that minted their credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// S3 operation name for data events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<f64>,
    /// Exchange events: the token's issuer, subject and configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_id: Option<String>,
    /// The token's `jti`, or `sha256:<first 32 hex digits>` of the token when
    /// it has none. Never the token itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// Exchange events: the access key id minted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minted_key_id: Option<String>,
    /// Control events: what was changed (policy name, key id, configuration id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl AuditEvent {
    /// A new event stamped with the current time; fill in the rest with the
    /// struct update syntax or field assignments.
    pub fn new(kind: EventKind, org: &str, action: &str, decision: Decision) -> Self {
        AuditEvent {
            v: EVENT_FORMAT,
            time: now_rfc3339(),
            kind,
            org: org.to_owned(),
            action: action.to_owned(),
            decision,
            request_id: None,
            principal: None,
            access_key_id: None,
            session_id: None,
            bucket: None,
            key: None,
            operation: None,
            status: None,
            reason: None,
            source_ip: None,
            user_agent: None,
            bytes: None,
            duration_ms: None,
            issuer: None,
            subject: None,
            config_id: None,
            token_id: None,
            minted_key_id: None,
            target: None,
        }
    }
}

pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    now.format(&format).unwrap_or_default()
}

/// Identifies a token without recording it: its `jti` if it has one, else a
/// prefix of its SHA-256.
pub fn token_id(jti: Option<&str>, token: &str) -> String {
    match jti {
        Some(jti) if !jti.is_empty() && jti.len() <= 256 => jti.to_owned(),
        _ => {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
            format!("sha256:{}", &hex::encode(digest.as_ref())[..32])
        }
    }
}
