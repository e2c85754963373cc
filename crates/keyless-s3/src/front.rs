//! The outermost layer of the S3 endpoint: request ids and the SigV4 rules
//! that s3s 0.14 does not enforce by itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use keyless_auth::Connection;
use s3s::{Body, S3Error, S3ErrorCode};

use crate::S3State;

/// Largest error body the request id is spliced into; larger bodies pass as-is.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Presigned URLs may be valid for at most seven days, as in AWS.
const MAX_PRESIGNED_EXPIRES: u64 = 604_800;

/// The request id minted for a request, available to every later layer.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Facts the access check learned about a request, filled in by
/// `access::KeylessAccess::check` and read here for the audit event.
#[derive(Debug, Clone, Default)]
pub struct AccessRecord {
    pub org: Option<String>,
    pub operation: Option<String>,
    pub action: Option<String>,
    pub bucket: Option<String>,
    pub key: Option<String>,
    pub principal: Option<String>,
    pub access_key_id: Option<String>,
    pub session_id: Option<String>,
    pub denied_reason: Option<String>,
}

/// Shared slot for the `AccessRecord` of one request.
#[derive(Debug, Clone, Default)]
pub struct AccessSlot(pub Arc<std::sync::Mutex<AccessRecord>>);

impl AccessSlot {
    pub fn update(&self, f: impl FnOnce(&mut AccessRecord)) {
        let mut record = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut record);
    }
}

#[derive(Clone)]
pub struct S3Front {
    inner: s3s::service::S3Service,
    state: Arc<S3State>,
}

impl S3Front {
    pub(crate) fn new(inner: s3s::service::S3Service, state: Arc<S3State>) -> Self {
        S3Front { inner, state }
    }

    /// Serves one request.
    pub async fn handle<B>(&self, req: Request<B>, connection: Connection) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + Sync + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let started = Instant::now();
        let client = connection.client;
        let request_id = new_request_id();
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let user_agent = req.headers().get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|v| v.chars().take(256).collect::<String>());
        let request_bytes = req.headers().get("x-amz-decoded-content-length").or_else(|| req.headers().get(http::header::CONTENT_LENGTH)).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        let slot = AccessSlot::default();
        let has_body = req.headers().contains_key(http::header::TRANSFER_ENCODING) || request_bytes.is_some_and(|n| n > 0);

        let response = match check_signature_shape(&req, &self.state.settings.region) {
            Err(err) => error_response(err),
            Ok(()) => {
                let (mut parts, body) = req.into_parts();
                parts.extensions.insert(RequestId(request_id.clone()));
                parts.extensions.insert(connection);
                parts.extensions.insert(slot.clone());
                let req = Request::from_parts(parts, Body::http_body(body));
                match self.inner.call(req).await {
                    Ok(resp) => resp,
                    Err(err) => {
                        tracing::error!(request_id, error = ?err, "S3 service failed");
                        error_response(S3Error::new(S3ErrorCode::InternalError))
                    }
                }
            }
        };
        let mut response = stamp_request_id(response, &request_id).await;
        // S3 returns 206 for a ranged HEAD, like the ranged GET it describes.
        if method == http::Method::HEAD && response.status() == StatusCode::OK && response.headers().contains_key(http::header::CONTENT_RANGE) {
            *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        }
        // An error may be sent before the body was read. Closing the connection
        // keeps the next request from being read out of the leftover body.
        if has_body && (response.status().is_client_error() || response.status().is_server_error()) {
            response.headers_mut().insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }

        let status = response.status();
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let record = slot.0.lock().map(|r| r.clone()).unwrap_or_default();
        self.state.metrics.count_request(record.operation.as_deref().unwrap_or("Unknown"), status.as_u16());
        self.record_event(record, &request_id, client, user_agent, status, &method, request_bytes, &response, elapsed_ms);
        if status.is_server_error() {
            tracing::warn!(request_id, %method, path, status = status.as_u16(), elapsed_ms, "s3 request failed");
        } else {
            tracing::debug!(request_id, %method, path, status = status.as_u16(), elapsed_ms, "s3 request");
        }
        response
    }
}

impl S3Front {
    /// Queues the data-plane audit event of a request. Requests that never
    /// reached the access check (malformed signatures, unknown keys) are
    /// recorded as denials in the org of their bucket when it is known.
    #[allow(clippy::too_many_arguments)]
    fn record_event(
        &self,
        record: AccessRecord,
        request_id: &str,
        client: SocketAddr,
        user_agent: Option<String>,
        status: StatusCode,
        method: &http::Method,
        request_bytes: Option<u64>,
        response: &Response<Body>,
        elapsed_ms: f64,
    ) {
        let Some(org) = record.org.clone() else { return };
        let decision = if record.denied_reason.is_some() || status == StatusCode::FORBIDDEN {
            keyless_audit::Decision::Deny
        } else {
            keyless_audit::Decision::Allow
        };
        let action = record.action.clone().unwrap_or_else(|| "s3:Unknown".into());
        let mut event = keyless_audit::AuditEvent::new(keyless_audit::EventKind::Data, &org, &action, decision);
        event.request_id = Some(request_id.to_owned());
        event.operation = record.operation;
        event.bucket = record.bucket;
        event.key = record.key;
        event.principal = record.principal;
        event.access_key_id = record.access_key_id;
        event.session_id = record.session_id;
        event.status = Some(status.as_u16());
        event.reason = record.denied_reason;
        event.source_ip = Some(client.ip().to_string());
        event.user_agent = user_agent;
        event.duration_ms = Some((elapsed_ms * 1000.0).round() / 1000.0);
        event.bytes = if *method == http::Method::PUT || *method == http::Method::POST {
            request_bytes
        } else {
            http_body::Body::size_hint(response.body()).exact()
        };
        self.state.journal.record_nowait(event);
    }
}

/// Maximum length, in characters, of a client value quoted in an error message.
const MAX_ECHO_CHARS: usize = 128;

/// Quotes a client-supplied value for an error message, cut to
/// `MAX_ECHO_CHARS` so that a huge header cannot inflate the response.
fn echo(value: &str) -> String {
    if value.chars().count() <= MAX_ECHO_CHARS {
        return format!("{value:?}");
    }
    let head: String = value.chars().take(MAX_ECHO_CHARS).collect();
    format!("{head:?} (cut at {MAX_ECHO_CHARS} characters)")
}

fn new_request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_ascii_uppercase()
}

fn error_response(err: S3Error) -> Response<Body> {
    err.to_http_response().unwrap_or_else(|_| {
        let mut resp = Response::new(Body::empty());
        *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        resp
    })
}

/// Adds `x-amz-request-id` to every response and `<RequestId>` to XML error bodies.
async fn stamp_request_id(response: Response<Body>, request_id: &str) -> Response<Body> {
    let (mut parts, body) = response.into_parts();
    if let Ok(value) = HeaderValue::from_str(request_id) {
        parts.headers.insert("x-amz-request-id", value);
    }
    let is_error = parts.status.is_client_error() || parts.status.is_server_error();
    let small = http_body::Body::size_hint(&body).upper().is_some_and(|n| n > 0 && n <= MAX_ERROR_BODY as u64);
    if !is_error || !small {
        return Response::from_parts(parts, body);
    }
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Response::from_parts(parts, Body::empty()),
    };
    let text = String::from_utf8_lossy(&bytes);
    let body = if text.contains("</Error>") && !text.contains("<RequestId>") {
        let stamped = text.replacen("</Error>", &format!("<RequestId>{request_id}</RequestId></Error>"), 1);
        parts.headers.remove(http::header::CONTENT_LENGTH);
        Body::from(stamped)
    } else {
        Body::from(bytes)
    };
    Response::from_parts(parts, body)
}

fn error(code: S3ErrorCode, message: String) -> S3Error {
    S3Error::with_message(code, message)
}

/// Rejects requests whose signature form keyless does not accept, before s3s
/// verifies them. Only the shape is checked here; s3s checks the signature.
fn check_signature_shape<B>(req: &Request<B>, region: &str) -> Result<(), S3Error> {
    let headers = req.headers();
    let query = req.uri().query().unwrap_or("");
    let params: Vec<(String, String)> = url_decode_pairs(query);
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());

    let authorization = match headers.get_all(http::header::AUTHORIZATION).iter().count() {
        0 => None,
        1 => headers.get(http::header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("")),
        _ => return Err(error(S3ErrorCode::InvalidArgument, "more than one Authorization header".into())),
    };

    if authorization.is_some_and(|a| a.starts_with("AWS ")) || (param("Signature").is_some() && param("AWSAccessKeyId").is_some()) {
        return Err(error(
            S3ErrorCode::InvalidRequest,
            "signature version 2 is not supported; sign requests with AWS4-HMAC-SHA256 (SigV4)".into(),
        ));
    }
    if authorization.is_some() && param("X-Amz-Algorithm").is_some() {
        return Err(error(
            S3ErrorCode::InvalidArgument,
            "a request may carry either an Authorization header or a presigned query, not both".into(),
        ));
    }

    if let Some(auth) = authorization {
        let fields = parse_authorization(auth)?;
        check_scope(&fields.credential, region, S3ErrorCode::AuthorizationHeaderMalformed)?;
        let signed: Vec<&str> = fields.signed_headers.split(';').collect();
        for required in ["host", "x-amz-content-sha256"] {
            if !signed.contains(&required) {
                return Err(error(
                    S3ErrorCode::AuthorizationHeaderMalformed,
                    format!("SignedHeaders must include {required:?}; it lists {}", echo(&fields.signed_headers)),
                ));
            }
        }
        if !signed.contains(&"x-amz-date") && !signed.contains(&"date") {
            return Err(error(
                S3ErrorCode::AuthorizationHeaderMalformed,
                "SignedHeaders must include \"x-amz-date\" (or \"date\")".into(),
            ));
        }
        if headers.contains_key("x-amz-security-token") && !signed.contains(&"x-amz-security-token") {
            return Err(error(
                S3ErrorCode::AuthorizationHeaderMalformed,
                "the x-amz-security-token header must be signed: add it to SignedHeaders".into(),
            ));
        }
        check_signed_headers_present(headers, &signed)?;
        check_amz_headers_signed(headers, &signed, false)?;
        return Ok(());
    }

    if let Some(algorithm) = param("X-Amz-Algorithm") {
        if algorithm != "AWS4-HMAC-SHA256" {
            return Err(error(
                S3ErrorCode::AuthorizationQueryParametersError,
                format!("X-Amz-Algorithm {algorithm:?} is not supported; expected \"AWS4-HMAC-SHA256\""),
            ));
        }
        let credential = param("X-Amz-Credential").ok_or_else(|| {
            error(S3ErrorCode::AuthorizationQueryParametersError, "X-Amz-Credential is missing".into())
        })?;
        check_scope(credential, region, S3ErrorCode::AuthorizationQueryParametersError)?;
        let expires = param("X-Amz-Expires").unwrap_or("");
        match expires.parse::<u64>() {
            Ok(secs) if (1..=MAX_PRESIGNED_EXPIRES).contains(&secs) => {}
            _ => {
                return Err(error(
                    S3ErrorCode::AuthorizationQueryParametersError,
                    format!("X-Amz-Expires {expires:?} is invalid: expected an integer from 1 to {MAX_PRESIGNED_EXPIRES}"),
                ));
            }
        }
        let signed_headers = param("X-Amz-SignedHeaders").unwrap_or("");
        let signed: Vec<&str> = signed_headers.split(';').collect();
        if !signed.contains(&"host") {
            return Err(error(
                S3ErrorCode::AuthorizationQueryParametersError,
                format!("X-Amz-SignedHeaders must include \"host\"; it lists {}", echo(signed_headers)),
            ));
        }
        if headers.contains_key("x-amz-security-token") && !signed.contains(&"x-amz-security-token") {
            return Err(error(
                S3ErrorCode::AuthorizationQueryParametersError,
                "the x-amz-security-token header must be signed, or sent as X-Amz-Security-Token in the query".into(),
            ));
        }
        check_signed_headers_present(headers, &signed)?;
        check_amz_headers_signed(headers, &signed, true)?;
    }
    Ok(())
}

struct AuthorizationFields {
    credential: String,
    signed_headers: String,
}

fn parse_authorization(auth: &str) -> Result<AuthorizationFields, S3Error> {
    let malformed = |why: &str| error(S3ErrorCode::AuthorizationHeaderMalformed, format!("the Authorization header is malformed: {why}"));
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or_else(|| malformed("expected it to start with \"AWS4-HMAC-SHA256 \""))?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (name, value) = part.trim().split_once('=').ok_or_else(|| malformed("expected Name=value pairs separated by commas"))?;
        let slot = match name {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err(malformed(&format!("unknown component {name:?}"))),
        };
        if slot.replace(value.to_owned()).is_some() {
            return Err(malformed(&format!("component {name:?} appears twice")));
        }
    }
    let credential = credential.ok_or_else(|| malformed("Credential is missing"))?;
    let signed_headers = signed_headers.ok_or_else(|| malformed("SignedHeaders is missing"))?;
    let signature = signature.ok_or_else(|| malformed("Signature is missing"))?;
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed("Signature must be 64 hexadecimal digits"));
    }
    Ok(AuthorizationFields { credential, signed_headers })
}

/// Checks `<key>/<date>/<region>/s3/aws4_request` and the region in it.
fn check_scope(credential: &str, region: &str, code: S3ErrorCode) -> Result<(), S3Error> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [key, date, scope_region, service, terminator] = parts.as_slice() else {
        return Err(error(code, format!(
            "the credential scope is malformed: expected <access key>/<yyyymmdd>/<region>/s3/aws4_request, found {} parts",
            parts.len()
        )));
    };
    if key.is_empty() || date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) || *terminator != "aws4_request" {
        return Err(error(code, "the credential scope is malformed: expected <access key>/<yyyymmdd>/<region>/s3/aws4_request".into()));
    }
    if *scope_region != region {
        return Err(error(code, format!("the region {scope_region:?} is wrong; expecting {region:?}")));
    }
    if *service != "s3" {
        return Err(error(code, format!("the service {service:?} is wrong; expecting \"s3\"")));
    }
    Ok(())
}

/// Every `x-amz-*` header sent must be signed, so that nobody can add one to a
/// signed request in transit (an added `x-amz-copy-source` would turn a PUT
/// into a copy). Presigned URLs may leave `x-amz-content-sha256` unsigned, as
/// their payload is never part of the signature.
fn check_amz_headers_signed(headers: &HeaderMap, signed: &[&str], presigned: bool) -> Result<(), S3Error> {
    for name in headers.keys() {
        let name = name.as_str();
        if !name.starts_with("x-amz-") || signed.contains(&name) {
            continue;
        }
        if presigned && name == "x-amz-content-sha256" {
            continue;
        }
        return Err(error(
            S3ErrorCode::AccessDenied,
            format!("there were headers present in the request which were not signed: {name}"),
        ));
    }
    Ok(())
}

fn check_signed_headers_present(headers: &HeaderMap, signed: &[&str]) -> Result<(), S3Error> {
    for name in signed {
        if *name != "host" && !headers.contains_key(*name) {
            return Err(error(
                S3ErrorCode::AccessDenied,
                format!("the signed header {name:?} is missing from the request"),
            ));
        }
    }
    Ok(())
}

fn url_decode_pairs(query: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(auth: Option<&str>, query: &str, extra: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::get(format!("http://127.0.0.1/b/k?{query}"));
        if let Some(auth) = auth {
            builder = builder.header("authorization", auth);
        }
        for (k, v) in extra {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap()
    }

    const SIG: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn header_auth(region: &str, signed: &str) -> String {
        format!("AWS4-HMAC-SHA256 Credential=KLX/20260101/{region}/s3/aws4_request, SignedHeaders={signed}, Signature={SIG}")
    }

    fn code(result: Result<(), S3Error>) -> S3ErrorCode {
        result.unwrap_err().code().clone()
    }

    const STD: &[(&str, &str)] = &[("x-amz-date", "20260101T000000Z"), ("x-amz-content-sha256", "UNSIGNED-PAYLOAD")];

    #[test]
    fn sigv2_is_rejected() {
        assert_eq!(code(check_signature_shape(&request(Some("AWS AK:sig"), "", &[]), "us-east-1")), S3ErrorCode::InvalidRequest);
        let req = request(None, "AWSAccessKeyId=AK&Signature=x&Expires=1", &[]);
        assert_eq!(code(check_signature_shape(&req, "us-east-1")), S3ErrorCode::InvalidRequest);
    }

    #[test]
    fn wrong_region_names_expected_one() {
        let req = request(Some(&header_auth("eu-west-1", "host;x-amz-content-sha256;x-amz-date")), "", STD);
        let err = check_signature_shape(&req, "us-east-1").unwrap_err();
        assert_eq!(err.code(), &S3ErrorCode::AuthorizationHeaderMalformed);
        assert!(err.message().unwrap().contains("\"us-east-1\""));
    }

    #[test]
    fn unsigned_required_headers_are_rejected() {
        for signed in ["x-amz-content-sha256;x-amz-date", "host;x-amz-date", "host;x-amz-content-sha256"] {
            let req = request(Some(&header_auth("us-east-1", signed)), "", STD);
            assert_eq!(code(check_signature_shape(&req, "us-east-1")), S3ErrorCode::AuthorizationHeaderMalformed, "{signed}");
        }
    }

    #[test]
    fn unsigned_session_token_is_rejected() {
        let mut extra = STD.to_vec();
        extra.push(("x-amz-security-token", "KLS1.x"));
        let req = request(Some(&header_auth("us-east-1", "host;x-amz-content-sha256;x-amz-date")), "", &extra);
        assert_eq!(code(check_signature_shape(&req, "us-east-1")), S3ErrorCode::AuthorizationHeaderMalformed);
    }

    #[test]
    fn signed_header_missing_from_request_is_rejected() {
        let req = request(Some(&header_auth("us-east-1", "host;x-amz-content-sha256;x-amz-date;x-amz-meta-a")), "", STD);
        assert_eq!(code(check_signature_shape(&req, "us-east-1")), S3ErrorCode::AccessDenied);
    }

    #[test]
    fn unsigned_amz_headers_are_rejected() {
        for extra in [("x-amz-copy-source", "/b/secret"), ("x-amz-meta-injected", "evil"), ("x-amz-acl", "public-read")] {
            let mut headers = STD.to_vec();
            headers.push(extra);
            let req = request(Some(&header_auth("us-east-1", "host;x-amz-content-sha256;x-amz-date")), "", &headers);
            let err = check_signature_shape(&req, "us-east-1").unwrap_err();
            assert_eq!(err.code(), &S3ErrorCode::AccessDenied, "{}", extra.0);
            assert!(err.message().unwrap().contains(extra.0));
        }
    }

    #[test]
    fn malformed_authorization_variants() {
        for auth in [
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Credential=KLX/20260101/us-east-1/s3/aws4_request",
            "AWS4-HMAC-SHA256 Credential=KLX/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=zz",
            "AWS4-HMAC-SHA256 Credential=KLX/2026/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Credential=KLX, SignedHeaders=host, Signature=0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            let req = request(Some(auth), "", STD);
            assert_eq!(code(check_signature_shape(&req, "us-east-1")), S3ErrorCode::AuthorizationHeaderMalformed, "{auth}");
        }
    }

    #[test]
    fn presigned_expires_bounds() {
        let base = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=KLX%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-SignedHeaders=host&X-Amz-Date=20260101T000000Z";
        for (expires, ok) in [("0", false), ("1", true), ("604800", true), ("604801", false), ("-5", false), ("abc", false)] {
            let req = request(None, &format!("{base}&X-Amz-Expires={expires}"), &[]);
            assert_eq!(check_signature_shape(&req, "us-east-1").is_ok(), ok, "{expires}");
        }
    }

    #[test]
    fn echoed_values_are_cut() {
        assert_eq!(echo("host;x-amz-date"), "\"host;x-amz-date\"");
        let long = "x;".repeat(5000);
        let echoed = echo(&long);
        assert!(echoed.len() < 200, "{echoed}");
        assert!(echoed.ends_with("(cut at 128 characters)"), "{echoed}");
    }

}
