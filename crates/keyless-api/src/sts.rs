//! The AWS STS query API on the API endpoint (`POST /` form-encoded, or GET
//! with a query), so that AWS SDKs configured with `AWS_ROLE_ARN`,
//! `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ENDPOINT_URL_STS` obtain and refresh
//! keyless credentials by themselves.
//!
//! `RoleArn` is `arn:aws:iam::<orgId>:role/<name>`: the account field selects
//! the org, and a role name equal to an OIDC configuration's name selects that
//! configuration. The principal is derived from the token as in the JSON API.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::body_limit::{BodyError, read_limited};
use crate::exchange::{ExchangeRequest, Provider, exchange_oidc_token};
use crate::keys::rfc3339;
use crate::{ApiError, ApiState};

const STS_NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// Largest STS request body accepted, bytes. It leaves room for a SAML
/// assertion far beyond what IdPs send, and equals axum's default limit, so
/// `limit_body` rejects first and in the STS error shape.
pub const MAX_STS_BODY: usize = 2 * 1024 * 1024;

/// An STS error, rendered in the STS XML error shape.
#[derive(Debug)]
struct StsError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl StsError {
    fn validation(message: impl Into<String>) -> Self {
        StsError { status: StatusCode::BAD_REQUEST, code: "ValidationError", message: message.into() }
    }
}

/// Middleware for the STS route: buffers the request body, at most
/// `MAX_STS_BODY` bytes, and rejects a larger one with 413 and the AWS common
/// error code `RequestEntityTooLargeException`.
pub async fn limit_body(request: Request, next: Next) -> Response {
    match read_limited(request, MAX_STS_BODY).await {
        Ok(request) => next.run(request).await,
        Err(err @ BodyError::TooLarge { .. }) => {
            StsError { status: StatusCode::PAYLOAD_TOO_LARGE, code: "RequestEntityTooLargeException", message: err.message(MAX_STS_BODY) }
                .into_response()
        }
        Err(err @ BodyError::Unreadable(_)) => StsError::validation(err.message(MAX_STS_BODY)).into_response(),
    }
}

/// Maps an exchange failure to the STS code AWS SDKs act on: SDKs retry
/// `IDPCommunicationError`, and treat the others as final.
impl From<ApiError> for StsError {
    fn from(err: ApiError) -> Self {
        let (status, code) = match err.code {
            "ExpiredToken" => (StatusCode::BAD_REQUEST, "ExpiredTokenException"),
            "IDPCommunicationError" => (StatusCode::BAD_REQUEST, "IDPCommunicationError"),
            "InvalidIdentityToken" | "MissingToken" => (StatusCode::BAD_REQUEST, "InvalidIdentityToken"),
            "IDPRejectedClaim" => (StatusCode::FORBIDDEN, "IDPRejectedClaim"),
            "AccessDenied" => (StatusCode::FORBIDDEN, "AccessDenied"),
            "InternalError" => (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
            _ => (StatusCode::BAD_REQUEST, "ValidationError"),
        };
        StsError { status, code, message: err.message }
    }
}

/// Returns the id of the API request being served, the one its
/// `x-amz-request-id` header carries, so a client's report matches the logs
/// and the audit trail.
fn request_id() -> String {
    let id = crate::current_request_id();
    if id.is_empty() { uuid::Uuid::new_v4().simple().to_string() } else { id }
}

fn xml_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/xml")], body).into_response()
}

impl IntoResponse for StsError {
    fn into_response(self) -> Response {
        let kind = if self.status.is_server_error() { "Receiver" } else { "Sender" };
        let body = format!(
            "<ErrorResponse xmlns=\"{STS_NAMESPACE}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            self.code,
            escape(&self.message),
            request_id()
        );
        xml_response(self.status, body)
    }
}

/// Escapes text for an XML element body.
fn escape(text: &str) -> String {
    // Keys, secrets and session tokens contain no markup, so copying the
    // text whole is the common case.
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// `POST /` and `GET /`.
pub async fn sts(State(state): State<Arc<ApiState>>, method: Method, headers: HeaderMap, RawQuery(query): RawQuery, body: Bytes) -> Response {
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    let mut sources: Vec<&[u8]> = vec![query.as_deref().unwrap_or("").as_bytes()];
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if method == Method::POST && is_form {
        sources.push(&body);
    }
    for source in sources {
        for (key, value) in url::form_urlencoded::parse(source) {
            if params.insert(key.clone().into_owned(), value.into_owned()).is_some() {
                return StsError::validation(format!("parameter {key:?} appears more than once")).into_response();
            }
        }
    }

    match params.get("Action").map(String::as_str) {
        Some("AssumeRoleWithWebIdentity") => match assume_role_with_web_identity(&state, &params).await {
            Ok(resp) => resp,
            Err(err) => err.into_response(),
        },
        Some("AssumeRoleWithSAML") => match assume_role_with_saml(&state, &params).await {
            Ok(resp) => resp,
            Err(err) => err.into_response(),
        },
        Some("GetCallerIdentity") => {
            let query = query.as_deref().unwrap_or("");
            match get_caller_identity(&state, &method, query, &headers, &body).await {
                Ok(resp) => resp,
                Err(err) => err.into_response(),
            }
        }
        Some(other) => StsError::validation(format!(
            "action {other:?} is not supported: expected AssumeRoleWithWebIdentity, AssumeRoleWithSAML or GetCallerIdentity"
        ))
        .into_response(),
        None => StsError::validation("the Action parameter is missing").into_response(),
    }
}

/// `GetCallerIdentity`, signed with keyless credentials: who those credentials
/// act as.
async fn get_caller_identity(state: &ApiState, method: &Method, query: &str, headers: &HeaderMap, body: &[u8]) -> Result<Response, StsError> {
    let invalid = |message: String| StsError { status: StatusCode::FORBIDDEN, code: "InvalidClientTokenId", message };
    let signature_error = |err: crate::sigv4::SignatureError| match err {
        crate::sigv4::SignatureError::Mismatch => StsError { status: StatusCode::FORBIDDEN, code: "SignatureDoesNotMatch", message: err.to_string() },
        crate::sigv4::SignatureError::Skewed => StsError { status: StatusCode::FORBIDDEN, code: "RequestExpired", message: err.to_string() },
        _ => StsError { status: StatusCode::BAD_REQUEST, code: "IncompleteSignature", message: err.to_string() },
    };
    let access_key_id = crate::sigv4::unverified_access_key_id(headers).map_err(signature_error)?;
    let secret = state
        .credentials
        .secret_for(&access_key_id)
        .await
        .map_err(|_| invalid("the security token included in the request is invalid".into()))?;
    let verified = crate::sigv4::verify(method, "/", query, headers, body, secret.expose(), time::OffsetDateTime::now_utc()).map_err(signature_error)?;
    let access_key_id = verified.access_key_id;
    let token = headers.get("x-amz-security-token").and_then(|v| v.to_str().ok());
    let caller = state.credentials.caller_for_key(&access_key_id, token).await.map_err(|err| match err {
        keyless_auth::KeyError::Expired | keyless_auth::KeyError::Session(keyless_auth::SessionError::Expired) => {
            StsError { status: StatusCode::BAD_REQUEST, code: "ExpiredToken", message: "the security token included in the request is expired".into() }
        }
        other => invalid(other.to_string()),
    })?;
    let arn = match caller.principal.strip_prefix("role/") {
        Some(role) => format!("arn:aws:sts::{}:assumed-role/{role}", caller.org),
        None => format!("arn:aws:iam::{}:{}", caller.org, caller.principal),
    };
    let body = format!(
        "<GetCallerIdentityResponse xmlns=\"{STS_NAMESPACE}\"><GetCallerIdentityResult><Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
        escape(&arn),
        escape(&access_key_id),
        escape(&caller.org),
        request_id()
    );
    Ok(xml_response(StatusCode::OK, body))
}

struct RoleArn {
    org: String,
    role: String,
}

fn parse_role_arn(arn: &str) -> Result<RoleArn, StsError> {
    let arn_prefix: String = arn.chars().take(256).collect();
    let invalid = || StsError::validation(format!("RoleArn {arn_prefix:?} is invalid: expected arn:aws:iam::<orgId>:role/<name>"));
    let rest = arn.strip_prefix("arn:aws:iam::").ok_or_else(invalid)?;
    let (org, role) = rest.split_once(':').ok_or_else(invalid)?;
    let role = role.strip_prefix("role/").ok_or_else(invalid)?;
    if org.is_empty() || role.is_empty() {
        return Err(invalid());
    }
    Ok(RoleArn { org: org.to_owned(), role: role.to_owned() })
}

/// The parameters that `AssumeRoleWithWebIdentity` and `AssumeRoleWithSAML`
/// share, checked.
struct AssumeRoleCommon {
    role: RoleArn,
    session_policy: Option<String>,
    duration: u64,
}

fn parse_common(params: &BTreeMap<String, String>) -> Result<AssumeRoleCommon, StsError> {
    if let Some(version) = params.get("Version")
        && version != "2011-06-15"
    {
        return Err(StsError::validation(format!("Version {version:?} is not supported: expected 2011-06-15")));
    }
    let role_arn = params.get("RoleArn").ok_or_else(|| StsError::validation("the RoleArn parameter is missing"))?;
    let role = parse_role_arn(role_arn)?;
    if params.keys().any(|k| k.starts_with("PolicyArns.")) {
        return Err(StsError::validation("PolicyArns is not supported: pass the session policy inline in Policy"));
    }
    let session_policy = match params.get("Policy") {
        None => None,
        Some(text) => match keyless_policy::SessionPolicy::parse(text) {
            Ok(_) => Some(text.clone()),
            Err(err) => return Err(StsError { status: StatusCode::BAD_REQUEST, code: "MalformedPolicyDocument", message: err.to_string() }),
        },
    };
    let duration = match params.get("DurationSeconds") {
        None => 0,
        Some(d) => d.parse::<u64>().map_err(|_| StsError::validation(format!("DurationSeconds {d:?} is not a number")))?,
    };
    Ok(AssumeRoleCommon { role, session_policy, duration })
}

async fn assume_role_with_web_identity(state: &ApiState, params: &BTreeMap<String, String>) -> Result<Response, StsError> {
    let AssumeRoleCommon { role, session_policy, duration } = parse_common(params)?;
    let session_name = params.get("RoleSessionName").ok_or_else(|| StsError::validation("the RoleSessionName parameter is missing"))?;
    let session_ok = (2..=64).contains(&session_name.len())
        && session_name.chars().all(|c| c.is_ascii_alphanumeric() || "=,.@-_".contains(c));
    if !session_ok {
        return Err(StsError::validation(format!("RoleSessionName {session_name:?} is invalid: expected 2 to 64 characters of [A-Za-z0-9=,.@_-]")));
    }
    let token = params.get("WebIdentityToken").map(String::as_str).unwrap_or("");
    if token.is_empty() {
        return Err(StsError { status: StatusCode::BAD_REQUEST, code: "InvalidIdentityToken", message: "the WebIdentityToken parameter is missing or empty".into() });
    }

    let mut server_attrs = BTreeMap::new();
    server_attrs.insert("sts:RoleSessionName".to_owned(), session_name.clone());
    let request = ExchangeRequest {
        org: &role.org,
        provider: Provider::Oidc,
        token,
        config_id: None,
        config_name: Some(role.role.as_str()),
        duration_seconds: duration,
        attributes: BTreeMap::new(),
        server_attributes: server_attrs,
        session_policy,
    };
    let done = exchange_oidc_token(state, request).await?;
    let minted = done.minted;
    let verified = done.verified;
    let audience = match verified.claims.get("aud") {
        Some(serde_json::Value::String(aud)) => aud.clone(),
        _ => verified.config.audiences.first().cloned().unwrap_or_default(),
    };
    let body = format!(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"{STS_NAMESPACE}\"><AssumeRoleWithWebIdentityResult>\
<SubjectFromWebIdentityToken>{sub}</SubjectFromWebIdentityToken><Audience>{aud}</Audience>\
<AssumedRoleUser><Arn>arn:aws:sts::{org}:assumed-role/{role}/{session}</Arn><AssumedRoleId>{key}:{session}</AssumedRoleId></AssumedRoleUser>\
<Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey><SessionToken>{token}</SessionToken><Expiration>{exp}</Expiration></Credentials>\
<Provider>{provider}</Provider></AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata></AssumeRoleWithWebIdentityResponse>",
        sub = escape(&verified.subject),
        aud = escape(&audience),
        org = escape(&role.org),
        role = escape(&role.role),
        session = escape(session_name),
        key = minted.access_key_id,
        secret = escape(minted.secret_key.expose()),
        token = escape(minted.session_token.as_ref().map(|t| t.expose()).unwrap_or("")),
        exp = minted.expires_at.map(rfc3339).unwrap_or_default(),
        provider = escape(&verified.issuer),
        rid = request_id(),
    );
    Ok(xml_response(StatusCode::OK, body))
}

/// `AssumeRoleWithSAML`: `RoleArn` names the role and `PrincipalArn`
/// (`arn:aws:iam::<orgId>:saml-provider/<name>`) the SAML configuration by name.
#[cfg(feature = "saml")]
async fn assume_role_with_saml(state: &ApiState, params: &BTreeMap<String, String>) -> Result<Response, StsError> {
    use keyless_federation::saml::{RequestedRole, provider_from_arn};

    let AssumeRoleCommon { role, session_policy, duration } = parse_common(params)?;
    let role_arn = params.get("RoleArn").map(String::as_str).unwrap_or_default();
    let principal_arn = params.get("PrincipalArn").ok_or_else(|| StsError::validation("the PrincipalArn parameter is missing"))?;
    let provider = provider_from_arn(principal_arn, &role.org).ok_or_else(|| {
        let arn_prefix: String = principal_arn.chars().take(256).collect();
        StsError::validation(format!("PrincipalArn {arn_prefix:?} is invalid: expected arn:aws:iam::{}:saml-provider/<name>", role.org))
    })?;
    let assertion = params.get("SAMLAssertion").map(String::as_str).unwrap_or("");
    if assertion.is_empty() {
        return Err(StsError { status: StatusCode::BAD_REQUEST, code: "InvalidIdentityToken", message: "the SAMLAssertion parameter is missing or empty".into() });
    }

    let request = ExchangeRequest {
        org: &role.org,
        provider: Provider::Saml,
        token: assertion,
        config_id: None,
        config_name: Some(provider.as_str()),
        duration_seconds: duration,
        attributes: BTreeMap::new(),
        server_attributes: BTreeMap::new(),
        session_policy,
    };
    let requested = RequestedRole { org_id: &role.org, role_arn, principal_arn };
    let done = crate::saml::exchange_saml_response(state, request, Some(requested)).await?;
    let minted = done.minted;
    let verified = done.verified;
    let subject_type = verified.assertion.name_id_format.as_deref().map_or("unspecified", |format| format.rsplit(':').next().unwrap_or(format));
    let body = format!(
        "<AssumeRoleWithSAMLResponse xmlns=\"{STS_NAMESPACE}\"><AssumeRoleWithSAMLResult>\
<Audience>{aud}</Audience><Issuer>{issuer}</Issuer><Subject>{sub}</Subject><SubjectType>{subject_type}</SubjectType>\
<AssumedRoleUser><Arn>arn:aws:sts::{org}:assumed-role/{role}/{session}</Arn><AssumedRoleId>{key}:{session}</AssumedRoleId></AssumedRoleUser>\
<Credentials><AccessKeyId>{key}</AccessKeyId><SecretAccessKey>{secret}</SecretAccessKey><SessionToken>{token}</SessionToken><Expiration>{exp}</Expiration></Credentials>\
</AssumeRoleWithSAMLResult><ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata></AssumeRoleWithSAMLResponse>",
        aud = escape(&verified.config.sp_entity_id),
        issuer = escape(&verified.assertion.issuer),
        sub = escape(&verified.subject),
        subject_type = escape(subject_type),
        org = escape(&role.org),
        role = escape(verified.principal.strip_prefix("role/").unwrap_or(&verified.principal)),
        session = escape(&verified.subject),
        key = minted.access_key_id,
        secret = escape(minted.secret_key.expose()),
        token = escape(minted.session_token.as_ref().map(|t| t.expose()).unwrap_or("")),
        exp = minted.expires_at.map(rfc3339).unwrap_or_default(),
        rid = request_id(),
    );
    Ok(xml_response(StatusCode::OK, body))
}

/// Without the `saml` feature, `AssumeRoleWithSAML` fails with a message naming the missing feature.
#[cfg(not(feature = "saml"))]
async fn assume_role_with_saml(_: &ApiState, _: &BTreeMap<String, String>) -> Result<Response, StsError> {
    Err(StsError {
        status: StatusCode::NOT_IMPLEMENTED,
        code: "NotImplemented",
        message: "this keyless was built without the saml feature (it needs libxmlsec1): AssumeRoleWithSAML is unavailable".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arn_forms() {
        let arn = parse_role_arn("arn:aws:iam::default:role/trainer").unwrap();
        assert_eq!((arn.org.as_str(), arn.role.as_str()), ("default", "trainer"));
        for bad in ["arn:aws:iam::default:user/x", "arn:aws:iam:::role/x", "arn:aws:s3:::b", "default:role/x", "arn:aws:iam::default:role/"] {
            assert!(parse_role_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn xml_text_is_escaped() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
    }
}
