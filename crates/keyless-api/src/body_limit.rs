//! Request bodies read whole under a size limit, before any handler runs.
//!
//! Every route of the API that takes a body sits behind one of two
//! middlewares: `json::limit_body` for the JSON routes and `sts::limit_body`
//! for the STS route. Each reads the body here and rejects an oversized one
//! with 413 in its endpoint's own error shape. Without them, axum's body
//! extractor would return a plain-text 413 that neither JSON nor STS clients
//! can parse.

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// Maximum time a client may take to send a whole API request body. Bodies
/// are at most a few MiB, so a slower client is stalled, not slow.
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// The reason a request body could not be read.
#[derive(Debug)]
pub enum BodyError {
    /// The body is longer than the limit. `length` is its length when that
    /// is known, as from Content-Length, and `None` for a chunked body.
    TooLarge { length: Option<u64> },
    /// The connection failed or the framing was invalid while reading.
    Unreadable(String),
}

impl BodyError {
    /// Describes the error for a client, naming `limit`.
    pub fn message(&self, limit: usize) -> String {
        match self {
            BodyError::TooLarge { length: Some(length) } => {
                format!("the request body is {length} bytes, larger than the maximum of {limit} bytes")
            }
            BodyError::TooLarge { length: None } => {
                format!("the request body is larger than the maximum of {limit} bytes")
            }
            BodyError::Unreadable(reason) => format!("the request body could not be read: {reason}"),
        }
    }
}

/// Reads the whole body of `request`, at most `limit` bytes, and returns the
/// request with the body buffered in memory.
///
/// A declared Content-Length over the limit is rejected before any byte is
/// read. A chunked body is read until it passes the limit.
pub async fn read_limited(request: Request, limit: usize) -> Result<Request, BodyError> {
    let (parts, body) = request.into_parts();

    // hyper sets an exact size hint from Content-Length, and a lower bound of
    // 0 for a chunked body.
    let declared = body.size_hint().exact();
    if declared.is_some_and(|length| length > limit as u64) {
        tracing::debug!(length = declared, limit, "request body over the limit rejected before reading");
        return Err(BodyError::TooLarge { length: declared });
    }

    let Ok(collected) = tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(body, limit).collect()).await else {
        tracing::debug!(limit, "request body did not arrive in time");
        return Err(BodyError::Unreadable(format!("the whole body did not arrive within {} s", BODY_READ_TIMEOUT.as_secs())));
    };
    let bytes: Bytes = match collected {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            tracing::debug!(limit, "request body over the limit rejected while reading");
            return Err(BodyError::TooLarge { length: declared });
        }
        Err(err) => {
            tracing::debug!(error = %err, "request body could not be read");
            return Err(BodyError::Unreadable(err.to_string()));
        }
    };
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_with(body: Body) -> Request {
        Request::builder().method("POST").uri("/").body(body).unwrap_or_default()
    }

    /// A body of `chunks` without a known length, as hyper presents a chunked one.
    struct Chunked(std::collections::VecDeque<Bytes>);

    impl HttpBody for Chunked {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Ready(self.0.pop_front().map(|chunk| Ok(http_body::Frame::data(chunk))))
        }
    }

    fn chunked(chunks: &[&'static [u8]]) -> Body {
        Body::new(Chunked(chunks.iter().map(|chunk| Bytes::from_static(chunk)).collect()))
    }

    #[tokio::test]
    async fn body_at_limit_is_kept() {
        let request = read_limited(request_with(Body::from(vec![b'a'; 16])), 16).await.unwrap();
        let bytes = axum::body::to_bytes(request.into_body(), usize::MAX).await.unwrap();
        assert_eq!(bytes.len(), 16);
    }

    #[tokio::test]
    async fn declared_length_over_limit_is_rejected() {
        let err = read_limited(request_with(Body::from(vec![b'a'; 17])), 16).await.unwrap_err();
        assert!(matches!(err, BodyError::TooLarge { length: Some(17) }), "{err:?}");
        assert_eq!(err.message(16), "the request body is 17 bytes, larger than the maximum of 16 bytes");
    }

    #[tokio::test]
    async fn chunked_body_over_limit_is_rejected() {
        let err = read_limited(request_with(chunked(&[b"12345678", b"12345678", b"1"])), 16).await.unwrap_err();
        assert!(matches!(err, BodyError::TooLarge { length: None }), "{err:?}");
        assert_eq!(err.message(16), "the request body is larger than the maximum of 16 bytes");
    }

    #[tokio::test]
    async fn chunked_body_at_limit_is_kept() {
        let request = read_limited(request_with(chunked(&[b"12345678", b"12345678"])), 16).await.unwrap();
        let bytes = axum::body::to_bytes(request.into_body(), usize::MAX).await.unwrap();
        assert_eq!(&bytes[..], b"1234567812345678");
    }

    /// A body whose client stopped sending: it never yields another frame.
    struct Stalled;

    impl HttpBody for Stalled {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
            std::task::Poll::Pending
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stalled_body_times_out() {
        let started = tokio::time::Instant::now();
        let err = read_limited(request_with(Body::new(Stalled)), 16).await.unwrap_err();
        assert!(matches!(err, BodyError::Unreadable(_)), "{err:?}");
        assert!(err.message(16).contains("did not arrive within 120 s"), "{}", err.message(16));
        assert_eq!(started.elapsed(), BODY_READ_TIMEOUT);
    }

}
