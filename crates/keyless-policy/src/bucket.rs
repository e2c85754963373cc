//! Bucket policies in the AWS policy grammar, attached with `PutBucketPolicy`.
//!
//! Supported: `Version`, `Id`, `Statement` (one object or a list) with `Sid`,
//! `Effect`, `Principal` (`"*"`, `{"AWS": …}` or `{"CW": …}` holding keyless
//! principal strings), `Action`/`NotAction` and `Resource`/`NotResource` (ARNs
//! `arn:aws:s3:::<bucket>` or `arn:aws:s3:::<bucket>/<key pattern>`).
//! Everything else is rejected when the policy is stored, never ignored.
//! TODO: `Condition` blocks are rejected until the condition operators exist.

use serde_json::Value;

use crate::document::Effect;
use crate::eval::{Decision, DecisionReason, Request, StatementTrace};
use crate::pattern::{glob_match, principal_match};

/// Largest policy document accepted, as in S3.
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketPolicy {
    pub statements: Vec<BucketStatement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketStatement {
    pub sid: String,
    pub effect: Effect,
    pub principals: Vec<String>,
    pub actions: Vec<String>,
    pub not_action: bool,
    /// Resources as `<bucket>` or `<bucket>/<key pattern>`.
    pub resources: Vec<String>,
    pub not_resource: bool,
}

/// Why a bucket policy was rejected; the message names the element.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedPolicy(pub String);

fn malformed(message: impl Into<String>) -> MalformedPolicy {
    MalformedPolicy(message.into())
}

impl BucketPolicy {
    /// Parses and validates a policy for `bucket`.
    pub fn parse(text: &str, bucket: &str) -> Result<Self, MalformedPolicy> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(malformed(format!("the policy is {} bytes; the maximum is {MAX_POLICY_BYTES}", text.len())));
        }
        let doc: Value = serde_json::from_str(text).map_err(|err| malformed(format!("the policy is not valid JSON: {err}")))?;
        let Value::Object(doc) = doc else { return Err(malformed("the policy must be a JSON object")) };
        for key in doc.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(malformed(format!("unknown top-level element {key:?}")));
            }
        }
        match doc.get("Version").and_then(Value::as_str) {
            Some("2012-10-17") | Some("2008-10-17") => {}
            other => return Err(malformed(format!("Version {other:?} is invalid: expected \"2012-10-17\""))),
        }
        let statements = match doc.get("Statement") {
            Some(Value::Array(list)) => list.iter().collect::<Vec<_>>(),
            Some(single @ Value::Object(_)) => vec![single],
            _ => return Err(malformed("Statement is missing: expected an object or a list of objects")),
        };
        if statements.is_empty() {
            return Err(malformed("Statement is empty"));
        }
        let statements = statements
            .into_iter()
            .enumerate()
            .map(|(index, st)| parse_statement(index, st, bucket))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BucketPolicy { statements })
    }

    /// Evaluates the policy: a matching Deny rejects, a matching Allow accepts,
    /// and otherwise the request is denied.
    pub fn evaluate(&self, request: &Request<'_>) -> Decision {
        let mut trace = Vec::new();
        let mut allow = None;
        let mut deny = None;
        for (index, st) in self.statements.iter().enumerate() {
            let statement = if st.sid.is_empty() { format!("#{index}") } else { st.sid.clone() };
            let action_hit = st.actions.iter().any(|a| glob_match(&a.to_ascii_lowercase(), &request.action.to_ascii_lowercase()));
            let resource_hit = st.resources.iter().any(|r| glob_match(r, request.resource));
            let entry = StatementTrace {
                policy: "bucket policy".into(),
                statement: statement.clone(),
                effect: st.effect,
                action_matched: action_hit != st.not_action,
                resource_matched: resource_hit != st.not_resource,
                principal_matched: st.principals.iter().any(|p| match request.principal {
                    Some(principal) => principal_match(p, principal),
                    None => p == "*",
                }),
            };
            if entry.matched() {
                let slot = if st.effect == Effect::Deny { &mut deny } else { &mut allow };
                slot.get_or_insert(statement);
            }
            trace.push(entry);
        }
        let policy = "bucket policy".to_owned();
        let (allowed, reason) = match (deny, allow) {
            (Some(statement), _) => (false, DecisionReason::ExplicitDeny { policy, statement }),
            (None, Some(statement)) => (true, DecisionReason::Allowed { policy, statement }),
            (None, None) => (false, DecisionReason::NoAllow),
        };
        Decision { allowed, reason, trace }
    }
}

fn strings(value: &Value, element: &str, index: usize) -> Result<Vec<String>, MalformedPolicy> {
    let list = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| malformed(format!("statement {index}: {element} entries must be strings"))))
            .collect::<Result<_, _>>()?,
        _ => return Err(malformed(format!("statement {index}: {element} must be a string or a list of strings"))),
    };
    if list.is_empty() || list.iter().any(String::is_empty) {
        return Err(malformed(format!("statement {index}: {element} must not be empty")));
    }
    Ok(list)
}

fn parse_statement(index: usize, value: &Value, bucket: &str) -> Result<BucketStatement, MalformedPolicy> {
    let Value::Object(st) = value else { return Err(malformed(format!("statement {index} must be an object"))) };
    for key in st.keys() {
        match key.as_str() {
            "Sid" | "Effect" | "Principal" | "Action" | "NotAction" | "Resource" | "NotResource" => {}
            "Condition" => return Err(malformed(format!("statement {index}: Condition is not supported yet"))),
            "NotPrincipal" => return Err(malformed(format!("statement {index}: NotPrincipal is not supported"))),
            other => return Err(malformed(format!("statement {index}: unknown element {other:?}"))),
        }
    }
    let sid = match st.get("Sid") {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(malformed(format!("statement {index}: Sid must be a string"))),
    };
    let effect = match st.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        other => return Err(malformed(format!("statement {index}: Effect {other:?} is invalid: expected \"Allow\" or \"Deny\""))),
    };
    let principals = match st.get("Principal") {
        Some(Value::String(s)) if s == "*" => vec!["*".to_owned()],
        Some(Value::Object(map)) => {
            let mut out = Vec::new();
            for (kind, value) in map {
                if kind != "AWS" && kind != "CW" {
                    return Err(malformed(format!("statement {index}: Principal type {kind:?} is invalid: expected \"AWS\" or \"CW\"")));
                }
                for p in strings(value, "Principal", index)? {
                    if p != "*" && !p.starts_with("user/") && !p.starts_with("role/") {
                        return Err(malformed(format!("statement {index}: principal {p:?} is invalid: expected \"*\", \"user/<name>\" or \"role/<name>\"")));
                    }
                    out.push(p);
                }
            }
            if out.is_empty() {
                return Err(malformed(format!("statement {index}: Principal must not be empty")));
            }
            out
        }
        _ => return Err(malformed(format!("statement {index}: Principal is missing: expected \"*\" or {{\"AWS\": …}}"))),
    };
    let (actions, not_action) = match (st.get("Action"), st.get("NotAction")) {
        (Some(v), None) => (strings(v, "Action", index)?, false),
        (None, Some(v)) => (strings(v, "NotAction", index)?, true),
        _ => return Err(malformed(format!("statement {index}: exactly one of Action and NotAction is required"))),
    };
    for action in &actions {
        if action != "*" && !action.to_ascii_lowercase().starts_with("s3:") {
            return Err(malformed(format!("statement {index}: action {action:?} is invalid: bucket policies take s3: actions")));
        }
    }
    let (arns, not_resource) = match (st.get("Resource"), st.get("NotResource")) {
        (Some(v), None) => (strings(v, "Resource", index)?, false),
        (None, Some(v)) => (strings(v, "NotResource", index)?, true),
        _ => return Err(malformed(format!("statement {index}: exactly one of Resource and NotResource is required"))),
    };
    let mut resources = Vec::new();
    for arn in arns {
        let Some(rest) = arn.strip_prefix("arn:aws:s3:::") else {
            return Err(malformed(format!("statement {index}: resource {arn:?} is invalid: expected arn:aws:s3:::<bucket>[/<key>]")));
        };
        let named_bucket = rest.split('/').next().unwrap_or("");
        if named_bucket != bucket {
            return Err(malformed(format!("statement {index}: resource {arn:?} is outside the bucket {bucket:?}")));
        }
        resources.push(rest.to_owned());
    }
    Ok(BucketStatement { sid, effect, principals, actions, not_action, resources, not_resource })
}

#[cfg(test)]
mod tests {
    use super::*;

    const READ_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"read","Effect":"Allow","Principal":{"AWS":["user/bob"]},"Action":["s3:GetObject"],"Resource":"arn:aws:s3:::data/*"}]}"#;

    #[test]
    fn read_only_policy_allows_get_only() {
        let policy = BucketPolicy::parse(READ_ONLY, "data").unwrap();
        let get = Request { principal: Some("user/bob"), action: "s3:GetObject", resource: "data/k" };
        let put = Request { principal: Some("user/bob"), action: "s3:PutObject", resource: "data/k" };
        assert!(policy.evaluate(&get).allowed);
        assert!(!policy.evaluate(&put).allowed);
    }

    #[test]
    fn resource_of_another_bucket_is_rejected() {
        let text = READ_ONLY.replace("data/*", "data2/*");
        assert!(BucketPolicy::parse(&text, "data").unwrap_err().0.contains("outside the bucket"));
    }

    #[test]
    fn unknown_elements_are_rejected() {
        for text in [
            r#"{"Version":"2012-10-17","Statement":[],"Extra":1}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::data","Condition":{}}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::data"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"x"},"Action":"s3:*","Resource":"arn:aws:s3:::data"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","NotAction":"s3:Get*","Resource":"arn:aws:s3:::data"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"iam:*","Resource":"arn:aws:s3:::data"}}"#,
        ] {
            assert!(BucketPolicy::parse(text, "data").is_err(), "{text}");
        }
    }

    #[test]
    fn not_action_inverts() {
        let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","NotAction":"s3:GetObject","Resource":"arn:aws:s3:::data/*"}}"#;
        let policy = BucketPolicy::parse(text, "data").unwrap();
        let put = Request { principal: Some("user/a"), action: "s3:PutObject", resource: "data/k" };
        assert!(matches!(policy.evaluate(&put).reason, DecisionReason::ExplicitDeny { .. }));
    }
}
