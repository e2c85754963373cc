//! Session tokens: the sealed record carried by temporary credentials.
//!
//! A token is `KLS1.` followed by base64url(nonce || AES-256-GCM ciphertext) of
//! the JSON `SessionClaims`, with the access key id as associated data, so a
//! token only opens together with the key it was minted for.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::master::Sealer;

const TOKEN_PREFIX: &str = "KLS1.";
/// Tokens longer than this are rejected before any decoding.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// What a temporary credential stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// Record format version.
    pub v: u32,
    /// Access key id the token belongs to.
    pub ak: String,
    pub org: String,
    pub principal: String,
    /// Session id, the link from data-plane events to the exchange.
    pub sid: String,
    /// WIF configuration that minted the session.
    pub cfg: String,
    /// Issued at and expiry, Unix seconds.
    pub iat: i64,
    pub exp: i64,
    /// Session policy given at exchange, if any (JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Attributes and mapped claims, usable as policy condition keys.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
}

pub const SESSION_FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the security token is malformed")]
    Malformed,
    #[error("the security token does not belong to this access key or was not issued by this server")]
    Invalid,
    #[error("the security token has expired")]
    Expired,
}

pub fn seal(sealer: &Sealer, claims: &SessionClaims) -> String {
    let json = serde_json::to_vec(claims).unwrap_or_else(|_| unreachable!("claims always serialize"));
    let sealed = sealer.seal(&json, claims.ak.as_bytes());
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed))
}

/// Opens a token for `access_key_id` and checks its expiry against `now` (Unix seconds).
pub fn open(sealer: &Sealer, token: &str, access_key_id: &str, now: i64) -> Result<SessionClaims, SessionError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(SessionError::Malformed);
    }
    let body = token.strip_prefix(TOKEN_PREFIX).ok_or(SessionError::Malformed)?;
    let sealed = URL_SAFE_NO_PAD.decode(body).map_err(|_| SessionError::Malformed)?;
    let json = sealer.open(&sealed, access_key_id.as_bytes()).map_err(|_| SessionError::Invalid)?;
    let claims: SessionClaims = serde_json::from_slice(&json).map_err(|_| SessionError::Malformed)?;
    if claims.v != SESSION_FORMAT || claims.ak != access_key_id {
        return Err(SessionError::Invalid);
    }
    if now >= claims.exp {
        return Err(SessionError::Expired);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::MasterKey;

    fn claims(exp: i64) -> SessionClaims {
        SessionClaims {
            v: SESSION_FORMAT,
            ak: "KT1".into(),
            org: "default".into(),
            principal: "role/x".into(),
            sid: "s".into(),
            cfg: "c".into(),
            iat: 0,
            exp,
            policy: None,
            attrs: BTreeMap::new(),
        }
    }

    fn sealer() -> Sealer {
        Sealer::new(&MasterKey::insecure_fixed_for_tests(3).derive("session"))
    }

    #[test]
    fn token_opens_only_for_its_key() {
        let token = seal(&sealer(), &claims(100));
        assert_eq!(open(&sealer(), &token, "KT1", 50).unwrap().principal, "role/x");
        assert_eq!(open(&sealer(), &token, "KT2", 50), Err(SessionError::Invalid));
    }

    #[test]
    fn expired_token_is_rejected() {
        let token = seal(&sealer(), &claims(100));
        assert_eq!(open(&sealer(), &token, "KT1", 100), Err(SessionError::Expired));
    }

    #[test]
    fn garbage_token_is_malformed() {
        assert_eq!(open(&sealer(), "nope", "KT1", 0), Err(SessionError::Malformed));
        assert_eq!(open(&sealer(), "KLS1.!!!", "KT1", 0), Err(SessionError::Malformed));
        assert_eq!(open(&sealer(), "KLS1.AAAA", "KT1", 0), Err(SessionError::Invalid));
    }
}
