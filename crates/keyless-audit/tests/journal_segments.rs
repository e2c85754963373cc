//! The journal seals its active file into segments, and delivery deletes the
//! segments it has delivered. Wherever a crash stops the writer or delivery,
//! every acknowledged event is delivered once and the hash chain stays intact.

use std::path::{Path, PathBuf};

mod common;

use common::{assert_delivered, drain, event, open_store, temp_dir};
use keyless_audit::{Delivery, Journal};

/// Small enough that a few dozen events fill a segment.
const SEGMENT_BYTES: u64 = 4096;

/// Records events `from..to` in groups of ten. Waiting until the last event of
/// a group is durable makes every earlier one durable too, and lets the writer
/// commit each group on its own.
async fn record(journal: &Journal, from: usize, to: usize) {
    for index in from..to {
        if index % 10 == 9 || index == to - 1 {
            journal.record(event(index)).await.unwrap();
        } else {
            journal.record_nowait(event(index));
        }
    }
}

fn sealed_segments(journal_dir: &Path) -> Vec<PathBuf> {
    let mut sealed: Vec<PathBuf> = std::fs::read_dir(journal_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("journal-")))
        .collect();
    sealed.sort();
    sealed
}

#[tokio::test]
async fn delivered_segments_are_deleted() {
    let dir = temp_dir("segments-deleted");
    let store = open_store(&dir).await;
    let journal = Journal::open_with_segment_size(&dir.join("audit"), SEGMENT_BYTES).await.unwrap();
    let delivery = Delivery::new(store, journal.path().to_path_buf(), &[7; 32]).unwrap();

    record(&journal, 0, 100).await;
    let sealed_before = sealed_segments(&dir.join("audit"));
    assert!(sealed_before.len() >= 3, "expected the writer to seal several segments, found {sealed_before:?}");
    drain(&delivery).await;
    record(&journal, 100, 200).await;
    drain(&delivery).await;

    assert_delivered(&delivery, 200).await;
    // Only the segment that contains the delivered position may remain sealed.
    let sealed_after = sealed_segments(&dir.join("audit"));
    assert!(sealed_after.len() <= 1, "delivered segments were kept: {sealed_after:?}");
    assert!(sealed_after.iter().all(|path| !sealed_before.contains(path)), "{sealed_after:?}");
    assert_eq!(delivery.lag_bytes(), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A crash after the writer renamed the active file and before it created the
/// new one leaves no active file.
#[tokio::test]
async fn crash_while_sealing_loses_nothing() {
    let dir = temp_dir("segments-crash-sealing");
    let store = open_store(&dir).await;
    let journal_dir = dir.join("audit");
    {
        let journal = Journal::open_with_segment_size(&journal_dir, 1 << 30).await.unwrap();
        record(&journal, 0, 30).await;
    }
    std::fs::rename(journal_dir.join("journal.jsonl"), journal_dir.join("journal-00000000000000000001.jsonl")).unwrap();

    let journal = Journal::open_with_segment_size(&journal_dir, 1 << 30).await.unwrap();
    record(&journal, 30, 60).await;
    let delivery = Delivery::new(store, journal.path().to_path_buf(), &[7; 32]).unwrap();
    drain(&delivery).await;

    assert_delivered(&delivery, 60).await;
    assert_eq!(sealed_segments(&journal_dir), Vec::<PathBuf>::new());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A crash after delivery committed a position in a later segment and before
/// it deleted the earlier one leaves a delivered segment behind.
#[tokio::test]
async fn crash_before_deleting_repeats_nothing() {
    let dir = temp_dir("segments-crash-deleting");
    let store = open_store(&dir).await;
    let journal_dir = dir.join("audit");
    let journal = Journal::open_with_segment_size(&journal_dir, SEGMENT_BYTES).await.unwrap();
    let delivery = Delivery::new(store, journal.path().to_path_buf(), &[7; 32]).unwrap();

    record(&journal, 0, 100).await;
    let sealed_copies: Vec<(PathBuf, Vec<u8>)> =
        sealed_segments(&journal_dir).into_iter().map(|path| (path.clone(), std::fs::read(&path).unwrap())).collect();
    assert!(!sealed_copies.is_empty(), "expected sealed segments");
    drain(&delivery).await;
    for (path, bytes) in &sealed_copies {
        std::fs::write(path, bytes).unwrap();
    }
    record(&journal, 100, 150).await;
    drain(&delivery).await;

    assert_delivered(&delivery, 150).await;
    let left = sealed_segments(&journal_dir);
    assert!(sealed_copies.iter().all(|(path, _)| !left.contains(path)), "restored segments were not deleted: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Delivery that starts with the first segments already sealed, as after an
/// upgrade from a journal that was never sealed, starts at the oldest one.
#[tokio::test]
async fn first_delivery_starts_at_oldest_segment() {
    let dir = temp_dir("segments-first-delivery");
    let store = open_store(&dir).await;
    let journal = Journal::open_with_segment_size(&dir.join("audit"), SEGMENT_BYTES).await.unwrap();
    record(&journal, 0, 80).await;

    let delivery = Delivery::new(store, journal.path().to_path_buf(), &[7; 32]).unwrap();
    drain(&delivery).await;
    assert_delivered(&delivery, 80).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A sealed segment that ends in a partial line, which no acknowledged event
/// can be, does not stop delivery at that line.
#[tokio::test]
async fn torn_end_of_sealed_segment_is_skipped() {
    let dir = temp_dir("segments-torn-end");
    let store = open_store(&dir).await;
    let journal_dir = dir.join("audit");
    let journal = Journal::open_with_segment_size(&journal_dir, SEGMENT_BYTES).await.unwrap();
    record(&journal, 0, 80).await;
    let oldest = sealed_segments(&journal_dir).into_iter().next().expect("a sealed segment");
    use std::io::Write;
    std::fs::OpenOptions::new().append(true).open(&oldest).unwrap().write_all(b"{\"seq\":999,\"ev").unwrap();

    let delivery = Delivery::new(store, journal.path().to_path_buf(), &[7; 32]).unwrap();
    drain(&delivery).await;
    assert_delivered(&delivery, 80).await;
    assert!(!oldest.exists(), "the delivered segment {oldest:?} was kept");
    let _ = std::fs::remove_dir_all(&dir);
}
