//! Moving journal events into the query index and the org audit buckets.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use keyless_store::{AuditBatchRecord, AuditIndexRow, BlobRef, OBJECT_META_FORMAT, ObjectMeta, ObjectRecord, Store, StoreError, now_millis};
use md5::{Digest, Md5};

use crate::chain::{BATCH_FORMAT, BatchHeader, CHECKPOINT_EVERY, CheckpointSigner, GENESIS_HASH, VerifyReport, encode_batch, verify_chain};
use crate::event::{AuditEvent, EventKind};
use crate::journal::{JournalEntry, read_from};

/// Most journal entries one delivery round takes.
const MAX_ROUND: usize = 10_000;
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
    journal_path: PathBuf,
    signer: CheckpointSigner,
    /// Journal offset delivered so far, for the lag metric.
    pub delivered_offset: std::sync::atomic::AtomicU64,
    pub errors: std::sync::atomic::AtomicU64,
    /// Serializes delivery rounds: two concurrent rounds would read the same
    /// journal offset and deliver the same events twice, breaking the chain.
    round: tokio::sync::Mutex<()>,
}

impl Delivery {
    pub fn new(store: Store, journal_path: PathBuf, signing_seed: &[u8; 32]) -> Option<Self> {
        let signer = CheckpointSigner::from_seed(signing_seed)?;
        Some(Delivery { store, journal_path, signer, delivered_offset: Default::default(), errors: Default::default(), round: Default::default() })
    }

    pub fn public_key_hex(&self) -> String {
        self.signer.public_key_hex()
    }

    /// Bytes of journal not yet delivered.
    pub fn lag_bytes(&self) -> u64 {
        let len = std::fs::metadata(&self.journal_path).map(|m| m.len()).unwrap_or(0);
        len.saturating_sub(self.delivered_offset.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Delivers until the journal is drained, then every `interval`.
    pub fn spawn(self: std::sync::Arc<Self>, interval: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.run_once().await {
                    Ok(n) if n > 0 => continue,
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
    /// offset together. Returns the number of events processed.
    pub async fn run_once(&self) -> Result<usize, DeliveryError> {
        let _round = self.round.lock().await;
        let offset = self.store.audit_offset().await?;
        let (entries, new_offset) = read_from(&self.journal_path, offset, MAX_ROUND).await?;
        if new_offset == offset {
            self.delivered_offset.store(offset, std::sync::atomic::Ordering::Relaxed);
            return Ok(0);
        }

        let rows: Vec<AuditIndexRow> = entries.iter().map(index_row).collect();
        let batches = self.deliver_batches(&entries).await?;
        self.store.commit_audit(&rows, &batches, new_offset).await?;
        self.delivered_offset.store(new_offset, std::sync::atomic::Ordering::Relaxed);
        Ok(entries.len())
    }

    async fn deliver_batches(&self, entries: &[JournalEntry]) -> Result<Vec<AuditBatchRecord>, DeliveryError> {
        // Group the deliverable events by org and stream, keeping journal order.
        let mut groups: HashMap<(String, &'static str), Vec<&JournalEntry>> = HashMap::new();
        let mut org_enabled: HashMap<String, bool> = HashMap::new();
        let mut bucket_enabled: HashMap<String, bool> = HashMap::new();
        for entry in entries {
            let org = &entry.event.org;
            if !*org_enabled.entry(org.clone()).or_insert(self.store.org_audit_enabled(org).await?) {
                continue;
            }
            let stream = match entry.event.kind {
                EventKind::Control | EventKind::Exchange => "control-plane",
                EventKind::Data => {
                    let Some(bucket) = &entry.event.bucket else { continue };
                    if !*bucket_enabled.entry(bucket.clone()).or_insert(self.store.bucket_audit_enabled(bucket).await?) {
                        continue;
                    }
                    "data-plane"
                }
            };
            groups.entry((org.clone(), stream)).or_default().push(entry);
        }

        let mut records = Vec::new();
        let hour = hour_partition();
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

/// `YYYY/MM/DD/HH` of the current UTC time, the partition a batch lands in.
fn hour_partition() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("{:04}/{:02}/{:02}/{:02}", now.year(), u8::from(now.month()), now.day(), now.hour())
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
