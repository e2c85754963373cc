//! The evaluator: explicit Deny wins, then any Allow, otherwise default deny.

use serde::Serialize;

use crate::document::{Effect, OrgPolicy};
use crate::pattern::{glob_match, principal_match};

/// What is being decided. `principal` is `None` for an anonymous request, which
/// only statements naming the principal `*` can match.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub principal: Option<&'a str>,
    pub action: &'a str,
    pub resource: &'a str,
}

/// How one statement compared with the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatementTrace {
    pub policy: String,
    pub statement: String,
    pub effect: Effect,
    pub action_matched: bool,
    pub resource_matched: bool,
    pub principal_matched: bool,
}

impl StatementTrace {
    pub fn matched(&self) -> bool {
        self.action_matched && self.resource_matched && self.principal_matched
    }
}

/// Why a decision came out as it did.
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
    let mut first_allow: Option<(String, String)> = None;
    let mut first_deny: Option<(String, String)> = None;

    for policy in policies {
        for (index, st) in policy.statements.iter().enumerate() {
            let statement = if st.name.is_empty() { format!("#{index}") } else { st.name.clone() };
            let entry = StatementTrace {
                policy: policy.name.clone(),
                statement: statement.clone(),
                effect: st.effect,
                action_matched: st.actions.iter().any(|a| action_match(a, request.action)),
                resource_matched: st.resources.iter().any(|r| glob_match(r, request.resource)),
                principal_matched: st.principals.iter().any(|p| match request.principal {
                    Some(principal) => principal_match(p, principal),
                    None => p == "*",
                }),
            };
            if entry.matched() {
                let slot = match st.effect {
                    Effect::Allow => &mut first_allow,
                    Effect::Deny => &mut first_deny,
                };
                slot.get_or_insert_with(|| (policy.name.clone(), statement));
            }
            trace.push(entry);
        }
    }

    let (allowed, reason) = match (first_deny, first_allow) {
        (Some((policy, statement)), _) => (false, DecisionReason::ExplicitDeny { policy, statement }),
        (None, Some((policy, statement))) => (true, DecisionReason::Allowed { policy, statement }),
        (None, None) => (false, DecisionReason::NoAllow),
    };
    Decision { allowed, reason, trace }
}

/// Action names compare case-insensitively, as in IAM; wildcards apply.
fn action_match(pattern: &str, action: &str) -> bool {
    glob_match(&pattern.to_ascii_lowercase(), &action.to_ascii_lowercase())
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
        }
    }

    fn policy(name: &str, statements: Vec<OrgStatement>) -> OrgPolicy {
        OrgPolicy { version: "v1alpha1".into(), name: name.into(), statements }
    }

    fn request<'a>(principal: &'a str, action: &'a str, resource: &'a str) -> Request<'a> {
        Request { principal: Some(principal), action, resource }
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
        let anonymous = Request { principal: None, action: "s3:GetObject", resource: "b/k" };
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
}
