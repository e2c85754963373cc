//! Property tests of the evaluators over generated policies, requests and
//! request contexts. Properties: explicit Deny always wins, an added Allow never
//! removes access, and an added Deny never adds access. Policy order never
//! matters, a session policy never widens access, and substituted policy
//! variables never act as wildcards. The indexed request path decides exactly
//! as the plain evaluators do.

use keyless_policy::{
    Conditions, Context, Decision, DecisionReason, Effect, OrgPolicy, OrgPolicySet, OrgStatement, Request, SessionPolicy, decide_org, evaluate_org,
    evaluate_session, glob_match,
};
use proptest::prelude::*;

const ACTIONS: &[&str] = &["s3:GetObject", "s3:PutObject", "s3:*", "*", "s3:Get*", "cwobject:CreateAccessKey"];
const RESOURCES: &[&str] = &["*", "b", "b/*", "b/k", "b/k*", "c/*", "b/${jwt:sub}/*", "b/${aws:username}", "b/?"];
const PRINCIPALS: &[&str] = &["*", "user/a", "user/*", "role/x:*"];
const CONDITIONS: &[&str] = &[
    r#"{"StringEquals": {"aws:username": "a"}}"#,
    r#"{"StringNotEquals": {"aws:username": "a"}}"#,
    r#"{"Bool": {"aws:SecureTransport": "true"}}"#,
    r#"{"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#,
    r#"{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#,
    r#"{"NumericLessThan": {"s3:max-keys": "100"}}"#,
    r#"{"ForAllValues:StringEquals": {"jwt:groups": ["ml", "web"]}}"#,
    r#"{"ForAnyValue:StringLike": {"jwt:groups": "m*"}}"#,
    r#"{"StringLikeIfExists": {"jwt:sub": "a*"}}"#,
    r#"{"Null": {"jwt:sub": "true"}}"#,
    r#"{"DateLessThan": {"aws:CurrentTime": "2026-06-01T00:00:00Z"}}"#,
    r#"{"StringEquals": {"s3:prefix": "${aws:username}/"}, "Bool": {"aws:SecureTransport": "true"}}"#,
];

const REQUEST_PRINCIPALS: &[&str] = &["user/a", "user/b", "role/x:y"];
const REQUEST_ACTIONS: &[&str] = &["s3:GetObject", "s3:PutObject", "cwobject:CreateAccessKey"];
const REQUEST_RESOURCES: &[&str] = &["*", "b", "b/k", "b/kk", "b/a", "b/a/x", "b/*/x", "c/k", "b2/k"];

/// A generated statement, before it is written as an org or session statement.
#[derive(Debug, Clone)]
struct GenStatement {
    effect: Effect,
    actions: Vec<&'static str>,
    resources: Vec<&'static str>,
    principals: Vec<&'static str>,
    condition: Option<&'static str>,
}

/// A generated request: principal (`None` for anonymous), action, resource and
/// context.
#[derive(Debug, Clone)]
struct GenRequest {
    principal: Option<&'static str>,
    action: &'static str,
    resource: &'static str,
    context: Context,
}

impl GenRequest {
    fn request(&self) -> Request<'_> {
        Request { principal: self.principal, action: self.action, resource: self.resource, context: &self.context }
    }
}

fn pick(list: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    proptest::sample::select(list)
}

fn some_of(list: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
    proptest::collection::vec(pick(list), 1..=2)
}

fn effect() -> impl Strategy<Value = Effect> {
    prop_oneof![Just(Effect::Allow), Just(Effect::Deny)]
}

fn statement_with(effect: impl Strategy<Value = Effect>) -> impl Strategy<Value = GenStatement> {
    (effect, some_of(ACTIONS), some_of(RESOURCES), some_of(PRINCIPALS), proptest::option::of(pick(CONDITIONS)))
        .prop_map(|(effect, actions, resources, principals, condition)| GenStatement { effect, actions, resources, principals, condition })
}

fn statements() -> impl Strategy<Value = Vec<GenStatement>> {
    proptest::collection::vec(statement_with(effect()), 0..6)
}

/// Request contexts mixing valid values, hostile values and values of the
/// wrong type (`yes` for a Bool, `abc` for a number).
fn context() -> impl Strategy<Value = Context> {
    let maybe = |values: &'static [&'static str]| proptest::option::of(pick(values));
    (
        maybe(&["a", "b", "*"]),
        maybe(&["true", "false", "yes"]),
        maybe(&["10.1.1.1", "192.0.2.1", "::ffff:10.0.0.1", "garbage"]),
        maybe(&["5", "500", "abc"]),
        proptest::sample::subsequence(&["ml", "web", "ops"][..], 0..=3),
        maybe(&["a", "k", "*", "", "?"]),
        maybe(&["2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z", "1767225600", "soon"]),
        maybe(&["a/", "b/", ""]),
    )
        .prop_map(|(username, transport, ip, max_keys, groups, sub, time, prefix)| {
            let mut builder = Context::builder().values("jwt:groups", groups);
            for (key, value) in [
                ("aws:username", username),
                ("aws:SecureTransport", transport),
                ("aws:SourceIp", ip),
                ("s3:max-keys", max_keys),
                ("jwt:sub", sub),
                ("aws:CurrentTime", time),
                ("s3:prefix", prefix),
            ] {
                if let Some(value) = value {
                    builder = builder.value(key, value);
                }
            }
            builder.build()
        })
}

fn request() -> impl Strategy<Value = GenRequest> {
    (proptest::option::of(pick(REQUEST_PRINCIPALS)), pick(REQUEST_ACTIONS), pick(REQUEST_RESOURCES), context())
        .prop_map(|(principal, action, resource, context)| GenRequest { principal, action, resource, context })
}

fn org_statement(st: &GenStatement) -> OrgStatement {
    let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
    OrgStatement {
        name: String::new(),
        effect: st.effect,
        actions: owned(&st.actions),
        resources: owned(&st.resources),
        principals: owned(&st.principals),
        conditions: st.condition.map(|json| {
            let value = serde_json::from_str(json).expect("generated condition is valid JSON");
            Conditions::from_json(&value).expect("generated condition parses")
        }),
    }
}

fn org_policy(name: &str, statements: &[GenStatement]) -> OrgPolicy {
    OrgPolicy { version: "v1alpha1".into(), name: name.into(), statements: statements.iter().map(org_statement).collect() }
}

/// Writes statements as a session policy; principals are dropped because a
/// session policy has none. The grammar requires at least one statement, so no
/// statements at all is built directly as a policy that allows nothing.
fn session_policy(statements: &[GenStatement]) -> SessionPolicy {
    if statements.is_empty() {
        return SessionPolicy { statements: Vec::new() };
    }
    let statements: Vec<serde_json::Value> = statements
        .iter()
        .map(|st| {
            let resources: Vec<String> =
                st.resources.iter().map(|r| if *r == "*" { "*".to_owned() } else { format!("arn:aws:s3:::{r}") }).collect();
            let mut statement = serde_json::json!({
                "Effect": match st.effect { Effect::Allow => "Allow", Effect::Deny => "Deny" },
                "Action": st.actions,
                "Resource": resources,
            });
            if let Some(condition) = st.condition {
                statement["Condition"] = serde_json::from_str(condition).expect("generated condition is valid JSON");
            }
            statement
        })
        .collect();
    let text = serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string();
    SessionPolicy::parse(&text).unwrap_or_else(|err| panic!("generated session policy is rejected: {err}: {text}"))
}

/// Checks the decision rule on a complete trace: allowed exactly when no Deny
/// statement matched and some Allow statement did.
fn assert_deny_wins(decision: &Decision) -> Result<(), TestCaseError> {
    let deny_matched = decision.trace.iter().any(|t| t.effect == Effect::Deny && t.matched());
    let allow_matched = decision.trace.iter().any(|t| t.effect == Effect::Allow && t.matched());
    prop_assert_eq!(decision.allowed, allow_matched && !deny_matched);
    if deny_matched {
        prop_assert!(matches!(decision.reason, DecisionReason::ExplicitDeny { .. }), "reason {:?}", decision.reason);
    }
    Ok(())
}

proptest! {
    #[test]
    fn untraced_decision_equals_traced(statements in statements(), request in request()) {
        let policy = org_policy("p", &statements);
        let traced = evaluate_org([&policy], &request.request());
        let untraced = decide_org([&policy], &request.request());
        prop_assert_eq!(untraced.allowed, traced.allowed);
        prop_assert_eq!(untraced.reason, traced.reason);
    }

    /// The index of `OrgPolicySet` only skips statements that cannot apply, so
    /// its decision and reason equal those of the plain evaluators, over two
    /// policies so that positions across policies count too.
    #[test]
    fn indexed_decision_equals_plain(first in statements(), second in statements(), request in request()) {
        let policies = vec![org_policy("a", &first), org_policy("b", &second)];
        let plain = decide_org(&policies, &request.request());
        let traced = evaluate_org(&policies, &request.request());
        let indexed = OrgPolicySet::new(policies).decide(&request.request());
        prop_assert_eq!(&indexed.reason, &plain.reason);
        prop_assert_eq!(indexed.allowed, plain.allowed);
        prop_assert_eq!(&indexed.reason, &traced.reason);
        prop_assert_eq!(indexed.allowed, traced.allowed);
    }

    #[test]
    fn org_deny_always_wins(statements in statements(), request in request()) {
        let policy = org_policy("p", &statements);
        assert_deny_wins(&evaluate_org([&policy], &request.request()))?;
    }

    #[test]
    fn session_deny_always_wins(statements in statements(), request in request()) {
        let policy = session_policy(&statements);
        assert_deny_wins(&evaluate_session(&policy, &request.request()))?;
    }

    #[test]
    fn adding_allow_never_removes_access(statements in statements(), extra in statement_with(Just(Effect::Allow)), request in request()) {
        let before = org_policy("p", &statements);
        let mut widened = statements.clone();
        widened.push(extra);
        let after = org_policy("p", &widened);
        if evaluate_org([&before], &request.request()).allowed {
            prop_assert!(evaluate_org([&after], &request.request()).allowed);
        }
        if evaluate_session(&session_policy(&statements), &request.request()).allowed {
            prop_assert!(evaluate_session(&session_policy(&widened), &request.request()).allowed);
        }
    }

    #[test]
    fn adding_deny_never_adds_access(statements in statements(), extra in statement_with(Just(Effect::Deny)), request in request()) {
        let before = org_policy("p", &statements);
        let mut narrowed = statements.clone();
        narrowed.push(extra);
        let after = org_policy("p", &narrowed);
        if evaluate_org([&after], &request.request()).allowed {
            prop_assert!(evaluate_org([&before], &request.request()).allowed);
        }
        if evaluate_session(&session_policy(&narrowed), &request.request()).allowed {
            prop_assert!(evaluate_session(&session_policy(&statements), &request.request()).allowed);
        }
    }

    #[test]
    fn policy_order_never_changes_the_decision(first in statements(), second in statements(), request in request()) {
        let a = org_policy("a", &first);
        let b = org_policy("b", &second);
        let forward = evaluate_org([&a, &b], &request.request());
        let backward = evaluate_org([&b, &a], &request.request());
        prop_assert_eq!(forward.allowed, backward.allowed);

        let mut reversed = first.clone();
        reversed.reverse();
        let reversed = org_policy("a", &reversed);
        prop_assert_eq!(evaluate_org([&a], &request.request()).allowed, evaluate_org([&reversed], &request.request()).allowed);
    }

    /// The session policy is combined with the org decision by conjunction,
    /// as the server does. Whatever the session policy decides, a request the org
    /// policies deny stays denied, and a session policy that allows everything
    /// leaves the org decision unchanged.
    #[test]
    fn session_policy_never_widens(org in statements(), session in statements(), request in request()) {
        let org = org_policy("org", &org);
        let org_decision = evaluate_org([&org], &request.request());
        let session_decision = evaluate_session(&session_policy(&session), &request.request());
        let combined = org_decision.allowed && session_decision.allowed;
        prop_assert!(!combined || org_decision.allowed);

        let allow_all = SessionPolicy::parse(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#)
            .expect("allow-all session policy parses");
        let with_allow_all = org_decision.allowed && evaluate_session(&allow_all, &request.request()).allowed;
        prop_assert_eq!(with_allow_all, org_decision.allowed);
    }

    /// A claim substituted into `b/${jwt:sub}/*` reaches exactly the keys under
    /// `b/<claim>/`, whatever characters the claim holds.
    #[test]
    fn substituted_claims_are_literal(
        sub in "[a*?/.${}]{1,4}",
        other in "[a*?/.${}]{0,4}",
        tail in "[a*?/.]{0,3}",
        own in any::<bool>(),
    ) {
        let policy = org_policy("p", &[GenStatement {
            effect: Effect::Allow,
            actions: vec!["s3:GetObject"],
            resources: vec!["b/${jwt:sub}/*"],
            principals: vec!["*"],
            condition: None,
        }]);
        let segment = if own { sub.as_str() } else { other.as_str() };
        let resource = format!("b/{segment}/{tail}");
        let context = Context::builder().value("jwt:sub", sub.clone()).build();
        let request = Request { principal: Some("user/a"), action: "s3:GetObject", resource: &resource, context: &context };
        let expected = resource.starts_with(&format!("b/{sub}/"));
        prop_assert_eq!(evaluate_org([&policy], &request).allowed, expected, "sub {:?}, resource {:?}", sub, resource);
    }

    /// A pattern without wildcards matches only itself.
    #[test]
    fn glob_without_wildcards_is_equality(pattern in "[ab/.$]{0,6}", value in "[ab/.$]{0,6}") {
        prop_assert_eq!(glob_match(&pattern, &value), pattern == value);
    }

    /// `*` at the end of a glob is a prefix match, and the prefix must match
    /// up to its last character, so `a/*` never covers `ab`.
    #[test]
    fn trailing_star_is_prefix_match(prefix in "[ab/]{0,4}", value in "[ab/]{0,6}") {
        prop_assert_eq!(glob_match(&format!("{prefix}*"), &value), value.starts_with(&prefix));
    }
}
