//! The evaluator: explicit Deny wins, then any Allow, otherwise default deny.

use serde::Serialize;

use crate::conditions::{ConditionTrace, Conditions};
use crate::context::Context;
use crate::document::{Effect, OrgPolicy, OrgStatement};
use crate::pattern::{glob_match_ignore_ascii_case, principal_match};
use crate::variables::resource_match;

/// The request being decided. `principal` is `None` for an anonymous request, which
/// only statements naming the principal `*` can match. `context` contains the
/// condition keys of the request, which conditions and policy variables read.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub principal: Option<&'a str>,
    pub action: &'a str,
    pub resource: &'a str,
    pub context: &'a Context,
}

/// Comparison of one statement with the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatementTrace {
    pub policy: String,
    pub statement: String,
    pub effect: Effect,
    pub action_matched: bool,
    pub resource_matched: bool,
    pub principal_matched: bool,
    /// Every condition of the statement. Conditions are evaluated only when
    /// the action, resource and principal match, since they cannot change the
    /// outcome otherwise, so this is empty for other statements and for
    /// statements without conditions.
    pub conditions: Vec<ConditionTrace>,
}

impl StatementTrace {
    /// Evaluates the statement's conditions into the trace when the action,
    /// resource and principal match.
    pub(crate) fn with_conditions(mut self, conditions: Option<&Conditions>, context: &Context) -> StatementTrace {
        if let Some(conditions) = conditions
            && self.action_matched
            && self.resource_matched
            && self.principal_matched
        {
            self.conditions = conditions.evaluate(context, self.effect);
        }
        self
    }

    /// Returns whether the statement applies to the request: its action,
    /// resource and principal match and every condition holds.
    pub fn matched(&self) -> bool {
        self.action_matched && self.resource_matched && self.principal_matched && self.conditions.iter().all(|c| c.matched)
    }
}

/// Reason for a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum DecisionReason {
    /// At least one Allow statement matched and no Deny did.
    #[serde(rename_all = "camelCase")]
    Allowed { policy: String, statement: String },
    /// A Deny statement matched.
    #[serde(rename_all = "camelCase")]
    ExplicitDeny { policy: String, statement: String },
    /// No statement allowed the request.
    NoAllow,
    /// The resource's bucket belongs to another organization, whose policies
    /// the caller's organization may neither use nor see.
    #[serde(rename_all = "camelCase")]
    OtherOrganization { bucket: String },
}

/// A decision and the trace that explains it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    pub reason: DecisionReason,
    pub trace: Vec<StatementTrace>,
}

/// Evaluates a request against an organization's policies.
///
/// Every statement of every policy is traced, so the order of policies never
/// changes the outcome: any matching Deny rejects, otherwise any matching Allow
/// accepts, otherwise the request is denied by default.
pub fn evaluate_org<'p>(policies: impl IntoIterator<Item = &'p OrgPolicy>, request: &Request<'_>) -> Decision {
    let mut trace = Vec::new();
    for policy in policies {
        for (index, st) in policy.statements.iter().enumerate() {
            trace.push(StatementTrace {
                policy: policy.name.clone(),
                statement: statement_label(&st.name, index),
                effect: st.effect,
                action_matched: st.actions.iter().any(|a| action_match(a, request.action)),
                resource_matched: st.resources.iter().any(|r| resource_match(r, request.resource, request.context)),
                principal_matched: st.principals.iter().any(|p| match request.principal {
                    Some(principal) => principal_match(p, principal),
                    None => p == "*",
                }),
                conditions: Vec::new(),
            }
            .with_conditions(st.conditions.as_ref(), request.context));
        }
    }
    decide(trace)
}

/// Names a statement in traces: its name, or `#<index>` when it has none.
pub(crate) fn statement_label(name: &str, index: usize) -> String {
    if name.is_empty() { format!("#{index}") } else { name.to_owned() }
}

/// Decides a request exactly as `evaluate_org` does, without building the
/// trace: the per-request path of the S3 endpoint. Checks run cheapest first
/// (principal, action, resource, conditions) and stop at the first miss, and
/// the first matching Deny ends the evaluation. `trace` comes back empty.
/// `OrgPolicySet::decide` decides the same way with fewer statements to test.
pub fn decide_org<'p>(policies: impl IntoIterator<Item = &'p OrgPolicy>, request: &Request<'_>) -> Decision {
    let mut first_allow: Option<(&str, &str, usize)> = None;
    for policy in policies {
        for (index, st) in policy.statements.iter().enumerate() {
            if !statement_applies(st, request) {
                continue;
            }
            match st.effect {
                Effect::Deny => {
                    let reason = DecisionReason::ExplicitDeny { policy: policy.name.clone(), statement: statement_label(&st.name, index) };
                    return Decision { allowed: false, reason, trace: Vec::new() };
                }
                Effect::Allow => {
                    first_allow.get_or_insert((policy.name.as_str(), st.name.as_str(), index));
                }
            }
        }
    }
    let (allowed, reason) = match first_allow {
        Some((policy, name, index)) => (true, DecisionReason::Allowed { policy: policy.to_owned(), statement: statement_label(name, index) }),
        None => (false, DecisionReason::NoAllow),
    };
    Decision { allowed, reason, trace: Vec::new() }
}

/// Returns whether a statement applies to the request, checking the cheapest
/// element first (principal, action, resource, then conditions) and stopping at
/// the first miss.
pub(crate) fn statement_applies(st: &OrgStatement, request: &Request<'_>) -> bool {
    let principal_matched = st.principals.iter().any(|p| match request.principal {
        Some(principal) => principal_match(p, principal),
        None => p == "*",
    });
    principal_matched
        && st.actions.iter().any(|a| action_match(a, request.action))
        && st.resources.iter().any(|r| resource_match(r, request.resource, request.context))
        && st.conditions.as_ref().is_none_or(|c| c.evaluate(request.context, st.effect).iter().all(|t| t.matched))
}

/// Decides from a complete trace: the first matching Deny rejects, otherwise
/// the first matching Allow accepts, otherwise the request is denied.
pub(crate) fn decide(trace: Vec<StatementTrace>) -> Decision {
    let first = |effect: Effect| trace.iter().find(|t| t.effect == effect && t.matched()).map(|t| (t.policy.clone(), t.statement.clone()));
    let (allowed, reason) = match (first(Effect::Deny), first(Effect::Allow)) {
        (Some((policy, statement)), _) => (false, DecisionReason::ExplicitDeny { policy, statement }),
        (None, Some((policy, statement))) => (true, DecisionReason::Allowed { policy, statement }),
        (None, None) => (false, DecisionReason::NoAllow),
    };
    Decision { allowed, reason, trace }
}

/// Action names compare case-insensitively, as in IAM; wildcards apply.
pub(crate) fn action_match(pattern: &str, action: &str) -> bool {
    glob_match_ignore_ascii_case(pattern, action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::OrgStatement;

    fn statement(effect: Effect, actions: &[&str], resources: &[&str], principals: &[&str]) -> OrgStatement {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        OrgStatement {
            name: String::new(),
            effect,
            actions: strings(actions),
            resources: strings(resources),
            principals: strings(principals),
            conditions: None,
        }
    }

    fn policy(name: &str, statements: Vec<OrgStatement>) -> OrgPolicy {
        OrgPolicy { version: "v1alpha1".into(), name: name.into(), statements }
    }

    static EMPTY: Context = Context::new();

    fn request<'a>(principal: &'a str, action: &'a str, resource: &'a str) -> Request<'a> {
        Request { principal: Some(principal), action, resource, context: &EMPTY }
    }

    #[test]
    fn no_policy_denies() {
        let decision = evaluate_org([], &request("user/a", "s3:GetObject", "b/k"));
        assert!(!decision.allowed);
        assert_eq!(decision.reason, DecisionReason::NoAllow);
    }

    #[test]
    fn deny_wins_over_allow_in_any_order() {
        let allow = policy("allow", vec![statement(Effect::Allow, &["s3:*"], &["*"], &["*"])]);
        let deny = policy("deny", vec![statement(Effect::Deny, &["s3:GetObject"], &["b/*"], &["user/a"])]);
        for order in [[&allow, &deny], [&deny, &allow]] {
            let decision = evaluate_org(order, &request("user/a", "s3:GetObject", "b/k"));
            assert!(!decision.allowed);
            assert!(matches!(decision.reason, DecisionReason::ExplicitDeny { ref policy, .. } if policy == "deny"));
        }
    }

    #[test]
    fn action_case_is_ignored() {
        let p = policy("p", vec![statement(Effect::Allow, &["S3:getobject"], &["*"], &["*"])]);
        assert!(evaluate_org([&p], &request("user/a", "s3:GetObject", "b/k")).allowed);
    }

    #[test]
    fn bucket_resource_does_not_cover_objects() {
        let p = policy("p", vec![statement(Effect::Allow, &["s3:*"], &["data"], &["*"])]);
        assert!(evaluate_org([&p], &request("user/a", "s3:ListBucket", "data")).allowed);
        assert!(!evaluate_org([&p], &request("user/a", "s3:GetObject", "data/k")).allowed);
        assert!(!evaluate_org([&p], &request("user/a", "s3:ListBucket", "data2")).allowed);
    }

    #[test]
    fn anonymous_matches_only_star() {
        let p = policy("p", vec![statement(Effect::Allow, &["s3:GetObject"], &["*"], &["user/*"])]);
        let anonymous = Request { principal: None, action: "s3:GetObject", resource: "b/k", context: &EMPTY };
        assert!(!evaluate_org([&p], &anonymous).allowed);
    }

    #[test]
    fn trace_lists_every_statement() {
        let p = policy(
            "p",
            vec![
                statement(Effect::Allow, &["s3:GetObject"], &["*"], &["user/a"]),
                statement(Effect::Allow, &["s3:PutObject"], &["*"], &["user/a"]),
            ],
        );
        let decision = evaluate_org([&p], &request("user/a", "s3:GetObject", "b/k"));
        assert_eq!(decision.trace.len(), 2);
        assert!(decision.trace[0].matched());
        assert!(!decision.trace[1].action_matched);
    }

    fn conditioned(mut st: OrgStatement, json: &str) -> OrgStatement {
        st.conditions = Some(crate::conditions::Conditions::from_json(&serde_json::from_str(json).unwrap()).unwrap());
        st
    }

    fn request_with<'a>(principal: &'a str, action: &'a str, resource: &'a str, context: &'a Context) -> Request<'a> {
        Request { principal: Some(principal), action, resource, context }
    }

    #[test]
    fn statement_applies_only_when_conditions_hold() {
        let st = conditioned(statement(Effect::Allow, &["s3:GetObject"], &["data/*"], &["*"]), r#"{"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#);
        let p = policy("p", vec![st]);
        let inside = Context::builder().value("aws:SourceIp", "10.9.8.7").build();
        let outside = Context::builder().value("aws:SourceIp", "192.0.2.1").build();
        assert!(evaluate_org([&p], &request_with("user/a", "s3:GetObject", "data/k", &inside)).allowed);

        let denied = evaluate_org([&p], &request_with("user/a", "s3:GetObject", "data/k", &outside));
        assert!(!denied.allowed);
        assert_eq!(denied.reason, DecisionReason::NoAllow);
        assert!(denied.trace[0].action_matched);
        assert!(denied.trace[0].resource_matched);
        assert!(denied.trace[0].principal_matched);
        assert!(!denied.trace[0].conditions[0].matched);
    }

    #[test]
    fn conditional_deny_wins_when_it_holds() {
        let allow = statement(Effect::Allow, &["s3:*"], &["*"], &["*"]);
        let deny = conditioned(statement(Effect::Deny, &["s3:*"], &["*"], &["*"]), r#"{"Bool": {"aws:SecureTransport": "false"}}"#);
        let p = policy("p", vec![allow, deny]);
        let plain = Context::builder().value("aws:SecureTransport", "false").build();
        let tls = Context::builder().value("aws:SecureTransport", "true").build();
        assert!(!evaluate_org([&p], &request_with("user/a", "s3:GetObject", "b/k", &plain)).allowed);
        assert!(evaluate_org([&p], &request_with("user/a", "s3:GetObject", "b/k", &tls)).allowed);
    }

    #[test]
    fn claim_conditions_select_workloads() {
        let st = conditioned(
            statement(Effect::Allow, &["s3:GetObject"], &["models/*"], &["role/https://token.actions.githubusercontent.com:*"]),
            r#"{"StringEquals": {"jwt:repository_owner": "acme"}, "StringLike": {"jwt:ref": "refs/heads/*"}}"#,
        );
        let p = policy("p", vec![st]);
        let principal = "role/https://token.actions.githubusercontent.com:repo:acme/train:ref:refs/heads/main";
        let acme = Context::builder().value("jwt:repository_owner", "acme").value("jwt:ref", "refs/heads/main").build();
        let evil = Context::builder().value("jwt:repository_owner", "acme-evil").value("jwt:ref", "refs/heads/main").build();
        let tag = Context::builder().value("jwt:repository_owner", "acme").value("jwt:ref", "refs/tags/v1").build();
        assert!(evaluate_org([&p], &request_with(principal, "s3:GetObject", "models/m", &acme)).allowed);
        assert!(!evaluate_org([&p], &request_with(principal, "s3:GetObject", "models/m", &evil)).allowed);
        assert!(!evaluate_org([&p], &request_with(principal, "s3:GetObject", "models/m", &tag)).allowed);
    }

    #[test]
    fn resource_variable_gives_each_workload_its_prefix() {
        let p = policy("p", vec![statement(Effect::Allow, &["s3:*"], &["scratch/${jwt:sub}/*"], &["*"])]);
        let alice = Context::builder().value("jwt:sub", "alice").build();
        let star = Context::builder().value("jwt:sub", "*").build();
        assert!(evaluate_org([&p], &request_with("user/a", "s3:PutObject", "scratch/alice/x", &alice)).allowed);
        assert!(!evaluate_org([&p], &request_with("user/a", "s3:PutObject", "scratch/alice2/x", &alice)).allowed);
        assert!(!evaluate_org([&p], &request_with("user/a", "s3:PutObject", "scratch/bob/x", &star)).allowed);
        assert!(evaluate_org([&p], &request_with("user/a", "s3:PutObject", "scratch/*/x", &star)).allowed);
        assert!(!evaluate_org([&p], &request("user/a", "s3:PutObject", "scratch//x")).allowed);
    }

    #[test]
    fn prefix_boundaries_hold() {
        // Each case: a statement resource or principal, a request that it must
        // cover and one that only shares a text prefix with it.
        let resource_cases = [("bucket", "bucket", "bucket2"), ("bucket/*", "bucket/k", "bucket2/k"), ("a/b*", "a/bc", "ab"), ("a/b/*", "a/b/c", "a/bc")];
        for (pattern, covered, outside) in resource_cases {
            let p = policy("p", vec![statement(Effect::Allow, &["s3:*"], &[pattern], &["*"])]);
            assert!(evaluate_org([&p], &request("user/a", "s3:GetObject", covered)).allowed, "{pattern} should cover {covered}");
            assert!(!evaluate_org([&p], &request("user/a", "s3:GetObject", outside)).allowed, "{pattern} should not cover {outside}");
        }

        let principal_cases = [
            ("role/iss:repo:acme/*", "role/iss:repo:acme/train", "role/iss:repo:acme-evil"),
            ("role/iss:repo:acme/*", "role/iss:repo:acme/train", "role/iss:repo:acme-evil/train"),
            ("user/alice", "user/alice", "user/alice2"),
        ];
        for (pattern, covered, outside) in principal_cases {
            let p = policy("p", vec![statement(Effect::Allow, &["s3:*"], &["*"], &[pattern])]);
            assert!(evaluate_org([&p], &request(covered, "s3:GetObject", "b/k")).allowed, "{pattern} should cover {covered}");
            assert!(!evaluate_org([&p], &request(outside, "s3:GetObject", "b/k")).allowed, "{pattern} should not cover {outside}");
        }
    }
}
