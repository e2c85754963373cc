//! Strict JSON bodies: unknown fields and wrong types are 400s that name the field.

use axum::body::Bytes;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::ApiError;
use crate::body_limit::{BodyError, read_limited};

/// Largest JSON body the API accepts, bytes.
pub const MAX_JSON_BODY: usize = 1024 * 1024;

/// Middleware for the JSON routes: buffers the request body, at most
/// `MAX_JSON_BODY` bytes, and rejects a larger one with a JSON 413.
pub async fn limit_body(request: Request, next: Next) -> Response {
    match read_limited(request, MAX_JSON_BODY).await {
        Ok(request) => next.run(request).await,
        Err(err @ BodyError::TooLarge { .. }) => ApiError::payload_too_large(err.message(MAX_JSON_BODY)).into_response(),
        Err(err @ BodyError::Unreadable(_)) => ApiError::bad_request(err.message(MAX_JSON_BODY)).into_response(),
    }
}

pub fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    // `limit_body` has rejected larger bodies already on every JSON route.
    // This check enforces the limit for a caller outside those routes too.
    if body.len() > MAX_JSON_BODY {
        let length = Some(body.len() as u64);
        return Err(ApiError::payload_too_large(BodyError::TooLarge { length }.message(MAX_JSON_BODY)));
    }
    // serde would also fill a struct from a JSON array, by position. Every
    // body of this API is an object, so anything else is rejected.
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(ApiError::bad_request("invalid JSON body: expected a JSON object ({...})"));
    }
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if path == "." {
            ApiError::bad_request(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::bad_request(format!("invalid field {path:?}: {inner}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Body {
        duration_seconds: u64,
    }

    #[test]
    fn wrong_type_names_field() {
        let err = parse::<Body>(&Bytes::from_static(br#"{"durationSeconds":"x"}"#)).unwrap_err();
        assert!(err.message.contains("durationSeconds"), "{}", err.message);
    }

    #[test]
    fn array_body_is_rejected() {
        let err = parse::<Body>(&Bytes::from_static(b" [1]")).unwrap_err();
        assert!(err.message.contains("JSON object"), "{}", err.message);
    }

    #[test]
    fn unknown_field_is_named() {
        let err = parse::<Body>(&Bytes::from_static(br#"{"durationSeconds":1,"bogus":2}"#)).unwrap_err();
        assert!(err.message.contains("bogus"), "{}", err.message);
    }
}
