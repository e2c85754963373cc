//! The local audit journal: JSON lines appended to `<dir>/journal.jsonl`, one
//! `{"seq": N, "event": {...}}` per line, fsynced in group commits.
//!
//! One OS thread owns the file. It takes every event queued since its last
//! commit, appends them as one buffer followed by one `fdatasync`, and then
//! acknowledges each waiting `record` call. Because the thread makes these
//! blocking calls itself, no write or sync is handed to tokio's blocking pool.

use std::io::Write;
use std::path::{Path, PathBuf};

use tokio::sync::{mpsc, oneshot};

use crate::event::AuditEvent;

/// Most events one group commit writes.
const MAX_GROUP: usize = 4096;
/// Events that may wait for the writer before `record_nowait` drops them.
const QUEUE_CAPACITY: usize = 65_536;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("audit journal i/o failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("the audit journal writer has stopped")]
    Stopped,
}

struct Pending {
    event: AuditEvent,
    ack: Option<oneshot::Sender<Result<(), String>>>,
}

/// Handle for recording events; cheap to clone.
#[derive(Clone)]
pub struct Journal {
    queue: mpsc::Sender<Pending>,
    path: PathBuf,
    dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Journal {
    /// Opens (creating) the journal in `dir` and starts its writer task.
    pub async fn open(dir: &Path) -> Result<Self, JournalError> {
        tokio::fs::create_dir_all(dir).await?;
        let path = dir.join("journal.jsonl");
        let next_seq = last_seq(&path).await? + 1;
        let file = tokio::fs::OpenOptions::new().create(true).append(true).open(&path).await?.into_std().await;
        let (queue, receiver) = mpsc::channel(QUEUE_CAPACITY);
        std::thread::Builder::new().name("audit-journal".into()).spawn(move || write_loop(file, receiver, next_seq))?;
        Ok(Journal { queue, path, dropped: Default::default() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records an event and waits until it is durable on disk.
    pub async fn record(&self, event: AuditEvent) -> Result<(), JournalError> {
        let (ack, done) = oneshot::channel();
        self.queue.send(Pending { event, ack: Some(ack) }).await.map_err(|_| JournalError::Stopped)?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(JournalError::Io(std::io::Error::other(message))),
            Err(_) => Err(JournalError::Stopped),
        }
    }

    /// Queues an event without waiting for it to reach disk. If the writer is
    /// so far behind that the queue is full, the event is dropped and counted.
    pub fn record_nowait(&self, event: AuditEvent) {
        if self.queue.try_send(Pending { event, ack: None }).is_err() {
            let dropped = self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if dropped.is_power_of_two() {
                tracing::error!(dropped, "audit journal queue is full; data-plane events were dropped");
            }
        }
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Finds the last sequence number in an existing journal. A torn last line
/// (a crash mid-write, never acknowledged) is ignored.
async fn last_seq(path: &Path) -> Result<u64, JournalError> {
    let text = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err.into()),
    };
    let mut last = 0;
    for line in text.split(|b| *b == b'\n') {
        if let Ok(entry) = serde_json::from_slice::<serde_json::Value>(line)
            && let Some(seq) = entry.get("seq").and_then(serde_json::Value::as_u64)
        {
            last = seq;
        }
    }
    Ok(last)
}

/// Writes and syncs queued events until every `Journal` handle is dropped.
fn write_loop(mut file: std::fs::File, mut receiver: mpsc::Receiver<Pending>, mut next_seq: u64) {
    // A torn line left by a crash would glue onto the next append; a newline
    // first keeps every later line whole.
    if let Ok(meta) = file.metadata()
        && meta.len() > 0
        && let Err(err) = file.write_all(b"\n")
    {
        tracing::error!(error = %err, "audit journal write failed");
    }

    let mut group = Vec::with_capacity(256);
    while let Some(first) = receiver.blocking_recv() {
        group.push(first);
        while group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(more) => group.push(more),
                Err(_) => break,
            }
        }

        let mut buf = Vec::with_capacity(group.len() * 256);
        for pending in &group {
            let line = serde_json::json!({ "seq": next_seq, "event": pending.event });
            next_seq += 1;
            buf.extend_from_slice(line.to_string().as_bytes());
            buf.push(b'\n');
        }
        let result = file.write_all(&buf).and_then(|()| file.sync_data());
        let outcome = result.map_err(|err| {
            tracing::error!(error = %err, events = group.len(), "audit journal write failed");
            err.to_string()
        });
        for pending in group.drain(..) {
            if let Some(ack) = pending.ack {
                let _ = ack.send(outcome.clone());
            }
        }
    }
}

/// One parsed journal line.
#[derive(Debug, Clone)]
pub struct JournalEntry {
    pub seq: u64,
    pub event: AuditEvent,
}

/// Reads whole lines from byte `offset`; returns the entries and the offset
/// after the last whole line. A trailing partial line is left for later.
pub async fn read_from(path: &Path, offset: u64, max_entries: usize) -> Result<(Vec<JournalEntry>, u64), JournalError> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), offset)),
        Err(err) => return Err(err.into()),
    };
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut buf = Vec::new();
    file.take(16 * 1024 * 1024).read_to_end(&mut buf).await?;

    let mut entries = Vec::new();
    let mut consumed = 0usize;
    while let Some(end) = buf[consumed..].iter().position(|b| *b == b'\n') {
        let line = &buf[consumed..consumed + end];
        consumed += end + 1;
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(value) => {
                let seq = value.get("seq").and_then(serde_json::Value::as_u64);
                let event = value.get("event").cloned().and_then(|e| serde_json::from_value::<AuditEvent>(e).ok());
                if let (Some(seq), Some(event)) = (seq, event) {
                    entries.push(JournalEntry { seq, event });
                }
            }
            // A torn line from a crash: it was never acknowledged, skip it.
            Err(_) => tracing::warn!(offset = offset + consumed as u64, "skipping a torn audit journal line"),
        }
        if entries.len() >= max_entries {
            break;
        }
    }
    Ok((entries, offset + consumed as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Decision, EventKind};

    #[tokio::test]
    async fn recorded_events_read_back_in_order() {
        let dir = std::env::temp_dir().join(format!("keyless-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let journal = Journal::open(&dir).await.unwrap();
        for i in 0..5 {
            let mut event = AuditEvent::new(EventKind::Data, "default", "s3:GetObject", Decision::Allow);
            event.key = Some(format!("k{i}"));
            journal.record(event).await.unwrap();
        }
        let (entries, offset) = read_from(journal.path(), 0, 100).await.unwrap();
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
        assert_eq!(entries[4].event.key.as_deref(), Some("k4"));
        let (more, _) = read_from(journal.path(), offset, 100).await.unwrap();
        assert!(more.is_empty());
    }

    #[tokio::test]
    async fn reopen_continues_sequence_after_torn_line() {
        let dir = std::env::temp_dir().join(format!("keyless-journal-torn-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let journal = Journal::open(&dir).await.unwrap();
            journal.record(AuditEvent::new(EventKind::Control, "default", "cwobject:X", Decision::Allow)).await.unwrap();
        }

        use std::io::Write;
        std::fs::OpenOptions::new().append(true).open(dir.join("journal.jsonl")).unwrap().write_all(b"{\"seq\":2,\"ev").unwrap();
        let journal = Journal::open(&dir).await.unwrap();
        journal.record(AuditEvent::new(EventKind::Control, "default", "cwobject:Y", Decision::Allow)).await.unwrap();
        let (entries, _) = read_from(journal.path(), 0, 100).await.unwrap();
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(entries[1].event.action, "cwobject:Y");
    }
}
