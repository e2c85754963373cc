//! Prometheus counters for S3 requests and token exchanges, rendered in the
//! text exposition format by `render`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Counters keyed by label values. Label values come from fixed sets
/// (operation names, status codes, reason names), so the series stay bounded.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    exchanges: Mutex<BTreeMap<(String, String), u64>>,
}

impl Metrics {
    pub fn count_request(&self, operation: &str, status: u16) {
        let mut map = self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry((operation.to_owned(), status)).or_default() += 1;
    }

    /// Counts an exchange by kind (`oidc`) and result (`ok` or a reason name).
    pub fn count_exchange(&self, kind: &str, result: &str) {
        let mut map = self.exchanges.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry((kind.to_owned(), result.to_owned())).or_default() += 1;
    }

    /// Renders these counters plus `gauges` (name, help, value).
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP keyless_s3_requests_total S3 requests by operation and HTTP status.");
        let _ = writeln!(out, "# TYPE keyless_s3_requests_total counter");
        for ((operation, status), count) in self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
            let _ = writeln!(out, "keyless_s3_requests_total{{operation=\"{operation}\",status=\"{status}\"}} {count}");
        }
        let _ = writeln!(out, "# HELP keyless_exchanges_total Token exchanges by kind and result.");
        let _ = writeln!(out, "# TYPE keyless_exchanges_total counter");
        for ((kind, result), count) in self.exchanges.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
            let _ = writeln!(out, "keyless_exchanges_total{{kind=\"{kind}\",result=\"{result}\"}} {count}");
        }
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}
