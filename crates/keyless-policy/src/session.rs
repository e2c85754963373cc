//! Session policies: an AWS-grammar identity policy passed with a token exchange
//! (the `Policy` parameter of `AssumeRoleWithWebIdentity`), which narrows what
//! the issued credentials may do.
//!
//! A session policy has no `Principal`: it applies to the session it was issued
//! with. Statements take `Sid`, `Effect`, `Action`/`NotAction` (`s3:` and
//! `cwobject:` actions), `Resource`/`NotResource` (`*`, `arn:aws:s3:::<bucket>`
//! or `arn:aws:s3:::<bucket>/<key pattern>`) and `Condition`. Everything else is
//! rejected.
//!
//! A session policy never grants anything by itself. A request needs an Allow
//! from the organization policies, from the bucket policy if there is one, and
//! from the session policy if there is one. The caller combines the decisions.

use crate::conditions::Conditions;
use crate::document::Effect;
use crate::eval::{Decision, Request, StatementTrace, action_match, decide, statement_label};
use crate::grammar::{MalformedPolicy, RawStatement, malformed, parse_document, statements};
use crate::variables::resource_match;

/// Largest session policy accepted, in bytes: the limit AWS STS documents for
/// the `Policy` parameter of `AssumeRole*` (2,048 characters).
pub const MAX_SESSION_POLICY_BYTES: usize = 2048;

/// The name session policy statements carry in traces.
const POLICY_NAME: &str = "session policy";

/// A parsed session policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPolicy {
    pub statements: Vec<SessionStatement>,
}

/// One statement of a session policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStatement {
    pub sid: String,
    pub effect: Effect,
    pub actions: Vec<String>,
    pub not_action: bool,
    /// Resources as `*`, `<bucket>` or `<bucket>/<key pattern>`.
    pub resources: Vec<String>,
    pub not_resource: bool,
    /// The statement's `Condition` block, if it has one.
    pub conditions: Option<Conditions>,
}

impl SessionPolicy {
    /// Parses and validates a session policy.
    pub fn parse(text: &str) -> Result<SessionPolicy, MalformedPolicy> {
        let doc = parse_document(text, MAX_SESSION_POLICY_BYTES)?;
        let statements = statements(&doc)?.iter().map(parse_statement).collect::<Result<Vec<_>, _>>()?;
        Ok(SessionPolicy { statements })
    }
}

/// Evaluates a request against a session policy: a matching Deny rejects, a
/// matching Allow accepts, and otherwise the request is denied. The principal
/// of the request is not consulted, because the policy belongs to the session.
pub fn evaluate_session(policy: &SessionPolicy, request: &Request<'_>) -> Decision {
    let trace = policy
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
                principal_matched: true,
                conditions: Vec::new(),
            }
            .with_conditions(st.conditions.as_ref(), request.context)
        })
        .collect();
    decide(trace)
}

fn parse_statement(st: &RawStatement<'_>) -> Result<SessionStatement, MalformedPolicy> {
    let index = st.index;
    if st.fields.contains_key("Principal") {
        return Err(malformed(format!("statement {index}: a session policy has no Principal: it applies to the session it is issued with")));
    }
    st.check_elements(&["Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"])?;
    let sid = st.sid()?;
    let effect = st.effect()?;
    let (actions, not_action) = st.one_of("Action", "NotAction")?;
    st.check_actions(&actions, &["s3", "cwobject"], "session policies take \"*\", s3: or cwobject: actions")?;
    let (written, not_resource) = st.one_of("Resource", "NotResource")?;
    let resources = written
        .iter()
        .map(|resource| if resource == "*" { Ok("*".to_owned()) } else { st.s3_resource(resource) })
        .collect::<Result<Vec<_>, _>>()?;
    let conditions = st.conditions()?;
    Ok(SessionStatement { sid, effect, actions, not_action, resources, not_resource, conditions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Context;
    use crate::eval::DecisionReason;

    static EMPTY: Context = Context::new();

    fn request<'a>(action: &'a str, resource: &'a str, context: &'a Context) -> Request<'a> {
        Request { principal: Some("role/https://issuer.example:repo:acme/train"), action, resource, context }
    }

    const READ_TRAINING_DATA: &str = r#"{
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "read", "Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": ["arn:aws:s3:::training", "arn:aws:s3:::training/*"]},
            {"Sid": "no-secrets", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::training/secrets/*"}
        ]
    }"#;

    #[test]
    fn allows_only_what_it_lists() {
        let policy = SessionPolicy::parse(READ_TRAINING_DATA).unwrap();
        assert!(evaluate_session(&policy, &request("s3:GetObject", "training/a.parquet", &EMPTY)).allowed);
        assert!(evaluate_session(&policy, &request("s3:ListBucket", "training", &EMPTY)).allowed);
        assert!(!evaluate_session(&policy, &request("s3:PutObject", "training/a.parquet", &EMPTY)).allowed);
        assert!(!evaluate_session(&policy, &request("s3:GetObject", "training2/a.parquet", &EMPTY)).allowed);
        assert!(!evaluate_session(&policy, &request("cwobject:CreateAccessKey", "*", &EMPTY)).allowed);
    }

    #[test]
    fn deny_statement_wins() {
        let policy = SessionPolicy::parse(READ_TRAINING_DATA).unwrap();
        let decision = evaluate_session(&policy, &request("s3:GetObject", "training/secrets/key", &EMPTY));
        assert!(!decision.allowed);
        assert_eq!(decision.reason, DecisionReason::ExplicitDeny { policy: "session policy".into(), statement: "no-secrets".into() });
    }

    #[test]
    fn star_resource_covers_global_actions() {
        let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"cwobject:ListAccessKeyInfo","Resource":"*"}}"#;
        let policy = SessionPolicy::parse(text).unwrap();
        assert!(evaluate_session(&policy, &request("cwobject:ListAccessKeyInfo", "*", &EMPTY)).allowed);
    }

    #[test]
    fn conditions_apply() {
        let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::data/*",
            "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}"#;
        let policy = SessionPolicy::parse(text).unwrap();
        let inside = Context::builder().value("aws:SourceIp", "10.1.2.3").build();
        let outside = Context::builder().value("aws:SourceIp", "192.0.2.1").build();
        assert!(evaluate_session(&policy, &request("s3:GetObject", "data/k", &inside)).allowed);
        assert!(!evaluate_session(&policy, &request("s3:GetObject", "data/k", &outside)).allowed);
        assert!(!evaluate_session(&policy, &request("s3:GetObject", "data/k", &EMPTY)).allowed);
    }

    #[test]
    fn principal_element_is_rejected() {
        let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}}"#;
        let err = SessionPolicy::parse(text).unwrap_err();
        assert!(err.0.contains("a session policy has no Principal"), "{err}");
    }

    #[test]
    fn malformed_policies_are_rejected() {
        for (text, expected) in [
            (r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"iam:*","Resource":"*"}}"#, "action \"iam:*\" is invalid"),
            (r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:iam::1:role/x"}}"#, "expected arn:aws:s3:::"),
            (r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::"}}"#, "bucket name is missing"),
            (r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqual":{"aws:username":"a"}}}}"#, "unknown condition operator \"StringEqual\""),
            (r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Extra":1}}"#, "unknown element \"Extra\""),
            (r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Effect":"Deny","Action":"s3:*","Resource":"*"}}"#, "duplicate key \"Effect\""),
            (r#"{"Version":"2012-10-17","Statement":[]}"#, "Statement is empty"),
            (r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#, "Version is missing"),
        ] {
            let err = SessionPolicy::parse(text).unwrap_err();
            assert!(err.0.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn oversized_policy_is_rejected() {
        let padding = " ".repeat(MAX_SESSION_POLICY_BYTES);
        let text = format!(r#"{{"Version":"2012-10-17",{padding}"Statement":{{"Effect":"Allow","Action":"s3:*","Resource":"*"}}}}"#);
        assert!(SessionPolicy::parse(&text).unwrap_err().0.contains("the maximum is 2048"));
    }
}
