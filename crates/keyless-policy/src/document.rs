//! Organization access policy documents, as sent to `POST /v1/cwobject/access-policy`.

use serde::{Deserialize, Serialize};

use crate::conditions::Conditions;
use crate::variables::Template;

/// Effect of a statement. Parsed strictly: only `Allow` and `Deny` exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    Allow,
    Deny,
}

/// A named organization access policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgPolicy {
    pub version: String,
    pub name: String,
    pub statements: Vec<OrgStatement>,
}

/// One statement of an organization access policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgStatement {
    #[serde(default)]
    pub name: String,
    pub effect: Effect,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub principals: Vec<String>,
    /// Conditions that must all hold for the statement to apply, written as an
    /// IAM `Condition` block. They are parsed strictly when the document is
    /// read, so a document with an unknown operator or a malformed value fails
    /// to deserialize.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Conditions>,
}

/// Reason a policy document was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("unsupported policy version {0:?}: expected \"v1alpha1\"")]
    Version(String),
    #[error("invalid policy name {0:?}: expected 1 to 128 characters of letters, digits, '-', '_' or '.'")]
    Name(String),
    #[error("policy has no statements: at least one is required")]
    NoStatements,
    #[error("statement {index} ({name:?}): {field} must not be empty")]
    EmptyList { index: usize, name: String, field: &'static str },
    #[error("statement {index} ({name:?}): invalid action {action:?}: expected \"*\" or \"<service>:<name>\" with service s3 or cwobject")]
    Action { index: usize, name: String, action: String },
    #[error("statement {index} ({name:?}): invalid {field} entry {value:?}: {rule}")]
    Entry { index: usize, name: String, field: &'static str, value: String, rule: &'static str },
    #[error("statement {index} ({name:?}): invalid resource {resource:?}: {reason}")]
    Variable { index: usize, name: String, resource: String, reason: String },
}

pub const POLICY_VERSION: &str = "v1alpha1";
const MAX_ENTRY_LEN: usize = 2048;

impl OrgPolicy {
    /// Checks the document against the rules the evaluator relies on, so that a
    /// policy that would silently never match is rejected when it is stored.
    /// Condition blocks are checked earlier, when the document is deserialized,
    /// and resources are checked here for malformed policy variables.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.version != POLICY_VERSION {
            return Err(PolicyError::Version(self.version.clone()));
        }
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 128
            && self.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(PolicyError::Name(self.name.clone()));
        }
        if self.statements.is_empty() {
            return Err(PolicyError::NoStatements);
        }
        for (index, st) in self.statements.iter().enumerate() {
            st.validate(index)?;
        }
        Ok(())
    }
}

impl OrgStatement {
    fn validate(&self, index: usize) -> Result<(), PolicyError> {
        let name = self.name.clone();
        for (field, list) in [("actions", &self.actions), ("resources", &self.resources), ("principals", &self.principals)] {
            if list.is_empty() {
                return Err(PolicyError::EmptyList { index, name, field });
            }
            for value in list {
                if value.is_empty() || value.len() > MAX_ENTRY_LEN || value.chars().any(char::is_control) {
                    return Err(PolicyError::Entry {
                        index,
                        name,
                        field,
                        value: value.clone(),
                        rule: "entries must be 1 to 2048 characters without control characters",
                    });
                }
            }
        }
        for action in &self.actions {
            let valid = action == "*"
                || action
                    .split_once(':')
                    .is_some_and(|(service, op)| matches!(service, "s3" | "cwobject") && !op.is_empty());
            if !valid {
                return Err(PolicyError::Action { index, name, action: action.clone() });
            }
        }
        for principal in &self.principals {
            let valid = principal == "*"
                || principal.starts_with("user/")
                || principal.starts_with("role/");
            if !valid {
                return Err(PolicyError::Entry {
                    index,
                    name,
                    field: "principals",
                    value: principal.clone(),
                    rule: "expected \"*\", \"user/<name>\" or \"role/<name>\"",
                });
            }
        }
        for resource in &self.resources {
            if resource.starts_with("arn:") {
                return Err(PolicyError::Entry {
                    index,
                    name,
                    field: "resources",
                    value: resource.clone(),
                    rule: "organization policies name resources as \"*\", \"<bucket>\" or \"<bucket>/<key pattern>\", not as ARNs",
                });
            }
            // Resources may contain policy variables such as `${jwt:sub}`. A
            // malformed one would match nothing, so it is rejected here.
            if let Err(reason) = Template::parse(resource) {
                return Err(PolicyError::Variable { index, name, resource: resource.clone(), reason });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<OrgPolicy, serde_json::Error> {
        serde_json::from_str(json)
    }

    #[test]
    fn unknown_field_is_rejected() {
        let err = parse(r#"{"version":"v1alpha1","name":"p","statements":[],"extra":1}"#).unwrap_err();
        assert!(err.to_string().contains("extra"), "{err}");
    }

    #[test]
    fn lowercase_effect_is_rejected() {
        let doc = r#"{"version":"v1alpha1","name":"p","statements":[{"effect":"allow","actions":["*"],"resources":["*"],"principals":["*"]}]}"#;
        assert!(parse(doc).is_err());
    }

    #[test]
    fn bad_action_names_the_statement() {
        let policy = parse(r#"{"version":"v1alpha1","name":"p","statements":[{"name":"st","effect":"Allow","actions":["GetObject"],"resources":["*"],"principals":["*"]}]}"#).unwrap();
        let err = policy.validate().unwrap_err();
        assert!(matches!(err, PolicyError::Action { index: 0, .. }), "{err}");
        assert!(err.to_string().contains("\"GetObject\""));
    }

    #[test]
    fn wrong_version_is_rejected() {
        let policy = parse(r#"{"version":"v2","name":"p","statements":[{"effect":"Allow","actions":["*"],"resources":["*"],"principals":["*"]}]}"#).unwrap();
        assert_eq!(policy.validate(), Err(PolicyError::Version("v2".into())));
    }

    #[test]
    fn conditions_are_parsed_with_the_statement() {
        let doc = r#"{"version":"v1alpha1","name":"p","statements":[{"effect":"Allow","actions":["s3:GetObject"],"resources":["data/*"],"principals":["*"],
            "conditions":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#;
        let policy = parse(doc).unwrap();
        assert_eq!(policy.validate(), Ok(()));
        assert!(policy.statements[0].conditions.as_ref().is_some_and(|c| !c.is_empty()));
    }

    #[test]
    fn statement_without_conditions_has_none() {
        let policy = parse(r#"{"version":"v1alpha1","name":"p","statements":[{"effect":"Allow","actions":["*"],"resources":["*"],"principals":["*"]}]}"#).unwrap();
        assert_eq!(policy.statements[0].conditions, None);
        let written = serde_json::to_value(&policy).unwrap();
        assert!(written["statements"][0].get("conditions").is_none(), "{written}");
    }

    #[test]
    fn unknown_condition_operator_is_rejected() {
        let doc = r#"{"version":"v1alpha1","name":"p","statements":[{"effect":"Allow","actions":["*"],"resources":["*"],"principals":["*"],
            "conditions":{"StringEqualz":{"jwt:sub":"a"}}}]}"#;
        let err = parse(doc).unwrap_err();
        assert!(err.to_string().contains("unknown condition operator \"StringEqualz\""), "{err}");
    }

    #[test]
    fn malformed_condition_value_is_rejected() {
        let doc = r#"{"version":"v1alpha1","name":"p","statements":[{"effect":"Allow","actions":["*"],"resources":["*"],"principals":["*"],
            "conditions":{"DateLessThan":{"aws:CurrentTime":"next week"}}}]}"#;
        let err = parse(doc).unwrap_err();
        assert!(err.to_string().contains("DateLessThan: value \"next week\" for key \"aws:CurrentTime\" is invalid"), "{err}");
    }

    #[test]
    fn conditions_round_trip_through_json() {
        let doc = r#"{"version":"v1alpha1","name":"p","statements":[{"name":"s","effect":"Deny","actions":["s3:*"],"resources":["*"],"principals":["*"],
            "conditions":{"Bool":{"aws:SecureTransport":"false"}}}]}"#;
        let policy = parse(doc).unwrap();
        let written = serde_json::to_string(&policy).unwrap();
        assert_eq!(parse(&written).unwrap(), policy);
        assert!(written.contains(r#""conditions":{"Bool":{"aws:SecureTransport":"false"}}"#), "{written}");
    }

    #[test]
    fn malformed_resource_variable_is_rejected() {
        let policy = parse(r#"{"version":"v1alpha1","name":"p","statements":[{"effect":"Allow","actions":["*"],"resources":["home/${jwt:sub/*"],"principals":["*"]}]}"#).unwrap();
        let err = policy.validate().unwrap_err();
        assert!(matches!(err, PolicyError::Variable { index: 0, .. }), "{err}");
        assert!(err.to_string().contains("invalid policy variable"), "{err}");
    }
}
