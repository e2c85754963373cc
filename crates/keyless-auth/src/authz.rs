//! The single authorization entry point for S3 and control-plane requests.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use keyless_policy::{Decision, OrgPolicy, Request, evaluate_org};
use keyless_store::{Change, ChangeKind, Store, StoreError};

/// The outcome of `Authorizer::authorize`. Only an `AuthDecision` with
/// `allowed` set may let a request proceed; it carries the evaluator's trace.
#[derive(Debug, Clone)]
pub struct AuthDecision {
    pub allowed: bool,
    pub decision: Decision,
}

/// Org policies cached per org; dropped when the change feed reports a change.
pub struct Authorizer {
    store: Store,
    policies: RwLock<HashMap<String, Arc<Vec<OrgPolicy>>>>,
}

impl Authorizer {
    pub fn new(store: Store) -> Self {
        Authorizer { store, policies: RwLock::default() }
    }

    pub async fn org_policies(&self, org: &str) -> Result<Arc<Vec<OrgPolicy>>, StoreError> {
        if let Some(policies) = self.policies.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(org) {
            return Ok(policies.clone());
        }
        let mut parsed = Vec::new();
        for (name, document) in self.store.list_policies(org).await? {
            match serde_json::from_str::<OrgPolicy>(&document) {
                Ok(policy) => parsed.push(policy),
                // A stored policy that no longer parses is skipped, which can
                // only remove access: it may hold Denies, so log it loudly.
                Err(err) => tracing::error!(org, policy = %name, error = %err, "stored org policy does not parse; ignoring it"),
            }
        }
        let parsed = Arc::new(parsed);
        self.policies.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(org.to_owned(), parsed.clone());
        Ok(parsed)
    }

    /// Decides whether `principal` (`None` for anonymous) may perform `action`
    /// on `resource` in `org`. A store failure denies.
    pub async fn authorize(&self, org: &str, principal: Option<&str>, action: &str, resource: &str) -> AuthDecision {
        let request = Request { principal, action, resource };
        let decision = match self.org_policies(org).await {
            Ok(policies) => evaluate_org(policies.iter(), &request),
            Err(err) => {
                tracing::error!(org, error = %err, "could not load org policies; denying");
                evaluate_org([], &request)
            }
        };
        AuthDecision { allowed: decision.allowed, decision }
    }

    /// Drops cached policies named by the change feed.
    pub fn apply_changes(&self, changes: &[Change]) {
        let mut policies = self.policies.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for change in changes {
            if change.kind == ChangeKind::PolicyChanged {
                policies.remove(&change.org_id);
            }
        }
    }
}
