//! `can-i` and `explain`: the answer to "may I?" and "why was I denied?".

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use keyless_policy::actions::cwobject;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{ApiError, ApiState, json};

/// Most action × resource pairs one can-i call may ask about.
const MAX_CAN_I_PAIRS: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CanIRequest {
    actions: Vec<String>,
    resources: Vec<String>,
}

/// `POST /v1/cwobject/auth/can-i`: true only if the caller may perform every
/// action on every resource. Callers ask about themselves, so no permission
/// beyond a valid API token is needed.
pub async fn can_i(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let caller = state.authenticate(&headers).await?;
    let request: CanIRequest = json::parse(&body)?;
    if request.actions.is_empty() || request.resources.is_empty() {
        return Err(ApiError::bad_request("actions and resources must each name at least one entry"));
    }
    if request.actions.len() * request.resources.len() > MAX_CAN_I_PAIRS {
        return Err(ApiError::bad_request(format!("at most {MAX_CAN_I_PAIRS} action and resource pairs may be asked at once")));
    }
    let context = crate::api_request_context(Some(&caller)).build();
    for action in &request.actions {
        for resource in &request.resources {
            let decision = state.authorizer.authorize(&caller.org, Some(&caller.principal), action, resource, &context).await;
            if !decision.allowed {
                return Ok(Json(json!({ "verdict": false })));
            }
        }
    }
    Ok(Json(json!({ "verdict": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExplainRequest {
    #[serde(default)]
    principal: Option<String>,
    #[serde(default)]
    access_key_id: Option<String>,
    action: String,
    resource: String,
    #[serde(default)]
    context: std::collections::BTreeMap<String, String>,
}

/// `POST /v1/keyless/explain`: the decision for a principal (or a static key's
/// principal) with every statement considered and why it matched or not.
/// Reading policies is what this reveals, so it needs `cwobject:ListAccessPolicy`.
pub async fn explain(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, cwobject::LIST_ACCESS_POLICY).await?;
    let request: ExplainRequest = json::parse(&body)?;
    let principal = match (&request.principal, &request.access_key_id) {
        (Some(principal), None) => principal.clone(),
        (None, Some(key_id)) => {
            if keyless_auth::Credentials::is_temporary(key_id) {
                return Err(ApiError::bad_request(
                    "temporary access keys are not stored, so they cannot be looked up: explain by principal instead",
                ));
            }
            match state.store.access_key(key_id).await? {
                Some(record) if record.org_id == caller.org => record.principal,
                _ => return Err(ApiError::not_found(format!("access key {key_id:?} does not exist"))),
            }
        }
        _ => return Err(ApiError::bad_request("give exactly one of principal and accessKeyId")),
    };
    // The context is what the caller says the request would carry; the
    // current time is filled in unless given.
    let mut builder = keyless_policy::Context::builder();
    if !request.context.keys().any(|k| k.eq_ignore_ascii_case("aws:CurrentTime")) {
        let now = time::OffsetDateTime::now_utc();
        builder = builder
            .value("aws:CurrentTime", now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default())
            .value("aws:EpochTime", now.unix_timestamp().to_string());
    }
    if let Some(name) = principal.strip_prefix("user/") {
        builder = builder.value("aws:username", name);
    }
    builder = builder.value("aws:userid", principal.clone()).value("cw:PrincipalOrgID", caller.org.clone());
    for (key, value) in &request.context {
        builder = builder.value(key, value.clone());
    }
    let context = builder.build();
    let decision = state.authorizer.explain(&caller.org, Some(&principal), &request.action, &request.resource, &context).await;
    Ok(Json(json!({
        "principal": principal,
        "action": request.action,
        "resource": request.resource,
        "allowed": decision.allowed,
        "reason": decision.decision.reason,
        "trace": decision.decision.trace,
    })))
}
