//! Helpers shared by the journal and delivery integration tests.
#![allow(dead_code)] // Each test file uses a different part.

use std::path::{Path, PathBuf};

use keyless_audit::{AuditEvent, Decision, Delivery, EventKind};
use keyless_store::Store;

pub const ORG: &str = "default";

/// Returns a fresh, not yet created directory for the test `name`.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keyless-audit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Builds the control-plane event numbered `index`.
pub fn event(index: usize) -> AuditEvent {
    let mut event = AuditEvent::new(EventKind::Control, ORG, "cwobject:PutAccessPolicy", Decision::Allow);
    event.target = Some(format!("policy-{index}"));
    event
}

/// Opens a store under `dir` whose org has audit logging enabled.
pub async fn open_store(dir: &Path) -> Store {
    let store = Store::open(&dir.join("data")).await.unwrap();
    store.ensure_org(ORG).await.unwrap();
    store.set_org_audit(ORG, true).await.unwrap();
    store
}

/// Runs delivery rounds until one delivers nothing.
pub async fn drain(delivery: &Delivery) {
    while delivery.run_once().await.unwrap() > 0 {}
}

/// Checks the delivered control-plane chain: intact, and exactly `events`
/// events, so none is lost or repeated.
pub async fn assert_delivered(delivery: &Delivery, events: u64) {
    let reports = delivery.verify_org(ORG).await.unwrap();
    let (_, control) = reports.iter().find(|(stream, _)| stream == "control-plane").unwrap();
    assert!(control.ok, "the control-plane chain is broken: {:?}", control.problems);
    assert_eq!(control.events, events, "events delivered, counting repeats");
}
