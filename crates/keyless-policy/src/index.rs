//! An organization's policies compiled for the request path.
//!
//! `decide_org` tests every statement, so its cost grows with the size of the
//! policy set even when almost no statement names the requester. `OrgPolicySet`
//! indexes the statements once, when the policies are loaded, by the form of
//! their principal, action and resource patterns:
//! - a pattern that matches every value (`*`, and for actions and resources any
//!   pattern that starts with a wildcard),
//! - a pattern without wildcards, which matches only itself,
//! - a pattern whose literal text ends at its first wildcard or policy
//!   variable, which matches only values starting with that text.
//!
//! A request looks up its principal, action and resource in the three indexes
//! and takes the smallest of the three candidate sets. The index only ever
//! narrows: every candidate then passes the same checks as in `decide_org`, in
//! statement order, so the decision and its reason are those of `decide_org`
//! and `evaluate_org`.

use std::collections::HashMap;

use crate::document::{Effect, OrgPolicy};
use crate::eval::{Decision, DecisionReason, Request, statement_applies, statement_label};

/// Statement positions (indexes into `OrgPolicySet::positions`) by the patterns
/// that can match a value. Every list is in ascending order.
#[derive(Debug, Default)]
struct PatternIndex {
    /// Statements with a pattern that may match any value.
    any: Vec<usize>,
    /// Statements by a pattern without wildcards, which matches only itself.
    exact: HashMap<String, Vec<usize>>,
    /// Statements by the literal text at the start of a pattern, which every
    /// matching value starts with.
    prefixes: HashMap<String, Vec<usize>>,
    /// Byte lengths of the keys of `prefixes`, ascending and distinct.
    prefix_lengths: Vec<usize>,
}

/// The values a pattern can match, as far as the index distinguishes them.
enum PatternKey {
    Any,
    Exact(String),
    Prefix(String),
}

impl PatternIndex {
    /// Adds a statement under `key`. Statements are added in ascending position
    /// order, so a statement listed twice under one key (two equal patterns)
    /// appears once.
    fn insert(&mut self, key: PatternKey, position: usize) {
        let list = match key {
            PatternKey::Any => &mut self.any,
            PatternKey::Exact(text) => self.exact.entry(text).or_default(),
            PatternKey::Prefix(text) => {
                self.prefix_lengths.push(text.len());
                self.prefixes.entry(text).or_default()
            }
        };
        if list.last() != Some(&position) {
            list.push(position);
        }
    }

    fn finish(&mut self) {
        self.prefix_lengths.sort_unstable();
        self.prefix_lengths.dedup();
    }

    /// Appends to `out` the lists of statements that may match `value`, and
    /// returns how many positions they hold (with repeats).
    fn candidates<'s>(&'s self, value: &str, out: &mut Vec<&'s [usize]>) -> usize {
        let mut count = 0;
        let mut push = |list: &'s [usize]| {
            if !list.is_empty() {
                count += list.len();
                out.push(list);
            }
        };
        push(&self.any);
        if let Some(list) = self.exact.get(value) {
            push(list);
        }
        for &length in &self.prefix_lengths {
            if length > value.len() {
                break;
            }
            if let Some(list) = value.get(..length).and_then(|head| self.prefixes.get(head)) {
                push(list);
            }
        }
        count
    }
}

/// Classifies a principal pattern as `principal_match` reads it: `*` matches
/// every principal, a trailing `*` makes the rest a prefix, and anything else
/// must equal the principal.
fn principal_key(pattern: &str) -> PatternKey {
    if pattern == "*" {
        return PatternKey::Any;
    }
    match pattern.strip_suffix('*') {
        Some(prefix) => PatternKey::Prefix(prefix.to_owned()),
        None => PatternKey::Exact(pattern.to_owned()),
    }
}

/// Classifies an action pattern, an ASCII case-insensitive glob. Keys are
/// ASCII-lowercased, so the request's action must be too.
fn action_key(pattern: &str) -> PatternKey {
    let pattern = pattern.to_ascii_lowercase();
    glob_key(pattern, &['*', '?'])
}

/// Classifies a resource pattern, a case-sensitive glob that may contain policy
/// variables. Its literal text ends at the first wildcard or `$`, because
/// `${...}` may stand for any text.
fn resource_key(pattern: &str) -> PatternKey {
    glob_key(pattern.to_owned(), &['*', '?', '$'])
}

/// Classifies a pattern by the literal text before the first of `special`.
fn glob_key(pattern: String, special: &[char]) -> PatternKey {
    match pattern.find(special) {
        None => PatternKey::Exact(pattern),
        Some(0) => PatternKey::Any,
        Some(end) => {
            let mut prefix = pattern;
            prefix.truncate(end);
            PatternKey::Prefix(prefix)
        }
    }
}

/// An organization's policies with an index of their statements, built once
/// per load of the policies. `decide` is the request path. Explain passes
/// `policies` to `evaluate_org`, which traces every statement.
#[derive(Debug)]
pub struct OrgPolicySet {
    policies: Vec<OrgPolicy>,
    /// (policy index, statement index) of each statement, in evaluation order.
    positions: Vec<(usize, usize)>,
    principals: PatternIndex,
    actions: PatternIndex,
    resources: PatternIndex,
}

impl OrgPolicySet {
    /// Indexes the statements of `policies`, keeping their order.
    pub fn new(policies: Vec<OrgPolicy>) -> OrgPolicySet {
        let mut set = OrgPolicySet {
            policies: Vec::new(),
            positions: Vec::new(),
            principals: PatternIndex::default(),
            actions: PatternIndex::default(),
            resources: PatternIndex::default(),
        };
        for (policy_index, policy) in policies.iter().enumerate() {
            for (statement_index, statement) in policy.statements.iter().enumerate() {
                let position = set.positions.len();
                set.positions.push((policy_index, statement_index));
                for pattern in &statement.principals {
                    set.principals.insert(principal_key(pattern), position);
                }
                for pattern in &statement.actions {
                    set.actions.insert(action_key(pattern), position);
                }
                for pattern in &statement.resources {
                    set.resources.insert(resource_key(pattern), position);
                }
            }
        }
        set.principals.finish();
        set.actions.finish();
        set.resources.finish();
        set.policies = policies;
        set
    }

    /// Returns the policies, in the order they were given.
    pub fn policies(&self) -> &[OrgPolicy] {
        &self.policies
    }

    /// Decides a request as `decide_org` does over `policies()`, with the same
    /// decision and reason, testing only the statements the index cannot rule
    /// out. `trace` comes back empty.
    pub fn decide(&self, request: &Request<'_>) -> Decision {
        let mut first_allow: Option<(usize, usize)> = None;
        for position in self.candidates(request) {
            let Some(&(policy_index, statement_index)) = self.positions.get(position) else { continue };
            let policy = &self.policies[policy_index];
            let statement = &policy.statements[statement_index];
            if !statement_applies(statement, request) {
                continue;
            }
            match statement.effect {
                Effect::Deny => {
                    let reason = DecisionReason::ExplicitDeny { policy: policy.name.clone(), statement: statement_label(&statement.name, statement_index) };
                    return Decision { allowed: false, reason, trace: Vec::new() };
                }
                Effect::Allow => {
                    first_allow.get_or_insert((policy_index, statement_index));
                }
            }
        }
        let (allowed, reason) = match first_allow {
            Some((policy_index, statement_index)) => {
                let policy = &self.policies[policy_index];
                let name = &policy.statements[statement_index].name;
                (true, DecisionReason::Allowed { policy: policy.name.clone(), statement: statement_label(name, statement_index) })
            }
            None => (false, DecisionReason::NoAllow),
        };
        Decision { allowed, reason, trace: Vec::new() }
    }

    /// Returns, in ascending order and without repeats, the positions of the
    /// statements that may match the request: the smallest of the candidate
    /// sets of its principal, action and resource.
    fn candidates(&self, request: &Request<'_>) -> Vec<usize> {
        let mut by_principal = Vec::new();
        let principal_count = match request.principal {
            Some(principal) => self.principals.candidates(principal, &mut by_principal),
            // An anonymous request matches only the principal `*`.
            None => {
                by_principal.push(self.principals.any.as_slice());
                self.principals.any.len()
            }
        };
        let mut by_action = Vec::new();
        let action_count = self.actions.candidates(&request.action.to_ascii_lowercase(), &mut by_action);
        let mut by_resource = Vec::new();
        let resource_count = self.resources.candidates(request.resource, &mut by_resource);

        let smallest = [(principal_count, by_principal), (action_count, by_action), (resource_count, by_resource)]
            .into_iter()
            .min_by_key(|(count, _)| *count)
            .map(|(_, lists)| lists)
            .unwrap_or_default();
        let mut positions: Vec<usize> = smallest.concat();
        positions.sort_unstable();
        positions.dedup();
        positions
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Context;
    use crate::document::OrgStatement;
    use crate::eval::decide_org;

    fn statement(effect: Effect, actions: &[&str], resources: &[&str], principals: &[&str]) -> OrgStatement {
        let strings = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        OrgStatement { name: String::new(), effect, actions: strings(actions), resources: strings(resources), principals: strings(principals), conditions: None }
    }

    fn set(statements: Vec<OrgStatement>) -> OrgPolicySet {
        OrgPolicySet::new(vec![OrgPolicy { version: "v1alpha1".into(), name: "p".into(), statements }])
    }

    static EMPTY: Context = Context::new();

    fn request<'a>(principal: Option<&'a str>, action: &'a str, resource: &'a str) -> Request<'a> {
        Request { principal, action, resource, context: &EMPTY }
    }

    #[test]
    fn candidates_skip_other_principals() {
        let policies = set((0..100).map(|i| statement(Effect::Allow, &["s3:GetObject"], &["*"], &[&format!("role/iss:team{i}/*")])).collect());
        let request = request(Some("role/iss:team42/job"), "s3:GetObject", "b/k");
        assert_eq!(policies.candidates(&request), vec![42]);
        assert_eq!(policies.decide(&request), decide_org(policies.policies(), &request));
    }

    #[test]
    fn candidates_come_from_the_narrowest_element() {
        let mut statements: Vec<OrgStatement> = (0..10).map(|i| statement(Effect::Allow, &["s3:*"], &[&format!("team{i}/*")], &["*"])).collect();
        statements.push(statement(Effect::Deny, &["s3:DeleteObject"], &["*"], &["*"]));
        let policies = set(statements);
        // Resources narrow to team3's statement and the Deny on every resource.
        assert_eq!(policies.candidates(&request(Some("user/a"), "s3:GetObject", "team3/k")), vec![3, 10]);
        // Actions narrow to the Deny; the index compares them case-insensitively.
        assert_eq!(policies.candidates(&request(Some("user/a"), "S3:DELETEOBJECT", "x/k")), vec![10]);
    }

    #[test]
    fn anonymous_requests_see_only_star_principals() {
        let policies = set(vec![
            statement(Effect::Allow, &["s3:GetObject"], &["*"], &["user/*"]),
            statement(Effect::Allow, &["s3:GetObject"], &["*"], &["*"]),
        ]);
        assert_eq!(policies.candidates(&request(None, "s3:GetObject", "b/k")), vec![1]);
    }

    #[test]
    fn variables_and_inner_wildcards_end_the_literal_prefix() {
        let policies = set(vec![
            statement(Effect::Allow, &["s3:Get?bject"], &["home/${aws:username}/*"], &["*"]),
            statement(Effect::Allow, &["s3:Get*"], &["b/k?"], &["*"]),
            statement(Effect::Allow, &["s3:GetObject"], &["b/k"], &["*"]),
        ]);
        assert_eq!(policies.candidates(&request(Some("user/a"), "s3:GetObject", "home/a/x")), vec![0]);
        assert_eq!(policies.candidates(&request(Some("user/a"), "s3:GetObject", "b/kk")), vec![1]);
        assert_eq!(policies.candidates(&request(Some("user/a"), "s3:GetObject", "b/k")), vec![1, 2]);
    }

    #[test]
    fn repeated_patterns_give_one_candidate() {
        let policies = set(vec![statement(Effect::Allow, &["s3:GetObject", "s3:getobject"], &["b/*", "b/*"], &["user/a", "user/a"])]);
        assert_eq!(policies.candidates(&request(Some("user/a"), "s3:GetObject", "b/k")), vec![0]);
    }

    #[test]
    fn first_deny_and_first_allow_name_the_reason() {
        let policies = OrgPolicySet::new(vec![
            OrgPolicy { version: "v1alpha1".into(), name: "a".into(), statements: vec![statement(Effect::Allow, &["s3:*"], &["*"], &["*"])] },
            OrgPolicy {
                version: "v1alpha1".into(),
                name: "b".into(),
                statements: vec![
                    statement(Effect::Allow, &["s3:GetObject"], &["b/*"], &["user/a"]),
                    statement(Effect::Deny, &["s3:PutObject"], &["b/*"], &["user/*"]),
                ],
            },
        ]);
        let get = request(Some("user/a"), "s3:GetObject", "b/k");
        assert_eq!(policies.decide(&get).reason, DecisionReason::Allowed { policy: "a".into(), statement: "#0".into() });
        let put = request(Some("user/a"), "s3:PutObject", "b/k");
        assert_eq!(policies.decide(&put).reason, DecisionReason::ExplicitDeny { policy: "b".into(), statement: "#1".into() });
    }
}
