//! In-memory cache of each org's parsed WIF configurations, and of which orgs
//! exist, so that a token exchange reads neither from the database.
//!
//! Entries are keyed by org and configuration kind (`oidc`, `saml`) and hold
//! the parsed documents of that kind. A `WifChanged` entry of the store's
//! change feed drops every kind cached for its org. The background poller
//! applies the feed about once a second on every node, and a write through the
//! API drops the org's entries at once on the node that made it.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use keyless_federation::OidcConfig;
use keyless_store::{Change, ChangeKind, Store, StoreError, WifRecord};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// A WIF configuration document type, stored under one `kind`.
pub trait WifDocument: DeserializeOwned + Send + Sync + 'static {
    /// The store's `kind` column for documents of this type.
    const KIND: &'static str;
}

impl WifDocument for OidcConfig {
    const KIND: &'static str = "oidc";
}

/// Parses a stored configuration document. A document that does not parse is
/// a server fault: it was validated when written.
pub(crate) fn parse_record<C: WifDocument>(record: &WifRecord) -> Result<C, ApiError> {
    serde_json::from_str(&record.document).map_err(|err| {
        tracing::error!(config = %record.id, kind = C::KIND, error = %err, "stored WIF configuration does not parse");
        ApiError::internal()
    })
}

type CachedConfigs = Arc<dyn Any + Send + Sync>;

/// Parsed WIF configurations and known orgs, invalidated through the change feed.
pub struct WifCache {
    store: Store,
    /// Orgs known to exist. The store never deletes an org, so a hit stays
    /// true. A miss is not cached, so that tokens naming random orgs cannot
    /// grow this set, and an org created by another node is found at once.
    orgs: RwLock<HashSet<String>>,
    /// `(org, kind)` to an `Arc<Vec<C>>` of the kind's document type `C`.
    configs: RwLock<HashMap<(String, &'static str), CachedConfigs>>,
    /// Incremented by every invalidation, so that a load that read the store
    /// before an invalidation does not cache what it read.
    generation: AtomicU64,
}

impl WifCache {
    pub fn new(store: Store) -> Self {
        WifCache { store, orgs: RwLock::default(), configs: RwLock::default(), generation: AtomicU64::new(0) }
    }

    /// Returns whether the org exists, reading the store only until it is seen once.
    pub async fn org_exists(&self, org: &str) -> Result<bool, StoreError> {
        if self.orgs.read().unwrap_or_else(PoisonError::into_inner).contains(org) {
            return Ok(true);
        }
        let exists = self.store.org_exists(org).await?;
        if exists {
            self.orgs.write().unwrap_or_else(PoisonError::into_inner).insert(org.to_owned());
        }
        Ok(exists)
    }

    /// Returns every configuration of kind `C::KIND` in the org, active or
    /// not, in the store's order (creation time, then id). Call it only for an
    /// org that `org_exists` found, because every org asked for stays cached.
    pub(crate) async fn configs<C: WifDocument>(&self, org: &str) -> Result<Arc<Vec<C>>, ApiError> {
        let key = (org.to_owned(), C::KIND);
        if let Some(cached) = self.configs.read().unwrap_or_else(PoisonError::into_inner).get(&key)
            && let Ok(configs) = cached.clone().downcast::<Vec<C>>()
        {
            return Ok(configs);
        }

        let generation = self.generation.load(Ordering::Acquire);
        let mut parsed = Vec::new();
        for record in self.store.list_wif(org, C::KIND).await? {
            parsed.push(parse_record::<C>(&record)?);
        }
        let parsed = Arc::new(parsed);

        // The check and the insert happen under the write lock that
        // `forget_org` also takes, so a concurrent invalidation either comes
        // first (and this load is not cached) or removes what was cached.
        let mut configs = self.configs.write().unwrap_or_else(PoisonError::into_inner);
        if self.generation.load(Ordering::Acquire) == generation {
            configs.insert(key, parsed.clone());
        }
        Ok(parsed)
    }

    /// Drops every configuration kind cached for `org`.
    pub fn forget_org(&self, org: &str) {
        let mut configs = self.configs.write().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        configs.retain(|(cached_org, _), _| cached_org != org);
    }

    /// Drops what the change feed reports as changed.
    pub fn apply_changes(&self, changes: &[Change]) {
        for change in changes {
            if change.kind == ChangeKind::WifChanged {
                self.forget_org(&change.org_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(org: &str, id: &str, name: &str, issuer: &str) -> WifRecord {
        let document = serde_json::json!({
            "id": id,
            "orgId": org,
            "name": name,
            "issuerUrl": issuer,
            "audiences": ["aud"],
            "active": true,
            "leewaySeconds": 60,
            "minDurationSeconds": 900,
            "maxDurationSeconds": 43200,
            "defaultDurationSeconds": 3600,
            "createdAt": "2026-01-01T00:00:00Z",
            "updatedAt": "2026-01-01T00:00:00Z",
        });
        WifRecord {
            id: id.into(),
            org_id: org.into(),
            kind: "oidc".into(),
            name: name.into(),
            document: document.to_string(),
            created_at: 1,
            updated_at: 1,
        }
    }

    async fn open_store(name: &str) -> Store {
        let dir = std::env::temp_dir().join(format!("keyless-wif-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).await.expect("open store");
        store.ensure_org("default").await.expect("create org");
        store
    }

    fn issuers(configs: &[OidcConfig]) -> Vec<&str> {
        configs.iter().map(|c| c.issuer_url.as_str()).collect()
    }

    #[tokio::test]
    async fn cached_configs_kept_until_feed_change() {
        let store = open_store("feed").await;
        let cache = WifCache::new(store.clone());
        store.insert_wif(&record("default", "c1", "one", "https://a.example")).await.expect("insert c1");
        assert_eq!(issuers(&cache.configs::<OidcConfig>("default").await.expect("load")), ["https://a.example"]);

        // A write that the cache has not been notified of stays invisible...
        store.insert_wif(&record("default", "c2", "two", "https://b.example")).await.expect("insert c2");
        assert_eq!(issuers(&cache.configs::<OidcConfig>("default").await.expect("cached")), ["https://a.example"]);

        // ...until the change feed entry for it is applied.
        let changes = store.changes_since(0, 0).await.expect("read feed");
        cache.apply_changes(&changes);
        assert_eq!(issuers(&cache.configs::<OidcConfig>("default").await.expect("reload")), ["https://a.example", "https://b.example"]);
    }

    #[tokio::test]
    async fn change_in_one_org_keeps_other_orgs_cached() {
        let store = open_store("orgs").await;
        store.ensure_org("other").await.expect("create org");
        let cache = WifCache::new(store.clone());
        store.insert_wif(&record("other", "o1", "one", "https://o.example")).await.expect("insert o1");
        assert_eq!(cache.configs::<OidcConfig>("default").await.expect("load default").len(), 0);
        assert_eq!(cache.configs::<OidcConfig>("other").await.expect("load other").len(), 1);

        store.insert_wif(&record("default", "d1", "one", "https://d.example")).await.expect("insert d1");
        store.delete_wif("other", "oidc", "o1").await.expect("delete o1");
        cache.forget_org("default");
        assert_eq!(cache.configs::<OidcConfig>("default").await.expect("reload default").len(), 1);
        assert_eq!(cache.configs::<OidcConfig>("other").await.expect("cached other").len(), 1);
    }

    #[tokio::test]
    async fn org_existence_is_cached_only_when_found() {
        let store = open_store("exists").await;
        let cache = WifCache::new(store.clone());
        assert!(cache.org_exists("default").await.expect("query"));
        assert!(!cache.org_exists("later").await.expect("query"));
        store.ensure_org("later").await.expect("create org");
        assert!(cache.org_exists("later").await.expect("query"));
    }
}
