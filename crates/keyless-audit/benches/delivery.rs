//! CPU time per data-plane event of the audit path, without any S3 traffic.
//! The benchmark queues events in the journal (group commit and fsync), then
//! delivers them with the org's and bucket's audit logging off (index rows
//! only) and on (index rows plus batches in the audit bucket).
//!
//! The process's utime + stime is read from `/proc/self/stat` (Linux only)
//! around each phase and divided by the number of events. The events look like
//! those of a 4 KiB GET. Delivery runs in rounds of the size given on the
//! command line, as the background task would under load.
//!
//! Run: `cargo bench -p keyless-audit --bench delivery -- [events] [events per round]`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use keyless_audit::{AuditEvent, Decision, Delivery, EventKind, Journal};
use keyless_store::Store;

const ORG: &str = "default";
const BUCKET: &str = "bench";

/// CPU seconds (user plus system) of this process so far.
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat is readable");
    let fields: Vec<&str> = stat.rsplit_once(')').expect("stat has a command name").1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the file; field 3 is index 0 here.
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // The kernel reports these in clock ticks (USER_HZ), 1/100 s on x86-64 and
    // arm64 Linux.
    ticks as f64 / 100.0
}

fn get_event(index: usize) -> AuditEvent {
    let mut event = AuditEvent::new(EventKind::Data, ORG, "s3:GetObject", Decision::Allow);
    event.request_id = Some(format!("{:016X}", 0x5eed_0000_0000u64 + index as u64));
    event.operation = Some("GetObject".into());
    event.bucket = Some(BUCKET.into());
    event.key = Some(format!("cpu/get/{:06}", index % 256));
    event.principal = Some("user/admin".into());
    event.access_key_id = Some("KLAK7Q2W4E6R8T0Y2U4I".into());
    event.status = Some(200);
    event.source_ip = Some("127.0.0.1".into());
    event.user_agent = Some("bench".into());
    event.bytes = Some(4096);
    event.duration_ms = Some(0.412);
    event
}

struct Phase {
    name: &'static str,
    cpu_seconds: f64,
    wall_seconds: f64,
}

async fn measure(dir: &Path, events: usize, delivery_on: bool) -> Vec<Phase> {
    let _ = std::fs::remove_dir_all(dir);
    let store = Store::open(&dir.join("data")).await.expect("store opens");
    store.ensure_org(ORG).await.expect("org is created");
    store.create_bucket(BUCKET, ORG).await.expect("bucket is created");
    store.set_org_audit(ORG, delivery_on).await.expect("org setting is stored");
    store.set_bucket_audit(BUCKET, delivery_on).await.expect("bucket setting is stored");
    let journal = Journal::open(&dir.join("audit")).await.expect("journal opens");
    let delivery = Delivery::new(store.clone(), journal.path().to_path_buf(), &[9; 32]).expect("signing key derives");

    let mut phases = Vec::new();
    let (cpu, wall) = (process_cpu_seconds(), Instant::now());
    for index in 0..events {
        journal.record_nowait(get_event(index));
        // Let the writer commit groups as it would under a steady request rate.
        if index % 64 == 63 {
            tokio::task::yield_now().await;
        }
    }
    journal.record(get_event(events)).await.expect("last event is durable");
    phases.push(Phase { name: "journal", cpu_seconds: process_cpu_seconds() - cpu, wall_seconds: wall.elapsed().as_secs_f64() });
    assert_eq!(journal.dropped(), 0, "the journal queue dropped events; lower the event count");

    let (cpu, wall) = (process_cpu_seconds(), Instant::now());
    let mut delivered = 0;
    loop {
        let n = delivery.run_once().await.expect("delivery round succeeds");
        if n == 0 {
            break;
        }
        delivered += n;
    }
    assert_eq!(delivered, events + 1);
    let name = if delivery_on { "delivery on" } else { "delivery off" };
    phases.push(Phase { name, cpu_seconds: process_cpu_seconds() - cpu, wall_seconds: wall.elapsed().as_secs_f64() });
    let _ = std::fs::remove_dir_all(dir);
    phases
}

fn main() {
    // `cargo bench` passes `--bench`; only numeric arguments are read.
    let numbers: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let events = numbers.first().copied().unwrap_or(50_000);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime starts");
    let dir: PathBuf = std::env::temp_dir().join(format!("keyless-bench-delivery-{}", std::process::id()));
    println!("{events} GET events");
    for delivery_on in [false, true, false, true] {
        for phase in runtime.block_on(measure(&dir, events, delivery_on)) {
            println!(
                "{:<13} {:>8.2} µs CPU per event, {:>7.0} events/s",
                phase.name,
                phase.cpu_seconds / events as f64 * 1e6,
                events as f64 / phase.wall_seconds
            );
        }
    }
}
