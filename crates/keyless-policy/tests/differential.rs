//! Differential test: keyless's session-policy evaluator against the
//! independent `iam-rs` crate, on generated S3 identity policies and requests.
//!
//! Both sides parse the same policy JSON. keyless allows a request exactly
//! when `iam-rs` returns `Decision::Allow`, because in both an explicit Deny
//! wins, a matching Allow grants, and anything else is an implicit deny.

use iam_rs::{IAMPolicy, IAMRequest, Principal, PrincipalId};
use keyless_policy::{Context, Request, SessionPolicy, evaluate_session};
use proptest::prelude::*;
use serde_json::{Value, json};

const ACTION_PATTERNS: &[&str] = &["s3:GetObject", "s3:Get*", "s3:*", "s3:PutObject", "s3:List*", "*"];

const RESOURCE_PATTERNS: &[&str] = &[
    "arn:aws:s3:::data/*",
    "arn:aws:s3:::data/a?c",
    "arn:aws:s3:::data",
    "arn:aws:s3:::data2/*",
    "arn:aws:s3:::*",
    "*",
];

const REQUEST_ACTIONS: &[&str] = &["s3:GetObject", "s3:PutObject", "s3:ListBucket"];

/// Request resources in keyless's form: `bucket/key` or `bucket`.
const REQUEST_RESOURCES: &[&str] = &["data/abc", "data/a/b", "data2/x", "data", "databox/x"];

/// The condition key that generated `Condition` blocks test, and the values a
/// request may carry for it. `ML` checks that both sides compare values
/// case-sensitively.
const CONDITION_KEY: &str = "aws:PrincipalTag/team";
const CONTEXT_VALUES: &[&str] = &["ml", "ML", "data"];

const CONDITION_OPERATORS: &[&str] = &["StringEquals", "StringLike"];

/// Condition values: a list means any one of its entries may match.
const CONDITION_VALUES: &[&[&str]] = &[&["ml"], &["m?"], &["d*"], &["ml", "data"], &["*"]];

/// The principal `iam-rs` requires on every request. Identity policies have no
/// `Principal` element, so it does not affect either decision.
const PRINCIPAL_ARN: &str = "arn:aws:iam::123456789012:user/x";

#[derive(Debug, Clone)]
struct Statement {
    allow: bool,
    not_action: bool,
    actions: Vec<&'static str>,
    not_resource: bool,
    resources: Vec<&'static str>,
    /// An operator and its values over [`CONDITION_KEY`], if the statement
    /// has a `Condition` block.
    condition: Option<(&'static str, &'static [&'static str])>,
}

fn statement_strategy() -> impl Strategy<Value = Statement> {
    (
        any::<bool>(),
        any::<bool>(),
        prop::sample::subsequence(ACTION_PATTERNS, 1..=3),
        any::<bool>(),
        prop::sample::subsequence(RESOURCE_PATTERNS, 1..=3),
        prop::option::of((prop::sample::select(CONDITION_OPERATORS), prop::sample::select(CONDITION_VALUES))),
    )
        .prop_map(|(allow, not_action, actions, not_resource, resources, condition)| Statement {
            allow,
            not_action,
            actions,
            not_resource,
            resources,
            condition,
        })
}

fn policy_json(statements: &[Statement]) -> String {
    let rendered: Vec<Value> = statements
        .iter()
        .map(|st| {
            let mut object = serde_json::Map::new();
            object.insert("Effect".into(), json!(if st.allow { "Allow" } else { "Deny" }));
            object.insert(if st.not_action { "NotAction" } else { "Action" }.into(), json!(st.actions));
            object.insert(if st.not_resource { "NotResource" } else { "Resource" }.into(), json!(st.resources));
            if let Some((operator, values)) = st.condition {
                object.insert("Condition".into(), json!({ operator: { CONDITION_KEY: values } }));
            }
            Value::Object(object)
        })
        .collect();
    json!({ "Version": "2012-10-17", "Statement": rendered }).to_string()
}

fn keyless_allows(text: &str, action: &str, resource: &str, team: Option<&str>) -> bool {
    let policy = SessionPolicy::parse(text).unwrap_or_else(|err| panic!("keyless rejected {text}: {err}"));
    let mut context = Context::new();
    if let Some(team) = team {
        context.insert(CONDITION_KEY, team);
    }
    let request = Request { principal: Some("user/x"), action, resource, context: &context };
    evaluate_session(&policy, &request).allowed
}

fn iam_rs_allows(text: &str, action: &str, resource: &str, team: Option<&str>) -> bool {
    let policy: IAMPolicy = serde_json::from_str(text).unwrap_or_else(|err| panic!("iam-rs rejected {text}: {err}"));
    let arn = iam_rs::Arn::parse(&format!("arn:aws:s3:::{resource}")).expect("request ARN is valid");
    let principal = Principal::Aws(PrincipalId::String(PRINCIPAL_ARN.into()));
    let mut context = iam_rs::Context::new();
    if let Some(team) = team {
        context = context.with_string(CONDITION_KEY, team);
    }
    let request = IAMRequest::new_with_context(principal, action, arn, context);
    let decision = iam_rs::evaluate_policy(&policy, &request).unwrap_or_else(|err| panic!("iam-rs failed on {text}: {err}"));
    decision == iam_rs::Decision::Allow
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn session_policy_matches_iam_rs(
        statements in prop::collection::vec(statement_strategy(), 1..=6),
        action in prop::sample::select(REQUEST_ACTIONS),
        resource in prop::sample::select(REQUEST_RESOURCES),
        team in prop::option::of(prop::sample::select(CONTEXT_VALUES)),
    ) {
        let text = policy_json(&statements);
        let keyless = keyless_allows(&text, action, resource, team);
        let reference = iam_rs_allows(&text, action, resource, team);
        prop_assert_eq!(keyless, reference, "policy {} request {} on {} with team {:?}", text, action, resource, team);
    }
}
