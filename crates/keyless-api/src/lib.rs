//! The API endpoint: control plane, token exchange and health.
//!
//! Every control-plane call carries an API token (`Authorization: Bearer`) and
//! is authorized through the org policies like any S3 request, with the
//! `cwobject:` action of the endpoint. Exchange endpoints take the caller's IdP
//! token as their only credential. Errors are JSON `{"code", "message"}`;
//! `error::ApiError` is the one place that maps them to HTTP statuses.

mod body_limit;
mod error;
mod exchange;
mod explain;
mod json;
mod keys;
mod policies;
#[cfg(feature = "saml")]
mod saml;
mod sigv4;
mod sts;
mod audit;
mod wif;
mod wif_cache;

use std::sync::Arc;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{delete, get, post, put};
use keyless_auth::{Authorizer, Caller, Credentials};
use keyless_federation::{OidcConfig, OidcVerifier};
use keyless_store::Store;

pub use error::ApiError;
pub use wif_cache::WifCache;

/// State shared by every API handler.
pub struct ApiState {
    pub store: Store,
    pub credentials: Arc<Credentials>,
    pub authorizer: Arc<Authorizer>,
    pub oidc: OidcVerifier,
    /// Parsed WIF configurations and known orgs, for token exchanges.
    pub wif_cache: Arc<WifCache>,
    pub journal: keyless_audit::Journal,
    pub delivery: Arc<keyless_audit::Delivery>,
    pub metrics: Arc<keyless_audit::Metrics>,
    /// Base URL clients use to reach this API endpoint, without a trailing
    /// slash; SAML Recipient and Destination defaults derive from it.
    pub public_api_url: String,
}

impl ApiState {
    /// Authenticates the API token.
    pub(crate) async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let token = bearer_token(headers).ok_or_else(|| {
            ApiError::unauthorized("MissingToken", "the request has no API token: send Authorization: Bearer <token>")
        })?;
        self.credentials.caller_for_api_token(token).await.map_err(|err| match err {
            keyless_auth::KeyError::Suspended => ApiError::forbidden("the principal of this API token is suspended"),
            _ => ApiError::unauthorized("InvalidToken", "the API token is invalid or has been revoked"),
        })
    }

    /// Authenticates the API token and checks one `cwobject:` action.
    pub(crate) async fn authorize(&self, headers: &HeaderMap, action: &str) -> Result<Caller, ApiError> {
        let caller = self.authenticate(headers).await?;
        let context = api_request_context(Some(&caller)).build();
        let decision = self.authorizer.authorize(&caller.org, Some(&caller.principal), action, "*", &context).await;
        if !decision.allowed {
            return Err(ApiError::forbidden(format!("{} may not perform {action}: no policy allows it", caller.principal)));
        }
        Ok(caller)
    }

    /// Records a control-plane change durably before the API responds. If the
    /// journal cannot take it, the change has happened but is unrecorded, so
    /// the failure is logged loudly.
    pub(crate) async fn audit_control(&self, caller: &Caller, action: &str, target: &str) {
        let mut event = keyless_audit::AuditEvent::new(keyless_audit::EventKind::Control, &caller.org, action, keyless_audit::Decision::Allow);
        event.principal = Some(caller.principal.clone());
        event.target = Some(target.to_owned());
        event.request_id = Some(current_request_id()).filter(|id| !id.is_empty());
        if let Err(err) = self.journal.record(event).await {
            tracing::error!(error = %err, action, target, "control-plane change could not be recorded in the audit journal");
        }
    }

    /// Applies the change feed now, so this node observes its own change at once.
    /// Other nodes observe it at their next poll.
    pub(crate) async fn refresh(&self) {
        match self.credentials.poll_changes().await {
            Ok(changes) => {
                self.authorizer.apply_changes(&changes);
                self.wif_cache.apply_changes(&changes);
            }
            Err(err) => tracing::warn!(error = %err, "change feed poll failed after a write"),
        }
    }
}

tokio::task_local! {
    /// The id of the API request being served, for logs and audit events.
    static REQUEST_ID: String;
    /// The connection the API request arrived on, when the listener recorded it.
    static CONNECTION: Option<keyless_auth::Connection>;
}

/// Returns the current API request's id, or an empty string outside a request.
pub(crate) fn current_request_id() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// Starts the condition context of the current API request: its caller, and
/// `aws:SourceIp` and `aws:SecureTransport` from the connection it came on.
pub(crate) fn api_request_context(caller: Option<&Caller>) -> keyless_policy::ContextBuilder {
    let connection = CONNECTION.try_with(|c| *c).ok().flatten();
    keyless_auth::request_context(caller, connection.map(|c| c.client.ip()), connection.is_some_and(|c| c.secure))
}

/// Mints a request id for every API request, runs the handler inside a span
/// and task-local scope carrying it, and returns it in `x-amz-request-id`.
async fn with_request_id(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let request_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!("api", request_id = %request_id, %method, path);
    let started = std::time::Instant::now();
    let connection = request.extensions().get::<keyless_auth::Connection>().copied();
    let handler = CONNECTION.scope(connection, REQUEST_ID.scope(request_id.clone(), next.run(request)));
    let mut response = tracing::Instrument::instrument(handler, span.clone()).await;
    let status = response.status().as_u16();
    span.in_scope(|| tracing::debug!(status, elapsed_ms = started.elapsed().as_secs_f64() * 1000.0, "api request"));
    if let Ok(value) = axum::http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amz-request-id", value);
    }
    response
}

pub(crate) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ").unwrap_or(value).trim();
    (!token.is_empty()).then_some(token)
}

/// Builds the API router.
///
/// Each route family reads request bodies through its own size-limit
/// middleware, so an oversized body gets a 413 in that family's error shape:
/// JSON for the `/v1/` routes, the STS XML error for `/`.
pub fn router(state: Arc<ApiState>) -> Router {
    let json_routes = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(audit::metrics))
        .route("/v1/keyless/audit", get(audit::query))
        .route("/v1/keyless/audit/verify", post(audit::verify))
        .route("/v1/cwobject/organization/settings", put(audit::org_settings))
        .route("/v1/cwobject/bucket/settings", put(audit::bucket_settings))
        .route("/v1/cwobject/access-key", post(keys::create_access_key).get(keys::list_access_keys))
        .route("/v1/cwobject/access-key/{id}", get(keys::get_access_key))
        .route("/v1/cwobject/revoke-access-key/access-key", post(keys::revoke_access_key))
        .route("/v1/cwobject/revoke-access-key/principal", post(keys::revoke_principal))
        .route("/v1/cwobject/access-key-status", put(keys::set_principal_status))
        .route("/v1/keyless/api-tokens", post(keys::create_api_token).get(keys::list_api_tokens))
        .route("/v1/keyless/api-tokens/{id}", delete(keys::delete_api_token))
        .route("/v1/cwobject/access-policy", post(policies::put_policy).get(policies::list_policies))
        .route("/v1/cwobject/access-policy/{name}", delete(policies::delete_policy))
        .route("/v1/keyless/wif/oidc", post(wif::create::<OidcConfig>).get(wif::list::<OidcConfig>))
        .route("/v1/keyless/wif/oidc/{id}", get(wif::get::<OidcConfig>).put(wif::replace::<OidcConfig>).delete(wif::delete::<OidcConfig>))
        .route("/v1/cwobject/auth/can-i", post(explain::can_i))
        .route("/v1/keyless/explain", post(explain::explain))
        .route("/v1/cwobject/temporary-credentials/oidc", post(exchange::exchange_oidc))
        .route("/v1/cwobject/temporary-credentials/oidc/{org}", get(exchange::container_credentials));
    // `layer` wraps only the routes added before it, so the two families
    // are built apart and merged.
    let json_routes = saml_routes(json_routes).layer(axum::middleware::from_fn(json::limit_body));
    let sts_routes = Router::new().route("/", get(sts::sts).post(sts::sts)).layer(axum::middleware::from_fn(sts::limit_body));
    json_routes
        .merge(sts_routes)
        .layer(axum::middleware::from_fn(with_request_id))
        .with_state(state)
}

#[cfg(feature = "saml")]
fn saml_routes(router: Router<Arc<ApiState>>) -> Router<Arc<ApiState>> {
    use keyless_federation::saml::SamlConfig;
    router
        .route("/v1/keyless/wif/saml", post(wif::create::<SamlConfig>).get(wif::list::<SamlConfig>))
        .route("/v1/keyless/wif/saml/{id}", get(wif::get::<SamlConfig>).put(wif::replace::<SamlConfig>).delete(wif::delete::<SamlConfig>))
        .route("/v1/keyless/wif/saml/{id}/metadata", get(saml::sp_metadata))
        .route("/v1/cwobject/temporary-credentials/saml", post(saml::exchange_saml))
}

/// Without the `saml` feature the SAML paths exist and fail with a message
/// naming the missing feature.
#[cfg(not(feature = "saml"))]
fn saml_routes(router: Router<Arc<ApiState>>) -> Router<Arc<ApiState>> {
    async fn saml_disabled() -> ApiError {
        ApiError::new(
            axum::http::StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "this keyless was built without the saml feature (it needs libxmlsec1): SAML federation is unavailable",
        )
    }
    router
        .route("/v1/keyless/wif/saml", axum::routing::any(saml_disabled))
        .route("/v1/keyless/wif/saml/{*rest}", axum::routing::any(saml_disabled))
        .route("/v1/cwobject/temporary-credentials/saml", axum::routing::any(saml_disabled))
}
