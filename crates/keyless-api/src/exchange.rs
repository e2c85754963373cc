//! Token exchange: an OIDC token in, temporary S3 credentials out.
//!
//! After the token passes the validation pipeline of `keyless_federation`, the
//! org policies must allow `cwobject:CreateAccessKeyOIDC` to the derived
//! principal, and a suspended principal gets nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use keyless_auth::SessionClaims;
use keyless_auth::session::SESSION_FORMAT;
use keyless_federation::{OidcConfig, VerifiedToken, VerifyError};
use keyless_policy::actions::cwobject;
use keyless_store::now_millis;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::keys::rfc3339;
use crate::wif::parse_record;
use crate::{ApiError, ApiState, bearer_token, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExchangeRequest {
    #[serde(default)]
    duration_seconds: u64,
    org_id: String,
    #[serde(default)]
    oidc_token: String,
    #[serde(default)]
    config_id: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

/// A successful exchange, before it is shaped for one of the wire formats.
pub(crate) struct Exchanged {
    pub minted: keyless_auth::MintedKey,
    pub attributes: BTreeMap<String, String>,
    pub verified: VerifiedToken,
}

pub(crate) fn verify_error(err: &VerifyError) -> ApiError {
    let (status, code) = match err {
        VerifyError::Missing => (StatusCode::UNAUTHORIZED, "MissingToken"),
        VerifyError::Expired => (StatusCode::UNAUTHORIZED, "ExpiredToken"),
        VerifyError::Keys(_) => (StatusCode::SERVICE_UNAVAILABLE, "IDPCommunicationError"),
        VerifyError::ClaimCondition(_) => (StatusCode::FORBIDDEN, "IDPRejectedClaim"),
        _ => (StatusCode::UNAUTHORIZED, "InvalidIdentityToken"),
    };
    ApiError::new(status, code, err.to_string())
}

/// Runs one OIDC exchange and records it in the audit journal, accepted or
/// rejected. `attributes` are the caller's own and are kept under `attr/`;
/// `server_attrs` are keys the server derived (such as `sts:RoleSessionName`).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn exchange(
    state: &ApiState,
    org: &str,
    token: &str,
    config_id: Option<&str>,
    config_name: Option<&str>,
    duration_seconds: u64,
    attributes: BTreeMap<String, String>,
    server_attrs: BTreeMap<String, String>,
    session_policy: Option<String>,
) -> Result<Exchanged, ApiError> {
    let mut event = keyless_audit::AuditEvent::new(
        keyless_audit::EventKind::Exchange,
        org,
        cwobject::CREATE_ACCESS_KEY_OIDC,
        keyless_audit::Decision::Deny,
    );
    event.request_id = Some(crate::current_request_id()).filter(|id| !id.is_empty());
    if !token.trim().is_empty() {
        event.token_id = Some(keyless_audit::token_id(unverified_jti(token).as_deref(), token.trim()));
    }
    let result = run_exchange(state, org, token, config_id, config_name, duration_seconds, attributes, server_attrs, session_policy, &mut event).await;
    match &result {
        Ok(done) => {
            event.decision = keyless_audit::Decision::Allow;
            event.minted_key_id = Some(done.minted.access_key_id.clone());
            event.access_key_id = Some(done.minted.access_key_id.clone());
            state.metrics.count_exchange("oidc", "ok");
        }
        Err(err) => {
            event.status = Some(err.status.as_u16());
            if event.reason.is_none() {
                event.reason = Some(err.message.clone());
            }
            state.metrics.count_exchange("oidc", err.code);
        }
    }
    // Only orgs that exist get events; a token naming an unknown org is logged.
    if state.store.org_exists(org).await.unwrap_or(false)
        && let Err(err) = state.journal.record(event).await
    {
        tracing::error!(error = %err, "exchange could not be recorded in the audit journal");
        if result.is_ok() {
            // Credentials nobody can trace back must not be handed out.
            return Err(ApiError::internal());
        }
    }
    result
}

/// Reads the token's `jti` without verification, only to name the token in
/// audit events.
fn unverified_jti(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.trim().split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("jti")?.as_str().map(|s| s.chars().take(256).collect())
}

#[allow(clippy::too_many_arguments)]
async fn run_exchange(
    state: &ApiState,
    org: &str,
    token: &str,
    config_id: Option<&str>,
    config_name: Option<&str>,
    duration_seconds: u64,
    attributes: BTreeMap<String, String>,
    server_attrs: BTreeMap<String, String>,
    session_policy: Option<String>,
    event: &mut keyless_audit::AuditEvent,
) -> Result<Exchanged, ApiError> {
    if token.trim().is_empty() {
        event.reason = Some("token-missing".into());
        return Err(ApiError::unauthorized("MissingToken", "the OIDC token is missing: send it in oidcToken (or the Authorization header)"));
    }
    if !state.store.org_exists(org).await? {
        tracing::info!(org = %org.chars().take(64).collect::<String>(), "OIDC exchange rejected: unknown organization");
        return Err(ApiError::new(StatusCode::NOT_FOUND, "NoSuchOrganization", format!("organization {org:?} does not exist")));
    }

    let mut configs: Vec<OidcConfig> = Vec::new();
    for record in state.store.list_wif(org, "oidc").await? {
        configs.push(parse_record(&record)?);
    }
    if let Some(id) = config_id {
        configs.retain(|c| c.id == id);
        if configs.is_empty() {
            event.reason = Some("unknown-config".into());
            return Err(ApiError::not_found(format!("OIDC configuration {id:?} does not exist in organization {org:?}")));
        }
    }
    if let Some(name) = config_name
        && configs.iter().any(|c| c.name == name)
    {
        configs.retain(|c| c.name == name);
    }

    let now = now_millis() / 1000;
    let verified: VerifiedToken = match state.oidc.verify(org, token, &configs, now).await {
        Ok(verified) => verified,
        Err(err) => {
            tracing::info!(org, reason = err.reason(), error = %err, "OIDC exchange rejected");
            event.reason = Some(format!("{}: {err}", err.reason()));
            return Err(verify_error(&err));
        }
    };
    let config = verified.config.clone();
    event.issuer = Some(verified.issuer.clone());
    event.subject = Some(verified.subject.clone());
    event.config_id = Some(config.id.clone());
    event.principal = Some(verified.principal.clone());
    if let Some(jti) = verified.claims.get("jti").and_then(serde_json::Value::as_str) {
        event.token_id = Some(keyless_audit::token_id(Some(jti), token));
    }

    let duration = match duration_seconds {
        0 => config.default_duration_seconds,
        d if (config.min_duration_seconds..=config.max_duration_seconds).contains(&d) => d,
        d => {
            event.reason = Some("duration-out-of-bounds".into());
            return Err(ApiError::bad_request(format!(
                "durationSeconds {d} is outside the bounds of configuration {:?}: expected {} to {}",
                config.name, config.min_duration_seconds, config.max_duration_seconds
            )));
        }
    };

    // Session attributes: claims the server read from the verified token,
    // server-derived keys, and the caller's own attributes under `attr/`.
    let mut session_attrs = server_attrs;
    session_attrs.extend(verified.mapped_attributes.clone());
    session_attrs.insert("jwt:sub".into(), verified.subject.clone());
    session_attrs.insert("jwt:iss".into(), verified.issuer.clone());
    for (key, value) in &attributes {
        session_attrs.insert(format!("attr/{key}"), value.clone());
    }

    if state.credentials.is_suspended(org, &verified.principal) {
        tracing::info!(org, principal = %verified.principal, "OIDC exchange rejected: principal suspended");
        event.reason = Some("principal-suspended".into());
        return Err(ApiError::forbidden(format!("the principal {:?} is suspended", verified.principal)));
    }
    let mut context = keyless_policy::Context::builder();
    for (key, value) in &session_attrs {
        if keyless_auth::context::SERVER_KEY_PREFIXES.iter().any(|p| key.starts_with(p)) {
            context = context.value(key, value.clone());
        }
    }
    let decision = state.authorizer.authorize(org, Some(&verified.principal), cwobject::CREATE_ACCESS_KEY_OIDC, "*", &context.build()).await;
    if !decision.allowed {
        tracing::info!(org, principal = %verified.principal, "OIDC exchange rejected: no policy allows cwobject:CreateAccessKeyOIDC");
        event.reason = Some("policy-denied".into());
        return Err(ApiError::forbidden(format!(
            "no policy allows {} to perform {}",
            verified.principal,
            cwobject::CREATE_ACCESS_KEY_OIDC
        )));
    }

    let session_id = uuid::Uuid::new_v4().simple().to_string();
    event.session_id = Some(session_id.clone());
    let claims = SessionClaims {
        v: SESSION_FORMAT,
        ak: String::new(),
        org: org.to_owned(),
        principal: verified.principal.clone(),
        sid: session_id,
        cfg: config.id.clone(),
        iat: now,
        exp: now + duration as i64,
        policy: session_policy,
        attrs: session_attrs,
    };
    let minted = state.credentials.mint_temporary(claims);
    tracing::info!(
        org,
        principal = %verified.principal,
        config = %config.id,
        access_key_id = %minted.access_key_id,
        "OIDC exchange accepted"
    );
    Ok(Exchanged { minted, attributes, verified })
}

/// `POST /v1/cwobject/temporary-credentials/oidc`.
pub async fn exchange_oidc(State(state): State<Arc<ApiState>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let request: ExchangeRequest = json::parse(&body)?;
    let done = exchange(&state, &request.org_id, &request.oidc_token, request.config_id.as_deref(), None, request.duration_seconds, request.attributes, BTreeMap::new(), None).await?;
    let minted = done.minted;
    Ok(Json(json!({
        "accessKeyId": minted.access_key_id,
        "secretKey": minted.secret_key.expose(),
        "sessionToken": minted.session_token.as_ref().map(|t| t.expose()),
        "principalName": minted.principal,
        "expiry": minted.expires_at.map(rfc3339),
        "attributes": done.attributes,
    })))
}

/// `GET /v1/cwobject/temporary-credentials/oidc/{orgId}`: the AWS
/// container-credentials protocol, with the JWT in `Authorization`.
pub async fn container_credentials(State(state): State<Arc<ApiState>>, Path(org): Path<String>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let token = bearer_token(&headers).ok_or_else(|| {
        ApiError::unauthorized(
            "MissingToken",
            "the OIDC token is missing: send it in the Authorization header (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)",
        )
    })?;
    let done = exchange(&state, &org, token, None, None, 0, BTreeMap::new(), BTreeMap::new(), None).await?;
    let minted = done.minted;
    Ok(Json(json!({
        "AccessKeyId": minted.access_key_id,
        "SecretAccessKey": minted.secret_key.expose(),
        "Token": minted.session_token.as_ref().map(|t| t.expose()),
        "Expiration": minted.expires_at.map(rfc3339),
    })))
}
