//! Bucket policies in the AWS policy grammar, attached with `PutBucketPolicy`.
//!
//! Supported: `Version`, `Id`, `Statement` (one object or a list) with `Sid`,
//! `Effect`, `Principal` (`"*"`, `{"AWS": …}` or `{"CW": …}` holding keyless
//! principal strings), `Action`/`NotAction`, `Resource`/`NotResource` (ARNs
//! `arn:aws:s3:::<bucket>` or `arn:aws:s3:::<bucket>/<key pattern>`, which may
//! contain policy variables) and `Condition`. Everything else is rejected when
//! the policy is stored, never ignored.

use serde_json::Value;

use crate::conditions::Conditions;
use crate::document::Effect;
use crate::eval::{Decision, Request, StatementTrace, action_match, decide, statement_label};
use crate::grammar::{MalformedPolicy, RawStatement, malformed, parse_document, statements};
use crate::pattern::principal_match;
use crate::variables::resource_match;

/// Largest policy document accepted, as in S3.
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

/// The name bucket policy statements carry in traces.
const POLICY_NAME: &str = "bucket policy";

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
    /// The statement's `Condition` block, if it has one.
    pub conditions: Option<Conditions>,
}

impl BucketPolicy {
    /// Parses and validates a policy for `bucket`.
    pub fn parse(text: &str, bucket: &str) -> Result<Self, MalformedPolicy> {
        let doc = parse_document(text, MAX_POLICY_BYTES)?;
        let statements = statements(&doc)?
            .iter()
            .map(|st| parse_statement(st, bucket))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BucketPolicy { statements })
    }

    /// Evaluates the policy: a matching Deny rejects, a matching Allow accepts,
    /// and otherwise the request is denied.
    pub fn evaluate(&self, request: &Request<'_>) -> Decision {
        let trace = self
            .statements
            .iter()
            .enumerate()
            .map(|(index, st)| {
                let action_hit = st.actions.iter().any(|a| action_match(a, request.action));
                let resource_hit = st.resources.iter().any(|r| resource_match(r, request.resource, request.context));
                StatementTrace {
                    policy: POLICY_NAME.to_owned(),
                    statement: statement_label(&st.sid, index),
                    effect: st.effect,
                    action_matched: action_hit != st.not_action,
                    resource_matched: resource_hit != st.not_resource,
                    principal_matched: st.principals.iter().any(|p| match request.principal {
                        Some(principal) => principal_match(p, principal),
                        None => p == "*",
                    }),
                    conditions: Vec::new(),
                }
                .with_conditions(st.conditions.as_ref(), request.context)
            })
            .collect();
        decide(trace)
    }
}

fn parse_statement(st: &RawStatement<'_>, bucket: &str) -> Result<BucketStatement, MalformedPolicy> {
    let index = st.index;
    st.check_elements(&["Sid", "Effect", "Principal", "Action", "NotAction", "Resource", "NotResource", "Condition"])?;
    let sid = st.sid()?;
    let effect = st.effect()?;

    let principals = match st.fields.get("Principal") {
        Some(Value::String(s)) if s == "*" => vec!["*".to_owned()],
        Some(Value::Object(map)) => {
            let mut out = Vec::new();
            for (kind, value) in map {
                if kind != "AWS" && kind != "CW" {
                    return Err(malformed(format!("statement {index}: Principal type {kind:?} is invalid: expected \"AWS\" or \"CW\"")));
                }
                for p in st.strings(value, "Principal")? {
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

    let (actions, not_action) = st.one_of("Action", "NotAction")?;
    st.check_actions(&actions, &["s3"], "bucket policies take s3: actions")?;

    let (arns, not_resource) = st.one_of("Resource", "NotResource")?;
    let mut resources = Vec::new();
    for arn in arns {
        let resource = st.s3_resource(&arn)?;
        let named_bucket = resource.split('/').next().unwrap_or("");
        if named_bucket != bucket {
            return Err(malformed(format!("statement {index}: resource {arn:?} is outside the bucket {bucket:?}")));
        }
        resources.push(resource);
    }

    let conditions = st.conditions()?;
    Ok(BucketStatement { sid, effect, principals, actions, not_action, resources, not_resource, conditions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Context;
    use crate::eval::DecisionReason;

    static EMPTY: Context = Context::new();

    fn request<'a>(principal: &'a str, action: &'a str, resource: &'a str, context: &'a Context) -> Request<'a> {
        Request { principal: Some(principal), action, resource, context }
    }

    const READ_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"read","Effect":"Allow","Principal":{"AWS":["user/bob"]},"Action":["s3:GetObject"],"Resource":"arn:aws:s3:::data/*"}]}"#;

    #[test]
    fn read_only_policy_allows_get_only() {
        let policy = BucketPolicy::parse(READ_ONLY, "data").unwrap();
        assert!(policy.evaluate(&request("user/bob", "s3:GetObject", "data/k", &EMPTY)).allowed);
        assert!(!policy.evaluate(&request("user/bob", "s3:PutObject", "data/k", &EMPTY)).allowed);
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
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::data","Condition":{"StringEqual":{"aws:username":"a"}}}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::data"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"x"},"Action":"s3:*","Resource":"arn:aws:s3:::data"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","NotAction":"s3:Get*","Resource":"arn:aws:s3:::data"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"iam:*","Resource":"arn:aws:s3:::data"}}"#,
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotPrincipal":"*","Action":"s3:*","Resource":"arn:aws:s3:::data"}}"#,
        ] {
            assert!(BucketPolicy::parse(text, "data").is_err(), "{text}");
        }
    }

    #[test]
    fn not_action_inverts() {
        let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","NotAction":"s3:GetObject","Resource":"arn:aws:s3:::data/*"}}"#;
        let policy = BucketPolicy::parse(text, "data").unwrap();
        let put = request("user/a", "s3:PutObject", "data/k", &EMPTY);
        assert!(matches!(policy.evaluate(&put).reason, DecisionReason::ExplicitDeny { .. }));
    }

    #[test]
    fn condition_is_accepted_and_applied() {
        let text = r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"read","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::data/*"},
            {"Sid":"tls-only","Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::data/*",
             "Condition":{"Bool":{"aws:SecureTransport":"false"}}}]}"#;
        let policy = BucketPolicy::parse(text, "data").unwrap();
        let plain = Context::builder().value("aws:SecureTransport", "false").build();
        let tls = Context::builder().value("aws:SecureTransport", "true").build();
        let denied = policy.evaluate(&request("user/a", "s3:GetObject", "data/k", &plain));
        assert_eq!(denied.reason, DecisionReason::ExplicitDeny { policy: "bucket policy".into(), statement: "tls-only".into() });
        assert!(policy.evaluate(&request("user/a", "s3:GetObject", "data/k", &tls)).allowed);
    }

    #[test]
    fn condition_trace_names_operator_key_and_values() {
        let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::data",
            "Condition":{"StringLike":{"s3:prefix":"home/${aws:username}/*"}}}}"#;
        let policy = BucketPolicy::parse(text, "data").unwrap();
        let context = Context::builder().value("aws:username", "alice").value("s3:prefix", "home/bob/").build();
        let decision = policy.evaluate(&request("user/alice", "s3:ListBucket", "data", &context));
        assert!(!decision.allowed);
        let condition = &decision.trace[0].conditions[0];
        assert_eq!(condition.operator, "StringLike");
        assert_eq!(condition.key, "s3:prefix");
        assert!(!condition.matched);
        assert_eq!(condition.values, ["home/bob/"]);
    }

    #[test]
    fn resource_variable_limits_to_own_prefix() {
        let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::data/home/${aws:username}/*"}}"#;
        let policy = BucketPolicy::parse(text, "data").unwrap();
        let alice = Context::builder().value("aws:username", "alice").build();
        assert!(policy.evaluate(&request("user/alice", "s3:GetObject", "data/home/alice/k", &alice)).allowed);
        assert!(!policy.evaluate(&request("user/alice", "s3:GetObject", "data/home/alice2/k", &alice)).allowed);
        assert!(!policy.evaluate(&request("user/alice", "s3:GetObject", "data/home/bob/k", &alice)).allowed);
        assert!(!policy.evaluate(&request("user/alice", "s3:GetObject", "data/home/alice/k", &EMPTY)).allowed);
    }

    #[test]
    fn malformed_resource_variable_is_rejected() {
        let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::data/${aws:username"}}"#;
        let err = BucketPolicy::parse(text, "data").unwrap_err();
        assert!(err.0.contains("invalid policy variable"), "{err}");
    }

    #[test]
    fn condition_error_names_statement_operator_and_value() {
        let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::data",
            "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}}}"#;
        let err = BucketPolicy::parse(text, "data").unwrap_err();
        assert!(err.0.starts_with("statement 0: Condition: IpAddress: value \"10.0.0.0/33\" for key \"aws:SourceIp\" is invalid"), "{err}");
    }
}
