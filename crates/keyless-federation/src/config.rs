//! OIDC WIF configurations as stored and as sent to `/v1/keyless/wif/oidc`.

use serde::{Deserialize, Serialize};

/// Default bounds of a credential lifetime, seconds.
pub const DEFAULT_MIN_DURATION: u64 = 900;
pub const DEFAULT_MAX_DURATION: u64 = 43_200;
pub const DEFAULT_DURATION: u64 = 3_600;
/// Default clock leeway for `exp`, `nbf` and `iat`, seconds.
pub const DEFAULT_LEEWAY: u64 = 60;

/// The request body of create and replace. Unknown fields are rejected so that
/// a misspelt security setting is never silently dropped.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OidcConfigInput {
    pub org_id: String,
    pub name: String,
    pub issuer_url: String,
    pub audiences: Vec<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    /// An uploaded JWK set, used instead of fetching the issuer's.
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    #[serde(default)]
    pub leeway_seconds: Option<u64>,
    #[serde(default)]
    pub max_token_age_seconds: Option<u64>,
    #[serde(default)]
    pub min_duration_seconds: Option<u64>,
    #[serde(default)]
    pub max_duration_seconds: Option<u64>,
    #[serde(default)]
    pub default_duration_seconds: Option<u64>,
    /// Conditions over the token's claims (keys `jwt:<claim>`, nested claims by
    /// dotted path), in the policy condition language; all must hold.
    #[serde(default)]
    pub conditions: Option<keyless_policy::Conditions>,
    /// Session keys to fill from claims: `{"aws:PrincipalTag/team": "groups"}`
    /// or `{"jwt:repository": "repository"}`. Keys must start with `jwt:` or
    /// `aws:PrincipalTag/`; values are claim paths.
    #[serde(default)]
    pub attribute_mapping: Option<std::collections::BTreeMap<String, String>>,
    /// Read-only fields that GET returns. They are accepted so that a client
    /// can PUT back what it read; `id` must then name the configuration.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// A stored configuration, as returned by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OidcConfig {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub issuer_url: String,
    pub audiences: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<serde_json::Value>,
    pub leeway_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_token_age_seconds: Option<u64>,
    pub min_duration_seconds: u64,
    pub max_duration_seconds: u64,
    pub default_duration_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<keyless_policy::Conditions>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub attribute_mapping: std::collections::BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Reason a configuration was rejected. The message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {message}")]
pub struct ConfigError {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { field, message: message.into() }
}

impl OidcConfigInput {
    /// Validates the input and builds the stored form.
    pub fn into_config(self, id: String, created_at: String, updated_at: String) -> Result<OidcConfig, ConfigError> {
        if let Some(given) = &self.id
            && *given != id
        {
            return Err(invalid("id", format!("{given:?} does not match the configuration being written ({id:?})")));
        }
        check_name(&self.name)?;
        check_issuer_url(&self.issuer_url)?;
        if self.audiences.is_empty() || self.audiences.iter().any(|a| a.is_empty() || a.len() > 512) {
            return Err(invalid("audiences", "expected at least one non-empty audience of at most 512 characters"));
        }
        if let Some(jwks) = &self.jwks {
            let parsed: Result<jsonwebtoken::jwk::JwkSet, _> = serde_json::from_value(jwks.clone());
            match parsed {
                Ok(set) if !set.keys.is_empty() => {}
                Ok(_) => return Err(invalid("jwks", "the key set has no keys")),
                Err(err) => return Err(invalid("jwks", format!("not a JWK set: {err}"))),
            }
        }
        let (min, max, default) = check_durations(self.min_duration_seconds, self.max_duration_seconds, self.default_duration_seconds)?;
        let attribute_mapping = self.attribute_mapping.unwrap_or_default();
        for (target, claim) in &attribute_mapping {
            check_session_key(target, &["jwt:", "aws:PrincipalTag/"])?;
            if claim.is_empty() || claim.len() > 256 {
                return Err(invalid("attributeMapping", format!("the claim path for {target:?} must be 1 to 256 characters")));
            }
        }
        let leeway = self.leeway_seconds.unwrap_or(DEFAULT_LEEWAY);
        if leeway > 600 {
            return Err(invalid("leewaySeconds", format!("{leeway} is above the maximum of 600")));
        }
        Ok(OidcConfig {
            id,
            org_id: self.org_id,
            name: self.name,
            issuer_url: self.issuer_url,
            audiences: self.audiences,
            description: self.description,
            active: self.active.unwrap_or(true),
            jwks: self.jwks,
            leeway_seconds: leeway,
            max_token_age_seconds: self.max_token_age_seconds,
            min_duration_seconds: min,
            max_duration_seconds: max,
            default_duration_seconds: default,
            conditions: self.conditions.filter(|c| !c.is_empty()),
            attribute_mapping,
            created_at,
            updated_at,
        })
    }
}

/// Configuration names: 1 to 64 letters, digits, `-`, `_` or `.`.
pub(crate) fn check_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok { Ok(()) } else { Err(invalid("name", format!("{name:?}: expected 1 to 64 letters, digits, '-', '_' or '.'"))) }
}

/// Resolves the credential lifetime bounds and default, in seconds, and
/// returns them as (min, max, default).
pub(crate) fn check_durations(min: Option<u64>, max: Option<u64>, default: Option<u64>) -> Result<(u64, u64, u64), ConfigError> {
    let min = min.unwrap_or(DEFAULT_MIN_DURATION);
    let max = max.unwrap_or(DEFAULT_MAX_DURATION);
    if min < 60 || max > DEFAULT_MAX_DURATION || min > max {
        return Err(invalid(
            "minDurationSeconds",
            format!("bounds {min}..{max} are invalid: expected 60 <= min <= max <= {DEFAULT_MAX_DURATION}"),
        ));
    }
    let default = default.unwrap_or(DEFAULT_DURATION.clamp(min, max));
    if default < min || default > max {
        return Err(invalid("defaultDurationSeconds", format!("{default} is outside the bounds {min}..{max}")));
    }
    Ok((min, max, default))
}

/// Checks an attribute-mapping target: one of `prefixes` followed by 1 to
/// 128 letters, digits or `-_.:/`.
pub(crate) fn check_session_key(target: &str, prefixes: &[&str]) -> Result<(), ConfigError> {
    let ok = prefixes.iter().filter_map(|p| target.strip_prefix(p)).any(|rest| {
        !rest.is_empty() && rest.len() <= 128 && rest.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c))
    });
    if ok {
        Ok(())
    } else {
        let expected = prefixes.iter().map(|p| format!("{p}<name>")).collect::<Vec<_>>().join(" or ");
        Err(invalid("attributeMapping", format!("{target:?} is not a session key: expected {expected}")))
    }
}

/// Issuer URLs must be HTTPS, except on loopback addresses where HTTP is allowed
/// for local identity providers.
pub fn check_issuer_url(issuer: &str) -> Result<(), ConfigError> {
    let url = url::Url::parse(issuer).map_err(|err| invalid("issuerUrl", format!("{issuer:?} is not a URL: {err}")))?;
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("issuerUrl", format!("{issuer:?} must not contain a query, fragment or user info")));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if is_loopback_host(&url) => Ok(()),
        "http" => Err(invalid("issuerUrl", format!("{issuer:?} uses http: only loopback issuers may, others need https"))),
        other => Err(invalid("issuerUrl", format!("{issuer:?} has scheme {other:?}: expected https"))),
    }
}

pub(crate) fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_issuer_only_on_loopback() {
        assert!(check_issuer_url("http://127.0.0.1:8080").is_ok());
        assert!(check_issuer_url("http://[::1]:8080/x").is_ok());
        assert!(check_issuer_url("https://token.actions.githubusercontent.com").is_ok());
        assert_eq!(check_issuer_url("http://example.com").unwrap_err().field, "issuerUrl");
        assert!(check_issuer_url("http://169.254.169.254").is_err());
        assert!(check_issuer_url("ftp://127.0.0.1").is_err());
    }

    #[test]
    fn unknown_field_is_named() {
        let err = serde_json::from_str::<OidcConfigInput>(
            r#"{"orgId":"default","name":"n","issuerUrl":"https://i","audiences":["a"],"audience":"a"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("audience"), "{err}");
    }
}
