//! Static access keys, principal status and API tokens.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use keyless_auth::CallerKind;
use keyless_policy::actions::cwobject;
use keyless_store::{AccessKeyRecord, ChangeKind, KeyStatus, now_millis};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiError, ApiState, json};

/// Longest static key lifetime that may be requested, seconds (ten years).
const MAX_STATIC_DURATION: u64 = 10 * 365 * 24 * 3600;

pub(crate) fn rfc3339(unix_seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix_seconds)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CreateKeyRequest {
    #[serde(default)]
    duration_seconds: u64,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

pub async fn create_access_key(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, cwobject::CREATE_ACCESS_KEY).await?;
    let request: CreateKeyRequest = if body.is_empty() { CreateKeyRequest { duration_seconds: 0, attributes: BTreeMap::new() } } else { json::parse(&body)? };
    if request.duration_seconds > MAX_STATIC_DURATION {
        return Err(ApiError::bad_request(format!(
            "durationSeconds {} is too large: expected 0 (permanent) to {MAX_STATIC_DURATION}",
            request.duration_seconds
        )));
    }
    let minted = state.credentials.mint_static(&caller.org, &caller.principal, request.duration_seconds, request.attributes.clone()).await?;
    tracing::info!(org = %caller.org, principal = %caller.principal, access_key_id = %minted.access_key_id, "static access key created");
    state.audit_control(&caller, cwobject::CREATE_ACCESS_KEY, &minted.access_key_id).await;
    Ok(Json(json!({
        "accessKeyId": minted.access_key_id,
        "secretKey": minted.secret_key.expose(),
        "principalName": minted.principal,
        "expiry": minted.expires_at.map(rfc3339),
        "attributes": request.attributes,
    })))
}

fn key_info(record: &AccessKeyRecord) -> Value {
    let expired = record.expires_at.is_some_and(|exp| now_millis() >= exp);
    let status = if expired && record.status == KeyStatus::Active { "expired" } else { record.status.as_str() };
    json!({
        "accessKeyId": record.access_key_id,
        "principalName": record.principal,
        "status": status,
        "createdAt": rfc3339(record.created_at / 1000),
        "expiry": record.expires_at.map(|ms| rfc3339(ms / 1000)),
        "attributes": record.attributes,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    offset: Option<u32>,
    #[serde(default)]
    limit: Option<u32>,
    #[serde(default)]
    status: Option<String>,
}

pub async fn list_access_keys(State(state): State<Arc<ApiState>>, headers: HeaderMap, Query(query): Query<ListQuery>) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, cwobject::LIST_ACCESS_KEY_INFO).await?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit {limit} is out of range: expected 1 to 1000")));
    }
    let status = match query.status.as_deref() {
        None => None,
        Some(s) => Some(KeyStatus::parse(&s.to_ascii_lowercase()).ok_or_else(|| {
            ApiError::bad_request(format!("status {s:?} is invalid: expected active, suspended or revoked"))
        })?),
    };
    let keys = state.store.list_access_keys(&caller.org, status, query.offset.unwrap_or(0), limit).await?;
    Ok(Json(json!({ "accessKeys": keys.iter().map(key_info).collect::<Vec<_>>() })))
}

pub async fn get_access_key(State(state): State<Arc<ApiState>>, headers: HeaderMap, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, cwobject::LIST_ACCESS_KEY_INFO).await?;
    match state.store.access_key(&id).await? {
        Some(record) if record.org_id == caller.org => Ok(Json(key_info(&record))),
        _ => Err(ApiError::not_found(format!("access key {id:?} does not exist"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RevokeKeyRequest {
    access_key: String,
}

pub async fn revoke_access_key(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, cwobject::REVOKE_ACCESS_KEY).await?;
    let request: RevokeKeyRequest = json::parse(&body)?;
    let is_temporary = keyless_auth::Credentials::is_temporary(&request.access_key);
    let existed = state.store.revoke_access_key(&caller.org, &request.access_key).await?;
    if !existed && !is_temporary {
        return Err(ApiError::not_found(format!("access key {:?} does not exist", request.access_key)));
    }
    state.refresh().await;
    tracing::info!(org = %caller.org, by = %caller.principal, access_key_id = %request.access_key, "access key revoked");
    state.audit_control(&caller, cwobject::REVOKE_ACCESS_KEY, &request.access_key).await;
    Ok(Json(json!({ "accessKey": request.access_key, "status": "revoked" })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrincipalRequest {
    principal_name: String,
}

pub async fn revoke_principal(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, cwobject::REVOKE_ACCESS_KEY).await?;
    let request: PrincipalRequest = json::parse(&body)?;
    let count = state.store.record_principal_change(&caller.org, &request.principal_name, ChangeKind::PrincipalRevoked).await?;
    state.refresh().await;
    tracing::info!(org = %caller.org, by = %caller.principal, principal = %request.principal_name, "all keys of principal revoked");
    state.audit_control(&caller, cwobject::REVOKE_ACCESS_KEY, &request.principal_name).await;
    Ok(Json(json!({ "principalName": request.principal_name, "revokedStaticKeys": count })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StatusRequest {
    principal_name: String,
    status: String,
}

pub async fn set_principal_status(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, cwobject::UPDATE_ACCESS_KEY_STATUS).await?;
    let request: StatusRequest = json::parse(&body)?;
    let kind = match request.status.as_str() {
        "ACCESS_KEY_STATUS_ACTIVE" => ChangeKind::PrincipalReactivated,
        "ACCESS_KEY_STATUS_SUSPENDED" => ChangeKind::PrincipalSuspended,
        other => {
            return Err(ApiError::bad_request(format!(
                "status {other:?} is invalid: expected ACCESS_KEY_STATUS_ACTIVE or ACCESS_KEY_STATUS_SUSPENDED"
            )));
        }
    };
    state.store.record_principal_change(&caller.org, &request.principal_name, kind).await?;
    state.refresh().await;
    state.audit_control(&caller, cwobject::UPDATE_ACCESS_KEY_STATUS, &format!("{} {}", request.principal_name, request.status)).await;
    Ok(Json(json!({ "principalName": request.principal_name, "status": request.status })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    name: String,
}

pub async fn create_api_token(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = state.authorize(&headers, "cwobject:CreateAPIToken").await?;
    let request: TokenRequest = json::parse(&body)?;
    let valid = !request.name.is_empty()
        && request.name.len() <= 64
        && request.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if !valid {
        return Err(ApiError::bad_request(format!("name {:?} is invalid: expected 1 to 64 letters, digits, '-', '_', '.' or '@'", request.name)));
    }
    let (record, token) = state.credentials.mint_api_token(&caller.org, &request.name).await?;
    state.audit_control(&caller, "cwobject:CreateAPIToken", &format!("{} ({})", record.id, record.principal())).await;
    Ok((StatusCode::CREATED, Json(json!({ "id": record.id, "token": token.expose(), "principalName": record.principal() }))))
}

pub async fn list_api_tokens(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, "cwobject:ListAPIToken").await?;
    let tokens = state.store.list_api_tokens(&caller.org).await?;
    let tokens: Vec<Value> = tokens
        .iter()
        .map(|t| json!({ "id": t.id, "principalName": t.principal(), "createdAt": rfc3339(t.created_at / 1000) }))
        .collect();
    Ok(Json(json!({ "tokens": tokens })))
}

pub async fn delete_api_token(State(state): State<Arc<ApiState>>, headers: HeaderMap, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let caller = state.authorize(&headers, "cwobject:DeleteAPIToken").await?;
    if let CallerKind::ApiToken { token_id } = &caller.kind
        && *token_id == id
    {
        tracing::info!(principal = %caller.principal, "API token revoked by itself");
    }
    if !state.store.delete_api_token(&caller.org, &id).await? {
        return Err(ApiError::not_found(format!("API token {id:?} does not exist")));
    }
    state.refresh().await;
    state.audit_control(&caller, "cwobject:DeleteAPIToken", &id).await;
    Ok(StatusCode::NO_CONTENT)
}
