//! Persistence for keyless: metadata in SQLite and object bytes on local disk.
//!
//! `Store` owns the metadata database (organizations, API tokens, access keys,
//! policies, WIF configurations, buckets, objects, multipart uploads and the
//! change feed); `BlobStore` owns object bytes. Blobs are stored under generated
//! ids, never under object keys, so keys such as `a` and `a/b` coexist and key
//! length is not limited by the file system. A write goes to a temporary file,
//! is fsynced and renamed into place, and only then is the metadata row that
//! points at it committed; blobs that no row references are swept at start.
//!
//! The change feed (`changes`) is how nodes sharing one database learn of
//! revocations and policy changes: each node polls it and drops what it cached.

mod blob;
mod error;
mod meta;
mod records;

pub use blob::{BlobRef, BlobStore, BlobWriter};
pub use error::StoreError;
pub use meta::Store;
pub use records::*;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Current time as Unix milliseconds, the unit of every timestamp column.
pub fn now_millis() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000_000) as i64
}
