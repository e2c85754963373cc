//! OIDC token validation, as a sequence of named steps in a fixed order:
//!
//! 1. `check_header`: the token is a compact JWS (RFC 7515 §7.1) of at most
//!    16 KiB; `alg` is on the asymmetric allow-list (`none` and HMAC are
//!    rejected in any letter case); any `crit` entry is rejected, because
//!    keyless understands no extension; `jku`, `x5u`, `jwk` and `x5c` are
//!    ignored, since a key offered by the token proves nothing.
//! 2. `select_config`: the unverified `iss` equals the `issuerUrl` of an active
//!    OIDC configuration of the org, compared as exact strings.
//! 3. `verify_signature`: a key from that issuer's JWKS (or the uploaded one),
//!    chosen by `kid`, or every key of the matching type when there is no `kid`.
//!    A JWK that names an `alg` must name the header's.
//! 4. `check_audience`: `aud`, a string or an array, contains a configured audience.
//! 5. `check_times`: `exp` is present, numeric and in the future; `nbf` and `iat`,
//!    when present, are not in the future; all with the configured leeway, and
//!    `iat` no older than the maximum token age when one is set.
//! 6. `check_claim_conditions`: the configuration's conditions hold over the
//!    claims, each claim available as `jwt:<path>` (nested claims by dotted
//!    path, arrays as several values). Claim values are data: a `*` in a claim
//!    matches only a `*`.
//!
//! The org policy check (`cwobject:CreateAccessKeyOIDC`) follows in the API layer.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use crate::config::OidcConfig;
use crate::jwks::{JwksCache, JwksError};
use crate::keys::KeySet;

/// Tokens longer than this are rejected before decoding.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a token was rejected. `step` names the failed check; the message is safe
/// to return to the caller (it holds no key material and no token text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the token is missing")]
    Missing,
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token algorithm {0:?} is not allowed: expected one of RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA")]
    Algorithm(String),
    #[error("the token header lists critical extensions {0:?}, which keyless does not support")]
    Crit(String),
    #[error("no active OIDC configuration of org {org:?} has issuer {issuer:?}")]
    UnknownIssuer { org: String, issuer: String },
    #[error("the token signature does not verify with any key of the issuer")]
    Signature,
    #[error("the token audience does not contain a configured audience")]
    Audience,
    #[error("the token has expired")]
    Expired,
    #[error("the token claim {0} is missing or not a number")]
    TimeClaim(&'static str),
    #[error("the token is not valid yet ({0} is in the future)")]
    NotYetValid(&'static str),
    #[error("the token is older than the configured maximum token age")]
    TooOld,
    #[error("the token has no sub claim")]
    Subject,
    #[error("the token's claims do not satisfy the configuration's condition {0}")]
    ClaimCondition(String),
    #[error("{0}")]
    Keys(JwksError),
}

impl VerifyError {
    /// A stable short name of the failed step, for audit and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            VerifyError::Missing => "token-missing",
            VerifyError::Malformed(_) => "malformed",
            VerifyError::Algorithm(_) => "algorithm",
            VerifyError::Crit(_) => "crit",
            VerifyError::UnknownIssuer { .. } => "unknown-issuer",
            VerifyError::Signature => "signature",
            VerifyError::Audience => "audience",
            VerifyError::Expired => "expired",
            VerifyError::TimeClaim(_) => "time-claim",
            VerifyError::NotYetValid(_) => "not-yet-valid",
            VerifyError::TooOld => "too-old",
            VerifyError::Subject => "subject",
            VerifyError::ClaimCondition(_) => "claim-condition",
            VerifyError::Keys(_) => "idp-unreachable",
        }
    }
}

/// A token that passed every step, with the configuration that accepted it.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    pub config: OidcConfig,
    pub issuer: String,
    pub subject: String,
    pub claims: Map<String, Value>,
    pub principal: String,
    /// Session keys filled by the configuration's attribute mapping.
    pub mapped_attributes: std::collections::BTreeMap<String, String>,
}

/// Parsed, not yet verified, header fields this pipeline reads.
struct UnverifiedHeader {
    alg: Algorithm,
    kid: Option<String>,
}

pub struct OidcVerifier {
    pub jwks: JwksCache,
}

impl OidcVerifier {
    pub fn new() -> Self {
        OidcVerifier { jwks: JwksCache::new() }
    }

    /// Runs steps 1–6 on `token` for `org`, with the org's candidate
    /// configurations `configs` (inactive ones are skipped). `now` is Unix seconds.
    pub async fn verify<'c>(
        &self,
        org: &str,
        token: &str,
        configs: impl IntoIterator<Item = &'c OidcConfig>,
        now: i64,
    ) -> Result<VerifiedToken, VerifyError> {
        let token = token.trim();
        if token.is_empty() {
            return Err(VerifyError::Missing);
        }
        let (header, unverified_claims) = check_header(token)?;
        let config = select_config(org, &unverified_claims, configs)?;
        self.verify_signature(token, &header, config).await?;
        // The signature covers the payload these claims were parsed from.
        let claims = unverified_claims;
        check_audience(&claims, config)?;
        check_times(&claims, config, now)?;
        let claim_context = claims_context(&claims);
        check_claim_conditions(&claim_context, config)?;

        let issuer = config.issuer_url.clone();
        let subject = match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            _ => return Err(VerifyError::Subject),
        };
        let mapped_attributes = map_attributes(&claim_context, config);
        Ok(VerifiedToken { principal: format!("role/{issuer}:{subject}"), config: config.clone(), issuer, subject, claims, mapped_attributes })
    }

    /// Verifies the signature over the token's header and payload with the
    /// issuer's keys. Only the signature is checked here: the claims are read
    /// by keyless's own strict parser, so a signed token with an odd claim
    /// (an `exp` that is a list) fails at the step that owns that claim.
    async fn verify_signature(&self, token: &str, header: &UnverifiedHeader, config: &OidcConfig) -> Result<(), VerifyError> {
        let keys: Arc<KeySet> = match &config.jwks {
            // NOTE: an uploaded set is parsed for every token; only fetched
            // sets are cached with their keys parsed.
            Some(uploaded) => Arc::new(KeySet::new(serde_json::from_value(uploaded.clone()).map_err(|_| VerifyError::Signature)?)),
            None => self.jwks.keys(&config.issuer_url, header.kid.as_deref()).await.map_err(VerifyError::Keys)?,
        };
        let Some((message, signature)) = token.rsplit_once('.') else {
            return Err(VerifyError::Signature);
        };
        let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
            return Err(VerifyError::Signature);
        };
        // Only keys whose family (RSA, EC, OKP) and curve fit the algorithm
        // are tried, and `check_header` allows no HMAC algorithm.
        if keys.verify(header.kid.as_deref(), header.alg, message.as_bytes(), &signature) {
            Ok(())
        } else {
            Err(VerifyError::Signature)
        }
    }
}

impl Default for OidcVerifier {
    fn default() -> Self {
        Self::new()
    }
}

/// Step 1. Returns the header and the claims, both unverified.
fn check_header(token: &str) -> Result<(UnverifiedHeader, Map<String, Value>), VerifyError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VerifyError::Malformed(format!("the token is longer than {MAX_TOKEN_BYTES} bytes")));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, payload_b64, signature_b64] = parts.as_slice() else {
        return Err(VerifyError::Malformed(format!("expected 3 dot-separated parts, found {}", parts.len())));
    };
    if signature_b64.is_empty() {
        return Err(VerifyError::Malformed("the signature is empty".into()));
    }
    let header = decode_json_object(header_b64, "header")?;
    let unverified_claims = decode_json_object(payload_b64, "payload")?;

    let alg_name = match header.get("alg") {
        Some(Value::String(alg)) => alg.as_str(),
        _ => return Err(VerifyError::Malformed("the header has no alg".into())),
    };
    let alg = match alg_name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        other => return Err(VerifyError::Algorithm(other.chars().take(32).collect())),
    };
    if let Some(crit) = header.get("crit") {
        return Err(VerifyError::Crit(crit.to_string().chars().take(128).collect()));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) if kid.len() <= 256 => Some(kid.clone()),
        Some(_) => return Err(VerifyError::Malformed("kid must be a string of at most 256 characters".into())),
    };
    Ok((UnverifiedHeader { alg, kid }, unverified_claims))
}

fn decode_json_object(part: &str, what: &str) -> Result<Map<String, Value>, VerifyError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| VerifyError::Malformed(format!("the {what} is not base64url without padding")))?;
    match strict_json::parse(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(VerifyError::Malformed(format!("the {what} is not a JSON object"))),
        Err(err) => Err(VerifyError::Malformed(format!("the {what} is not valid JSON: {err}"))),
    }
}

/// JSON parsing that rejects duplicate member names at any depth. RFC 7519
/// §4 lets a parser reject them, and keyless must: two parsers that keep
/// different duplicates would disagree on what was signed.
mod strict_json {
    use std::fmt;

    use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
    use serde_json::{Map, Value};

    pub fn parse(bytes: &[u8]) -> Result<Value, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let value = StrictValue.deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(value)
    }

    struct StrictValue;

    impl<'de> DeserializeSeed<'de> for StrictValue {
        type Value = Value;

        fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
            deserializer.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for StrictValue {
        type Value = Value;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }

        fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
            Ok(Value::Bool(v))
        }

        fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
            Ok(Value::from(v))
        }

        fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
            Ok(Value::from(v))
        }

        fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
            Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
        }

        fn visit_str<E>(self, v: &str) -> Result<Value, E> {
            Ok(Value::String(v.to_owned()))
        }

        fn visit_string<E>(self, v: String) -> Result<Value, E> {
            Ok(Value::String(v))
        }

        fn visit_unit<E>(self) -> Result<Value, E> {
            Ok(Value::Null)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(StrictValue)? {
                items.push(item);
            }
            Ok(Value::Array(items))
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut members = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                let value = map.next_value_seed(StrictValue)?;
                if members.insert(key.clone(), value).is_some() {
                    return Err(de::Error::custom(format!("the member {key:?} appears more than once")));
                }
            }
            Ok(Value::Object(members))
        }
    }
}

/// Step 2.
fn select_config<'c>(
    org: &str,
    unverified_claims: &Map<String, Value>,
    configs: impl IntoIterator<Item = &'c OidcConfig>,
) -> Result<&'c OidcConfig, VerifyError> {
    let issuer = match unverified_claims.get("iss") {
        Some(Value::String(iss)) => iss.as_str(),
        _ => return Err(VerifyError::Malformed("the token has no iss claim".into())),
    };
    configs
        .into_iter()
        .find(|c| c.active && c.org_id == org && c.issuer_url == issuer)
        .ok_or_else(|| VerifyError::UnknownIssuer { org: org.to_owned(), issuer: issuer.chars().take(256).collect() })
}

/// Flattens claims into condition keys: `jwt:<path>`, with nested objects
/// joined by `.` and arrays of scalars as several values. Depth is capped.
pub fn claims_context(claims: &Map<String, Value>) -> keyless_policy::Context {
    fn walk(prefix: &str, value: &Value, depth: usize, context: &mut keyless_policy::Context) {
        match value {
            Value::String(s) => context.insert(prefix, s.clone()),
            Value::Number(n) => context.insert(prefix, n.to_string()),
            Value::Bool(b) => context.insert(prefix, b.to_string()),
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::String(s) => context.insert(prefix, s.clone()),
                        Value::Number(n) => context.insert(prefix, n.to_string()),
                        Value::Bool(b) => context.insert(prefix, b.to_string()),
                        _ => {}
                    }
                }
            }
            Value::Object(map) if depth < 8 => {
                for (key, inner) in map {
                    walk(&format!("{prefix}.{key}"), inner, depth + 1, context);
                }
            }
            _ => {}
        }
    }
    let mut context = keyless_policy::Context::new();
    for (key, value) in claims {
        walk(&format!("jwt:{key}"), value, 0, &mut context);
    }
    context
}

/// Step 6.
fn check_claim_conditions(context: &keyless_policy::Context, config: &OidcConfig) -> Result<(), VerifyError> {
    let Some(conditions) = &config.conditions else { return Ok(()) };
    for trace in conditions.evaluate_granting(context) {
        if !trace.matched {
            return Err(VerifyError::ClaimCondition(format!("{} on {}", trace.operator, trace.key)));
        }
    }
    Ok(())
}

/// Copies mapped claims into session keys. A claim with several values is
/// joined with commas; a missing claim leaves its key out.
fn map_attributes(context: &keyless_policy::Context, config: &OidcConfig) -> std::collections::BTreeMap<String, String> {
    let mut mapped = std::collections::BTreeMap::new();
    for (target, claim) in &config.attribute_mapping {
        let source = format!("jwt:{}", claim.strip_prefix("jwt:").unwrap_or(claim));
        if let Some(values) = context.get(&source)
            && !values.is_empty()
        {
            mapped.insert(target.clone(), values.join(","));
        }
    }
    mapped
}

/// Step 4.
fn check_audience(claims: &Map<String, Value>, config: &OidcConfig) -> Result<(), VerifyError> {
    let matches = |aud: &str| config.audiences.iter().any(|a| a == aud);
    let ok = match claims.get("aud") {
        Some(Value::String(aud)) => matches(aud),
        Some(Value::Array(list)) => list.iter().any(|v| v.as_str().is_some_and(matches)),
        _ => false,
    };
    if ok { Ok(()) } else { Err(VerifyError::Audience) }
}

/// Step 5.
fn check_times(claims: &Map<String, Value>, config: &OidcConfig, now: i64) -> Result<(), VerifyError> {
    let leeway = config.leeway_seconds as i64;
    let number = |name: &'static str| -> Result<Option<i64>, VerifyError> {
        match claims.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).map(Some).ok_or(VerifyError::TimeClaim(name)),
            Some(_) => Err(VerifyError::TimeClaim(name)),
        }
    };
    let exp = number("exp")?.ok_or(VerifyError::TimeClaim("exp"))?;
    if now >= exp.saturating_add(leeway) {
        return Err(VerifyError::Expired);
    }
    if let Some(nbf) = number("nbf")?
        && nbf > now.saturating_add(leeway)
    {
        return Err(VerifyError::NotYetValid("nbf"));
    }
    let iat = number("iat")?;
    if let Some(iat) = iat
        && iat > now.saturating_add(leeway)
    {
        return Err(VerifyError::NotYetValid("iat"));
    }
    if let Some(max_age) = config.max_token_age_seconds {
        let iat = iat.ok_or(VerifyError::TimeClaim("iat"))?;
        if now.saturating_sub(iat) > max_age as i64 + leeway {
            return Err(VerifyError::TooOld);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    // A throwaway P-256 key generated for these tests only.
    const EC_PRIVATE_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgZsvi6egAVAv4B9IU
WPc8xAWVhil5iDrT8zGhJW6dQjqhRANCAATGgNMPgnaiEf8F3VH1kbyGM4W2uJPr
KXHq3sYzQ4hXHk979jNJCcony3q5FjScG8yX4NQh3sTNJyte4KfLy94p
-----END PRIVATE KEY-----
";
    const EC_X: &str = "xoDTD4J2ohH_Bd1R9ZG8hjOFtriT6ylx6t7GM0OIVx4";
    const EC_Y: &str = "T3v2M0kJyifLerkWNJwbzJfg1CHexM0nK17gp8vL3ik";
    const ISSUER: &str = "https://issuer.test";

    fn config() -> OidcConfig {
        OidcConfig {
            id: "cfg".into(),
            org_id: "default".into(),
            name: "test".into(),
            issuer_url: ISSUER.into(),
            audiences: vec!["keyless".into()],
            description: None,
            active: true,
            jwks: Some(json!({"keys":[{"kty":"EC","crv":"P-256","x":EC_X,"y":EC_Y,"kid":"k1","alg":"ES256","use":"sig"}]})),
            leeway_seconds: 60,
            max_token_age_seconds: None,
            min_duration_seconds: 900,
            max_duration_seconds: 43200,
            default_duration_seconds: 3600,
            conditions: None,
            attribute_mapping: Default::default(),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    fn sign(claims: &Value, kid: Option<&str>) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = kid.map(str::to_owned);
        let key = EncodingKey::from_ec_pem(EC_PRIVATE_PEM.as_bytes()).unwrap();
        jsonwebtoken::encode(&header, claims, &key).unwrap()
    }

    fn claims(now: i64) -> Value {
        json!({"iss": ISSUER, "sub": "system:serviceaccount:ml:trainer", "aud": "keyless", "exp": now + 600, "iat": now})
    }

    async fn verify(token: &str, now: i64) -> Result<VerifiedToken, VerifyError> {
        OidcVerifier::new().verify("default", token, &[config()], now).await
    }

    const NOW: i64 = 1_800_000_000;

    #[tokio::test]
    async fn valid_token_yields_role_principal() {
        let verified = verify(&sign(&claims(NOW), Some("k1")), NOW).await.unwrap();
        assert_eq!(verified.principal, "role/https://issuer.test:system:serviceaccount:ml:trainer");
    }

    #[tokio::test]
    async fn token_without_kid_tries_every_key() {
        assert!(verify(&sign(&claims(NOW), None), NOW).await.is_ok());
    }

    #[tokio::test]
    async fn tampered_payload_fails_signature() {
        let token = sign(&claims(NOW), Some("k1"));
        let parts: Vec<&str> = token.split('.').collect();
        let mut evil = claims(NOW);
        evil["sub"] = json!("admin");
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&evil).unwrap());
        let forged = format!("{}.{}.{}", parts[0], payload, parts[2]);
        assert_eq!(verify(&forged, NOW).await.unwrap_err(), VerifyError::Signature);
    }

    #[tokio::test]
    async fn none_algorithm_in_any_case_is_rejected() {
        for alg in ["none", "None", "NONE", "nOnE"] {
            let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg}).to_string());
            let payload = URL_SAFE_NO_PAD.encode(claims(NOW).to_string());
            for token in [format!("{header}.{payload}."), format!("{header}.{payload}.AAAA")] {
                let err = verify(&token, NOW).await.unwrap_err();
                assert!(matches!(err, VerifyError::Algorithm(_) | VerifyError::Malformed(_)), "{alg}: {err:?}");
            }
        }
    }

    #[tokio::test]
    async fn hmac_algorithms_are_rejected() {
        for alg in ["HS256", "HS384", "HS512"] {
            let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "kid": "k1"}).to_string());
            let payload = URL_SAFE_NO_PAD.encode(claims(NOW).to_string());
            let token = format!("{header}.{payload}.c2ln");
            assert_eq!(verify(&token, NOW).await.unwrap_err(), VerifyError::Algorithm(alg.into()));
        }
    }

    #[tokio::test]
    async fn crit_header_is_rejected() {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "kid": "k1", "crit": ["exp"]}).to_string());
        let payload = URL_SAFE_NO_PAD.encode(claims(NOW).to_string());
        let token = format!("{header}.{payload}.c2ln");
        assert!(matches!(verify(&token, NOW).await.unwrap_err(), VerifyError::Crit(_)));
    }

    #[tokio::test]
    async fn issuer_must_match_exactly() {
        for iss in ["https://issuer.test/", "https://ISSUER.test", "https://issuer.test.evil"] {
            let mut c = claims(NOW);
            c["iss"] = json!(iss);
            assert!(matches!(verify(&sign(&c, Some("k1")), NOW).await.unwrap_err(), VerifyError::UnknownIssuer { .. }), "{iss}");
        }
    }

    #[tokio::test]
    async fn audience_cases() {
        for (aud, ok) in [(json!("keyless"), true), (json!(["x", "keyless"]), true), (json!("other"), false), (json!(["x"]), false), (json!(null), false)] {
            let mut c = claims(NOW);
            c["aud"] = aud.clone();
            let result = verify(&sign(&c, Some("k1")), NOW).await;
            assert_eq!(result.is_ok(), ok, "{aud}");
        }
        let mut c = claims(NOW);
        c.as_object_mut().unwrap().remove("aud");
        assert_eq!(verify(&sign(&c, Some("k1")), NOW).await.unwrap_err(), VerifyError::Audience);
    }

    #[tokio::test]
    async fn time_claims_are_enforced() {
        let mut c = claims(NOW);
        c["exp"] = json!(NOW - 61);
        assert_eq!(verify(&sign(&c, Some("k1")), NOW).await.unwrap_err(), VerifyError::Expired);
        c["exp"] = json!("soon");
        assert_eq!(verify(&sign(&c, Some("k1")), NOW).await.unwrap_err(), VerifyError::TimeClaim("exp"));
        c.as_object_mut().unwrap().remove("exp");
        assert_eq!(verify(&sign(&c, Some("k1")), NOW).await.unwrap_err(), VerifyError::TimeClaim("exp"));
        let mut c = claims(NOW);
        c["nbf"] = json!(NOW + 120);
        assert_eq!(verify(&sign(&c, Some("k1")), NOW).await.unwrap_err(), VerifyError::NotYetValid("nbf"));
        let mut c = claims(NOW);
        c["iat"] = json!(NOW + 120);
        assert_eq!(verify(&sign(&c, Some("k1")), NOW).await.unwrap_err(), VerifyError::NotYetValid("iat"));
    }

    #[tokio::test]
    async fn unknown_kid_fails_signature() {
        assert_eq!(verify(&sign(&claims(NOW), Some("other")), NOW).await.unwrap_err(), VerifyError::Signature);
    }

    #[tokio::test]
    async fn duplicate_claims_are_rejected() {
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "kid": "k1"}).to_string());
        for payload in [
            format!(r#"{{"iss":"{ISSUER}","sub":"a","sub":"admin","aud":"keyless","exp":{}}}"#, NOW + 600),
            format!(r#"{{"iss":"{ISSUER}","sub":"a","aud":"keyless","exp":{},"nested":{{"x":1,"x":2}}}}"#, NOW + 600),
        ] {
            let token = format!("{header}.{}.c2ln", URL_SAFE_NO_PAD.encode(payload));
            let err = verify(&token, NOW).await.unwrap_err();
            assert!(matches!(&err, VerifyError::Malformed(m) if m.contains("more than once")), "{err:?}");
        }
        let dup_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","alg":"none"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims(NOW).to_string());
        assert!(matches!(verify(&format!("{dup_header}.{payload}.c2ln"), NOW).await.unwrap_err(), VerifyError::Malformed(_)));
    }

    #[tokio::test]
    async fn offered_keys_in_header_are_ignored() {
        // A token signed with a key it carries itself must still be checked
        // against the configured key set only.
        for field in ["jku", "x5u", "jwk", "x5c"] {
            let header = URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "kid": "k1", field: "https://attacker.example/key"}).to_string());
            let payload = URL_SAFE_NO_PAD.encode(claims(NOW).to_string());
            let token = format!("{header}.{payload}.c2ln");
            assert_eq!(verify(&token, NOW).await.unwrap_err(), VerifyError::Signature, "{field}");
        }
    }

    #[tokio::test]
    async fn claim_conditions_gate_the_exchange() {
        let mut cfg = config();
        cfg.conditions = Some(
            keyless_policy::Conditions::from_json(&json!({
                "StringEquals": {"jwt:kubernetes.io.namespace": "ml"},
                "StringLike": {"jwt:sub": "system:serviceaccount:ml:*"}
            }))
            .unwrap(),
        );
        let verifier = OidcVerifier::new();
        let mut c = claims(NOW);
        c["kubernetes.io"] = json!({"namespace": "ml", "serviceaccount": {"name": "trainer"}});
        assert!(verifier.verify("default", &sign(&c, Some("k1")), std::slice::from_ref(&cfg), NOW).await.is_ok());
        c["kubernetes.io"]["namespace"] = json!("other");
        let err = verifier.verify("default", &sign(&c, Some("k1")), std::slice::from_ref(&cfg), NOW).await.unwrap_err();
        assert!(matches!(err, VerifyError::ClaimCondition(_)), "{err:?}");
    }

    #[tokio::test]
    async fn hostile_claim_values_match_literally() {
        let mut cfg = config();
        cfg.conditions = Some(keyless_policy::Conditions::from_json(&json!({"StringEquals": {"jwt:repository": "acme/train"}})).unwrap());
        let verifier = OidcVerifier::new();
        for hostile in ["*", "acme/*", "acme/train/..", "?cme/train"] {
            let mut c = claims(NOW);
            c["repository"] = json!(hostile);
            let result = verifier.verify("default", &sign(&c, Some("k1")), std::slice::from_ref(&cfg), NOW).await;
            assert!(matches!(result, Err(VerifyError::ClaimCondition(_))), "{hostile}");
        }
    }

    #[tokio::test]
    async fn attribute_mapping_copies_claims() {
        let mut cfg = config();
        cfg.attribute_mapping.insert("aws:PrincipalTag/team".into(), "team".into());
        cfg.attribute_mapping.insert("jwt:repository".into(), "repository".into());
        let mut c = claims(NOW);
        c["team"] = json!("vision");
        c["repository"] = json!("acme/train");
        let verified = OidcVerifier::new().verify("default", &sign(&c, Some("k1")), &[cfg], NOW).await.unwrap();
        assert_eq!(verified.mapped_attributes.get("aws:PrincipalTag/team").map(String::as_str), Some("vision"));
        assert_eq!(verified.mapped_attributes.get("jwt:repository").map(String::as_str), Some("acme/train"));
    }

    #[tokio::test]
    async fn oversized_token_is_malformed() {
        let token = "a".repeat(MAX_TOKEN_BYTES + 1);
        assert!(matches!(verify(&token, NOW).await.unwrap_err(), VerifyError::Malformed(_)));
    }
}
