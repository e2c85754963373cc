//! SAML WIF configurations and the exchange-side checks around
//! `keyless_saml::verify`: choosing the configuration, reading the role and
//! principal name, claim conditions and attribute mapping.
//!
//! The XML and signature rules live in `keyless-saml`. This module chooses the
//! configuration a response is checked against and derives the identity of a
//! verified assertion: the principal `role/<Role>`. `<Role>` comes from the
//! configured role attribute or, for `AssumeRoleWithSAML`, from the AWS role
//! attribute pair that matches the call's `RoleArn` and `PrincipalArn`.

use std::collections::BTreeMap;

use keyless_saml::{Certificate, SamlError, SamlSettings, VerifiedAssertion};
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, DEFAULT_LEEWAY};

/// Default attribute carrying the role name (CoreWeave's convention).
pub const DEFAULT_ROLE_ATTRIBUTE: &str = "https://coreweave.com/SAML/Attributes/Role";
/// Default attribute carrying the workload's or person's name.
pub const DEFAULT_PRINCIPAL_NAME_ATTRIBUTE: &str = "https://coreweave.com/SAML/Attributes/PrincipalName";
/// The AWS role attribute: values are `role-arn,principal-arn` pairs.
pub const AWS_ROLE_ATTRIBUTE: &str = "https://aws.amazon.com/SAML/Attributes/Role";

/// The request body of create and replace. Unknown fields are rejected so
/// that a misspelt security setting is never silently dropped.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SamlConfigInput {
    pub org_id: String,
    pub name: String,
    /// Required unless `metadata_xml` names it.
    #[serde(default)]
    pub idp_entity_id: Option<String>,
    /// PEM signing certificates; any of them may sign (rotation).
    #[serde(default)]
    pub certificates: Option<Vec<String>>,
    /// IdP metadata to import the entity id and signing certificates from.
    #[serde(default)]
    pub metadata_xml: Option<String>,
    #[serde(default)]
    pub sp_entity_id: Option<String>,
    #[serde(default)]
    pub acs_urls: Option<Vec<String>>,
    #[serde(default)]
    pub role_attribute: Option<String>,
    #[serde(default)]
    pub principal_name_attribute: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub leeway_seconds: Option<u64>,
    #[serde(default)]
    pub min_duration_seconds: Option<u64>,
    #[serde(default)]
    pub max_duration_seconds: Option<u64>,
    #[serde(default)]
    pub default_duration_seconds: Option<u64>,
    /// Conditions over the assertion's attributes (keys `saml:<attribute
    /// name>`), in the policy condition language; all must hold.
    #[serde(default)]
    pub conditions: Option<keyless_policy::Conditions>,
    /// Session keys to fill from attributes: `{"saml:team": "<attribute
    /// name>"}` or `{"aws:PrincipalTag/team": "<attribute name>"}`.
    #[serde(default)]
    pub attribute_mapping: Option<BTreeMap<String, String>>,
    /// Read-only fields that GET returns, accepted so that a client can PUT
    /// back what it read; `id` must then name the configuration.
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
pub struct SamlConfig {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub idp_entity_id: String,
    pub certificates: Vec<String>,
    pub sp_entity_id: String,
    pub acs_urls: Vec<String>,
    pub role_attribute: String,
    pub principal_name_attribute: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub active: bool,
    pub leeway_seconds: u64,
    pub min_duration_seconds: u64,
    pub max_duration_seconds: u64,
    pub default_duration_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<keyless_policy::Conditions>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attribute_mapping: BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Server-wide values that configuration defaults derive from.
pub struct SamlDefaults {
    /// The API endpoint's public base URL, without a trailing slash.
    pub public_api_url: String,
}

impl SamlDefaults {
    /// Returns the default Audience, one SP entity id per org.
    pub fn sp_entity_id(org_id: &str) -> String {
        format!("urn:keyless:{org_id}")
    }

    /// Returns the default Recipient and Destination URLs: the JSON exchange
    /// endpoint and the STS endpoint.
    pub fn acs_urls(&self) -> Vec<String> {
        let base = self.public_api_url.trim_end_matches('/');
        vec![format!("{base}/v1/cwobject/temporary-credentials/saml"), format!("{base}/")]
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError { field, message: message.into() }
}

impl SamlConfigInput {
    /// Validates the input and builds the stored form. `now` (Unix seconds)
    /// decides whether a certificate has expired.
    pub fn into_config(self, id: String, created_at: String, updated_at: String, defaults: &SamlDefaults, now: i64) -> Result<SamlConfig, ConfigError> {
        if let Some(given) = &self.id
            && *given != id
        {
            return Err(invalid("id", format!("{given:?} does not match the configuration being written ({id:?})")));
        }
        crate::config::check_name(&self.name)?;
        let (idp_entity_id, certificates) = self.signing_identity(now)?;
        let sp_entity_id = self.sp_entity_id.clone().unwrap_or_else(|| SamlDefaults::sp_entity_id(&self.org_id));
        check_uri("spEntityId", &sp_entity_id)?;
        let acs_urls = self.acs_urls.clone().unwrap_or_else(|| defaults.acs_urls());
        if acs_urls.is_empty() {
            return Err(invalid("acsUrls", "expected at least one URL"));
        }
        for url in &acs_urls {
            url::Url::parse(url).map_err(|err| invalid("acsUrls", format!("{url:?} is not a URL: {err}")))?;
        }
        let role_attribute = self.role_attribute.clone().unwrap_or_else(|| DEFAULT_ROLE_ATTRIBUTE.into());
        check_uri("roleAttribute", &role_attribute)?;
        let principal_name_attribute = self.principal_name_attribute.clone().unwrap_or_else(|| DEFAULT_PRINCIPAL_NAME_ATTRIBUTE.into());
        check_uri("principalNameAttribute", &principal_name_attribute)?;
        let (min, max, default) = crate::config::check_durations(self.min_duration_seconds, self.max_duration_seconds, self.default_duration_seconds)?;
        let leeway = self.leeway_seconds.unwrap_or(DEFAULT_LEEWAY);
        if leeway > 600 {
            return Err(invalid("leewaySeconds", format!("{leeway} is above the maximum of 600")));
        }
        let attribute_mapping = self.attribute_mapping.unwrap_or_default();
        for (target, attribute) in &attribute_mapping {
            crate::config::check_session_key(target, &["saml:", "aws:PrincipalTag/"])?;
            check_uri("attributeMapping", attribute)?;
        }
        Ok(SamlConfig {
            id,
            org_id: self.org_id,
            name: self.name,
            idp_entity_id,
            certificates: certificates.iter().map(Certificate::to_pem).collect(),
            sp_entity_id,
            acs_urls,
            role_attribute,
            principal_name_attribute,
            description: self.description,
            active: self.active.unwrap_or(true),
            leeway_seconds: leeway,
            min_duration_seconds: min,
            max_duration_seconds: max,
            default_duration_seconds: default,
            conditions: self.conditions.filter(|c| !c.is_empty()),
            attribute_mapping,
            created_at,
            updated_at,
        })
    }

    /// Resolves the IdP entity id and its signing certificates from
    /// `idpEntityId` + `certificates` or from `metadataXml`. A configuration
    /// with no usable certificate is rejected: accepting one would mean
    /// accepting unsigned assertions or none at all.
    fn signing_identity(&self, now: i64) -> Result<(String, Vec<Certificate>), ConfigError> {
        let (entity_id, certificates) = match (&self.metadata_xml, &self.certificates) {
            (Some(_), Some(_)) => return Err(invalid("certificates", "give either certificates or metadataXml, not both")),
            (Some(xml), None) => {
                let (entity_id, certificates) = keyless_saml::parse_idp_metadata(xml).map_err(|err| invalid("metadataXml", err.to_string()))?;
                if let Some(given) = &self.idp_entity_id
                    && *given != entity_id
                {
                    return Err(invalid("idpEntityId", format!("{given:?} differs from the metadata's entityID {entity_id:?}")));
                }
                (entity_id, certificates)
            }
            (None, Some(pems)) => {
                let entity_id = self.idp_entity_id.clone().ok_or_else(|| invalid("idpEntityId", "required unless metadataXml is given"))?;
                let mut certificates = Vec::new();
                for (index, pem) in pems.iter().enumerate() {
                    let cert = Certificate::from_pem(pem).map_err(|err| invalid("certificates", format!("certificate {index}: {err}")))?;
                    certificates.push(cert);
                }
                (entity_id, certificates)
            }
            (None, None) => return Err(invalid("certificates", "a signing certificate is required: give certificates (PEM) or metadataXml")),
        };
        check_uri("idpEntityId", &entity_id)?;
        if certificates.is_empty() {
            return Err(invalid("certificates", "no signing certificate found: an IdP without one cannot be trusted"));
        }
        if certificates.len() > 8 {
            return Err(invalid("certificates", format!("{} certificates given: at most 8 are accepted", certificates.len())));
        }
        for cert in &certificates {
            if cert.not_after() < now {
                return Err(invalid("certificates", format!("certificate {} expired", cert.sha256_fingerprint())));
            }
        }
        Ok((entity_id, certificates))
    }
}

/// Entity ids and attribute names: non-empty printable strings of at most
/// 1,024 characters.
fn check_uri(field: &'static str, value: &str) -> Result<(), ConfigError> {
    if value.is_empty() || value.len() > 1024 || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid(field, format!("{value:?}: expected 1 to 1024 printable characters without spaces")));
    }
    Ok(())
}

/// Why a SAML exchange was rejected before or after `keyless_saml::verify`.
#[derive(Debug, thiserror::Error)]
pub enum SamlExchangeError {
    #[error("the SAML response is missing")]
    Missing,
    #[error("no active SAML configuration of this organization names the issuer {0:?}")]
    UnknownIssuer(String),
    #[error(transparent)]
    Verify(#[from] SamlError),
    #[error("{0}")]
    Role(String),
    #[error("attribute condition failed: {0}")]
    Condition(String),
}

impl SamlExchangeError {
    /// Short class for logs, audit events and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            SamlExchangeError::Missing => "assertion-missing",
            SamlExchangeError::UnknownIssuer(_) => "unknown-issuer",
            SamlExchangeError::Verify(err) => err.reason(),
            SamlExchangeError::Role(_) => "role-missing",
            SamlExchangeError::Condition(_) => "attribute-condition",
        }
    }
}

/// The role the caller asks for through `AssumeRoleWithSAML`.
pub struct RequestedRole<'a> {
    pub org_id: &'a str,
    pub role_arn: &'a str,
    pub principal_arn: &'a str,
}

/// A verified assertion and the identity keyless derives from it.
#[derive(Debug, Clone)]
pub struct VerifiedSaml {
    pub config: SamlConfig,
    pub assertion: VerifiedAssertion,
    /// `role/<Role>`.
    pub principal: String,
    /// The principal-name attribute, or the NameID when it is absent.
    pub subject: String,
    /// Session keys filled by the configuration's attribute mapping.
    pub mapped_attributes: BTreeMap<String, String>,
}

/// Verifies `response` (base64 `SAMLResponse`) against the org's
/// configurations `configs` and derives the principal. The configuration is
/// the active one whose `idpEntityId` equals the response's issuer. The issuer
/// is read unverified only to choose it, because `keyless_saml::verify` then
/// requires it again from the signed assertion.
pub fn verify_saml(response: &str, configs: &[SamlConfig], role: Option<&RequestedRole<'_>>, now: i64) -> Result<VerifiedSaml, SamlExchangeError> {
    let response = response.trim();
    if response.is_empty() {
        return Err(SamlExchangeError::Missing);
    }
    let issuer = keyless_saml::peek(response)?.issuer;
    let config = configs
        .iter()
        .find(|c| c.active && c.idp_entity_id == issuer)
        .ok_or_else(|| SamlExchangeError::UnknownIssuer(issuer.chars().take(256).collect()))?;
    let settings = settings(config)?;
    let assertion = keyless_saml::verify(response, &settings, now)?;

    let context = attribute_context(&assertion);
    if let Some(conditions) = &config.conditions {
        for trace in conditions.evaluate_granting(&context) {
            if !trace.matched {
                return Err(SamlExchangeError::Condition(format!("{} on {}", trace.operator, trace.key)));
            }
        }
    }
    let role_name = role_name(&assertion, config, role)?;
    let subject = match assertion.attributes.get(&config.principal_name_attribute).and_then(|v| v.first()) {
        Some(name) if !name.is_empty() => name.clone(),
        _ => assertion.name_id.clone().unwrap_or_default(),
    };
    let mut mapped_attributes = BTreeMap::new();
    for (target, attribute) in &config.attribute_mapping {
        if let Some(values) = assertion.attributes.get(attribute)
            && !values.is_empty()
        {
            mapped_attributes.insert(target.clone(), values.join(","));
        }
    }
    Ok(VerifiedSaml { config: config.clone(), principal: format!("role/{role_name}"), subject, mapped_attributes, assertion })
}

fn settings(config: &SamlConfig) -> Result<SamlSettings, SamlError> {
    let certificates = config.certificates.iter().map(|pem| Certificate::from_pem(pem)).collect::<Result<Vec<_>, _>>()?;
    Ok(SamlSettings {
        idp_entity_id: config.idp_entity_id.clone(),
        certificates,
        sp_entity_id: config.sp_entity_id.clone(),
        acs_urls: config.acs_urls.clone(),
        leeway_seconds: config.leeway_seconds,
    })
}

/// Attributes as condition keys `saml:<attribute name>`, one value each.
fn attribute_context(assertion: &VerifiedAssertion) -> keyless_policy::Context {
    let mut context = keyless_policy::Context::new();
    for (name, values) in &assertion.attributes {
        for value in values {
            context.insert(&format!("saml:{name}"), value.clone());
        }
    }
    if let Some(name_id) = &assertion.name_id {
        context.insert("saml:sub", name_id.clone());
    }
    context
}

/// Reads the role name. With a requested role (`AssumeRoleWithSAML`), an AWS
/// role pair naming exactly that role and provider must be present, or the
/// configured role attribute must hold the role's name. Without one, the
/// configured attribute must hold exactly one value, or the AWS attribute
/// exactly one pair for this org.
fn role_name(assertion: &VerifiedAssertion, config: &SamlConfig, requested: Option<&RequestedRole<'_>>) -> Result<String, SamlExchangeError> {
    let configured = assertion.attributes.get(&config.role_attribute).map(Vec::as_slice).unwrap_or_default();
    let pairs: Vec<(String, String)> = assertion
        .attributes
        .get(AWS_ROLE_ATTRIBUTE)
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|value| aws_role_pair(value, &config.org_id))
        .collect();
    let name = match requested {
        Some(requested) => {
            let requested_role = role_from_arn(requested.role_arn, requested.org_id)
                .ok_or_else(|| SamlExchangeError::Role(format!("RoleArn {:?} is not arn:aws:iam::{}:role/<name>", requested.role_arn, requested.org_id)))?;
            let pair_ok = pairs.iter().any(|(role, provider)| *role == requested_role && provider_arn_matches(requested.principal_arn, provider, requested.org_id));
            if !(pair_ok || configured.iter().any(|v| *v == requested_role)) {
                return Err(SamlExchangeError::Role(format!(
                    "the assertion does not grant the role {requested_role:?} with provider {:?}",
                    requested.principal_arn
                )));
            }
            requested_role
        }
        None => match (configured, pairs.as_slice()) {
            ([one], _) => one.clone(),
            ([], [(role, _)]) => role.clone(),
            ([], []) => return Err(SamlExchangeError::Role(format!("the assertion has no role attribute {:?}", config.role_attribute))),
            _ => {
                return Err(SamlExchangeError::Role(format!(
                    "the assertion grants several roles: use AssumeRoleWithSAML with a RoleArn to choose one (attribute {:?})",
                    config.role_attribute
                )));
            }
        },
    };
    check_role_name(&name)?;
    Ok(name)
}

/// IAM role names: 1 to 64 of letters, digits and `+=,.@_-`.
fn check_role_name(name: &str) -> Result<(), SamlExchangeError> {
    let ok = !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(SamlExchangeError::Role(format!("role name {:?} is invalid: expected 1 to 64 letters, digits or +=,.@_-", name.chars().take(80).collect::<String>())))
    }
}

/// `arn:aws:iam::<org>:role/<name>` → `<name>`.
pub fn role_from_arn(arn: &str, org_id: &str) -> Option<String> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let name = resource.strip_prefix("role/")?;
    (account == org_id && !name.is_empty()).then(|| name.to_owned())
}

/// `arn:aws:iam::<org>:saml-provider/<name>` → `<name>`.
pub fn provider_from_arn(arn: &str, org_id: &str) -> Option<String> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let name = resource.strip_prefix("saml-provider/")?;
    (account == org_id && !name.is_empty()).then(|| name.to_owned())
}

fn provider_arn_matches(requested: &str, in_assertion: &str, org_id: &str) -> bool {
    requested == in_assertion && provider_from_arn(requested, org_id).is_some()
}

/// Splits an AWS role attribute value `role-arn,principal-arn` (either order)
/// into (role name, provider ARN); values for other accounts are skipped.
fn aws_role_pair(value: &str, org_id: &str) -> Option<(String, String)> {
    let (a, b) = value.split_once(',')?;
    let (a, b) = (a.trim(), b.trim());
    if let Some(role) = role_from_arn(a, org_id) {
        provider_from_arn(b, org_id).map(|_| (role, b.to_owned()))
    } else {
        let role = role_from_arn(b, org_id)?;
        provider_from_arn(a, org_id).map(|_| (role, a.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DEFAULT_DURATION, DEFAULT_MAX_DURATION, DEFAULT_MIN_DURATION};

    fn assertion(attributes: &[(&str, &[&str])]) -> VerifiedAssertion {
        VerifiedAssertion {
            assertion_id: "_a".into(),
            issuer: "https://idp".into(),
            name_id: Some("alice".into()),
            name_id_format: None,
            not_on_or_after: 0,
            attributes: attributes.iter().map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect())).collect(),
        }
    }

    fn config() -> SamlConfig {
        SamlConfig {
            id: "c".into(),
            org_id: "acme".into(),
            name: "corp".into(),
            idp_entity_id: "https://idp".into(),
            certificates: vec![],
            sp_entity_id: "urn:keyless:acme".into(),
            acs_urls: vec![],
            role_attribute: DEFAULT_ROLE_ATTRIBUTE.into(),
            principal_name_attribute: DEFAULT_PRINCIPAL_NAME_ATTRIBUTE.into(),
            description: None,
            active: true,
            leeway_seconds: 60,
            min_duration_seconds: DEFAULT_MIN_DURATION,
            max_duration_seconds: DEFAULT_MAX_DURATION,
            default_duration_seconds: DEFAULT_DURATION,
            conditions: None,
            attribute_mapping: BTreeMap::new(),
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    const ROLE_ARN: &str = "arn:aws:iam::acme:role/DataScience";
    const PROVIDER_ARN: &str = "arn:aws:iam::acme:saml-provider/corp";

    #[test]
    fn configured_role_attribute_gives_the_principal() {
        let a = assertion(&[(DEFAULT_ROLE_ATTRIBUTE, &["DataScience"])]);
        assert_eq!(role_name(&a, &config(), None).unwrap(), "DataScience");
    }

    #[test]
    fn several_roles_need_a_requested_one() {
        let a = assertion(&[(DEFAULT_ROLE_ATTRIBUTE, &["DataScience", "Admin"])]);
        assert!(matches!(role_name(&a, &config(), None), Err(SamlExchangeError::Role(_))));
        let requested = RequestedRole { org_id: "acme", role_arn: ROLE_ARN, principal_arn: PROVIDER_ARN };
        assert_eq!(role_name(&a, &config(), Some(&requested)).unwrap(), "DataScience");
        let other = RequestedRole { org_id: "acme", role_arn: "arn:aws:iam::acme:role/Ops", principal_arn: PROVIDER_ARN };
        assert!(role_name(&a, &config(), Some(&other)).is_err());
    }

    #[test]
    fn aws_role_pair_either_order() {
        let forward = format!("{ROLE_ARN},{PROVIDER_ARN}");
        let backward = format!("{PROVIDER_ARN},{ROLE_ARN}");
        for value in [forward.as_str(), backward.as_str()] {
            let a = assertion(&[(AWS_ROLE_ATTRIBUTE, &[value])]);
            let requested = RequestedRole { org_id: "acme", role_arn: ROLE_ARN, principal_arn: PROVIDER_ARN };
            assert_eq!(role_name(&a, &config(), Some(&requested)).unwrap(), "DataScience");
            assert_eq!(role_name(&a, &config(), None).unwrap(), "DataScience");
            let wrong_provider = RequestedRole { org_id: "acme", role_arn: ROLE_ARN, principal_arn: "arn:aws:iam::acme:saml-provider/other" };
            assert!(role_name(&a, &config(), Some(&wrong_provider)).is_err());
        }
    }

    #[test]
    fn another_accounts_role_pair_is_ignored() {
        let a = assertion(&[(AWS_ROLE_ATTRIBUTE, &["arn:aws:iam::evil:role/DataScience,arn:aws:iam::evil:saml-provider/corp"])]);
        assert!(role_name(&a, &config(), None).is_err());
        let requested = RequestedRole { org_id: "acme", role_arn: "arn:aws:iam::evil:role/DataScience", principal_arn: PROVIDER_ARN };
        assert!(role_name(&a, &config(), Some(&requested)).is_err());
    }

    #[test]
    fn hostile_role_names_are_rejected() {
        // IAM's role-name grammar; "." is allowed, so ".." is an ordinary name
        // and the principal "role/.." is matched literally like any other.
        for name in ["*", "a/b", "${aws:username}", "Data Science", "", &"x".repeat(65)] {
            let a = assertion(&[(DEFAULT_ROLE_ATTRIBUTE, &[name])]);
            assert!(role_name(&a, &config(), None).is_err(), "{name:?}");
        }
    }

    #[test]
    fn arn_parsing_checks_org_and_type() {
        assert_eq!(role_from_arn(ROLE_ARN, "acme").as_deref(), Some("DataScience"));
        assert_eq!(role_from_arn(ROLE_ARN, "other"), None);
        assert_eq!(role_from_arn(PROVIDER_ARN, "acme"), None);
        assert_eq!(provider_from_arn(PROVIDER_ARN, "acme").as_deref(), Some("corp"));
        assert_eq!(provider_from_arn("arn:aws:iam::acme:saml-provider/", "acme"), None);
    }

    #[test]
    fn configuration_without_certificate_is_rejected() {
        let input: SamlConfigInput = serde_json::from_value(serde_json::json!({
            "orgId": "acme", "name": "corp", "idpEntityId": "https://idp"
        }))
        .unwrap();
        let defaults = SamlDefaults { public_api_url: "http://127.0.0.1:9001".into() };
        let err = input.into_config("c".into(), String::new(), String::new(), &defaults, 0).unwrap_err();
        assert_eq!(err.field, "certificates");
        let input: SamlConfigInput = serde_json::from_value(serde_json::json!({
            "orgId": "acme", "name": "corp", "idpEntityId": "https://idp", "certificates": []
        }))
        .unwrap();
        let err = input.into_config("c".into(), String::new(), String::new(), &defaults, 0).unwrap_err();
        assert_eq!(err.field, "certificates");
        let input: SamlConfigInput = serde_json::from_value(serde_json::json!({
            "orgId": "acme", "name": "corp", "idpEntityId": "https://idp", "certificates": ["not a certificate"]
        }))
        .unwrap();
        let err = input.into_config("c".into(), String::new(), String::new(), &defaults, 0).unwrap_err();
        assert_eq!(err.field, "certificates");
    }

    #[test]
    fn default_acs_urls_follow_the_public_url() {
        let defaults = SamlDefaults { public_api_url: "https://keyless.example/".into() };
        assert_eq!(defaults.acs_urls(), vec!["https://keyless.example/v1/cwobject/temporary-credentials/saml", "https://keyless.example/"]);
    }
}
