//! WIF configuration endpoints, shared by OIDC (`/v1/keyless/wif/oidc`) and
//! SAML (`/v1/keyless/wif/saml`): create, list, read, replace and delete.
//!
//! Each handler is generic over the configuration type, which defines through
//! `WifConfig` how its request body is validated into the stored document.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use keyless_federation::config::ConfigError;
use keyless_federation::{OidcConfig, OidcConfigInput};
use keyless_policy::actions::cwobject;
use keyless_store::{WifRecord, now_millis};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::keys::rfc3339;
use crate::wif_cache::{WifDocument, parse_record};
use crate::{ApiError, ApiState, json};

/// A WIF configuration type as the API creates and replaces it.
pub(crate) trait WifConfig: WifDocument + Serialize {
    /// The request body of create and replace.
    type Input: DeserializeOwned;
    /// The protocol's name in messages and logs.
    const LABEL: &'static str;

    fn input_org(input: &Self::Input) -> &str;

    /// Validates `input` and builds the stored document. `now` is Unix seconds.
    fn build(input: Self::Input, state: &ApiState, id: String, created_at: String, now: i64) -> Result<Self, ConfigError>;

    fn id(&self) -> &str;
    fn org_id(&self) -> &str;
    fn name(&self) -> &str;
    fn created_at(&self) -> &str;
}

impl WifConfig for OidcConfig {
    type Input = OidcConfigInput;
    const LABEL: &'static str = "OIDC";

    fn input_org(input: &OidcConfigInput) -> &str {
        &input.org_id
    }

    fn build(input: OidcConfigInput, _: &ApiState, id: String, created_at: String, now: i64) -> Result<Self, ConfigError> {
        input.into_config(id, created_at, rfc3339(now))
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn org_id(&self) -> &str {
        &self.org_id
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn created_at(&self) -> &str {
        &self.created_at
    }
}

fn parse_input<C: WifConfig>(body: &Bytes, caller_org: &str) -> Result<C::Input, ApiError> {
    let input: C::Input = json::parse(body)?;
    let org = C::input_org(&input);
    if org != caller_org {
        return Err(ApiError::forbidden(format!("orgId {org:?} is not your organization {caller_org:?}")));
    }
    Ok(input)
}

fn to_record<C: WifConfig>(config: &C, created_at: i64) -> Result<WifRecord, ApiError> {
    Ok(WifRecord {
        id: config.id().to_owned(),
        org_id: config.org_id().to_owned(),
        kind: C::KIND.into(),
        name: config.name().to_owned(),
        document: serde_json::to_string(config).map_err(|_| ApiError::internal())?,
        created_at,
        updated_at: now_millis(),
    })
}

fn not_found<C: WifConfig>(id: &str) -> ApiError {
    ApiError::not_found(format!("{} configuration {id:?} does not exist", C::LABEL))
}

/// `POST /v1/keyless/wif/{kind}`.
pub async fn create<C: WifConfig>(State(state): State<Arc<ApiState>>, headers: HeaderMap, body: Bytes) -> Result<(StatusCode, Json<Value>), ApiError> {
    let caller = state.authorize(&headers, cwobject::CREATE_WIF_CONFIG).await?;
    let input = parse_input::<C>(&body, &caller.org)?;
    let now = now_millis();
    let config = C::build(input, &state, uuid::Uuid::new_v4().simple().to_string(), rfc3339(now / 1000), now / 1000)
        .map_err(|err| ApiError::bad_request(err.to_string()))?;
    state.store.insert_wif(&to_record(&config, now)?).await?;
    state.wif_cache.forget_org(&caller.org);
    state.refresh().await;
    tracing::info!(org = %caller.org, by = %caller.principal, config = %config.id(), kind = C::KIND, "WIF configuration created");
    state.audit_control(&caller, cwobject::CREATE_WIF_CONFIG, config.id()).await;
    Ok((StatusCode::CREATED, Json(json!(config))))
}

/// `GET /v1/keyless/wif/{kind}`.
pub async fn list<C: WifConfig>(State(state): State<Arc<ApiState>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, cwobject::LIST_WIF_CONFIG).await?;
    let configs = state.store.list_wif(&caller.org, C::KIND).await?.iter().map(parse_record::<C>).collect::<Result<Vec<_>, _>>()?;
    Ok(Json(json!({ "configs": configs })))
}

/// Reads one configuration of the caller's org.
pub(crate) async fn load<C: WifConfig>(state: &ApiState, org: &str, id: &str) -> Result<(WifRecord, C), ApiError> {
    match state.store.wif(id).await? {
        Some(record) if record.org_id == org && record.kind == C::KIND => {
            let config = parse_record::<C>(&record)?;
            Ok((record, config))
        }
        _ => Err(not_found::<C>(id)),
    }
}

/// `GET /v1/keyless/wif/{kind}/{id}`.
pub async fn get<C: WifConfig>(State(state): State<Arc<ApiState>>, headers: HeaderMap, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, cwobject::LIST_WIF_CONFIG).await?;
    let (_, config) = load::<C>(&state, &caller.org, &id).await?;
    Ok(Json(json!(config)))
}

/// `PUT /v1/keyless/wif/{kind}/{id}`: replaces the whole configuration.
pub async fn replace<C: WifConfig>(State(state): State<Arc<ApiState>>, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let caller = state.authorize(&headers, cwobject::CREATE_WIF_CONFIG).await?;
    let (record, old) = load::<C>(&state, &caller.org, &id).await?;
    let input = parse_input::<C>(&body, &caller.org)?;
    let config = C::build(input, &state, id, old.created_at().to_owned(), now_millis() / 1000).map_err(|err| ApiError::bad_request(err.to_string()))?;
    if !state.store.update_wif(&to_record(&config, record.created_at)?).await? {
        return Err(not_found::<C>(config.id()));
    }
    state.wif_cache.forget_org(&caller.org);
    state.refresh().await;
    state.audit_control(&caller, cwobject::CREATE_WIF_CONFIG, config.id()).await;
    Ok(Json(json!(config)))
}

/// `DELETE /v1/keyless/wif/{kind}/{id}`.
pub async fn delete<C: WifConfig>(State(state): State<Arc<ApiState>>, headers: HeaderMap, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let caller = state.authorize(&headers, cwobject::DELETE_WIF_CONFIG).await?;
    if !state.store.delete_wif(&caller.org, C::KIND, &id).await? {
        return Err(not_found::<C>(&id));
    }
    state.wif_cache.forget_org(&caller.org);
    state.refresh().await;
    state.audit_control(&caller, cwobject::DELETE_WIF_CONFIG, &id).await;
    Ok(StatusCode::NO_CONTENT)
}
