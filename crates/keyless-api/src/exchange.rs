//! Token exchange: an IdP token in, temporary S3 credentials out.
//!
//! `exchange` runs one exchange for either protocol and records it in the
//! audit journal, accepted or rejected. It takes the protocol's token
//! verification as a step: for OIDC that is `verify_oidc`, which runs the
//! validation pipeline of `keyless_federation` and yields a `VerifiedIdentity`.
//! Everything after verification is shared: the requested duration must lie
//! within the configuration's bounds, a suspended principal gets nothing, the
//! org policies must allow the protocol's action (`cwobject:CreateAccessKeyOIDC`
//! or `cwobject:CreateAccessKeySAML`) to the derived principal, and only then
//! are credentials minted.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use keyless_audit::AuditEvent;
use keyless_auth::session::SESSION_FORMAT;
use keyless_auth::{MintedKey, SessionClaims};
use keyless_federation::{OidcConfig, VerifiedToken, VerifyError};
use keyless_policy::actions::cwobject;
use keyless_store::now_millis;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::keys::rfc3339;
use crate::{ApiError, ApiState, bearer_token, json};

/// The body of `POST /v1/cwobject/temporary-credentials/oidc`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OidcExchangeBody {
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

/// The federation protocol of an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    Oidc,
    #[cfg_attr(not(feature = "saml"), expect(dead_code, reason = "the SAML endpoints need the saml feature"))]
    Saml,
}

impl Provider {
    /// The org policy action that must allow the derived principal.
    pub(crate) fn action(self) -> &'static str {
        match self {
            Provider::Oidc => cwobject::CREATE_ACCESS_KEY_OIDC,
            Provider::Saml => cwobject::CREATE_ACCESS_KEY_SAML,
        }
    }

    /// Returns the `kind` label of the `keyless_exchanges_total` metric.
    pub(crate) fn metrics_label(self) -> &'static str {
        match self {
            Provider::Oidc => "oidc",
            Provider::Saml => "saml",
        }
    }

    /// Returns the protocol's name for messages and logs.
    fn name(self) -> &'static str {
        match self {
            Provider::Oidc => "OIDC",
            Provider::Saml => "SAML",
        }
    }

    fn missing_token_message(self) -> &'static str {
        match self {
            Provider::Oidc => "the OIDC token is missing: send it in oidcToken (or the Authorization header)",
            Provider::Saml => "the SAML response is missing: send it in samlResponse (or SAMLAssertion)",
        }
    }
}

/// One exchange request, as the endpoint parsed it. Nothing here is verified.
pub(crate) struct ExchangeRequest<'a> {
    pub org: &'a str,
    pub provider: Provider,
    /// The IdP token as sent: a JWT, or a base64 SAML response.
    pub token: &'a str,
    /// Restricts the exchange to the configuration with this id; none with it is an error.
    pub config_id: Option<&'a str>,
    /// Prefers the configurations with this name; when none has it, all are candidates.
    pub config_name: Option<&'a str>,
    /// Requested lifetime of the credentials; 0 selects the configuration's default.
    pub duration_seconds: u64,
    /// The caller's own attributes, kept in the session under `attr/`.
    pub attributes: BTreeMap<String, String>,
    /// Session keys the endpoint derived, such as `sts:RoleSessionName`.
    pub server_attributes: BTreeMap<String, String>,
    /// A session policy that narrows what the credentials may do, already parsed once.
    pub session_policy: Option<String>,
}

/// Lifetime bounds of the credentials, in seconds, from the accepting configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DurationBounds {
    pub min: u64,
    pub max: u64,
    pub default: u64,
}

/// The identity a verified token proves, in a form shared by OIDC and SAML.
/// Build it only from a token whose verification succeeded.
pub(crate) struct VerifiedIdentity {
    pub principal: String,
    pub issuer: String,
    pub subject: String,
    pub config_id: String,
    pub config_name: String,
    pub duration_bounds: DurationBounds,
    /// Session keys taken from the token: mapped claims or attributes, and the
    /// protocol's fixed keys such as `jwt:sub` and `jwt:iss`.
    pub session_attributes: BTreeMap<String, String>,
    /// The token's name in audit events: its `jti` or assertion id, else a hash.
    pub token_id: String,
    /// Unix seconds at which the token was found valid; the credentials' `iat`.
    pub verified_at: i64,
}

/// A successful exchange, before it is shaped for one of the wire formats.
/// `verified` is the protocol's own result, such as the OIDC `VerifiedToken`.
pub(crate) struct Exchanged<V> {
    pub minted: MintedKey,
    pub attributes: BTreeMap<String, String>,
    pub verified: V,
}

impl<V> Exchanged<V> {
    /// Builds the response body of the JSON exchange endpoints (OIDC and SAML).
    pub(crate) fn to_json(&self) -> Value {
        let minted = &self.minted;
        json!({
            "accessKeyId": minted.access_key_id,
            "secretKey": minted.secret_key.expose(),
            "sessionToken": minted.session_token.as_ref().map(|t| t.expose()),
            "principalName": minted.principal,
            "expiry": minted.expires_at.map(rfc3339),
            "attributes": self.attributes,
        })
    }
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

/// Runs one exchange and records it in the audit journal, accepted or
/// rejected. `verify` checks the token against the org's configurations; when
/// it rejects, it sets the event's `token_id` and `reason`.
pub(crate) async fn exchange<V>(
    state: &ApiState,
    request: ExchangeRequest<'_>,
    verify: impl AsyncFnOnce(&mut AuditEvent) -> Result<(VerifiedIdentity, V), ApiError>,
) -> Result<Exchanged<V>, ApiError> {
    let org = request.org;
    let provider = request.provider;
    let mut event = AuditEvent::new(keyless_audit::EventKind::Exchange, org, provider.action(), keyless_audit::Decision::Deny);
    event.request_id = Some(crate::current_request_id()).filter(|id| !id.is_empty());

    let result = async {
        if request.token.trim().is_empty() {
            event.reason = Some("token-missing".into());
            return Err(ApiError::unauthorized("MissingToken", provider.missing_token_message()));
        }
        if !state.wif_cache.org_exists(org).await? {
            tracing::info!(org = %org.chars().take(64).collect::<String>(), "{} exchange rejected: unknown organization", provider.name());
            return Err(ApiError::new(StatusCode::NOT_FOUND, "NoSuchOrganization", format!("organization {:?} does not exist", org.chars().take(64).collect::<String>())));
        }
        let (identity, verified) = verify(&mut event).await?;
        let (minted, attributes) = issue_credentials(state, request, &identity, &mut event).await?;
        Ok(Exchanged { minted, attributes, verified })
    }
    .await;

    match &result {
        Ok(done) => {
            event.decision = keyless_audit::Decision::Allow;
            event.minted_key_id = Some(done.minted.access_key_id.clone());
            event.access_key_id = Some(done.minted.access_key_id.clone());
            state.metrics.count_exchange(provider.metrics_label(), "ok");
        }
        Err(err) => {
            event.status = Some(err.status.as_u16());
            if event.reason.is_none() {
                event.reason = Some(err.message.clone());
            }
            state.metrics.count_exchange(provider.metrics_label(), err.code);
        }
    }
    // Only orgs that exist get events; a token naming an unknown org is logged.
    if state.wif_cache.org_exists(org).await.unwrap_or(false)
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

/// Checks the requested duration, the principal's status and the org
/// policies after token verification, for either protocol, then mints the
/// credentials and returns them with the caller's attributes.
async fn issue_credentials(
    state: &ApiState,
    request: ExchangeRequest<'_>,
    identity: &VerifiedIdentity,
    event: &mut AuditEvent,
) -> Result<(MintedKey, BTreeMap<String, String>), ApiError> {
    let org = request.org;
    let provider = request.provider;
    event.issuer = Some(identity.issuer.clone());
    event.subject = Some(identity.subject.clone());
    event.config_id = Some(identity.config_id.clone());
    event.principal = Some(identity.principal.clone());
    event.token_id = Some(identity.token_id.clone());

    let bounds = identity.duration_bounds;
    let duration = match request.duration_seconds {
        0 => bounds.default,
        d if (bounds.min..=bounds.max).contains(&d) => d,
        d => {
            event.reason = Some("duration-out-of-bounds".into());
            return Err(ApiError::bad_request(format!(
                "durationSeconds {d} is outside the bounds of configuration {:?}: expected {} to {}",
                identity.config_name, bounds.min, bounds.max
            )));
        }
    };

    // Session attributes: server-derived keys, keys the server read from the
    // verified token, and the caller's own attributes under `attr/`.
    let mut session_attrs = request.server_attributes;
    session_attrs.extend(identity.session_attributes.iter().map(|(k, v)| (k.clone(), v.clone())));
    for (key, value) in &request.attributes {
        session_attrs.insert(format!("attr/{key}"), value.clone());
    }

    if state.credentials.is_suspended(org, &identity.principal) {
        tracing::info!(org, principal = %identity.principal, "{} exchange rejected: principal suspended", provider.name());
        event.reason = Some("principal-suspended".into());
        return Err(ApiError::forbidden(format!("the principal {:?} is suspended", identity.principal)));
    }
    let mut context = crate::api_request_context(None);
    for (key, value) in &session_attrs {
        if keyless_auth::context::SERVER_KEY_PREFIXES.iter().any(|p| key.starts_with(p)) {
            context = context.value(key, value.clone());
        }
    }
    let action = provider.action();
    let decision = state.authorizer.authorize(org, Some(&identity.principal), action, "*", &context.build()).await;
    if !decision.allowed {
        tracing::info!(org, principal = %identity.principal, "{} exchange rejected: no policy allows {action}", provider.name());
        event.reason = Some("policy-denied".into());
        return Err(ApiError::forbidden(format!("no policy allows {} to perform {action}", identity.principal)));
    }

    let session_id = uuid::Uuid::new_v4().simple().to_string();
    event.session_id = Some(session_id.clone());
    let claims = SessionClaims {
        v: SESSION_FORMAT,
        ak: String::new(),
        org: org.to_owned(),
        principal: identity.principal.clone(),
        sid: session_id,
        cfg: identity.config_id.clone(),
        iat: identity.verified_at,
        exp: identity.verified_at + duration as i64,
        policy: request.session_policy,
        attrs: session_attrs,
    };
    let minted = state.credentials.mint_temporary(claims);
    // Debug, not info: the audit event records every accepted exchange with
    // these fields. Writing this line to stderr for each exchange took about a
    // tenth of the server's CPU samples in a `bench/exchange` profile.
    tracing::debug!(
        org,
        principal = %identity.principal,
        config = %identity.config_id,
        access_key_id = %minted.access_key_id,
        "{} exchange accepted",
        provider.name()
    );
    Ok((minted, request.attributes))
}

/// Runs one OIDC exchange. See `exchange`.
pub(crate) async fn exchange_oidc_token(state: &ApiState, request: ExchangeRequest<'_>) -> Result<Exchanged<VerifiedToken>, ApiError> {
    let (org, token, config_id, config_name) = (request.org, request.token, request.config_id, request.config_name);
    exchange(state, request, async |event: &mut AuditEvent| verify_oidc(state, org, token, config_id, config_name, event).await).await
}

/// Verifies an OIDC token against the org's configurations (cached, see
/// `WifCache`), narrowed by `config_id` and `config_name` as
/// `ExchangeRequest` describes.
async fn verify_oidc(
    state: &ApiState,
    org: &str,
    token: &str,
    config_id: Option<&str>,
    config_name: Option<&str>,
    event: &mut AuditEvent,
) -> Result<(VerifiedIdentity, VerifiedToken), ApiError> {
    // A rejected token is named by its unverified `jti`. An accepted one is
    // named from its verified claims below, so the payload is not decoded a
    // second time for it.
    let unverified_token_id = || Some(keyless_audit::token_id(unverified_jti(token).as_deref(), token.trim()));

    let configs = match state.wif_cache.configs::<OidcConfig>(org).await {
        Ok(configs) => configs,
        Err(err) => {
            event.token_id = unverified_token_id();
            return Err(err);
        }
    };
    if let Some(id) = config_id
        && !configs.iter().any(|c| c.id == id)
    {
        event.token_id = unverified_token_id();
        event.reason = Some("unknown-config".into());
        return Err(ApiError::not_found(format!("OIDC configuration {id:?} does not exist in organization {org:?}")));
    }
    let id_matches = |c: &OidcConfig| config_id.is_none_or(|id| c.id == id);
    let name = config_name.filter(|name| configs.iter().any(|c| id_matches(c) && c.name == *name));
    let candidates = configs.iter().filter(|c| id_matches(c) && name.is_none_or(|name| c.name == name));

    let now = now_millis() / 1000;
    let verified: VerifiedToken = match state.oidc.verify(org, token, candidates, now).await {
        Ok(verified) => verified,
        Err(err) => {
            tracing::info!(org, reason = err.reason(), error = %err, "OIDC exchange rejected");
            event.token_id = unverified_token_id();
            event.reason = Some(format!("{}: {err}", err.reason()));
            return Err(verify_error(&err));
        }
    };

    let jti = verified.claims.get("jti").and_then(Value::as_str);
    let mut session_attributes = verified.mapped_attributes.clone();
    session_attributes.insert("jwt:sub".into(), verified.subject.clone());
    session_attributes.insert("jwt:iss".into(), verified.issuer.clone());
    let config = &verified.config;
    let identity = VerifiedIdentity {
        principal: verified.principal.clone(),
        issuer: verified.issuer.clone(),
        subject: verified.subject.clone(),
        config_id: config.id.clone(),
        config_name: config.name.clone(),
        duration_bounds: DurationBounds {
            min: config.min_duration_seconds,
            max: config.max_duration_seconds,
            default: config.default_duration_seconds,
        },
        session_attributes,
        token_id: keyless_audit::token_id(jti, token.trim()),
        verified_at: now,
    };
    Ok((identity, verified))
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

/// `POST /v1/cwobject/temporary-credentials/oidc`.
pub async fn exchange_oidc(State(state): State<Arc<ApiState>>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body: OidcExchangeBody = json::parse(&body)?;
    let request = ExchangeRequest {
        org: &body.org_id,
        provider: Provider::Oidc,
        token: &body.oidc_token,
        config_id: body.config_id.as_deref(),
        config_name: None,
        duration_seconds: body.duration_seconds,
        attributes: body.attributes,
        server_attributes: BTreeMap::new(),
        session_policy: None,
    };
    let done = exchange_oidc_token(&state, request).await?;
    Ok(Json(done.to_json()))
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
    let request = ExchangeRequest {
        org: &org,
        provider: Provider::Oidc,
        token,
        config_id: None,
        config_name: None,
        duration_seconds: 0,
        attributes: BTreeMap::new(),
        server_attributes: BTreeMap::new(),
        session_policy: None,
    };
    let done = exchange_oidc_token(&state, request).await?;
    let minted = done.minted;
    Ok(Json(json!({
        "AccessKeyId": minted.access_key_id,
        "SecretAccessKey": minted.secret_key.expose(),
        "Token": minted.session_token.as_ref().map(|t| t.expose()),
        "Expiration": minted.expires_at.map(rfc3339),
    })))
}
