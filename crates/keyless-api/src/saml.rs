//! SAML: the configuration type behind `/v1/keyless/wif/saml`, keyless's SP
//! metadata, and the exchange of a signed SAML response for credentials
//! (`POST /v1/cwobject/temporary-credentials/saml`, and STS
//! `AssumeRoleWithSAML` through `exchange_saml_response`).
//!
//! Built only with the `saml` feature; without it, `router` returns 501 for
//! these paths.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyless_audit::AuditEvent;
use keyless_federation::config::ConfigError;
use keyless_federation::saml::{RequestedRole, SamlConfig, SamlConfigInput, SamlDefaults, SamlExchangeError, VerifiedSaml};
use keyless_policy::actions::cwobject;
use keyless_store::now_millis;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::exchange::{DurationBounds, ExchangeRequest, Exchanged, Provider, VerifiedIdentity, exchange};
use crate::keys::rfc3339;
use crate::wif::WifConfig;
use crate::wif_cache::WifDocument;
use crate::{ApiError, ApiState, json};

impl WifConfig for SamlConfig {
    type Input = SamlConfigInput;
    const LABEL: &'static str = "SAML";

    fn input_org(input: &SamlConfigInput) -> &str {
        &input.org_id
    }

    fn build(input: SamlConfigInput, state: &ApiState, id: String, created_at: String, now: i64) -> Result<Self, ConfigError> {
        let defaults = SamlDefaults { public_api_url: state.public_api_url.clone() };
        input.into_config(id, created_at, rfc3339(now), &defaults, now)
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

/// `GET /v1/keyless/wif/saml/{id}/metadata`: the SP metadata an IdP
/// administrator imports to trust keyless under this configuration.
pub async fn sp_metadata(State(state): State<Arc<ApiState>>, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, ApiError> {
    let caller = state.authorize(&headers, cwobject::LIST_WIF_CONFIG).await?;
    let (_, config) = crate::wif::load::<SamlConfig>(&state, &caller.org, &id).await?;
    let xml = keyless_saml::sp_metadata(&config.sp_entity_id, &config.acs_urls);
    Ok(([(header::CONTENT_TYPE, "application/samlmetadata+xml")], xml).into_response())
}

impl WifDocument for SamlConfig {
    const KIND: &'static str = "saml";
}

/// The body of `POST /v1/cwobject/temporary-credentials/saml`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SamlExchangeBody {
    #[serde(default)]
    duration_seconds: u64,
    org_id: String,
    #[serde(default)]
    saml_response: String,
    #[serde(default)]
    config_id: Option<String>,
    #[serde(default)]
    attributes: BTreeMap<String, String>,
}

/// Maps a rejected SAML exchange to the API error. The codes are those of the
/// OIDC exchange, so the STS mapping gives AWS SDKs the codes they expect.
fn saml_error(err: &SamlExchangeError) -> ApiError {
    use keyless_saml::SamlError;
    let (status, code) = match err {
        SamlExchangeError::Missing => (StatusCode::UNAUTHORIZED, "MissingToken"),
        SamlExchangeError::Verify(SamlError::AssertionExpired { .. }) => (StatusCode::UNAUTHORIZED, "ExpiredToken"),
        SamlExchangeError::Condition(_) => (StatusCode::FORBIDDEN, "IDPRejectedClaim"),
        SamlExchangeError::Role(_) => (StatusCode::FORBIDDEN, "AccessDenied"),
        _ => (StatusCode::UNAUTHORIZED, "InvalidIdentityToken"),
    };
    ApiError::new(status, code, err.to_string())
}

/// `POST /v1/cwobject/temporary-credentials/saml`.
pub async fn exchange_saml(State(state): State<Arc<ApiState>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body: SamlExchangeBody = json::parse(&body)?;
    let request = ExchangeRequest {
        org: &body.org_id,
        provider: Provider::Saml,
        token: &body.saml_response,
        config_id: body.config_id.as_deref(),
        config_name: None,
        duration_seconds: body.duration_seconds,
        attributes: body.attributes,
        server_attributes: BTreeMap::new(),
        session_policy: None,
    };
    let done = exchange_saml_response(&state, request, None).await?;
    Ok(Json(done.to_json()))
}

/// Runs one SAML exchange (see `exchange::exchange`). `role` is the role an
/// `AssumeRoleWithSAML` call requests.
pub(crate) async fn exchange_saml_response(
    state: &ApiState,
    request: ExchangeRequest<'_>,
    role: Option<RequestedRole<'_>>,
) -> Result<Exchanged<VerifiedSaml>, ApiError> {
    let (org, response, config_id, config_name) = (request.org, request.token, request.config_id, request.config_name);
    exchange(state, request, async |event: &mut AuditEvent| verify(state, org, response, config_id, config_name, role.as_ref(), event).await).await
}

/// SAML verifications allowed to run at once. Each takes one core for up to
/// a fraction of a second, so they run on the blocking pool, and this bound
/// leaves cores to every other request even under a flood of large responses.
static VERIFICATION_SLOTS: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2))));

/// Runs `verify_saml` on the blocking pool once a verification slot is free.
async fn verify_off_runtime(
    response: &str,
    candidates: Vec<SamlConfig>,
    role: Option<&RequestedRole<'_>>,
    now: i64,
) -> Result<Result<VerifiedSaml, SamlExchangeError>, ApiError> {
    let _slot = VERIFICATION_SLOTS.acquire().await.map_err(|_| ApiError::internal())?;
    let response = response.to_owned();
    let role = role.map(|r| (r.org_id.to_owned(), r.role_arn.to_owned(), r.principal_arn.to_owned()));
    tokio::task::spawn_blocking(move || {
        let role = role.as_ref().map(|(org_id, role_arn, principal_arn)| RequestedRole { org_id, role_arn, principal_arn });
        keyless_federation::saml::verify_saml(&response, &candidates, role.as_ref(), now)
    })
    .await
    .map_err(|err| {
        tracing::error!(error = %err, "SAML verification task failed");
        ApiError::internal()
    })
}

/// Logs and audits a replayed assertion and returns the caller's error.
fn replayed(org: &str, assertion_id: &str, event: &mut AuditEvent) -> ApiError {
    tracing::info!(org, assertion = %assertion_id, "SAML exchange rejected: assertion replayed");
    event.reason = Some("assertion-replayed".into());
    ApiError::unauthorized(
        "InvalidIdentityToken",
        format!("assertion {assertion_id:?} was already used: a SAML assertion can be exchanged once, so replays are rejected"),
    )
}

/// Verifies a SAML response against the org's configurations, narrowed by
/// `config_id` and `config_name`, then claims its assertion id in the replay
/// cache. The id is claimed before the policy check, so an assertion is used
/// up even by an exchange that the org policies then deny.
async fn verify(
    state: &ApiState,
    org: &str,
    response: &str,
    config_id: Option<&str>,
    config_name: Option<&str>,
    role: Option<&RequestedRole<'_>>,
    event: &mut AuditEvent,
) -> Result<(VerifiedIdentity, VerifiedSaml), ApiError> {
    let response = response.trim();
    event.token_id = Some(keyless_audit::token_id(None, response));
    let configs = state.wif_cache.configs::<SamlConfig>(org).await?;
    if let Some(id) = config_id
        && !configs.iter().any(|c| c.id == id)
    {
        event.reason = Some("unknown-config".into());
        return Err(ApiError::not_found(format!("SAML configuration {id:?} does not exist in organization {org:?}")));
    }
    let candidates: Vec<SamlConfig> = configs
        .iter()
        .filter(|c| config_id.is_none_or(|id| c.id == id) && config_name.is_none_or(|name| c.name == name))
        .cloned()
        .collect();

    // A replayed assertion is rejected before the signature work, which costs
    // far more than this lookup. The claim after verification stays the check
    // that counts; this one only reads.
    if let Ok(peeked) = keyless_saml::peek(response)
        && let Some(assertion_id) = &peeked.assertion_id
        && state.store.saml_assertion_used(org, assertion_id).await?
    {
        return Err(replayed(org, assertion_id, event));
    }

    let now = now_millis() / 1000;
    let verified = match verify_off_runtime(response, candidates, role, now).await? {
        Ok(verified) => verified,
        Err(err) => {
            tracing::info!(org, reason = err.reason(), error = %err, "SAML exchange rejected");
            event.reason = Some(format!("{}: {err}", err.reason()));
            return Err(saml_error(&err));
        }
    };
    let assertion = &verified.assertion;
    event.token_id = Some(keyless_audit::token_id(Some(&assertion.assertion_id), response));
    // Kept past the assertion's expiry by the leeway, the longest it can still pass verification.
    let keep_until = (assertion.not_on_or_after + verified.config.leeway_seconds as i64).saturating_mul(1000);
    if !state.store.claim_saml_assertion(org, &assertion.assertion_id, keep_until).await? {
        return Err(replayed(org, &assertion.assertion_id, event));
    }

    let config = &verified.config;
    let mut session_attributes = verified.mapped_attributes.clone();
    session_attributes.insert("saml:sub".into(), verified.subject.clone());
    session_attributes.insert("saml:iss".into(), assertion.issuer.clone());
    let identity = VerifiedIdentity {
        principal: verified.principal.clone(),
        issuer: assertion.issuer.clone(),
        subject: verified.subject.clone(),
        config_id: config.id.clone(),
        config_name: config.name.clone(),
        duration_bounds: DurationBounds {
            min: config.min_duration_seconds,
            max: config.max_duration_seconds,
            default: config.default_duration_seconds,
        },
        session_attributes,
        token_id: keyless_audit::token_id(Some(&assertion.assertion_id), response),
        verified_at: now,
    };
    Ok((identity, verified))
}
