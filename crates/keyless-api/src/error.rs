//! API errors and the one mapping from them to HTTP.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error returned to an API caller. `message` must hold no secret.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
    }

    /// Builds the 413 error for a request body over the endpoint's size limit.
    /// `message` names the limit.
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "RequestEntityTooLarge", message)
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", "internal error; the server log has details")
    }
}

impl From<keyless_store::StoreError> for ApiError {
    fn from(err: keyless_store::StoreError) -> Self {
        match err {
            keyless_store::StoreError::NotFound => ApiError::not_found("not found"),
            keyless_store::StoreError::Conflict(message) => ApiError::new(StatusCode::CONFLICT, "Conflict", message),
            other => {
                tracing::error!(error = %other, "storage failure in API request");
                ApiError::internal()
            }
        }
    }
}

impl From<keyless_auth::KeyError> for ApiError {
    fn from(err: keyless_auth::KeyError) -> Self {
        tracing::error!(error = %err, "credential operation failed");
        ApiError::internal()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "code": self.code, "message": self.message }))).into_response()
    }
}
