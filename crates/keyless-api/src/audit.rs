//! Audit settings, queries, chain verification and metrics.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use keyless_store::{AuditFilter, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiError, ApiState, json};

const GET_AUDIT: &str = "cwobject:GetAuditEvents";
const UPDATE_SETTINGS: &str = "cwobject:UpdateSettings";
/// Delivery rounds a query runs before it reads the index.
const MAX_CATCH_UP_ROUNDS: usize = 4;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Settings {
    audit_logging_enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrgSettingsRequest {
    settings: Settings,
}

/// `PUT /v1/cwobject/organization/settings`: turns delivery of the caller's
/// org audit events into `keyless-<org>-audit-logs` on or off.
pub async fn org_settings(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, UPDATE_SETTINGS).await?;
    let request: OrgSettingsRequest = json::parse(&body)?;
    let enabled = request.settings.audit_logging_enabled;
    state.store.set_org_audit(&caller.org, enabled).await?;
    if enabled {
        state.store.ensure_system_bucket(&keyless_audit::audit_bucket(&caller.org), &caller.org).await?;
    }
    state.audit_control(&caller, UPDATE_SETTINGS, &format!("organization auditLoggingEnabled={enabled}")).await;
    Ok(Json(json!({ "settings": { "auditLoggingEnabled": enabled }, "auditBucket": keyless_audit::audit_bucket(&caller.org) })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct BucketSettingsRequest {
    bucket_name: String,
    settings: Settings,
}

/// `PUT /v1/cwobject/bucket/settings`: turns delivery of one bucket's
/// data-plane events on or off (the org setting must be on too).
pub async fn bucket_settings(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, UPDATE_SETTINGS).await?;
    let request: BucketSettingsRequest = json::parse(&body)?;
    match state.store.bucket(&request.bucket_name).await? {
        Some(bucket) if bucket.org_id == caller.org => {}
        _ => return Err(ApiError::not_found(format!("bucket {:?} does not exist", request.bucket_name))),
    }
    let enabled = request.settings.audit_logging_enabled;
    state.store.set_bucket_audit(&request.bucket_name, enabled).await?;
    state.audit_control(&caller, UPDATE_SETTINGS, &format!("bucket {} auditLoggingEnabled={enabled}", request.bucket_name)).await;
    Ok(Json(json!({ "bucketName": request.bucket_name, "settings": { "auditLoggingEnabled": enabled } })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AuditQuery {
    since: Option<String>,
    until: Option<String>,
    kind: Option<String>,
    principal: Option<String>,
    access_key_id: Option<String>,
    session_id: Option<String>,
    bucket: Option<String>,
    prefix: Option<String>,
    action: Option<String>,
    decision: Option<String>,
    request_id: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Normalizes an RFC 3339 time to the form events are stored in, so that
/// string comparison orders them.
fn normalize_time(field: &str, value: &str) -> Result<String, ApiError> {
    let parsed = time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map_err(|_| ApiError::bad_request(format!("{field} {value:?} is not an RFC 3339 time")))?;
    let utc = parsed.to_offset(time::UtcOffset::UTC);
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    utc.format(&format).map_err(|_| ApiError::bad_request(format!("{field} {value:?} is out of range")))
}

/// Applies the journal now, so that a query sees the events recorded before
/// it. The rounds are bounded, so a query under heavy load answers with the
/// events delivered so far instead of waiting for the load to stop.
async fn catch_up(state: &ApiState) {
    for _ in 0..MAX_CATCH_UP_ROUNDS {
        match state.delivery.run_once().await {
            Ok(0) => break,
            Ok(_) => continue,
            Err(err) => {
                tracing::warn!(error = %err, "audit delivery during a query failed; results may lag");
                break;
            }
        }
    }
}

/// `GET /v1/keyless/audit`: events of the caller's org, newest first.
pub async fn query(State(state): State<Arc<ApiState>>, headers: HeaderMap, Query(q): Query<AuditQuery>) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, GET_AUDIT).await?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit {limit} is out of range: expected 1 to 1000")));
    }
    if let Some(kind) = &q.kind
        && !matches!(kind.as_str(), "control" | "exchange" | "data")
    {
        return Err(ApiError::bad_request(format!("kind {kind:?} is invalid: expected control, exchange or data")));
    }
    if let Some(decision) = &q.decision
        && !matches!(decision.as_str(), "allow" | "deny")
    {
        return Err(ApiError::bad_request(format!("decision {decision:?} is invalid: expected allow or deny")));
    }
    let before_seq = match &q.cursor {
        None => None,
        Some(c) => Some(c.parse::<u64>().map_err(|_| ApiError::bad_request(format!("cursor {c:?} is invalid: pass the nextCursor of the previous page")))?),
    };
    let filter = AuditFilter {
        org_id: caller.org.clone(),
        before_seq,
        since: q.since.as_deref().map(|v| normalize_time("since", v)).transpose()?,
        until: q.until.as_deref().map(|v| normalize_time("until", v)).transpose()?,
        kind: q.kind,
        principal: q.principal,
        access_key_id: q.access_key_id,
        session_id: q.session_id,
        bucket: q.bucket,
        prefix: q.prefix,
        action: q.action,
        decision: q.decision,
        request_id: q.request_id,
        limit,
    };
    catch_up(&state).await;
    let rows = state.store.query_audit(&filter).await?;
    let next_cursor = (rows.len() == limit as usize).then(|| rows.last().map(|(seq, _)| seq.to_string())).flatten();
    let events: Vec<Value> = rows
        .into_iter()
        .map(|(seq, text)| {
            let mut event: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if let Value::Object(map) = &mut event {
                map.insert("seq".into(), json!(seq));
            }
            event
        })
        .collect();
    Ok(Json(json!({ "events": events, "nextCursor": next_cursor })))
}

/// `POST /v1/keyless/audit/verify`: checks the hash chains of the caller's
/// org audit bucket and names every removed, reordered or edited batch.
pub async fn verify(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, GET_AUDIT).await?;
    catch_up(&state).await;
    let reports = state.delivery.verify_org(&caller.org).await.map_err(|err: StoreError| ApiError::from(err))?;
    let ok = reports.iter().all(|(_, r)| r.ok);
    let streams: serde_json::Map<String, Value> = reports.into_iter().map(|(stream, report)| (stream, json!(report))).collect();
    Ok(Json(json!({ "ok": ok, "publicKey": state.delivery.public_key_hex(), "streams": streams })))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<Arc<ApiState>>) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let gauges = [
        ("keyless_audit_journal_lag_bytes", "Audit journal bytes not yet delivered.", state.delivery.lag_bytes() as f64),
        (
            "keyless_audit_delivery_errors_total",
            "Audit delivery rounds that failed.",
            state.delivery.errors.load(std::sync::atomic::Ordering::Relaxed) as f64,
        ),
        ("keyless_audit_dropped_events_total", "Data-plane audit events dropped because the journal queue was full.", state.journal.dropped() as f64),
        (
            "keyless_jwks_fetches_total",
            "Discovery and key set fetch attempts.",
            state.oidc.jwks.fetch_attempts.load(std::sync::atomic::Ordering::Relaxed) as f64,
        ),
    ];
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render(&gauges))
}
