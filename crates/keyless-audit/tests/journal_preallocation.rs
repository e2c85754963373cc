//! The writer keeps zero bytes written ahead of the active file's last line,
//! so a file's data ends at its first zero byte. Wherever a crash leaves a
//! torn line, a zero tail or bytes after a zero hole, reopening continues the
//! sequence right after the last whole line, and delivery delivers every
//! written event once.

use std::os::unix::fs::FileExt;
use std::path::Path;

mod common;

use common::{assert_delivered, drain, event, open_store, temp_dir};
use keyless_audit::{Delivery, Journal};
use keyless_store::Store;

/// Records events `from..to`, each acknowledged.
async fn record(journal: &Journal, from: usize, to: usize) {
    for index in from..to {
        journal.record(event(index)).await.unwrap();
    }
}

/// Opens the journal, records `from..to`, and closes it again, waiting until
/// the writer thread has released the file.
async fn session(journal_dir: &Path, from: usize, to: usize) {
    let journal = Journal::open(journal_dir).await.unwrap();
    record(&journal, from, to).await;
    drop(journal);
    // The writer thread ends once its queue is closed. Waiting a moment makes
    // the test's own writes come after the thread's last one.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
}

/// Returns the active file's bytes before its first zero byte.
fn data_of(journal_dir: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(journal_dir.join("journal.jsonl")).unwrap();
    if let Some(end) = bytes.iter().position(|b| *b == 0) {
        bytes.truncate(end);
    }
    bytes
}

/// Returns the `seq` of every line of the active file's data, failing on a
/// line that is not a whole entry.
fn seqs_of(journal_dir: &Path) -> Vec<u64> {
    let data = data_of(journal_dir);
    assert_eq!(data.last(), Some(&b'\n'), "the data does not end with a whole line");
    data[..data.len() - 1]
        .split(|b| *b == b'\n')
        .map(|line| {
            let value: serde_json::Value = serde_json::from_slice(line)
                .unwrap_or_else(|err| panic!("journal line {:?} is not JSON: {err}", String::from_utf8_lossy(line)));
            value["seq"].as_u64().expect("a numeric seq")
        })
        .collect()
}

async fn deliver_all(store: Store, journal_dir: &Path) -> Delivery {
    let delivery = Delivery::new(store, journal_dir.join("journal.jsonl"), &[7; 32]).unwrap();
    drain(&delivery).await;
    delivery
}

#[tokio::test]
async fn active_file_has_zero_tail() {
    let dir = temp_dir("prealloc-zero-tail");
    let journal_dir = dir.join("audit");
    session(&journal_dir, 0, 5).await;

    let length = std::fs::metadata(journal_dir.join("journal.jsonl")).unwrap().len();
    let data = data_of(&journal_dir).len() as u64;
    assert!(length > data, "expected zeros after the data: file {length} bytes, data {data} bytes");
    assert_eq!(seqs_of(&journal_dir), (1..=5).collect::<Vec<_>>());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn reopen_writes_after_last_line() {
    let dir = temp_dir("prealloc-reopen");
    let store = open_store(&dir).await;
    let journal_dir = dir.join("audit");
    session(&journal_dir, 0, 20).await;
    session(&journal_dir, 20, 40).await;

    assert_eq!(seqs_of(&journal_dir), (1..=40).collect::<Vec<_>>());
    let delivery = deliver_all(store, &journal_dir).await;
    assert_delivered(&delivery, 40).await;
    assert_eq!(delivery.lag_bytes(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A crash in the middle of a group's write leaves a partial line followed
/// by the zero tail. The group was never acknowledged.
#[tokio::test]
async fn torn_line_before_zeros_is_cut() {
    let dir = temp_dir("prealloc-torn-line");
    let store = open_store(&dir).await;
    let journal_dir = dir.join("audit");
    session(&journal_dir, 0, 10).await;
    let end = data_of(&journal_dir).len() as u64;
    let active = std::fs::OpenOptions::new().write(true).open(journal_dir.join("journal.jsonl")).unwrap();
    active.write_all_at(b"{\"seq\":11,\"event\":{\"ki", end).unwrap();
    drop(active);

    session(&journal_dir, 10, 15).await;
    assert_eq!(seqs_of(&journal_dir), (1..=15).collect::<Vec<_>>());
    let delivery = deliver_all(store, &journal_dir).await;
    assert_delivered(&delivery, 15).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A crash can persist a later page of an unacknowledged group while an
/// earlier page stays zero. The data then ends at the hole, and the line after
/// it must neither be read nor reuse a `seq` once new lines fill the hole.
#[tokio::test]
async fn line_after_zero_hole_is_cut() {
    let dir = temp_dir("prealloc-zero-hole");
    let store = open_store(&dir).await;
    let journal_dir = dir.join("audit");
    session(&journal_dir, 0, 10).await;
    let end = data_of(&journal_dir).len() as u64;
    let mut stale = serde_json::to_vec(&serde_json::json!({"seq": 12, "event": event(999)})).unwrap();
    stale.push(b'\n');
    let active = std::fs::OpenOptions::new().write(true).open(journal_dir.join("journal.jsonl")).unwrap();
    active.write_all_at(&stale, end + 4096).unwrap();
    drop(active);

    // Enough new lines to cover the hole and the stale line's offset.
    session(&journal_dir, 10, 60).await;
    assert!(data_of(&journal_dir).len() as u64 > end + 4096 + stale.len() as u64, "the new lines do not cover the stale line");
    assert_eq!(seqs_of(&journal_dir), (1..=60).collect::<Vec<_>>());
    let delivery = deliver_all(store, &journal_dir).await;
    assert_delivered(&delivery, 60).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sealed segments are cut to their data: no zero byte, and a whole last line.
#[tokio::test]
async fn sealed_segments_have_no_zero_tail() {
    let dir = temp_dir("prealloc-sealed");
    let store = open_store(&dir).await;
    let journal_dir = dir.join("audit");
    let journal = Journal::open_with_segment_size(&journal_dir, 4096).await.unwrap();
    record(&journal, 0, 60).await;

    let mut sealed = 0;
    for entry in std::fs::read_dir(&journal_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("journal-")) {
            let bytes = std::fs::read(&path).unwrap();
            assert!(!bytes.contains(&0), "sealed segment {path:?} contains a zero byte");
            assert_eq!(bytes.last(), Some(&b'\n'), "sealed segment {path:?} does not end with a whole line");
            sealed += 1;
        }
    }
    assert!(sealed >= 2, "expected the writer to seal several segments, found {sealed}");
    let delivery = deliver_all(store, &journal_dir).await;
    assert_delivered(&delivery, 60).await;
    let _ = std::fs::remove_dir_all(&dir);
}
