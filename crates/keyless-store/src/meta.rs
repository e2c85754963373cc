//! The metadata database. SQLite in WAL mode with `synchronous = FULL`, so a
//! committed row survives a crash. All writes go through one connection, which
//! serializes them as SQLite would anyway; reads use a separate pool.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Row};

use crate::records::*;
use crate::{BlobRef, BlobStore, Result, StoreError, now_millis};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE orgs (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);
CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE access_keys (
    access_key_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    secret_sealed BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    status TEXT NOT NULL,
    attributes TEXT NOT NULL
);
CREATE INDEX access_keys_by_principal ON access_keys (org_id, principal);
CREATE TABLE principal_status (
    org_id TEXT NOT NULL,
    principal TEXT NOT NULL,
    status TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, principal)
);
CREATE TABLE org_policies (
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, name)
);
CREATE TABLE wif_configs (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    document TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (org_id, kind, name)
);
CREATE TABLE buckets (
    name TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    policy TEXT
);
CREATE TABLE objects (
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    blobs TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    last_modified INTEGER NOT NULL,
    meta TEXT NOT NULL,
    PRIMARY KEY (bucket, key)
) WITHOUT ROWID;
CREATE TABLE uploads (
    upload_id TEXT PRIMARY KEY,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    initiator TEXT NOT NULL,
    meta TEXT NOT NULL
);
CREATE INDEX uploads_by_key ON uploads (bucket, key, upload_id);
CREATE TABLE upload_parts (
    upload_id TEXT NOT NULL,
    part_number INTEGER NOT NULL,
    blob_id TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    last_modified INTEGER NOT NULL,
    checksums TEXT NOT NULL,
    PRIMARY KEY (upload_id, part_number)
);
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    org_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL
);
"#, r#"
CREATE TABLE org_settings (
    org_id TEXT PRIMARY KEY,
    audit_enabled INTEGER NOT NULL DEFAULT 0
);
ALTER TABLE buckets ADD COLUMN audit_enabled INTEGER NOT NULL DEFAULT 0;
CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    org_id TEXT NOT NULL,
    action TEXT NOT NULL,
    decision TEXT NOT NULL,
    principal TEXT,
    access_key_id TEXT,
    session_id TEXT,
    bucket TEXT,
    key TEXT,
    request_id TEXT,
    event TEXT NOT NULL
);
CREATE INDEX audit_events_by_org ON audit_events (org_id, seq);
CREATE INDEX audit_events_by_session ON audit_events (session_id, seq);
CREATE INDEX audit_events_by_request ON audit_events (request_id);
CREATE TABLE audit_batches (
    org_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    batch INTEGER NOT NULL,
    object_key TEXT NOT NULL,
    hash TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (org_id, stream, batch)
);
CREATE TABLE audit_state (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"#, r#"
-- SAML assertion ids already exchanged, kept until the assertion expires so that
-- every node sharing this database rejects a replay.
CREATE TABLE saml_assertions (
    org_id TEXT NOT NULL,
    assertion_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, assertion_id)
);
CREATE INDEX saml_assertions_by_expiry ON saml_assertions (expires_at);
"#];

/// Audit index rows per INSERT statement. With 13 columns, 256 rows bind 3,328
/// parameters, well under SQLite's default limit of 32,766 (since 3.32).
const AUDIT_ROWS_PER_INSERT: usize = 256;

/// The metadata database and the blob store beside it.
#[derive(Clone)]
pub struct Store {
    write: SqlitePool,
    read: SqlitePool,
    pub blobs: BlobStore,
}

impl Store {
    /// Opens (creating if needed) `<data_dir>/meta.db` and `<data_dir>/blobs`,
    /// applies migrations and sweeps orphaned blobs.
    pub async fn open(data_dir: &Path) -> Result<Self> {
        tokio::fs::create_dir_all(data_dir).await?;
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join("meta.db"))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let write = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        migrate(&write).await?;
        let read = SqlitePoolOptions::new().max_connections(4).connect_with(options.read_only(true)).await?;
        let blobs = BlobStore::open(&data_dir.join("data")).await?;
        let store = Store { write, read, blobs };

        let referenced = store.referenced_blobs().await?;
        let removed = store.blobs.sweep_orphans(&referenced).await?;
        if removed > 0 {
            tracing::info!(removed, "removed orphaned blobs left by an interrupted write");
        }
        Ok(store)
    }

    async fn referenced_blobs(&self) -> Result<HashSet<String>> {
        let mut ids = HashSet::new();
        for row in sqlx::query("SELECT blobs FROM objects").fetch_all(&self.read).await? {
            let blobs: Vec<BlobRef> = serde_json::from_str(row.try_get::<&str, _>(0)?)?;
            ids.extend(blobs.into_iter().map(|b| b.id));
        }
        for row in sqlx::query("SELECT blob_id FROM upload_parts").fetch_all(&self.read).await? {
            ids.insert(row.try_get(0)?);
        }
        Ok(ids)
    }

    // ---- organizations ----

    /// Creates the org if it does not exist; returns whether it was created.
    pub async fn ensure_org(&self, org_id: &str) -> Result<bool> {
        let done = sqlx::query("INSERT OR IGNORE INTO orgs (id, created_at) VALUES (?, ?)")
            .bind(org_id)
            .bind(now_millis())
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn org_exists(&self, org_id: &str) -> Result<bool> {
        Ok(sqlx::query("SELECT 1 FROM orgs WHERE id = ?").bind(org_id).fetch_optional(&self.read).await?.is_some())
    }

    // ---- SAML replay cache ----

    /// Records that the assertion `assertion_id` was exchanged and returns
    /// whether this is its first use. The id is kept until `expires_at` (unix
    /// milliseconds); expired ids are dropped on the way.
    pub async fn claim_saml_assertion(&self, org_id: &str, assertion_id: &str, expires_at: i64) -> Result<bool> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM saml_assertions WHERE expires_at < ?").bind(now_millis()).execute(&mut *tx).await?;
        let done = sqlx::query("INSERT OR IGNORE INTO saml_assertions (org_id, assertion_id, expires_at) VALUES (?, ?, ?)")
            .bind(org_id)
            .bind(assertion_id)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// Returns whether the assertion `assertion_id` was already exchanged and
    /// is still kept, without claiming it.
    pub async fn saml_assertion_used(&self, org_id: &str, assertion_id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 FROM saml_assertions WHERE org_id = ? AND assertion_id = ? AND expires_at >= ?")
            .bind(org_id)
            .bind(assertion_id)
            .bind(now_millis())
            .fetch_optional(&self.read)
            .await?;
        Ok(row.is_some())
    }

    // ---- API tokens ----

    pub async fn insert_api_token(&self, token: &ApiTokenRecord) -> Result<()> {
        sqlx::query("INSERT INTO api_tokens (id, org_id, name, token_hash, created_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&token.id)
            .bind(&token.org_id)
            .bind(&token.name)
            .bind(&token.token_hash)
            .bind(token.created_at)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiTokenRecord>> {
        let row = sqlx::query("SELECT id, org_id, name, token_hash, created_at FROM api_tokens WHERE token_hash = ?")
            .bind(token_hash)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| api_token_from_row(&r)).transpose()
    }

    pub async fn list_api_tokens(&self, org_id: &str) -> Result<Vec<ApiTokenRecord>> {
        let rows = sqlx::query("SELECT id, org_id, name, token_hash, created_at FROM api_tokens WHERE org_id = ? ORDER BY created_at")
            .bind(org_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(api_token_from_row).collect()
    }

    pub async fn delete_api_token(&self, org_id: &str, id: &str) -> Result<bool> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query("DELETE FROM api_tokens WHERE org_id = ? AND id = ?").bind(org_id).bind(id).execute(&mut *tx).await?;
        if done.rows_affected() > 0 {
            insert_change(&mut tx, org_id, ChangeKind::TokenRevoked, id).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    // ---- access keys ----

    pub async fn insert_access_key(&self, key: &AccessKeyRecord) -> Result<()> {
        sqlx::query(
            "INSERT INTO access_keys (access_key_id, org_id, principal, secret_sealed, created_at, expires_at, status, attributes) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.access_key_id)
        .bind(&key.org_id)
        .bind(&key.principal)
        .bind(&key.secret_sealed)
        .bind(key.created_at)
        .bind(key.expires_at)
        .bind(key.status.as_str())
        .bind(serde_json::to_string(&key.attributes)?)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn access_key(&self, access_key_id: &str) -> Result<Option<AccessKeyRecord>> {
        let row = sqlx::query(AssertSqlSafe(format!("{ACCESS_KEY_COLUMNS} WHERE access_key_id = ?")))
            .bind(access_key_id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| access_key_from_row(&r)).transpose()
    }

    /// Lists an org's static keys, optionally of one status, ordered by creation.
    pub async fn list_access_keys(&self, org_id: &str, status: Option<KeyStatus>, offset: u32, limit: u32) -> Result<Vec<AccessKeyRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{ACCESS_KEY_COLUMNS} WHERE org_id = ? AND (? IS NULL OR status = ?) ORDER BY created_at, access_key_id LIMIT ? OFFSET ?"
        )))
        .bind(org_id)
        .bind(status.map(KeyStatus::as_str))
        .bind(status.map(KeyStatus::as_str))
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(access_key_from_row).collect()
    }

    /// Revokes one key. Temporary keys have no row; the change feed entry alone
    /// revokes them, so it is recorded whether or not a row exists.
    pub async fn revoke_access_key(&self, org_id: &str, access_key_id: &str) -> Result<bool> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query("UPDATE access_keys SET status = 'revoked' WHERE org_id = ? AND access_key_id = ?")
            .bind(org_id)
            .bind(access_key_id)
            .execute(&mut *tx)
            .await?;
        insert_change(&mut tx, org_id, ChangeKind::KeyRevoked, access_key_id).await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    // ---- policies ----

    pub async fn put_policy(&self, org_id: &str, name: &str, document: &str) -> Result<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO org_policies (org_id, name, document, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (org_id, name) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
        )
        .bind(org_id)
        .bind(name)
        .bind(document)
        .bind(now_millis())
        .execute(&mut *tx)
        .await?;
        insert_change(&mut tx, org_id, ChangeKind::PolicyChanged, name).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Returns `(name, document)` pairs of an org's policies, ordered by name.
    pub async fn list_policies(&self, org_id: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT name, document FROM org_policies WHERE org_id = ? ORDER BY name")
            .bind(org_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }

    pub async fn delete_policy(&self, org_id: &str, name: &str) -> Result<bool> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query("DELETE FROM org_policies WHERE org_id = ? AND name = ?").bind(org_id).bind(name).execute(&mut *tx).await?;
        if done.rows_affected() > 0 {
            insert_change(&mut tx, org_id, ChangeKind::PolicyChanged, name).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    // ---- WIF configurations ----

    pub async fn insert_wif(&self, wif: &WifRecord) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query(
            "INSERT INTO wif_configs (id, org_id, kind, name, document, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&wif.id)
        .bind(&wif.org_id)
        .bind(&wif.kind)
        .bind(&wif.name)
        .bind(&wif.document)
        .bind(wif.created_at)
        .bind(wif.updated_at)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("a {} configuration named {:?} already exists in org {:?}", wif.kind, wif.name, wif.org_id)));
        }
        insert_change(&mut tx, &wif.org_id, ChangeKind::WifChanged, &wif.id).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn update_wif(&self, wif: &WifRecord) -> Result<bool> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query("UPDATE wif_configs SET name = ?, document = ?, updated_at = ? WHERE id = ? AND org_id = ? AND kind = ?")
            .bind(&wif.name)
            .bind(&wif.document)
            .bind(wif.updated_at)
            .bind(&wif.id)
            .bind(&wif.org_id)
            .bind(&wif.kind)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() > 0 {
            insert_change(&mut tx, &wif.org_id, ChangeKind::WifChanged, &wif.id).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn list_wif(&self, org_id: &str, kind: &str) -> Result<Vec<WifRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!("{WIF_COLUMNS} WHERE org_id = ? AND kind = ? ORDER BY created_at, id")))
            .bind(org_id)
            .bind(kind)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(wif_from_row).collect()
    }

    pub async fn wif(&self, id: &str) -> Result<Option<WifRecord>> {
        let row = sqlx::query(AssertSqlSafe(format!("{WIF_COLUMNS} WHERE id = ?"))).bind(id).fetch_optional(&self.read).await?;
        row.map(|r| wif_from_row(&r)).transpose()
    }

    pub async fn delete_wif(&self, org_id: &str, kind: &str, id: &str) -> Result<bool> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query("DELETE FROM wif_configs WHERE org_id = ? AND kind = ? AND id = ?")
            .bind(org_id)
            .bind(kind)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() > 0 {
            insert_change(&mut tx, org_id, ChangeKind::WifChanged, id).await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    // ---- principals ----

    /// Sets a principal's status and records the change; `PrincipalRevoked`
    /// also marks every static key of the principal revoked.
    pub async fn record_principal_change(&self, org_id: &str, principal: &str, kind: ChangeKind) -> Result<u64> {
        let mut tx = self.write.begin().await?;
        let affected = match kind {
            ChangeKind::PrincipalRevoked => {
                sqlx::query("UPDATE access_keys SET status = 'revoked' WHERE org_id = ? AND principal = ? AND status != 'revoked'")
                    .bind(org_id)
                    .bind(principal)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            }
            ChangeKind::PrincipalSuspended | ChangeKind::PrincipalReactivated => {
                let status = if kind == ChangeKind::PrincipalSuspended { "suspended" } else { "active" };
                sqlx::query(
                    "INSERT INTO principal_status (org_id, principal, status, updated_at) VALUES (?, ?, ?, ?) \
                     ON CONFLICT (org_id, principal) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at",
                )
                .bind(org_id)
                .bind(principal)
                .bind(status)
                .bind(now_millis())
                .execute(&mut *tx)
                .await?;
                sqlx::query("UPDATE access_keys SET status = ? WHERE org_id = ? AND principal = ? AND status != 'revoked'")
                    .bind(status)
                    .bind(org_id)
                    .bind(principal)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            }
            _ => return Err(StoreError::Conflict(format!("{} is not a principal change", kind.as_str()))),
        };
        insert_change(&mut tx, org_id, kind, principal).await?;
        tx.commit().await?;
        Ok(affected)
    }

    /// Principals currently suspended, as `(org, principal)`.
    pub async fn suspended_principals(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT org_id, principal FROM principal_status WHERE status = 'suspended'").fetch_all(&self.read).await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
    }

    // ---- change feed ----

    /// Returns changes with `seq > after`, oldest first.
    pub async fn changes_since(&self, after: i64, since_millis: i64) -> Result<Vec<Change>> {
        let rows = sqlx::query("SELECT seq, at, org_id, kind, subject FROM changes WHERE seq > ? AND at >= ? ORDER BY seq LIMIT 10000")
            .bind(after)
            .bind(since_millis)
            .fetch_all(&self.read)
            .await?;
        let mut changes = Vec::with_capacity(rows.len());
        for r in rows {
            let kind: String = r.try_get(3)?;
            let kind = ChangeKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("unknown change kind {kind:?}")))?;
            changes.push(Change { seq: r.try_get(0)?, at: r.try_get(1)?, org_id: r.try_get(2)?, kind, subject: r.try_get(4)? });
        }
        Ok(changes)
    }

    pub async fn latest_change_seq(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM changes").fetch_one(&self.read).await?;
        Ok(row.try_get(0)?)
    }

    // ---- buckets ----

    pub async fn create_bucket(&self, name: &str, org_id: &str) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query("INSERT INTO buckets (name, org_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
            .bind(name)
            .bind(org_id)
            .bind(now_millis())
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            let owner: String = sqlx::query("SELECT org_id FROM buckets WHERE name = ?").bind(name).fetch_one(&mut *tx).await?.try_get(0)?;
            return Err(StoreError::Conflict(owner));
        }
        insert_change(&mut tx, org_id, ChangeKind::BucketChanged, name).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn bucket(&self, name: &str) -> Result<Option<BucketRecord>> {
        let row = sqlx::query("SELECT name, org_id, created_at, policy FROM buckets WHERE name = ?").bind(name).fetch_optional(&self.read).await?;
        row.map(|r| bucket_from_row(&r)).transpose()
    }

    pub async fn list_buckets(&self, org_id: &str) -> Result<Vec<BucketRecord>> {
        let rows = sqlx::query("SELECT name, org_id, created_at, policy FROM buckets WHERE org_id = ? ORDER BY name")
            .bind(org_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(bucket_from_row).collect()
    }

    /// Deletes an empty bucket. Fails with `Conflict` if objects or uploads remain.
    pub async fn delete_bucket(&self, name: &str) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let busy = sqlx::query("SELECT 1 FROM objects WHERE bucket = ? UNION ALL SELECT 1 FROM uploads WHERE bucket = ? LIMIT 1")
            .bind(name)
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
        if busy.is_some() {
            return Err(StoreError::Conflict("bucket is not empty".into()));
        }
        let row = sqlx::query("DELETE FROM buckets WHERE name = ? RETURNING org_id").bind(name).fetch_optional(&mut *tx).await?;
        let Some(row) = row else { return Err(StoreError::NotFound) };
        let org_id: String = row.try_get(0)?;
        insert_change(&mut tx, &org_id, ChangeKind::BucketChanged, name).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn set_bucket_policy(&self, name: &str, policy: Option<&str>) -> Result<()> {
        let mut tx = self.write.begin().await?;
        let row = sqlx::query("UPDATE buckets SET policy = ? WHERE name = ? RETURNING org_id").bind(policy).bind(name).fetch_optional(&mut *tx).await?;
        let Some(row) = row else { return Err(StoreError::NotFound) };
        let org_id: String = row.try_get(0)?;
        insert_change(&mut tx, &org_id, ChangeKind::BucketChanged, name).await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- objects ----

    pub async fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
        let row = sqlx::query("SELECT bucket, key, blobs, size, etag, last_modified, meta FROM objects WHERE bucket = ? AND key = ?")
            .bind(bucket)
            .bind(key)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| object_from_row(&r)).transpose()
    }

    /// Inserts or replaces an object and returns the blobs of the replaced
    /// version, which the caller deletes once this returns. Fails with
    /// `NotFound` if the bucket is gone.
    pub async fn put_object(&self, object: &ObjectRecord) -> Result<Vec<BlobRef>> {
        let mut tx = self.write.begin().await?;
        if sqlx::query("SELECT 1 FROM buckets WHERE name = ?").bind(&object.bucket).fetch_optional(&mut *tx).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let old = sqlx::query("SELECT blobs FROM objects WHERE bucket = ? AND key = ?")
            .bind(&object.bucket)
            .bind(&object.key)
            .fetch_optional(&mut *tx)
            .await?;
        let old_blobs: Vec<BlobRef> = match old {
            Some(row) => serde_json::from_str(row.try_get::<&str, _>(0)?)?,
            None => Vec::new(),
        };
        sqlx::query(
            "INSERT INTO objects (bucket, key, blobs, size, etag, last_modified, meta) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (bucket, key) DO UPDATE SET blobs = excluded.blobs, size = excluded.size, etag = excluded.etag, \
             last_modified = excluded.last_modified, meta = excluded.meta",
        )
        .bind(&object.bucket)
        .bind(&object.key)
        .bind(serde_json::to_string(&object.blobs)?)
        .bind(object.size as i64)
        .bind(&object.etag)
        .bind(object.last_modified)
        .bind(serde_json::to_string(&object.meta)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(old_blobs)
    }

    /// Deletes an object and returns its blobs (empty if it did not exist).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<Vec<BlobRef>> {
        let row = sqlx::query("DELETE FROM objects WHERE bucket = ? AND key = ? RETURNING blobs")
            .bind(bucket)
            .bind(key)
            .fetch_optional(&self.write)
            .await?;
        match row {
            Some(row) => Ok(serde_json::from_str(row.try_get::<&str, _>(0)?)?),
            None => Ok(Vec::new()),
        }
    }

    /// Lists up to `limit` objects with keys starting with `prefix` and sorting
    /// after `after`, in key order (byte order, as S3 lists).
    pub async fn list_objects(&self, bucket: &str, prefix: &str, after: &str, limit: u32) -> Result<Vec<ObjectRecord>> {
        let rows = sqlx::query(
            "SELECT bucket, key, blobs, size, etag, last_modified, meta FROM objects \
             WHERE bucket = ? AND key > ? AND substr(key, 1, ?) = ? ORDER BY key LIMIT ?",
        )
        .bind(bucket)
        .bind(after)
        .bind(prefix.chars().count() as i64)
        .bind(prefix)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(object_from_row).collect()
    }

    // ---- multipart uploads ----

    pub async fn create_upload(&self, upload: &UploadRecord) -> Result<()> {
        sqlx::query("INSERT INTO uploads (upload_id, bucket, key, created_at, initiator, meta) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&upload.upload_id)
            .bind(&upload.bucket)
            .bind(&upload.key)
            .bind(upload.created_at)
            .bind(&upload.initiator)
            .bind(serde_json::to_string(&upload.meta)?)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn upload(&self, upload_id: &str) -> Result<Option<UploadRecord>> {
        let row = sqlx::query("SELECT upload_id, bucket, key, created_at, initiator, meta FROM uploads WHERE upload_id = ?")
            .bind(upload_id)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| upload_from_row(&r)).transpose()
    }

    /// Lists uploads of a bucket whose key starts with `prefix`, ordered by key
    /// then upload id, after the given markers.
    pub async fn list_uploads(&self, bucket: &str, prefix: &str, key_marker: &str, upload_id_marker: &str, limit: u32) -> Result<Vec<UploadRecord>> {
        let rows = sqlx::query(
            "SELECT upload_id, bucket, key, created_at, initiator, meta FROM uploads \
             WHERE bucket = ? AND substr(key, 1, ?) = ? AND (key > ? OR (key = ? AND upload_id > ?)) ORDER BY key, upload_id LIMIT ?",
        )
        .bind(bucket)
        .bind(prefix.chars().count() as i64)
        .bind(prefix)
        .bind(key_marker)
        .bind(key_marker)
        .bind(upload_id_marker)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(upload_from_row).collect()
    }

    /// Records a part and returns the blob of the part it replaced, if any.
    /// Fails with `NotFound` if the upload was completed or aborted meanwhile.
    pub async fn put_part(&self, upload_id: &str, part: &PartRecord) -> Result<Option<BlobRef>> {
        let mut tx = self.write.begin().await?;
        if sqlx::query("SELECT 1 FROM uploads WHERE upload_id = ?").bind(upload_id).fetch_optional(&mut *tx).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let old = sqlx::query("SELECT blob_id, size FROM upload_parts WHERE upload_id = ? AND part_number = ?")
            .bind(upload_id)
            .bind(part.part_number)
            .fetch_optional(&mut *tx)
            .await?;
        let old = match old {
            Some(r) => Some(BlobRef { id: r.try_get(0)?, size: r.try_get::<i64, _>(1)? as u64 }),
            None => None,
        };
        sqlx::query(
            "INSERT INTO upload_parts (upload_id, part_number, blob_id, size, etag, last_modified, checksums) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (upload_id, part_number) DO UPDATE SET blob_id = excluded.blob_id, size = excluded.size, \
             etag = excluded.etag, last_modified = excluded.last_modified, checksums = excluded.checksums",
        )
        .bind(upload_id)
        .bind(part.part_number)
        .bind(&part.blob.id)
        .bind(part.blob.size as i64)
        .bind(&part.etag)
        .bind(part.last_modified)
        .bind(serde_json::to_string(&part.checksums)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(old)
    }

    pub async fn list_parts(&self, upload_id: &str, after_part: u32, limit: u32) -> Result<Vec<PartRecord>> {
        let rows = sqlx::query(
            "SELECT part_number, blob_id, size, etag, last_modified, checksums FROM upload_parts \
             WHERE upload_id = ? AND part_number > ? ORDER BY part_number LIMIT ?",
        )
        .bind(upload_id)
        .bind(after_part)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(part_from_row).collect()
    }

    /// Completes an upload atomically: the object row replaces any previous
    /// version, the upload and its part rows disappear. Returns the blobs no
    /// longer referenced (the old object's and the unused parts').
    pub async fn complete_upload(&self, upload_id: &str, object: &ObjectRecord) -> Result<Vec<BlobRef>> {
        let mut tx = self.write.begin().await?;
        if sqlx::query("SELECT 1 FROM uploads WHERE upload_id = ?").bind(upload_id).fetch_optional(&mut *tx).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let used: HashSet<&str> = object.blobs.iter().map(|b| b.id.as_str()).collect();
        let mut garbage = Vec::new();
        for r in sqlx::query("SELECT blob_id, size FROM upload_parts WHERE upload_id = ?").bind(upload_id).fetch_all(&mut *tx).await? {
            let id: String = r.try_get(0)?;
            if !used.contains(id.as_str()) {
                garbage.push(BlobRef { id, size: r.try_get::<i64, _>(1)? as u64 });
            }
        }
        if let Some(row) = sqlx::query("SELECT blobs FROM objects WHERE bucket = ? AND key = ?")
            .bind(&object.bucket)
            .bind(&object.key)
            .fetch_optional(&mut *tx)
            .await?
        {
            let old: Vec<BlobRef> = serde_json::from_str(row.try_get::<&str, _>(0)?)?;
            garbage.extend(old);
        }
        sqlx::query("DELETE FROM upload_parts WHERE upload_id = ?").bind(upload_id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM uploads WHERE upload_id = ?").bind(upload_id).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO objects (bucket, key, blobs, size, etag, last_modified, meta) VALUES (?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (bucket, key) DO UPDATE SET blobs = excluded.blobs, size = excluded.size, etag = excluded.etag, \
             last_modified = excluded.last_modified, meta = excluded.meta",
        )
        .bind(&object.bucket)
        .bind(&object.key)
        .bind(serde_json::to_string(&object.blobs)?)
        .bind(object.size as i64)
        .bind(&object.etag)
        .bind(object.last_modified)
        .bind(serde_json::to_string(&object.meta)?)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(garbage)
    }

    /// Aborts an upload and returns its part blobs. `NotFound` if it is unknown.
    pub async fn abort_upload(&self, upload_id: &str) -> Result<Vec<BlobRef>> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query("DELETE FROM uploads WHERE upload_id = ?").bind(upload_id).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let rows = sqlx::query("DELETE FROM upload_parts WHERE upload_id = ? RETURNING blob_id, size").bind(upload_id).fetch_all(&mut *tx).await?;
        tx.commit().await?;
        rows.iter().map(|r| Ok(BlobRef { id: r.try_get(0)?, size: r.try_get::<i64, _>(1)? as u64 })).collect()
    }
}

impl Store {
    // ---- audit ----

    pub async fn org_audit_enabled(&self, org_id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT audit_enabled FROM org_settings WHERE org_id = ?").bind(org_id).fetch_optional(&self.read).await?;
        Ok(match row {
            Some(r) => r.try_get::<i64, _>(0)? != 0,
            None => false,
        })
    }

    pub async fn set_org_audit(&self, org_id: &str, enabled: bool) -> Result<()> {
        sqlx::query(
            "INSERT INTO org_settings (org_id, audit_enabled) VALUES (?, ?) \
             ON CONFLICT (org_id) DO UPDATE SET audit_enabled = excluded.audit_enabled",
        )
        .bind(org_id)
        .bind(i64::from(enabled))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn bucket_audit_enabled(&self, bucket: &str) -> Result<bool> {
        let row = sqlx::query("SELECT audit_enabled FROM buckets WHERE name = ?").bind(bucket).fetch_optional(&self.read).await?;
        Ok(match row {
            Some(r) => r.try_get::<i64, _>(0)? != 0,
            None => false,
        })
    }

    pub async fn set_bucket_audit(&self, bucket: &str, enabled: bool) -> Result<()> {
        let done = sqlx::query("UPDATE buckets SET audit_enabled = ? WHERE name = ?").bind(i64::from(enabled)).bind(bucket).execute(&self.write).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Creates a bucket that the S3 naming rules would refuse (system buckets).
    pub async fn ensure_system_bucket(&self, name: &str, org_id: &str) -> Result<()> {
        sqlx::query("INSERT OR IGNORE INTO buckets (name, org_id, created_at) VALUES (?, ?, ?)")
            .bind(name)
            .bind(org_id)
            .bind(now_millis())
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Returns the journal segment that `audit_offset` is in, named by the
    /// `seq` of its first entry. `None` until a delivery commits a position, and
    /// then the offset belongs to the oldest segment.
    pub async fn audit_segment(&self) -> Result<Option<u64>> {
        let row = sqlx::query("SELECT value FROM audit_state WHERE name = 'journal_segment'").fetch_optional(&self.read).await?;
        row.map(|r| Ok(r.try_get::<i64, _>(0)? as u64)).transpose()
    }

    /// Byte offset of the audit journal up to which events are delivered.
    pub async fn audit_offset(&self) -> Result<u64> {
        let row = sqlx::query("SELECT value FROM audit_state WHERE name = 'journal_offset'").fetch_optional(&self.read).await?;
        Ok(match row {
            Some(r) => r.try_get::<i64, _>(0)? as u64,
            None => 0,
        })
    }

    /// The newest batch of a chain, as `(batch number, hash)`.
    pub async fn audit_chain_head(&self, org_id: &str, stream: &str) -> Result<Option<(u64, String)>> {
        let row = sqlx::query("SELECT batch, hash FROM audit_batches WHERE org_id = ? AND stream = ? ORDER BY batch DESC LIMIT 1")
            .bind(org_id)
            .bind(stream)
            .fetch_optional(&self.write)
            .await?;
        row.map(|r| Ok((r.try_get::<i64, _>(0)? as u64, r.try_get(1)?))).transpose()
    }

    /// Commits one delivery round: index rows, batch records and the new
    /// journal position (segment and byte offset in it), together.
    pub async fn commit_audit(&self, events: &[AuditIndexRow], batches: &[AuditBatchRecord], segment: u64, new_offset: u64) -> Result<()> {
        let mut tx = self.write.begin().await?;
        // Many rows per statement: each statement is one round trip to the
        // SQLite worker thread, which costs more CPU than the insert itself.
        for chunk in events.chunks(AUDIT_ROWS_PER_INSERT) {
            let mut insert = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "INSERT OR IGNORE INTO audit_events (seq, time, kind, org_id, action, decision, principal, access_key_id, session_id, bucket, key, request_id, event) ",
            );
            insert.push_values(chunk, |mut row, e| {
                row.push_bind(e.seq as i64)
                    .push_bind(e.time.as_str())
                    .push_bind(e.kind.as_str())
                    .push_bind(e.org_id.as_str())
                    .push_bind(e.action.as_str())
                    .push_bind(e.decision.as_str())
                    .push_bind(e.principal.as_deref())
                    .push_bind(e.access_key_id.as_deref())
                    .push_bind(e.session_id.as_deref())
                    .push_bind(e.bucket.as_deref())
                    .push_bind(e.key.as_deref())
                    .push_bind(e.request_id.as_deref())
                    .push_bind(e.event.as_str());
            });
            insert.build().execute(&mut *tx).await?;
        }
        for b in batches {
            sqlx::query(
                "INSERT OR REPLACE INTO audit_batches (org_id, stream, batch, object_key, hash, prev_hash, first_seq, last_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&b.org_id)
            .bind(&b.stream)
            .bind(b.batch as i64)
            .bind(&b.object_key)
            .bind(&b.hash)
            .bind(&b.prev_hash)
            .bind(b.first_seq as i64)
            .bind(b.last_seq as i64)
            .execute(&mut *tx)
            .await?;
        }
        for (name, value) in [("journal_segment", segment), ("journal_offset", new_offset)] {
            sqlx::query("INSERT INTO audit_state (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value")
                .bind(name)
                .bind(value as i64)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Queries indexed audit events, newest first. Returns the event JSON and seq.
    pub async fn query_audit(&self, filter: &AuditFilter) -> Result<Vec<(u64, String)>> {
        let rows = sqlx::query(
            "SELECT seq, event FROM audit_events WHERE org_id = ? \
             AND (? IS NULL OR seq < ?) \
             AND (? IS NULL OR time >= ?) AND (? IS NULL OR time <= ?) \
             AND (? IS NULL OR kind = ?) AND (? IS NULL OR principal = ?) \
             AND (? IS NULL OR access_key_id = ?) AND (? IS NULL OR session_id = ?) \
             AND (? IS NULL OR bucket = ?) AND (? IS NULL OR substr(key, 1, length(?)) = ?) \
             AND (? IS NULL OR action = ?) AND (? IS NULL OR decision = ?) AND (? IS NULL OR request_id = ?) \
             ORDER BY seq DESC LIMIT ?",
        )
        .bind(&filter.org_id)
        .bind(filter.before_seq.map(|s| s as i64))
        .bind(filter.before_seq.map(|s| s as i64))
        .bind(&filter.since)
        .bind(&filter.since)
        .bind(&filter.until)
        .bind(&filter.until)
        .bind(&filter.kind)
        .bind(&filter.kind)
        .bind(&filter.principal)
        .bind(&filter.principal)
        .bind(&filter.access_key_id)
        .bind(&filter.access_key_id)
        .bind(&filter.session_id)
        .bind(&filter.session_id)
        .bind(&filter.bucket)
        .bind(&filter.bucket)
        .bind(&filter.prefix)
        .bind(&filter.prefix)
        .bind(&filter.prefix)
        .bind(&filter.action)
        .bind(&filter.action)
        .bind(&filter.decision)
        .bind(&filter.decision)
        .bind(&filter.request_id)
        .bind(&filter.request_id)
        .bind(i64::from(filter.limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|r| Ok((r.try_get::<i64, _>(0)? as u64, r.try_get(1)?))).collect()
    }
}

async fn migrate(pool: &SqlitePool) -> Result<()> {
    let mut conn = pool.acquire().await?;
    let version: i64 = sqlx::query("PRAGMA user_version").fetch_one(&mut *conn).await?.try_get(0)?;
    let version = usize::try_from(version).map_err(|_| StoreError::Corrupt(format!("negative schema version {version}")))?;
    if version > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "database schema version {version} is newer than this binary supports ({})",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::raw_sql(AssertSqlSafe(*sql)).execute(&mut *tx).await?;
        sqlx::raw_sql(AssertSqlSafe(format!("PRAGMA user_version = {}", index + 1))).execute(&mut *tx).await?;
        tx.commit().await?;
    }
    Ok(())
}

async fn insert_change(tx: &mut sqlx::SqliteConnection, org_id: &str, kind: ChangeKind, subject: &str) -> Result<()> {
    sqlx::query("INSERT INTO changes (at, org_id, kind, subject) VALUES (?, ?, ?, ?)")
        .bind(now_millis())
        .bind(org_id)
        .bind(kind.as_str())
        .bind(subject)
        .execute(tx)
        .await?;
    Ok(())
}

const ACCESS_KEY_COLUMNS: &str =
    "SELECT access_key_id, org_id, principal, secret_sealed, created_at, expires_at, status, attributes FROM access_keys";
const WIF_COLUMNS: &str = "SELECT id, org_id, kind, name, document, created_at, updated_at FROM wif_configs";

fn api_token_from_row(r: &SqliteRow) -> Result<ApiTokenRecord> {
    Ok(ApiTokenRecord {
        id: r.try_get(0)?,
        org_id: r.try_get(1)?,
        name: r.try_get(2)?,
        token_hash: r.try_get(3)?,
        created_at: r.try_get(4)?,
    })
}

fn access_key_from_row(r: &SqliteRow) -> Result<AccessKeyRecord> {
    let status: String = r.try_get(6)?;
    let attributes: String = r.try_get(7)?;
    Ok(AccessKeyRecord {
        access_key_id: r.try_get(0)?,
        org_id: r.try_get(1)?,
        principal: r.try_get(2)?,
        secret_sealed: r.try_get(3)?,
        created_at: r.try_get(4)?,
        expires_at: r.try_get(5)?,
        status: KeyStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("unknown key status {status:?}")))?,
        attributes: serde_json::from_str::<BTreeMap<String, String>>(&attributes)?,
    })
}

fn wif_from_row(r: &SqliteRow) -> Result<WifRecord> {
    Ok(WifRecord {
        id: r.try_get(0)?,
        org_id: r.try_get(1)?,
        kind: r.try_get(2)?,
        name: r.try_get(3)?,
        document: r.try_get(4)?,
        created_at: r.try_get(5)?,
        updated_at: r.try_get(6)?,
    })
}

fn bucket_from_row(r: &SqliteRow) -> Result<BucketRecord> {
    Ok(BucketRecord { name: r.try_get(0)?, org_id: r.try_get(1)?, created_at: r.try_get(2)?, policy: r.try_get(3)? })
}

fn object_from_row(r: &SqliteRow) -> Result<ObjectRecord> {
    Ok(ObjectRecord {
        bucket: r.try_get(0)?,
        key: r.try_get(1)?,
        blobs: serde_json::from_str(r.try_get::<&str, _>(2)?)?,
        size: r.try_get::<i64, _>(3)? as u64,
        etag: r.try_get(4)?,
        last_modified: r.try_get(5)?,
        meta: serde_json::from_str(r.try_get::<&str, _>(6)?)?,
    })
}

fn upload_from_row(r: &SqliteRow) -> Result<UploadRecord> {
    Ok(UploadRecord {
        upload_id: r.try_get(0)?,
        bucket: r.try_get(1)?,
        key: r.try_get(2)?,
        created_at: r.try_get(3)?,
        initiator: r.try_get(4)?,
        meta: serde_json::from_str(r.try_get::<&str, _>(5)?)?,
    })
}

fn part_from_row(r: &SqliteRow) -> Result<PartRecord> {
    Ok(PartRecord {
        part_number: r.try_get::<i64, _>(0)? as u32,
        blob: BlobRef { id: r.try_get(1)?, size: r.try_get::<i64, _>(2)? as u64 },
        etag: r.try_get(3)?,
        last_modified: r.try_get(4)?,
        checksums: serde_json::from_str(r.try_get::<&str, _>(5)?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(bucket: &str, key: &str, blob: &str) -> ObjectRecord {
        ObjectRecord {
            bucket: bucket.into(),
            key: key.into(),
            blobs: vec![BlobRef { id: blob.into(), size: 1 }],
            size: 1,
            etag: "e".into(),
            last_modified: 0,
            meta: ObjectMeta::default(),
        }
    }

    #[tokio::test]
    async fn put_object_returns_replaced_blobs() {
        let dir = tempdir();
        let store = Store::open(&dir).await.unwrap();
        store.create_bucket("b", "default").await.unwrap();
        assert!(store.put_object(&object("b", "k", "x1")).await.unwrap().is_empty());
        let old = store.put_object(&object("b", "k", "x2")).await.unwrap();
        assert_eq!(old, vec![BlobRef { id: "x1".into(), size: 1 }]);
    }

    #[tokio::test]
    async fn saml_assertion_is_claimed_once_per_org() {
        let dir = tempdir();
        let store = Store::open(&dir).await.unwrap();
        let later = now_millis() + 60_000;
        assert!(store.claim_saml_assertion("a", "_id1", later).await.unwrap());
        assert!(!store.claim_saml_assertion("a", "_id1", later).await.unwrap());
        assert!(store.claim_saml_assertion("b", "_id1", later).await.unwrap());
        // A second handle on the same database, as another node would have.
        let other = Store::open(&dir).await.unwrap();
        assert!(!other.claim_saml_assertion("a", "_id1", later).await.unwrap());
        assert!(other.saml_assertion_used("a", "_id1").await.unwrap());
        assert!(!other.saml_assertion_used("a", "_unused").await.unwrap());
        // An expired id is dropped, so the table does not grow without bound.
        assert!(store.claim_saml_assertion("a", "_old", now_millis() - 1).await.unwrap());
        assert!(store.claim_saml_assertion("a", "_other", later).await.unwrap());
        assert!(store.claim_saml_assertion("a", "_old", later).await.unwrap());
    }

    #[tokio::test]
    async fn list_prefix_is_literal() {
        let dir = tempdir();
        let store = Store::open(&dir).await.unwrap();
        store.create_bucket("b", "default").await.unwrap();
        for key in ["a%b", "axb", "a_b", "ab"] {
            store.put_object(&object("b", key, key)).await.unwrap();
        }
        let keys: Vec<String> = store.list_objects("b", "a%", "", 10).await.unwrap().into_iter().map(|o| o.key).collect();
        assert_eq!(keys, vec!["a%b"]);
        let keys: Vec<String> = store.list_objects("b", "a_", "", 10).await.unwrap().into_iter().map(|o| o.key).collect();
        assert_eq!(keys, vec!["a_b"]);
    }

    #[tokio::test]
    async fn delete_nonempty_bucket_conflicts() {
        let dir = tempdir();
        let store = Store::open(&dir).await.unwrap();
        store.create_bucket("b", "default").await.unwrap();
        store.put_object(&object("b", "k", "x")).await.unwrap();
        assert!(matches!(store.delete_bucket("b").await, Err(StoreError::Conflict(_))));
    }

    #[tokio::test]
    async fn orphan_blobs_are_swept_at_open() {
        let dir = tempdir();
        let store = Store::open(&dir).await.unwrap();
        let mut writer = store.blobs.create().await.unwrap();
        writer.write(b"orphan").await.unwrap();
        let blob = writer.finish().await.unwrap();
        let path = store.blobs.path(&blob.id);
        assert!(path.exists());
        drop(store);
        let _store = Store::open(&dir).await.unwrap();
        assert!(!path.exists());
    }

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("keyless-store-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
