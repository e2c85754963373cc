//! Delivery rounds that run at the same time, as when an audit query applies
//! the journal while the background task does, must still deliver every event
//! exactly once and keep each hash chain intact.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use keyless_audit::{AuditEvent, Decision, Delivery, EventKind, Journal};
use keyless_store::Store;

const ORG: &str = "default";
/// Pairs of rounds run while events arrive.
const ROUND_PAIRS: usize = 200;
const SIGNING_SEED: [u8; 32] = [7; 32];

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keyless-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn control_event(index: usize) -> AuditEvent {
    let mut event = AuditEvent::new(EventKind::Control, ORG, "cwobject:PutAccessPolicy", Decision::Allow);
    event.target = Some(format!("policy-{index}"));
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_rounds_deliver_each_event_once() {
    let dir = temp_dir("concurrent-rounds");
    let store = Store::open(&dir.join("data")).await.unwrap();
    store.ensure_org(ORG).await.unwrap();
    store.set_org_audit(ORG, true).await.unwrap();
    let journal = Journal::open(&dir.join("audit")).await.unwrap();
    let delivery = Arc::new(Delivery::new(store.clone(), journal.path().to_path_buf(), &SIGNING_SEED).unwrap());

    // Events keep arriving while pairs of rounds run, so that two rounds that
    // overlap see different ends of the journal.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let journal = journal.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut recorded = 0;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..5 {
                    journal.record_nowait(control_event(recorded));
                    recorded += 1;
                }
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            // The queue is first in, first out: once this event is durable, every
            // event before it is too.
            journal.record(control_event(recorded)).await.unwrap();
            recorded + 1
        })
    };
    for pair in 0..ROUND_PAIRS {
        let first = tokio::spawn({
            let delivery = delivery.clone();
            async move { delivery.run_once().await }
        });
        // Start the second round up to 2 ms later, at varying points of the
        // first, so that some pairs read different ends of the journal.
        tokio::time::sleep(std::time::Duration::from_micros(pair as u64 % 5 * 500)).await;
        let second = tokio::spawn({
            let delivery = delivery.clone();
            async move { delivery.run_once().await }
        });
        first.await.unwrap().unwrap();
        second.await.unwrap().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let recorded = writer.await.unwrap();
    while delivery.run_once().await.unwrap() > 0 {}

    let reports = delivery.verify_org(ORG).await.unwrap();
    let (_, control) = reports.iter().find(|(stream, _)| stream == "control-plane").unwrap();
    assert!(control.ok, "the control-plane chain is broken: {:?}", control.problems);
    assert_eq!(journal.dropped(), 0, "events dropped by the journal queue");
    assert_eq!(control.events, recorded as u64, "events delivered, counting repeats");
    let _ = std::fs::remove_dir_all(&dir);
}
