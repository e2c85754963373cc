//! Audit for keyless: every control-plane change, every token exchange and
//! every S3 request, recorded, delivered, queryable and tamper-evident.
//!
//! The path of an event:
//! 1. `Journal::record` appends it to a local journal file. A writer task
//!    group-commits: it writes every event queued meanwhile, fsyncs once, and
//!    then acknowledges them all. Control-plane and exchange events wait for
//!    that acknowledgement before the API answers; data-plane events do not
//!    wait, so a crash can lose the data-plane events of at most the last
//!    group commit (one write and one fsync, typically a few milliseconds).
//!    The writer seals the journal file into a numbered segment once it
//!    reaches `MAX_SEGMENT_BYTES` (64 MiB) and starts a new one (`segment`).
//! 2. `Delivery` reads the journal from its last committed position (segment
//!    and offset), indexes the events in the metadata database (for queries),
//!    and, for orgs with audit logging enabled, writes them as gzip JSON-lines
//!    batches into the org's audit bucket, `keyless-<org>-audit-logs`, under
//!    `control-plane/` and `data-plane/` partitioned by date and hour. It
//!    deletes a sealed segment once its position is in a later one. The index
//!    rows, the batch records and the new position commit in one transaction;
//!    batch names follow from the batch number and its first event's hour, so
//!    a delivery redone after a crash rewrites the same objects and nothing is
//!    lost or duplicated.
//! 3. Batches are hash-chained per org and stream: each batch's header names
//!    the SHA-256 of the previous batch. The newest hash is signed (Ed25519,
//!    key derived from the master key) in `checkpoints/<stream>/latest.json`,
//!    and every 16th in a permanent checkpoint. `verify` finds a removed,
//!    reordered or edited batch and names it.

mod chain;
mod delivery;
mod event;
mod journal;
mod metrics;
mod segment;

pub use chain::{VerifyReport, verify_chain};
pub use delivery::{Delivery, audit_bucket};
pub use event::{AuditEvent, Decision, EventKind, now_rfc3339, token_id};
pub use journal::{Journal, JournalError, MAX_SEGMENT_BYTES};
pub use metrics::Metrics;
