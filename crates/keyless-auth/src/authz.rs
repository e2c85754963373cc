//! The single authorization entry point for S3 and control-plane requests.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use keyless_policy::{BucketPolicy, Context, Decision, DecisionReason, OrgPolicy, OrgPolicySet, Request, SessionPolicy, evaluate_org, evaluate_session};

use crate::credentials::Caller;
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
    /// Each org's policies with their statement index, built when they are loaded.
    policies: RwLock<HashMap<String, Arc<OrgPolicySet>>>,
    /// Existing buckets by name, with their owner and parsed policy.
    buckets: RwLock<HashMap<String, Arc<CachedBucket>>>,
}

/// The owner and policy of a bucket, as authorization reads them.
struct CachedBucket {
    org: String,
    /// `None`: the bucket has no policy.
    policy: Option<Arc<BucketPolicy>>,
}

/// Actions that only org policies decide, so that a bucket policy cannot lock
/// the bucket's owner out of reading, repairing or removing it.
fn decided_by_org_alone(action: &str) -> bool {
    !action.starts_with("s3:")
        || matches!(action, "s3:PutBucketPolicy" | "s3:GetBucketPolicy" | "s3:DeleteBucketPolicy" | "s3:ListAllMyBuckets" | "s3:CreateBucket")
}

/// Parses a stored bucket policy. Policies were validated on PUT, so one
/// that no longer parses denies everything it could decide.
fn parse_bucket_policy(bucket: &str, text: &str) -> Arc<BucketPolicy> {
    match BucketPolicy::parse(text, bucket) {
        Ok(policy) => Arc::new(policy),
        Err(err) => {
            tracing::error!(bucket, error = %err, "stored bucket policy does not parse; denying");
            Arc::new(BucketPolicy { statements: Vec::new() })
        }
    }
}

impl Authorizer {
    pub fn new(store: Store) -> Self {
        Authorizer { store, policies: RwLock::default(), buckets: RwLock::default() }
    }

    /// Returns the org's policies and their index, loading and indexing them on
    /// the first request after a change.
    pub async fn org_policies(&self, org: &str) -> Result<Arc<OrgPolicySet>, StoreError> {
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
        let parsed = Arc::new(OrgPolicySet::new(parsed));
        self.policies.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(org.to_owned(), parsed.clone());
        Ok(parsed)
    }

    async fn bucket(&self, bucket: &str) -> Result<Option<Arc<CachedBucket>>, StoreError> {
        if let Some(cached) = self.buckets.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(bucket) {
            return Ok(Some(cached.clone()));
        }
        let cached = self.store.bucket(bucket).await?.map(|record| {
            let policy = record.policy.as_deref().map(|text| parse_bucket_policy(bucket, text));
            Arc::new(CachedBucket { org: record.org_id, policy })
        });
        // Only existing buckets are cached, so that requests naming random
        // buckets cannot grow the cache without bound.
        if let Some(found) = &cached {
            self.buckets.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(bucket.to_owned(), found.clone());
        }
        Ok(cached)
    }

    /// Decides a request of `caller` (`None` for anonymous), applying its
    /// session policy when it has one: org policies, then the bucket policy,
    /// then the session policy must all allow.
    pub async fn authorize_caller(&self, org: &str, caller: Option<&Caller>, action: &str, resource: &str, context: &Context) -> AuthDecision {
        let principal = caller.map(|c| c.principal.as_str());
        let decision = self.authorize(org, principal, action, resource, context).await;
        let Some(policy_text) = caller.and_then(|c| c.session()).and_then(|s| s.policy.as_deref()) else {
            return decision;
        };
        if !decision.allowed {
            return decision;
        }
        let request = Request { principal, action, resource, context };
        let session_decision = match SessionPolicy::parse(policy_text) {
            Ok(policy) => evaluate_session(&policy, &request),
            Err(err) => {
                // Session policies are validated at exchange; one that no
                // longer parses narrows to nothing.
                tracing::error!(error = %err, "session policy does not parse; denying");
                Decision { allowed: false, reason: DecisionReason::NoAllow, trace: Vec::new() }
            }
        };
        let mut trace = decision.decision.trace;
        trace.extend(session_decision.trace.iter().cloned());
        let allowed = session_decision.allowed;
        let reason = if allowed { decision.decision.reason } else { session_decision.reason };
        AuthDecision { allowed, decision: Decision { allowed, reason, trace } }
    }

    /// Decides whether `principal` (`None` for anonymous) may perform `action`
    /// on `resource` in `org`: org policies first, then the policy of the
    /// resource's bucket if it has one. A store failure denies.
    /// The decision carries no per-statement trace; `explain` gives one.
    pub async fn authorize(&self, org: &str, principal: Option<&str>, action: &str, resource: &str, context: &Context) -> AuthDecision {
        self.decide(org, principal, action, resource, context, false).await
    }

    /// Decides like `authorize` and returns the trace of every statement.
    pub async fn explain(&self, org: &str, principal: Option<&str>, action: &str, resource: &str, context: &Context) -> AuthDecision {
        self.decide(org, principal, action, resource, context, true).await
    }

    async fn decide(&self, org: &str, principal: Option<&str>, action: &str, resource: &str, context: &Context, traced: bool) -> AuthDecision {
        let request = Request { principal, action, resource, context };
        let decision = match self.org_policies(org).await {
            Ok(policies) if traced => evaluate_org(policies.policies(), &request),
            Ok(policies) => policies.decide(&request),
            Err(err) => {
                tracing::error!(org, error = %err, "could not load org policies; denying");
                evaluate_org([], &request)
            }
        };
        // CreateBucket needs no owner check: on a taken name it fails with
        // BucketAlreadyExists, as in S3.
        if !decision.allowed || !action.starts_with("s3:") || action == "s3:CreateBucket" || resource == "*" {
            return AuthDecision { allowed: decision.allowed, decision };
        }

        let bucket_name = resource.split('/').next().unwrap_or(resource);
        let bucket = match self.bucket(bucket_name).await {
            Ok(bucket) => bucket,
            Err(err) => {
                tracing::error!(bucket = bucket_name, error = %err, "could not load bucket; denying");
                return AuthDecision { allowed: false, decision: evaluate_org([], &request) };
            }
        };
        // Another org's bucket: its policy is neither applied nor shown, and
        // the caller's own org policies cannot grant access to it.
        if let Some(bucket) = &bucket
            && bucket.org != org
        {
            let reason = DecisionReason::OtherOrganization { bucket: bucket_name.to_owned() };
            return AuthDecision { allowed: false, decision: Decision { allowed: false, reason, trace: decision.trace } };
        }
        if decided_by_org_alone(action) {
            return AuthDecision { allowed: true, decision };
        }
        match bucket.and_then(|b| b.policy.clone()) {
            None => AuthDecision { allowed: true, decision },
            Some(policy) => {
                let mut bucket_decision = policy.evaluate(&request);
                let mut trace = decision.trace;
                trace.append(&mut bucket_decision.trace);
                bucket_decision.trace = trace;
                AuthDecision { allowed: bucket_decision.allowed, decision: bucket_decision }
            }
        }
    }

    /// Drops one bucket's cached owner and policy (after a local change).
    pub fn forget_bucket(&self, bucket: &str) {
        self.buckets.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(bucket);
    }

    /// Drops cached policies named by the change feed.
    pub fn apply_changes(&self, changes: &[Change]) {
        let mut policies = self.policies.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for change in changes {
            match change.kind {
                ChangeKind::PolicyChanged => {
                    policies.remove(&change.org_id);
                }
                ChangeKind::BucketChanged => self.forget_bucket(&change.subject),
                _ => {}
            }
        }
    }
}
