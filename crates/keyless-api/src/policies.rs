//! Organization access policies.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use keyless_policy::OrgPolicy;
use keyless_policy::actions::cwobject;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiError, ApiState, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutPolicyRequest {
    policy: OrgPolicy,
}

pub async fn put_policy(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, cwobject::ENSURE_ACCESS_POLICY).await?;
    let request: PutPolicyRequest = json::parse(&body)?;
    request.policy.validate().map_err(|err| ApiError::bad_request(err.to_string()))?;
    let document = serde_json::to_string(&request.policy).map_err(|_| ApiError::internal())?;
    state.store.put_policy(&caller.org, &request.policy.name, &document).await?;
    state.refresh().await;
    tracing::info!(org = %caller.org, by = %caller.principal, policy = %request.policy.name, "org policy stored");
    state.audit_control(&caller, cwobject::ENSURE_ACCESS_POLICY, &request.policy.name).await;
    Ok(Json(json!({ "policy": request.policy })))
}

pub async fn list_policies(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, cwobject::LIST_ACCESS_POLICY).await?;
    let mut policies = Vec::new();
    for (_, document) in state.store.list_policies(&caller.org).await? {
        policies.push(serde_json::from_str::<Value>(&document).map_err(|_| ApiError::internal())?);
    }
    Ok(Json(json!({ "policies": policies })))
}

pub async fn delete_policy(State(state): State<Arc<ApiState>>, headers: HeaderMap, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    let caller = state.authorize(&headers, cwobject::DELETE_ACCESS_POLICY).await?;
    if !state.store.delete_policy(&caller.org, &name).await? {
        return Err(ApiError::not_found(format!("policy {name:?} does not exist")));
    }
    state.refresh().await;
    tracing::info!(org = %caller.org, by = %caller.principal, policy = %name, "org policy deleted");
    state.audit_control(&caller, cwobject::DELETE_ACCESS_POLICY, &name).await;
    Ok(StatusCode::NO_CONTENT)
}
