//! SigV4 verification for the STS calls that callers sign with keyless
//! credentials (`GetCallerIdentity`). Header authentication only, service
//! `sts`; the payload hash is computed from the body, as STS does.
//!
//! Steps, as in the AWS "Create a signed AWS API request" guide:
//! 1. canonical request: method, URI path, sorted query, signed headers with
//!    trimmed values, the signed-header list and the payload's SHA-256;
//! 2. string to sign: algorithm, request date, credential scope and the
//!    canonical request's SHA-256;
//! 3. signing key: HMAC chain over date, region, service and `aws4_request`;
//! 4. the signature compared in constant time.

use aws_lc_rs::{digest, hmac};
use axum::http::{HeaderMap, Method};

/// A request whose signature verified, naming the access key that signed it.
#[derive(Debug)]
pub struct VerifiedSignature {
    pub access_key_id: String,
}

/// Reason a signature was rejected. The message is safe to return.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request is not signed: send an AWS4-HMAC-SHA256 Authorization header")]
    Missing,
    #[error("the Authorization header is malformed: {0}")]
    Malformed(String),
    #[error("the request time is missing or more than 15 minutes from the server's")]
    Skewed,
    #[error("the signature does not match")]
    Mismatch,
}

struct Parsed<'a> {
    access_key_id: &'a str,
    scope: &'a str,
    date: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse(auth: &str) -> Result<Parsed<'_>, SignatureError> {
    let malformed = |why: &str| SignatureError::Malformed(why.to_owned());
    let rest = auth.strip_prefix("AWS4-HMAC-SHA256 ").ok_or_else(|| malformed("expected AWS4-HMAC-SHA256"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (name, value) = part.trim().split_once('=').ok_or_else(|| malformed("expected Name=value pairs"))?;
        match name {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed = Some(value),
            "Signature" => signature = Some(value),
            _ => return Err(malformed("unknown component")),
        }
    }
    let credential = credential.ok_or_else(|| malformed("Credential is missing"))?;
    let (access_key_id, scope) = credential.split_once('/').ok_or_else(|| malformed("Credential has no scope"))?;
    let scope_parts: Vec<&str> = scope.split('/').collect();
    let [date, _region, service, "aws4_request"] = scope_parts.as_slice() else {
        return Err(malformed("the scope must be <date>/<region>/sts/aws4_request"));
    };
    if *service != "sts" {
        return Err(malformed("the scope's service must be sts"));
    }
    let signed_headers: Vec<&str> = signed.ok_or_else(|| malformed("SignedHeaders is missing"))?.split(';').collect();
    if !signed_headers.contains(&"host") || !signed_headers.contains(&"x-amz-date") {
        return Err(malformed("SignedHeaders must include host and x-amz-date"));
    }
    let signature = signature.ok_or_else(|| malformed("Signature is missing"))?;
    Ok(Parsed { access_key_id, scope, date, signed_headers, signature })
}

/// Returns the access key id named by the Authorization header, unverified,
/// so that the caller can look up its secret.
pub fn unverified_access_key_id(headers: &HeaderMap) -> Result<String, SignatureError> {
    let auth = headers.get(axum::http::header::AUTHORIZATION).ok_or(SignatureError::Missing)?.to_str().map_err(|_| SignatureError::Missing)?;
    Ok(parse(auth)?.access_key_id.to_owned())
}

/// Verifies the request's signature with `secret`.
pub fn verify(method: &Method, path: &str, query: &str, headers: &HeaderMap, body: &[u8], secret: &str, now: time::OffsetDateTime) -> Result<VerifiedSignature, SignatureError> {
    let auth = headers.get(axum::http::header::AUTHORIZATION).ok_or(SignatureError::Missing)?.to_str().map_err(|_| SignatureError::Missing)?;
    let parsed = parse(auth)?;

    let amz_date = headers.get("x-amz-date").and_then(|v| v.to_str().ok()).ok_or(SignatureError::Skewed)?;
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let request_time = time::PrimitiveDateTime::parse(amz_date, &format).map_err(|_| SignatureError::Skewed)?.assume_utc();
    if (now - request_time).abs() > time::Duration::minutes(15) || !amz_date.starts_with(parsed.date) {
        return Err(SignatureError::Skewed);
    }

    // 1. Canonical request.
    let mut query_pairs: Vec<(String, String)> =
        url::form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (uri_encode(&k), uri_encode(&v))).collect();
    query_pairs.sort();
    let canonical_query = query_pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
    let mut canonical_headers = String::new();
    for name in &parsed.signed_headers {
        let values: Vec<String> = headers
            .get_all(*name)
            .iter()
            .map(|v| v.to_str().unwrap_or("").split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        if values.is_empty() {
            return Err(SignatureError::Malformed(format!("the signed header {name:?} is missing from the request")));
        }
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload_hash = hex::encode(digest::digest(&digest::SHA256, body));
    let canonical_request = format!(
        "{method}\n{}\n{canonical_query}\n{canonical_headers}\n{}\n{payload_hash}",
        if path.is_empty() { "/" } else { path },
        parsed.signed_headers.join(";")
    );

    // 2. String to sign.
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{}\n{}",
        parsed.scope,
        hex::encode(digest::digest(&digest::SHA256, canonical_request.as_bytes()))
    );

    // 3. Signing key.
    let scope_parts: Vec<&str> = parsed.scope.split('/').collect();
    let mut key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, format!("AWS4{secret}").as_bytes()), scope_parts[0].as_bytes());
    for part in &scope_parts[1..] {
        key = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key.as_ref()), part.as_bytes());
    }
    let expected = hex::encode(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key.as_ref()), string_to_sign.as_bytes()).as_ref());

    // 4. Constant-time comparison.
    if subtle_eq(expected.as_bytes(), parsed.signature.as_bytes()) {
        Ok(VerifiedSignature { access_key_id: parsed.access_key_id.to_owned() })
    } else {
        Err(SignatureError::Mismatch)
    }
}

fn subtle_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && aws_lc_rs::constant_time::verify_slices_are_equal(a, b).is_ok()
}

/// URI-encodes as SigV4 requires: unreserved characters stay, the rest is %XX.
fn uri_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real client's signature is verified end to end by the boto3 test of
    // GetCallerIdentity; here, a wrong signature must fail.
    #[test]
    fn zero_signature_is_rejected() {
        let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let now = time::macros::datetime!(2015-08-30 12:36:00 UTC);
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        let auth_for = |signature: &str| {
            format!("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature={signature}")
        };
        headers.insert("authorization", auth_for("0").parse().unwrap());
        let Err(SignatureError::Mismatch) = verify(&Method::GET, "/", "", &headers, b"", secret, now) else { panic!("a zero signature must not verify") };
    }

    #[test]
    fn skewed_request_is_rejected() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "h".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        headers.insert("authorization", "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=00".parse().unwrap());
        let now = time::macros::datetime!(2015-08-30 13:00:00 UTC);
        assert_eq!(verify(&Method::POST, "/", "", &headers, b"", "s", now).unwrap_err(), SignatureError::Skewed);
    }

    #[test]
    fn scope_must_name_sts() {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", "AWS4-HMAC-SHA256 Credential=AK/20150830/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00".parse().unwrap());
        assert!(matches!(unverified_access_key_id(&headers), Err(SignatureError::Malformed(_))));
    }
}
