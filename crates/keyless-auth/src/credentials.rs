//! Access keys, API tokens and the revocation state that applies to them.
//!
//! Key id formats: static keys start with `KL`, temporary keys with `KT`,
//! followed by 18 characters of base32; secret keys are 40 characters of
//! base64url. API tokens start with `kl_` and are stored as SHA-256 hashes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use aws_lc_rs::{digest, hmac};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use keyless_store::{AccessKeyRecord, ApiTokenRecord, ChangeKind, KeyStatus, Store, StoreError, now_millis};

use crate::master::{MasterKey, Sealer};
use crate::secret::Secret;
use crate::session::{self, SessionClaims, SessionError};

const STATIC_PREFIX: &str = "KL";
const TEMPORARY_PREFIX: &str = "KT";
const API_TOKEN_PREFIX: &str = "kl_";
/// Maximum temporary credential lifetime, and so how far back the change feed
/// is replayed at start to rebuild the revocation state.
pub const MAX_SESSION_SECONDS: i64 = 12 * 3600;

/// Reason a key or token was rejected. Each variant maps to one S3/API error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the access key id does not exist")]
    UnknownKey,
    #[error("the access key has expired")]
    Expired,
    #[error("the access key has been revoked")]
    Revoked,
    #[error("the principal of this access key is suspended")]
    Suspended,
    #[error("temporary credentials need their session token in X-Amz-Security-Token")]
    MissingSessionToken,
    #[error("a session token was sent with a static access key")]
    UnexpectedSessionToken,
    #[error("{0}")]
    Session(#[from] SessionError),
    #[error("the API token is invalid")]
    UnknownApiToken,
    #[error("internal error")]
    Internal,
}

impl From<StoreError> for KeyError {
    fn from(err: StoreError) -> Self {
        tracing::error!(error = %err, "credential lookup failed");
        KeyError::Internal
    }
}

/// The caller of a request, after its credential was verified.
#[derive(Debug, Clone)]
pub struct Caller {
    pub org: String,
    pub principal: String,
    pub kind: CallerKind,
}

#[derive(Debug, Clone)]
pub enum CallerKind {
    ApiToken { token_id: String },
    StaticKey { access_key_id: String },
    Temporary { access_key_id: String, session: Box<SessionClaims> },
}

impl Caller {
    pub fn access_key_id(&self) -> Option<&str> {
        match &self.kind {
            CallerKind::StaticKey { access_key_id } | CallerKind::Temporary { access_key_id, .. } => Some(access_key_id),
            CallerKind::ApiToken { .. } => None,
        }
    }

    pub fn session(&self) -> Option<&SessionClaims> {
        match &self.kind {
            CallerKind::Temporary { session, .. } => Some(session),
            _ => None,
        }
    }
}

/// A freshly minted key: the only time its secret is available.
#[derive(Debug)]
pub struct MintedKey {
    pub access_key_id: String,
    pub secret_key: Secret,
    pub session_token: Option<Secret>,
    pub principal: String,
    /// Unix seconds; `None` for a permanent static key.
    pub expires_at: Option<i64>,
}

/// A static key without its secret, as listed by the API.
#[derive(Debug, Clone)]
pub struct StaticKeyInfo {
    pub record: AccessKeyRecord,
}

#[derive(Clone)]
struct StaticEntry {
    record: AccessKeyRecord,
    secret: Secret,
}

#[derive(Default)]
struct Revocations {
    /// `(org, access key id)` of revoked keys. The org is part of the entry so
    /// that a revocation recorded by one org never applies to another org's key.
    keys: HashSet<(String, String)>,
    /// `(org, principal)` → time of the revocation, Unix milliseconds.
    principals: HashMap<(String, String), i64>,
    suspended: HashSet<(String, String)>,
    /// WIF configuration id → time it was deactivated or deleted.
    configs: HashMap<String, i64>,
}

pub struct Credentials {
    store: Store,
    secret_sealer: Sealer,
    session_sealer: Sealer,
    temporary_secret_key: hmac::Key,
    static_keys: RwLock<HashMap<String, StaticEntry>>,
    api_tokens: RwLock<HashMap<String, ApiTokenRecord>>,
    revocations: RwLock<Revocations>,
    last_change: std::sync::atomic::AtomicI64,
}

impl Credentials {
    pub fn new(store: Store, master: &MasterKey) -> Self {
        Credentials {
            store,
            secret_sealer: Sealer::new(&master.derive("static-secret-seal")),
            session_sealer: Sealer::new(&master.derive("session-token-seal")),
            temporary_secret_key: hmac::Key::new(hmac::HMAC_SHA256, master.derive("temporary-secret").as_ref()),
            static_keys: RwLock::default(),
            api_tokens: RwLock::default(),
            revocations: RwLock::default(),
            last_change: std::sync::atomic::AtomicI64::new(0),
        }
    }

    // ---- minting ----

    /// Creates a static key for `principal`; `duration_seconds` 0 means permanent.
    pub async fn mint_static(
        &self,
        org: &str,
        principal: &str,
        duration_seconds: u64,
        attributes: BTreeMap<String, String>,
    ) -> Result<MintedKey, KeyError> {
        let access_key_id = format!("{STATIC_PREFIX}{}", random_base32(18));
        let secret = Secret::new(random_base64(30));
        let now = now_millis();
        let expires_at = (duration_seconds > 0).then(|| now + (duration_seconds as i64).saturating_mul(1000));
        let record = AccessKeyRecord {
            access_key_id: access_key_id.clone(),
            org_id: org.to_owned(),
            principal: principal.to_owned(),
            secret_sealed: self.secret_sealer.seal(secret.expose().as_bytes(), access_key_id.as_bytes()),
            created_at: now,
            expires_at,
            status: KeyStatus::Active,
            attributes,
        };
        self.store.insert_access_key(&record).await?;
        Ok(MintedKey {
            access_key_id,
            secret_key: secret,
            session_token: None,
            principal: principal.to_owned(),
            expires_at: expires_at.map(|ms| ms / 1000),
        })
    }

    /// Mints temporary credentials. Nothing is stored: the session token carries
    /// the session and the secret is derived from the key id.
    pub fn mint_temporary(&self, mut claims: SessionClaims) -> MintedKey {
        let access_key_id = format!("{TEMPORARY_PREFIX}{}", random_base32(18));
        claims.ak = access_key_id.clone();
        let token = session::seal(&self.session_sealer, &claims);
        MintedKey {
            secret_key: self.temporary_secret(&access_key_id),
            access_key_id,
            session_token: Some(Secret::new(token)),
            principal: claims.principal.clone(),
            expires_at: Some(claims.exp),
        }
    }

    fn temporary_secret(&self, access_key_id: &str) -> Secret {
        let tag = hmac::sign(&self.temporary_secret_key, access_key_id.as_bytes());
        let mut encoded = URL_SAFE_NO_PAD.encode(tag.as_ref());
        encoded.truncate(40);
        Secret::new(encoded)
    }

    pub fn is_temporary(access_key_id: &str) -> bool {
        access_key_id.starts_with(TEMPORARY_PREFIX)
    }

    // ---- verification ----

    /// Returns the secret key SigV4 verification needs. Temporary keys need no
    /// database read; static keys are read once and then cached.
    pub async fn secret_for(&self, access_key_id: &str) -> Result<Secret, KeyError> {
        if Self::is_temporary(access_key_id) {
            if access_key_id.len() != TEMPORARY_PREFIX.len() + 18 {
                return Err(KeyError::UnknownKey);
            }
            return Ok(self.temporary_secret(access_key_id));
        }
        Ok(self.static_entry(access_key_id).await?.secret)
    }

    async fn static_entry(&self, access_key_id: &str) -> Result<StaticEntry, KeyError> {
        if !access_key_id.starts_with(STATIC_PREFIX) || access_key_id.len() > 64 {
            return Err(KeyError::UnknownKey);
        }
        if let Some(entry) = read(&self.static_keys).get(access_key_id) {
            return Ok(entry.clone());
        }
        let record = self.store.access_key(access_key_id).await?.ok_or(KeyError::UnknownKey)?;
        let plain = self.secret_sealer.open(&record.secret_sealed, access_key_id.as_bytes()).map_err(|_| {
            tracing::error!(access_key_id, "stored secret key does not open with this master key");
            KeyError::Internal
        })?;
        let secret = Secret::new(String::from_utf8(plain).map_err(|_| KeyError::Internal)?);
        let entry = StaticEntry { record, secret };
        write(&self.static_keys).insert(access_key_id.to_owned(), entry.clone());
        Ok(entry)
    }

    /// Decides who a request with a verified signature acts as, applying
    /// expiry, revocation and suspension. `session_token` is the value of
    /// `X-Amz-Security-Token`, which the signature covered.
    pub async fn caller_for_key(&self, access_key_id: &str, session_token: Option<&str>) -> Result<Caller, KeyError> {
        let now_ms = now_millis();
        if Self::is_temporary(access_key_id) {
            let token = session_token.ok_or(KeyError::MissingSessionToken)?;
            let claims = session::open(&self.session_sealer, token, access_key_id, now_ms / 1000)?;
            self.check_session_not_revoked(&claims)?;
            return Ok(Caller {
                org: claims.org.clone(),
                principal: claims.principal.clone(),
                kind: CallerKind::Temporary { access_key_id: access_key_id.to_owned(), session: Box::new(claims) },
            });
        }

        if session_token.is_some() {
            return Err(KeyError::UnexpectedSessionToken);
        }
        let entry = self.static_entry(access_key_id).await?;
        let record = &entry.record;
        match record.status {
            KeyStatus::Active => {}
            KeyStatus::Revoked => return Err(KeyError::Revoked),
            KeyStatus::Suspended => return Err(KeyError::Suspended),
        }
        if record.expires_at.is_some_and(|exp| now_ms >= exp) {
            return Err(KeyError::Expired);
        }
        let revocations = read(&self.revocations);
        if revocations.keys.contains(&(record.org_id.clone(), access_key_id.to_owned())) {
            return Err(KeyError::Revoked);
        }
        if revocations.suspended.contains(&(record.org_id.clone(), record.principal.clone())) {
            return Err(KeyError::Suspended);
        }
        Ok(Caller {
            org: record.org_id.clone(),
            principal: record.principal.clone(),
            kind: CallerKind::StaticKey { access_key_id: access_key_id.to_owned() },
        })
    }

    fn check_session_not_revoked(&self, claims: &SessionClaims) -> Result<(), KeyError> {
        let revocations = read(&self.revocations);
        let principal = (claims.org.clone(), claims.principal.clone());
        let issued_ms = claims.iat.saturating_mul(1000);
        if revocations.keys.contains(&(claims.org.clone(), claims.ak.clone())) {
            return Err(KeyError::Revoked);
        }
        if revocations.principals.get(&principal).is_some_and(|at| issued_ms <= *at) {
            return Err(KeyError::Revoked);
        }
        if revocations.configs.get(&claims.cfg).is_some_and(|at| issued_ms <= *at) {
            return Err(KeyError::Revoked);
        }
        if revocations.suspended.contains(&principal) {
            return Err(KeyError::Suspended);
        }
        Ok(())
    }

    /// Returns whether a principal is currently suspended (checked before minting).
    pub fn is_suspended(&self, org: &str, principal: &str) -> bool {
        read(&self.revocations).suspended.contains(&(org.to_owned(), principal.to_owned()))
    }

    // ---- API tokens ----

    /// Creates an API token for `user/<name>`; returns the record and the token.
    pub async fn mint_api_token(&self, org: &str, name: &str) -> Result<(ApiTokenRecord, Secret), KeyError> {
        let token = Secret::new(format!("{API_TOKEN_PREFIX}{}", random_base64(32)));
        let record = ApiTokenRecord {
            id: uuid_like(),
            org_id: org.to_owned(),
            name: name.to_owned(),
            token_hash: hash_token(token.expose()),
            created_at: now_millis(),
        };
        self.store.insert_api_token(&record).await?;
        Ok((record, token))
    }

    pub async fn caller_for_api_token(&self, token: &str) -> Result<Caller, KeyError> {
        if !token.starts_with(API_TOKEN_PREFIX) || token.len() > 256 {
            return Err(KeyError::UnknownApiToken);
        }
        let hash = hash_token(token);
        let cached = read(&self.api_tokens).get(&hash).cloned();
        let record = match cached {
            Some(record) => record,
            None => {
                let record = self.store.api_token_by_hash(&hash).await?.ok_or(KeyError::UnknownApiToken)?;
                write(&self.api_tokens).insert(hash, record.clone());
                record
            }
        };
        if self.is_suspended(&record.org_id, &record.principal()) {
            return Err(KeyError::Suspended);
        }
        Ok(Caller { org: record.org_id.clone(), principal: record.principal(), kind: CallerKind::ApiToken { token_id: record.id } })
    }

    // ---- change feed ----

    /// Rebuilds the revocation state from the store: suspended principals, and
    /// every change recent enough to matter for a live temporary credential.
    pub async fn load_revocations(&self) -> Result<(), StoreError> {
        let suspended = self.store.suspended_principals().await?;
        write(&self.revocations).suspended = suspended.into_iter().collect();
        let since = now_millis() - MAX_SESSION_SECONDS * 1000 - 60_000;
        let changes = self.store.changes_since(0, since).await?;
        let latest = self.store.latest_change_seq().await?;
        for change in &changes {
            self.apply_change(change).await;
        }
        self.last_change.store(latest, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Reads new changes from the feed and applies them; returns them so that
    /// other caches can react too.
    pub async fn poll_changes(&self) -> Result<Vec<keyless_store::Change>, StoreError> {
        let after = self.last_change.load(std::sync::atomic::Ordering::SeqCst);
        let changes = self.store.changes_since(after, 0).await?;
        for change in &changes {
            self.apply_change(change).await;
            self.last_change.store(change.seq, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(changes)
    }

    async fn apply_change(&self, change: &keyless_store::Change) {
        let principal = (change.org_id.clone(), change.subject.clone());
        match change.kind {
            ChangeKind::KeyRevoked => {
                write(&self.revocations).keys.insert((change.org_id.clone(), change.subject.clone()));
                write(&self.static_keys).remove(&change.subject);
            }
            ChangeKind::PrincipalRevoked => {
                write(&self.revocations).principals.insert(principal, change.at);
                write(&self.static_keys).retain(|_, e| e.record.principal != change.subject);
            }
            ChangeKind::PrincipalSuspended => {
                write(&self.revocations).suspended.insert(principal);
                write(&self.static_keys).retain(|_, e| e.record.principal != change.subject);
            }
            ChangeKind::PrincipalReactivated => {
                write(&self.revocations).suspended.remove(&principal);
                write(&self.static_keys).retain(|_, e| e.record.principal != change.subject);
            }
            ChangeKind::TokenRevoked => write(&self.api_tokens).retain(|_, t| t.id != change.subject),
            ChangeKind::WifChanged => {
                let active = match self.store.wif(&change.subject).await {
                    Ok(Some(record)) => serde_json::from_str::<serde_json::Value>(&record.document)
                        .ok()
                        .and_then(|doc| doc.get("active").and_then(serde_json::Value::as_bool))
                        .unwrap_or(false),
                    Ok(None) => false,
                    Err(err) => {
                        tracing::warn!(error = %err, config = %change.subject, "could not read WIF configuration; treating it as inactive");
                        false
                    }
                };
                if !active {
                    write(&self.revocations).configs.insert(change.subject.clone(), change.at);
                }
            }
            ChangeKind::PolicyChanged | ChangeKind::BucketChanged => {}
        }
    }
}

/// Polls the change feed every `interval` and hands each batch to `on_changes`.
pub fn spawn_change_poller(
    credentials: Arc<Credentials>,
    interval: Duration,
    on_changes: impl Fn(&[keyless_store::Change]) + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures = 0u32;
        loop {
            ticker.tick().await;
            match credentials.poll_changes().await {
                Ok(changes) => {
                    failures = 0;
                    if !changes.is_empty() {
                        on_changes(&changes);
                    }
                }
                Err(err) => {
                    failures += 1;
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(error = %err, failures, "change feed poll failed; revocations may be late");
                    }
                }
            }
        }
    })
}

pub fn hash_token(token: &str) -> String {
    hex::encode(digest::digest(&digest::SHA256, token.as_bytes()))
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut buf).unwrap_or_else(|_| panic!("system random source failed"));
    buf
}

fn random_base64(bytes: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(bytes))
}

fn random_base32(chars: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    random_bytes(chars).iter().map(|b| ALPHABET[(b & 31) as usize] as char).collect()
}

fn uuid_like() -> String {
    hex::encode(random_bytes(16))
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn credentials() -> Credentials {
        let dir = std::env::temp_dir().join(format!("keyless-auth-test-{}", uuid_like()));
        let store = Store::open(&dir).await.unwrap();
        store.ensure_org("default").await.unwrap();
        Credentials::new(store, &MasterKey::insecure_fixed_for_tests(9))
    }

    fn claims(exp: i64) -> SessionClaims {
        SessionClaims {
            v: session::SESSION_FORMAT,
            ak: String::new(),
            org: "default".into(),
            principal: "role/iss:sub".into(),
            sid: "sid".into(),
            cfg: "cfg".into(),
            iat: now_millis() / 1000,
            exp,
            policy: None,
            attrs: BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn temporary_key_needs_its_token() {
        let creds = credentials().await;
        let minted = creds.mint_temporary(claims(now_millis() / 1000 + 600));
        let token = minted.session_token.unwrap();
        let caller = creds.caller_for_key(&minted.access_key_id, Some(token.expose())).await.unwrap();
        assert_eq!(caller.principal, "role/iss:sub");
        assert_eq!(creds.caller_for_key(&minted.access_key_id, None).await.unwrap_err(), KeyError::MissingSessionToken);
        let other = creds.mint_temporary(claims(now_millis() / 1000 + 600));
        assert_eq!(
            creds.caller_for_key(&other.access_key_id, Some(token.expose())).await.unwrap_err(),
            KeyError::Session(SessionError::Invalid)
        );
    }

    #[tokio::test]
    async fn temporary_secret_is_stable_and_unique() {
        let creds = credentials().await;
        let minted = creds.mint_temporary(claims(now_millis() / 1000 + 600));
        assert_eq!(creds.secret_for(&minted.access_key_id).await.unwrap(), minted.secret_key);
        let other = creds.mint_temporary(claims(now_millis() / 1000 + 600));
        assert_ne!(other.secret_key, minted.secret_key);
    }

    #[tokio::test]
    async fn revoked_static_key_is_rejected_after_poll() {
        let creds = credentials().await;
        let minted = creds.mint_static("default", "user/a", 0, BTreeMap::new()).await.unwrap();
        assert!(creds.caller_for_key(&minted.access_key_id, None).await.is_ok());
        creds.store.revoke_access_key("default", &minted.access_key_id).await.unwrap();
        creds.poll_changes().await.unwrap();
        assert_eq!(creds.caller_for_key(&minted.access_key_id, None).await.unwrap_err(), KeyError::Revoked);
    }

    #[tokio::test]
    async fn key_revocation_recorded_by_another_org_is_ignored() {
        let creds = credentials().await;
        creds.store.ensure_org("other").await.unwrap();
        let static_key = creds.mint_static("default", "user/a", 0, BTreeMap::new()).await.unwrap();
        let temporary = creds.mint_temporary(claims(now_millis() / 1000 + 600));
        let token = temporary.session_token.unwrap();

        creds.store.revoke_access_key("other", &static_key.access_key_id).await.unwrap();
        creds.store.revoke_access_key("other", &temporary.access_key_id).await.unwrap();
        creds.poll_changes().await.unwrap();

        assert!(creds.caller_for_key(&static_key.access_key_id, None).await.is_ok());
        assert!(creds.caller_for_key(&temporary.access_key_id, Some(token.expose())).await.is_ok());
    }

    #[tokio::test]
    async fn revoked_temporary_key_is_rejected_after_poll() {
        let creds = credentials().await;
        let temporary = creds.mint_temporary(claims(now_millis() / 1000 + 600));
        let token = temporary.session_token.unwrap();

        creds.store.revoke_access_key("default", &temporary.access_key_id).await.unwrap();
        creds.poll_changes().await.unwrap();

        assert_eq!(creds.caller_for_key(&temporary.access_key_id, Some(token.expose())).await.unwrap_err(), KeyError::Revoked);
    }

    #[tokio::test]
    async fn revoked_principal_invalidates_temporary_keys() {
        let creds = credentials().await;
        let mut c = claims(now_millis() / 1000 + 600);
        c.iat -= 1;
        let minted = creds.mint_temporary(c);
        let token = minted.session_token.unwrap();
        creds.store.record_principal_change("default", "role/iss:sub", ChangeKind::PrincipalRevoked).await.unwrap();
        creds.poll_changes().await.unwrap();
        assert_eq!(creds.caller_for_key(&minted.access_key_id, Some(token.expose())).await.unwrap_err(), KeyError::Revoked);
    }

    #[tokio::test]
    async fn api_token_roundtrip() {
        let creds = credentials().await;
        let (record, token) = creds.mint_api_token("default", "alice").await.unwrap();
        let caller = creds.caller_for_api_token(token.expose()).await.unwrap();
        assert_eq!(caller.principal, "user/alice");
        assert_eq!(creds.caller_for_api_token("kl_wrong").await.unwrap_err(), KeyError::UnknownApiToken);
        creds.store.delete_api_token("default", &record.id).await.unwrap();
        creds.poll_changes().await.unwrap();
        assert_eq!(creds.caller_for_api_token(token.expose()).await.unwrap_err(), KeyError::UnknownApiToken);
    }
}
