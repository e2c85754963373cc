//! The one table from internal errors to S3 error codes.

use keyless_auth::KeyError;
use keyless_auth::SessionError;
use keyless_store::StoreError;
use s3s::{S3Error, S3ErrorCode};

pub fn key_error(err: KeyError) -> S3Error {
    let (code, message): (S3ErrorCode, String) = match &err {
        KeyError::UnknownKey => (S3ErrorCode::InvalidAccessKeyId, "the access key id you provided does not exist".into()),
        KeyError::Revoked => (S3ErrorCode::InvalidAccessKeyId, "the access key has been revoked".into()),
        KeyError::Expired | KeyError::Session(SessionError::Expired) => {
            (S3ErrorCode::ExpiredToken, "the provided token has expired".into())
        }
        KeyError::Suspended => (S3ErrorCode::InvalidAccessKeyId, "the access key is inactive: its principal is suspended".into()),
        KeyError::MissingSessionToken => (
            S3ErrorCode::InvalidToken,
            "temporary credentials need their session token in X-Amz-Security-Token".into(),
        ),
        KeyError::UnexpectedSessionToken => (
            S3ErrorCode::InvalidToken,
            "a session token was sent with a static access key; static keys take none".into(),
        ),
        KeyError::Session(_) => (S3ErrorCode::InvalidToken, err.to_string()),
        KeyError::UnknownApiToken | KeyError::Internal => return S3Error::new(S3ErrorCode::InternalError),
    };
    S3Error::with_message(code, message)
}

/// Maps a store failure that the operation did not handle itself.
pub fn store_error(err: StoreError) -> S3Error {
    tracing::error!(error = %err, "storage failure");
    S3Error::with_message(S3ErrorCode::InternalError, "we encountered an internal error; please try again")
}

pub fn no_such_bucket(bucket: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::NoSuchBucket, format!("the bucket {bucket:?} does not exist"))
}

pub fn no_such_key(key: &str) -> S3Error {
    S3Error::with_message(S3ErrorCode::NoSuchKey, format!("the key {key:?} does not exist"))
}

pub fn no_such_upload(upload_id: &str) -> S3Error {
    S3Error::with_message(
        S3ErrorCode::NoSuchUpload,
        format!("the upload {upload_id:?} does not exist; it may have been completed or aborted"),
    )
}

pub fn invalid_argument(message: String) -> S3Error {
    S3Error::with_message(S3ErrorCode::InvalidArgument, message)
}

/// Maps an error raised while reading a request body. s3s verifies payload
/// hashes and chunk signatures as the body streams, so those failures arrive
/// here and must become client errors, never a 500.
pub fn body_error(err: &(dyn std::error::Error + 'static)) -> S3Error {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    if text.contains("SignatureMismatch") {
        S3Error::with_message(S3ErrorCode::SignatureDoesNotMatch, "a chunk signature does not match the chunk")
    } else if text.contains("Sha256Mismatch") {
        let mut err = S3Error::with_message(
            S3ErrorCode::Custom("XAmzContentSHA256Mismatch".into()),
            "the body does not match the x-amz-content-sha256 header",
        );
        err.set_status_code(http::StatusCode::BAD_REQUEST);
        err
    } else if text.contains("FormatError") || text.contains("TooLarge") || text.contains("TooMany") {
        S3Error::with_message(S3ErrorCode::InvalidRequest, "the aws-chunked body is malformed")
    } else {
        S3Error::with_message(S3ErrorCode::IncompleteBody, "the body ended before the declared length")
    }
}
