//! Moving journal events into the query index and the org audit buckets.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keyless_store::{AuditBatchRecord, AuditIndexRow, BlobRef, OBJECT_META_FORMAT, ObjectMeta, ObjectRecord, Store, StoreError, now_millis};
use md5::{Digest, Md5};

use crate::chain::{BATCH_FORMAT, BatchHeader, CHECKPOINT_EVERY, CheckpointSigner, GENESIS_HASH, VerifyReport, encode_batch, verify_chain};
use crate::event::{AuditEvent, EventKind};
use crate::journal::{JournalEntry, read_segment_from};
use crate::segment::{self, Segment};

/// Most journal entries one delivery round takes.
const MAX_ROUND: usize = 10_000;
/// Times a round looks for a segment again after the writer sealed it.
const MAX_MOVED_RETRIES: usize = 3;
pub const STREAMS: [&str; 2] = ["control-plane", "data-plane"];

/// The reserved bucket an org's audit batches are delivered to.
pub fn audit_bucket(org: &str) -> String {
    format!("keyless-{org}-audit-logs")
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Journal(#[from] crate::journal::JournalError),
}

pub struct Delivery {
    store: Store,
    /// The journal's directory, which contains its segments.
    journal_dir: PathBuf,
    signer: CheckpointSigner,
    /// Journal segment and offset in it delivered so far, for the lag metric.
    delivered_segment: std::sync::atomic::AtomicU64,
    pub delivered_offset: std::sync::atomic::AtomicU64,
    pub errors: std::sync::atomic::AtomicU64,
    /// Serializes delivery rounds: two concurrent rounds would read the same
    /// journal offset and deliver the same events twice, breaking the chain.
    round: tokio::sync::Mutex<()>,
}

impl Delivery {
    /// Creates the delivery of the journal whose active file is `journal_path`
    /// (`Journal::path`). It reads every segment in that file's directory.
    pub fn new(store: Store, journal_path: PathBuf, signing_seed: &[u8; 32]) -> Option<Self> {
        let signer = CheckpointSigner::from_seed(signing_seed)?;
        let journal_dir = journal_path.parent().map(Path::to_path_buf).unwrap_or_default();
        Some(Delivery {
            store,
            journal_dir,
            signer,
            delivered_segment: Default::default(),
            delivered_offset: Default::default(),
            errors: Default::default(),
            round: Default::default(),
        })
    }

    pub fn public_key_hex(&self) -> String {
        self.signer.public_key_hex()
    }

    /// Bytes of journal not yet delivered: the segments from the delivered one
    /// on, less the delivered part of that one. Sealed segments that are
    /// delivered but not yet deleted do not count.
    pub fn lag_bytes(&self) -> u64 {
        let delivered_segment = self.delivered_segment.load(std::sync::atomic::Ordering::Relaxed);
        let Ok(entries) = std::fs::read_dir(&self.journal_dir) else { return 0 };
        let mut total = 0u64;
        for entry in entries.flatten() {
            let name = entry.file_name();
            total += match name.to_str() {
                // The active file's preallocated zero tail is not journal data.
                Some(segment::ACTIVE_NAME) => segment::data_len(&entry.path()).unwrap_or(0),
                Some(name) if segment::parse_sealed_name(name).is_some_and(|id| id >= delivered_segment) => {
                    entry.metadata().map(|m| m.len()).unwrap_or(0)
                }
                _ => 0,
            };
        }
        total.saturating_sub(self.delivered_offset.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Delivers a round every `interval`, and at once after a round that took
    /// the most entries a round may take. Each round costs several fsyncs and
    /// database commits whatever its size, so under load rounds wait for the
    /// interval and grow, instead of running back to back with a few events.
    pub fn spawn(self: std::sync::Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.run_once().await {
                    Ok(n) if n >= MAX_ROUND => continue,
                    Ok(_) => {}
                    Err(err) => {
                        let errors = self.errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        if errors.is_power_of_two() {
                            tracing::error!(error = %err, errors, "audit delivery failed; it will be retried");
                        }
                    }
                }
                tokio::time::sleep(interval).await;
            }
        })
    }

    /// One round: reads new journal entries, delivers the batches of orgs with
    /// audit logging on, and commits index rows, batch records and the new
    /// position together. Returns the number of events processed.
    ///
    /// A round reads from one segment. When that segment is sealed and read to
    /// its end, the round moves the position to the next segment, deletes the
    /// delivered sealed segments, and reads on from there.
    pub async fn run_once(&self) -> Result<usize, DeliveryError> {
        let _round = self.round.lock().await;
        let mut segment_id = self.store.audit_segment().await?;
        let mut offset = self.store.audit_offset().await?;
        let mut moved = 0;
        loop {
            // List before reading: a later segment exists only after the writer
            // has written and synced the whole of this one.
            let segments = segment::list(&self.journal_dir).await.map_err(crate::journal::JournalError::from)?;
            let Some(index) = current_segment(&segments, segment_id) else {
                self.publish_position(segment_id.unwrap_or(0), offset);
                return Ok(0);
            };
            let current = &segments[index];
            if segment_id.is_some_and(|id| id != current.id) {
                tracing::error!(missing = segment_id, next = current.id, "audit journal segment is missing; delivering from the next one");
                offset = 0;
            }
            let Some((entries, new_offset)) = read_segment_from(&current.path, current.id, offset, MAX_ROUND).await? else {
                // The writer sealed the active file after the listing: list
                // again, a few times at most.
                moved += 1;
                if moved > MAX_MOVED_RETRIES {
                    return Ok(0);
                }
                segment_id = Some(current.id);
                continue;
            };

            if new_offset == offset
                && let Some(next) = segments.get(index + 1)
            {
                // Sealed and read to the end. Any bytes left after `new_offset`
                // are a torn line, which was never acknowledged.
                self.store.commit_audit(&[], &[], next.id, 0).await?;
                delete_delivered(&segments, next.id).await;
                segment_id = Some(next.id);
                offset = 0;
                continue;
            }
            if new_offset == offset {
                self.publish_position(current.id, offset);
                delete_delivered(&segments, current.id).await;
                return Ok(0);
            }

            let rows: Vec<AuditIndexRow> = entries.iter().map(index_row).collect();
            let batches = self.deliver_batches(&entries).await?;
            self.store.commit_audit(&rows, &batches, current.id, new_offset).await?;
            self.publish_position(current.id, new_offset);
            return Ok(entries.len());
        }
    }

    fn publish_position(&self, segment_id: u64, offset: u64) {
        self.delivered_segment.store(segment_id, std::sync::atomic::Ordering::Relaxed);
        self.delivered_offset.store(offset, std::sync::atomic::Ordering::Relaxed);
    }

    async fn deliver_batches(&self, entries: &[JournalEntry]) -> Result<Vec<AuditBatchRecord>, DeliveryError> {
        // Group the deliverable events by org and stream, keeping journal order.
        let mut groups: HashMap<(String, &'static str), Vec<&JournalEntry>> = HashMap::new();
        let mut org_enabled: HashMap<String, bool> = HashMap::new();
        let mut bucket_enabled: HashMap<String, bool> = HashMap::new();
        for entry in entries {
            let org = &entry.event.org;
            // Each setting is read once per round, not once per event.
            let enabled = match org_enabled.get(org) {
                Some(enabled) => *enabled,
                None => {
                    let enabled = self.store.org_audit_enabled(org).await?;
                    org_enabled.insert(org.clone(), enabled);
                    enabled
                }
            };
            if !enabled {
                continue;
            }
            let stream = match entry.event.kind {
                EventKind::Control | EventKind::Exchange => "control-plane",
                EventKind::Data => {
                    let Some(bucket) = &entry.event.bucket else { continue };
                    let enabled = match bucket_enabled.get(bucket) {
                        Some(enabled) => *enabled,
                        None => {
                            let enabled = self.store.bucket_audit_enabled(bucket).await?;
                            bucket_enabled.insert(bucket.clone(), enabled);
                            enabled
                        }
                    };
                    if !enabled {
                        continue;
                    }
                    "data-plane"
                }
            };
            groups.entry((org.clone(), stream)).or_default().push(entry);
        }

        let mut records = Vec::new();
        let mut keys: Vec<_> = groups.keys().cloned().collect();
        keys.sort();
        for (org, stream) in keys {
            let events = &groups[&(org.clone(), stream)];
            let bucket = audit_bucket(&org);
            self.store.ensure_system_bucket(&bucket, &org).await?;
            let (prev_batch, prev_hash) = self.store.audit_chain_head(&org, stream).await?.unwrap_or((0, GENESIS_HASH.to_owned()));
            let batch = prev_batch + 1;
            let first_seq = events.first().map_or(0, |e| e.seq);
            let last_seq = events.last().map_or(0, |e| e.seq);
            let header = BatchHeader {
                format: BATCH_FORMAT.into(),
                org: org.clone(),
                stream: stream.into(),
                batch,
                prev_hash: prev_hash.clone(),
                first_seq,
                last_seq,
                count: events.len() as u64,
            };
            let pairs: Vec<(u64, &AuditEvent)> = events.iter().map(|e| (e.seq, &e.event)).collect();
            let (hash, gz) = encode_batch(&header, &pairs);
            let hour = hour_partition(events.first().map_or("", |e| e.event.time.as_str()));
            let object_key = format!("{stream}/{hour}/{batch:012}.jsonl.gz");
            self.put_object(&bucket, &object_key, &gz, "application/gzip").await?;

            let checkpoint = self.signer.checkpoint(&org, stream, batch, &hash);
            self.put_object(&bucket, &format!("checkpoints/{stream}/latest.json"), &checkpoint, "application/json").await?;
            if batch % CHECKPOINT_EVERY == 0 {
                self.put_object(&bucket, &format!("checkpoints/{stream}/{batch:012}.json"), &checkpoint, "application/json").await?;
            }
            records.push(AuditBatchRecord { org_id: org.clone(), stream: stream.into(), batch, object_key, hash, prev_hash, first_seq, last_seq });
        }
        Ok(records)
    }

    async fn put_object(&self, bucket: &str, key: &str, bytes: &[u8], content_type: &str) -> Result<(), StoreError> {
        let mut writer = self.store.blobs.create().await?;
        writer.write(bytes).await?;
        let blob = writer.finish().await?;
        let record = ObjectRecord {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            size: blob.size,
            blobs: vec![blob.clone()],
            etag: hex::encode(Md5::digest(bytes)),
            last_modified: now_millis(),
            meta: ObjectMeta { format: OBJECT_META_FORMAT, content_type: Some(content_type.to_owned()), ..Default::default() },
        };
        match self.store.put_object(&record).await {
            Ok(old) => {
                self.store.blobs.delete(&old).await;
                Ok(())
            }
            Err(err) => {
                self.store.blobs.delete(&[blob]).await;
                Err(err)
            }
        }
    }

    /// Verifies both chains of an org from the objects in its audit bucket.
    pub async fn verify_org(&self, org: &str) -> Result<Vec<(String, VerifyReport)>, StoreError> {
        let bucket = audit_bucket(org);
        let mut reports = Vec::new();
        for stream in STREAMS {
            let mut objects = Vec::new();
            let mut after = String::new();
            loop {
                let page = self.store.list_objects(&bucket, &format!("{stream}/"), &after, 1000).await?;
                let done = page.len() < 1000;
                for object in page {
                    after = object.key.clone();
                    objects.push((object.key.clone(), self.read_object(&object.blobs).await?));
                }
                if done {
                    break;
                }
            }
            let checkpoint = match self.store.object(&bucket, &format!("checkpoints/{stream}/latest.json")).await? {
                Some(object) => Some(self.read_object(&object.blobs).await?),
                None => None,
            };
            reports.push((stream.to_owned(), verify_chain(org, stream, &objects, checkpoint.as_deref(), &self.public_key_hex())));
        }
        Ok(reports)
    }

    async fn read_object(&self, blobs: &[BlobRef]) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::new();
        for blob in blobs {
            match tokio::fs::read(self.store.blobs.path(&blob.id)).await {
                Ok(bytes) => out.extend_from_slice(&bytes),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(out)
    }
}

/// Returns the index of the segment the position is in: the one named
/// `segment_id`, else the first after it, or the oldest when no position was
/// committed yet.
fn current_segment(segments: &[Segment], segment_id: Option<u64>) -> Option<usize> {
    match segment_id {
        None if segments.is_empty() => None,
        None => Some(0),
        Some(id) => segments.iter().position(|s| s.id >= id),
    }
}

/// Deletes the sealed segments before the one named `position_segment`, whose
/// every entry is delivered and committed. A failure is logged, and the next
/// round tries again.
async fn delete_delivered(segments: &[Segment], position_segment: u64) {
    for delivered in segments.iter().filter(|s| s.sealed && s.id < position_segment) {
        if let Err(err) = tokio::fs::remove_file(&delivered.path).await
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::error!(error = %err, path = %delivered.path.display(), "deleting a delivered audit journal segment failed");
        }
    }
}

/// `YYYY/MM/DD/HH` of a batch's first event (an RFC 3339 UTC time), the
/// partition the batch lands in. Taking it from the event rather than the
/// clock keeps the object key the same when a round is redone after a crash,
/// so the redone round overwrites its first attempt. The current hour is the
/// fallback for a time that does not parse.
fn hour_partition(first_event_time: &str) -> String {
    let parsed = time::OffsetDateTime::parse(first_event_time, &time::format_description::well_known::Rfc3339)
        .map(|t| t.to_offset(time::UtcOffset::UTC))
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    format!("{:04}/{:02}/{:02}/{:02}", parsed.year(), u8::from(parsed.month()), parsed.day(), parsed.hour())
}

fn index_row(entry: &JournalEntry) -> AuditIndexRow {
    let e = &entry.event;
    AuditIndexRow {
        seq: entry.seq,
        time: e.time.clone(),
        kind: e.kind.as_str().to_owned(),
        org_id: e.org.clone(),
        action: e.action.clone(),
        decision: e.decision.as_str().to_owned(),
        principal: e.principal.clone(),
        access_key_id: e.access_key_id.clone().or_else(|| e.minted_key_id.clone()),
        session_id: e.session_id.clone(),
        bucket: e.bucket.clone(),
        key: e.key.clone(),
        request_id: e.request_id.clone(),
        event: serde_json::to_string(e).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::hour_partition;

    #[test]
    fn partition_follows_the_first_event() {
        assert_eq!(hour_partition("2026-12-05T01:59:59.999Z"), "2026/12/05/01");
        assert_eq!(hour_partition("2026-12-05T03:30:00+02:00"), "2026/12/05/01");
        // A redone round days later still names the same partition.
        assert_eq!(hour_partition("2020-01-01T00:00:00Z"), "2020/01/01/00");
    }
}
