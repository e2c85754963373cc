//! Records stored in the metadata database. JSON columns carry a `format`
//! number so that later versions can migrate old rows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::BlobRef;

/// Status of an access key, as stored and as shown by the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    Active,
    Suspended,
    Revoked,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Suspended => "suspended",
            KeyStatus::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(KeyStatus::Active),
            "suspended" => Some(KeyStatus::Suspended),
            "revoked" => Some(KeyStatus::Revoked),
            _ => None,
        }
    }
}

/// A static access key. The secret is sealed with the master key; the store
/// never sees it in plain text.
#[derive(Debug, Clone)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    pub org_id: String,
    pub principal: String,
    pub secret_sealed: Vec<u8>,
    pub created_at: i64,
    /// Unix milliseconds; `None` means the key does not expire.
    pub expires_at: Option<i64>,
    pub status: KeyStatus,
    pub attributes: BTreeMap<String, String>,
}

/// An API token for the control plane. Only a SHA-256 hash of the token is stored.
#[derive(Debug, Clone)]
pub struct ApiTokenRecord {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub token_hash: String,
    pub created_at: i64,
}

impl ApiTokenRecord {
    pub fn principal(&self) -> String {
        format!("user/{}", self.name)
    }
}

/// A WIF configuration as stored: its kind (`oidc` or `saml`) and its JSON
/// document, which the federation layer owns.
#[derive(Debug, Clone)]
pub struct WifRecord {
    pub id: String,
    pub org_id: String,
    pub kind: String,
    pub name: String,
    pub document: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct BucketRecord {
    pub name: String,
    pub org_id: String,
    pub created_at: i64,
    pub policy: Option<String>,
}

/// Object metadata other than the blob list: content headers, user metadata and
/// the checksums verified at upload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub format: u32,
    #[serde(default)]
    pub content_type: Option<String>,
    /// Standard headers stored with the object: cache-control, content-disposition,
    /// content-encoding, content-language, expires.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// User metadata (`x-amz-meta-*`), keys without the prefix.
    #[serde(default)]
    pub user: BTreeMap<String, String>,
    /// Checksums by algorithm name (`crc32`, `crc32c`, `sha1`, `sha256`,
    /// `crc64nvme`), base64 as on the wire.
    #[serde(default)]
    pub checksums: BTreeMap<String, String>,
    /// Number of parts for a completed multipart upload, for the ETag suffix.
    #[serde(default)]
    pub parts_count: Option<u32>,
}

pub const OBJECT_META_FORMAT: u32 = 1;

#[derive(Debug, Clone)]
pub struct ObjectRecord {
    pub bucket: String,
    pub key: String,
    pub blobs: Vec<BlobRef>,
    pub size: u64,
    pub etag: String,
    pub last_modified: i64,
    pub meta: ObjectMeta,
}

#[derive(Debug, Clone)]
pub struct UploadRecord {
    pub upload_id: String,
    pub bucket: String,
    pub key: String,
    pub created_at: i64,
    pub initiator: String,
    pub meta: ObjectMeta,
}

#[derive(Debug, Clone)]
pub struct PartRecord {
    pub part_number: u32,
    pub blob: BlobRef,
    pub etag: String,
    pub last_modified: i64,
    pub checksums: BTreeMap<String, String>,
}

/// One entry of the change feed.
#[derive(Debug, Clone)]
pub struct Change {
    pub seq: i64,
    pub at: i64,
    pub org_id: String,
    pub kind: ChangeKind,
    pub subject: String,
}

/// Kind of change. Nodes react to each kind by dropping or updating a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// One access key (static or temporary) was revoked; subject: key id.
    KeyRevoked,
    /// Every key of a principal was revoked; subject: principal. Temporary keys
    /// minted before the change are invalid.
    PrincipalRevoked,
    /// A principal was suspended; subject: principal.
    PrincipalSuspended,
    /// A principal was reactivated; subject: principal.
    PrincipalReactivated,
    /// The org's policies changed; subject: policy name.
    PolicyChanged,
    /// A WIF configuration changed or was deleted; subject: configuration id.
    WifChanged,
    /// An API token was revoked; subject: token id.
    TokenRevoked,
    /// A bucket was created, deleted or had its policy changed; subject: bucket.
    BucketChanged,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::KeyRevoked => "key-revoked",
            ChangeKind::PrincipalRevoked => "principal-revoked",
            ChangeKind::PrincipalSuspended => "principal-suspended",
            ChangeKind::PrincipalReactivated => "principal-reactivated",
            ChangeKind::PolicyChanged => "policy-changed",
            ChangeKind::WifChanged => "wif-changed",
            ChangeKind::TokenRevoked => "token-revoked",
            ChangeKind::BucketChanged => "bucket-changed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            ChangeKind::KeyRevoked,
            ChangeKind::PrincipalRevoked,
            ChangeKind::PrincipalSuspended,
            ChangeKind::PrincipalReactivated,
            ChangeKind::PolicyChanged,
            ChangeKind::WifChanged,
            ChangeKind::TokenRevoked,
            ChangeKind::BucketChanged,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// An audit event as indexed for queries; `event` is its JSON.
#[derive(Debug, Clone, Default)]
pub struct AuditIndexRow {
    pub seq: u64,
    pub time: String,
    pub kind: String,
    pub org_id: String,
    pub action: String,
    pub decision: String,
    pub principal: Option<String>,
    pub access_key_id: Option<String>,
    pub session_id: Option<String>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub request_id: Option<String>,
    pub event: String,
}

/// A delivered audit batch: one object in the org's audit bucket.
#[derive(Debug, Clone)]
pub struct AuditBatchRecord {
    pub org_id: String,
    pub stream: String,
    pub batch: u64,
    pub object_key: String,
    pub hash: String,
    pub prev_hash: String,
    pub first_seq: u64,
    pub last_seq: u64,
}

/// Filters of an audit query; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub org_id: String,
    /// Cursor: only events with a smaller sequence number.
    pub before_seq: Option<u64>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub kind: Option<String>,
    pub principal: Option<String>,
    pub access_key_id: Option<String>,
    pub session_id: Option<String>,
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub action: Option<String>,
    pub decision: Option<String>,
    pub request_id: Option<String>,
    pub limit: u32,
}
