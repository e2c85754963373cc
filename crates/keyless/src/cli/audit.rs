//! `keyless audit`: query the audit trail and verify its hash chains.

use std::process::ExitCode;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::client::{ApiClient, ClientArgs};
use super::output::{Output, print_json, table, text};

#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    filters: Filters,
    /// Keep running and print new events as they are recorded, oldest first.
    #[arg(long)]
    follow: bool,
    /// Seconds between polls with --follow.
    #[arg(long, default_value_t = 2)]
    interval: u64,
    #[command(subcommand)]
    command: Option<AuditCommand>,
}

#[derive(clap::Subcommand, Debug)]
enum AuditCommand {
    /// Check the hash chains of the org's audit bucket. Prints every removed,
    /// reordered or edited batch and exits 1 if there is one.
    Verify,
}

/// Query filters; each narrows the result.
#[derive(clap::Args, Debug, Default)]
struct Filters {
    /// Earliest event time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Latest event time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Event kind: control, exchange or data.
    #[arg(long)]
    kind: Option<String>,
    #[arg(long)]
    principal: Option<String>,
    #[arg(long)]
    access_key_id: Option<String>,
    /// Session id: the exchange and every request made with its credentials.
    #[arg(long)]
    session_id: Option<String>,
    #[arg(long)]
    bucket: Option<String>,
    /// Object key prefix.
    #[arg(long)]
    prefix: Option<String>,
    #[arg(long)]
    action: Option<String>,
    /// allow or deny.
    #[arg(long)]
    decision: Option<String>,
    #[arg(long)]
    request_id: Option<String>,
    /// Events per page, 1 to 1000.
    #[arg(long, default_value_t = 100)]
    limit: u32,
}

impl Filters {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = vec![("limit", self.limit.to_string())];
        for (name, value) in [
            ("since", &self.since),
            ("until", &self.until),
            ("kind", &self.kind),
            ("principal", &self.principal),
            ("accessKeyId", &self.access_key_id),
            ("sessionId", &self.session_id),
            ("bucket", &self.bucket),
            ("prefix", &self.prefix),
            ("action", &self.action),
            ("decision", &self.decision),
            ("requestId", &self.request_id),
        ] {
            if let Some(value) = value {
                query.push((name, value.clone()));
            }
        }
        query
    }
}

const AUDIT_PATH: [&str; 3] = ["v1", "keyless", "audit"];

pub async fn run(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.client)?;
    let output = args.client.output;
    if let Some(AuditCommand::Verify) = args.command {
        return verify(&client, output).await;
    }

    let page = client.call_json(Method::GET, &AUDIT_PATH, &args.filters.query(), None).await?;
    let events = page.get("events").and_then(Value::as_array).cloned().unwrap_or_default();
    if !args.follow {
        match output {
            Output::Json => print_json(&page),
            Output::Text => print_events(&events),
        }
        return Ok(ExitCode::SUCCESS);
    }

    // Follow: print the newest page oldest first, then poll for events with
    // a higher sequence number than the last one printed.
    let mut last_seq = events.iter().filter_map(|e| e.get("seq").and_then(Value::as_u64)).max().unwrap_or(0);
    let mut shown: Vec<Value> = events.into_iter().rev().collect();
    loop {
        emit(&shown, output);
        tokio::time::sleep(Duration::from_secs(args.interval.max(1))).await;
        let page = client.call_json(Method::GET, &AUDIT_PATH, &args.filters.query(), None).await?;
        let fresh: Vec<Value> = page
            .get("events")
            .and_then(Value::as_array)
            .map(|events| events.iter().filter(|e| e.get("seq").and_then(Value::as_u64).is_some_and(|s| s > last_seq)).cloned().collect())
            .unwrap_or_default();
        // NOTE: more than one page of new events between two polls prints only
        // the newest page; lower --interval for busy organizations.
        last_seq = fresh.iter().filter_map(|e| e.get("seq").and_then(Value::as_u64)).max().unwrap_or(last_seq);
        shown = fresh.into_iter().rev().collect();
    }
}

fn emit(events: &[Value], output: Output) {
    match output {
        Output::Json => {
            for event in events {
                println!("{event}");
            }
        }
        Output::Text => {
            for event in events {
                println!("{}", line(event));
            }
        }
    }
}

fn line(event: &Value) -> String {
    let subject = [text(event, "bucket"), text(event, "key")].iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>().join("/");
    let mut fields = vec![
        text(event, "time").to_owned(),
        text(event, "kind").to_owned(),
        text(event, "decision").to_owned(),
        text(event, "action").to_owned(),
        text(event, "principal").to_owned(),
    ];
    if !subject.is_empty() {
        fields.push(subject);
    }
    if let Some(status) = event.get("status").and_then(Value::as_u64) {
        fields.push(status.to_string());
    }
    let reason = text(event, "reason");
    if !reason.is_empty() {
        fields.push(format!("({reason})"));
    }
    fields.retain(|f| !f.is_empty());
    fields.join("  ")
}

fn print_events(events: &[Value]) {
    if events.is_empty() {
        println!("no events");
        return;
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                text(e, "time").to_owned(),
                text(e, "kind").to_owned(),
                text(e, "decision").to_owned(),
                text(e, "action").to_owned(),
                text(e, "principal").to_owned(),
                [text(e, "bucket"), text(e, "key")].iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>().join("/"),
                e.get("status").and_then(Value::as_u64).map(|s| s.to_string()).unwrap_or_default(),
                text(e, "requestId").to_owned(),
            ]
        })
        .collect();
    print!("{}", table(&["TIME", "KIND", "DECISION", "ACTION", "PRINCIPAL", "RESOURCE", "STATUS", "REQUEST"], &rows));
}

async fn verify(client: &ApiClient, output: Output) -> anyhow::Result<ExitCode> {
    let [v1, service, resource] = AUDIT_PATH;
    let report = client.call_json(Method::POST, &[v1, service, resource, "verify"], &[], Some(&json!({}))).await?;
    let ok = report.get("ok").and_then(Value::as_bool).unwrap_or(false);
    match output {
        Output::Json => print_json(&report),
        Output::Text => {
            let streams = report.get("streams").and_then(Value::as_object).cloned().unwrap_or_default();
            for (stream, result) in &streams {
                let batches = result.get("batches").and_then(Value::as_u64).unwrap_or(0);
                let events = result.get("events").and_then(Value::as_u64).unwrap_or(0);
                let verdict = if result.get("ok").and_then(Value::as_bool).unwrap_or(false) { "intact" } else { "TAMPERED" };
                println!("{stream}: {verdict} ({batches} batches, {events} events)");
                for problem in result.get("problems").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
                    println!("  {}", problem.as_str().unwrap_or_default());
                }
            }
            println!("checkpoint key: {}", text(&report, "publicKey"));
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
