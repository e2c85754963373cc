//! OIDC WIF configurations.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use keyless_federation::{OidcConfig, OidcConfigInput};
use keyless_policy::actions::cwobject;
use keyless_store::{WifRecord, now_millis};
use serde_json::{Value, json};

use crate::keys::rfc3339;
use crate::wif_cache::{WifDocument, parse_record};
use crate::{ApiError, ApiState, json};

const KIND: &str = <OidcConfig as WifDocument>::KIND;

fn parse_input(body: &Bytes, caller_org: &str) -> Result<OidcConfigInput, ApiError> {
    let input: OidcConfigInput = json::parse(body)?;
    if input.org_id != caller_org {
        return Err(ApiError::forbidden(format!("orgId {:?} is not your organization {caller_org:?}", input.org_id)));
    }
    Ok(input)
}

fn to_record(config: &OidcConfig, created_at: i64) -> Result<WifRecord, ApiError> {
    Ok(WifRecord {
        id: config.id.clone(),
        org_id: config.org_id.clone(),
        kind: KIND.into(),
        name: config.name.clone(),
        document: serde_json::to_string(config).map_err(|_| ApiError::internal())?,
        created_at,
        updated_at: now_millis(),
    })
}

pub async fn create_oidc(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = state.authorize(&headers, cwobject::CREATE_WIF_CONFIG).await?;
    let input = parse_input(&body, &caller.org)?;
    let now = now_millis();
    let stamp = rfc3339(now / 1000);
    let config = input
        .into_config(uuid::Uuid::new_v4().simple().to_string(), stamp.clone(), stamp)
        .map_err(|err| ApiError::bad_request(err.to_string()))?;
    state.store.insert_wif(&to_record(&config, now)?).await?;
    state.wif_cache.forget_org(&caller.org);
    state.refresh().await;
    tracing::info!(org = %caller.org, by = %caller.principal, config = %config.id, issuer = %config.issuer_url, "OIDC configuration created");
    state.audit_control(&caller, cwobject::CREATE_WIF_CONFIG, &config.id).await;
    Ok((StatusCode::CREATED, Json(json!(config))))
}

pub async fn list_oidc(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, cwobject::LIST_WIF_CONFIG).await?;
    let configs = state.store.list_wif(&caller.org, KIND).await?.iter().map(parse_record::<OidcConfig>).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({ "configs": configs })))
}

async fn load(state: &ApiState, org: &str, id: &str) -> Result<(WifRecord, OidcConfig), ApiError> {
    match state.store.wif(id).await? {
        Some(record) if record.org_id == org && record.kind == KIND => {
            let config = parse_record::<OidcConfig>(&record)?;
            Ok((record, config))
        }
        _ => Err(ApiError::not_found(format!("OIDC configuration {id:?} does not exist"))),
    }
}

pub async fn get_oidc(State(state): State<Arc<ApiState>>, headers: HeaderMap, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, cwobject::LIST_WIF_CONFIG).await?;
    let (_, config) = load(&state, &caller.org, &id).await?;
    Ok(Json(json!(config)))
}

pub async fn replace_oidc(State(state): State<Arc<ApiState>>, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, cwobject::CREATE_WIF_CONFIG).await?;
    let (record, old) = load(&state, &caller.org, &id).await?;
    let input = parse_input(&body, &caller.org)?;
    let config = input
        .into_config(id, old.created_at, rfc3339(now_millis() / 1000))
        .map_err(|err| ApiError::bad_request(err.to_string()))?;
    if !state.store.update_wif(&to_record(&config, record.created_at)?).await? {
        return Err(ApiError::not_found(format!("OIDC configuration {:?} does not exist", config.id)));
    }
    state.wif_cache.forget_org(&caller.org);
    state.refresh().await;
    state.audit_control(&caller, cwobject::CREATE_WIF_CONFIG, &config.id).await;
    Ok(Json(json!(config)))
}

pub async fn delete_oidc(State(state): State<Arc<ApiState>>, headers: HeaderMap, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let caller = state.authorize(&headers, cwobject::DELETE_WIF_CONFIG).await?;
    if !state.store.delete_wif(&caller.org, KIND, &id).await? {
        return Err(ApiError::not_found(format!("OIDC configuration {id:?} does not exist")));
    }
    state.wif_cache.forget_org(&caller.org);
    state.refresh().await;
    state.audit_control(&caller, cwobject::DELETE_WIF_CONFIG, &id).await;
    Ok(StatusCode::NO_CONTENT)
}
