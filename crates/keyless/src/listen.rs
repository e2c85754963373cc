//! The two listeners: accept TCP connections, complete the TLS handshake when
//! TLS is configured, and serve HTTP/1.1 and HTTP/2 with the connection's
//! facts (client address, TLS or not) attached to every request.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::Context;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use keyless_auth::Connection;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;

/// A client that opens a connection and never finishes the TLS handshake is
/// dropped after this long.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that starts a request and has not sent its whole header block
/// this long after is dropped.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A connection on which nothing was read or written for this long, while
/// the server waits for the client, is closed. So a client that connects and
/// sends nothing, or goes quiet mid-body, cannot keep a descriptor forever.
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// Loads the certificate chain and key into a TLS acceptor offering HTTP/2
/// and HTTP/1.1. Errors name the file and what is wrong with it.
pub fn tls_acceptor(files: &TlsFiles) -> anyhow::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("cannot read the TLS certificate chain {}", files.cert.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no PEM CERTIFICATE block in {}", files.cert.display());
    let key = PrivateKeyDer::from_pem_file(&files.key).with_context(|| format!("cannot read a PEM private key from {}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("the TLS provider offers no safe protocol version")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .with_context(|| format!("the key in {} does not fit the certificate in {}", files.key.display(), files.cert.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `listener` forever. `make_service` builds the HTTP service of one
/// connection from its facts, and `endpoint` names the listener in logs.
pub async fn serve<M, S, B>(listener: TcpListener, tls: Option<TlsAcceptor>, endpoint: &'static str, make_service: M)
where
    M: Fn(Connection) -> S,
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Usually out of file descriptors, so wait instead of spinning.
                tracing::warn!(error = %err, endpoint, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = make_service(Connection { client, secure: tls.is_some() });
        let tls = tls.clone();
        tokio::spawn(async move {
            let served = match tls {
                None => serve_connection(stream, service).await,
                Some(acceptor) => match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => serve_connection(stream, service).await,
                    Ok(Err(err)) => Err(format!("TLS handshake failed: {err}")),
                    Err(_) => Err(format!("TLS handshake took longer than {} s", TLS_HANDSHAKE_TIMEOUT.as_secs())),
                },
            };
            if let Err(err) = served {
                tracing::debug!(error = %err, %client, endpoint, "connection ended with an error");
            }
        });
    }
}

async fn serve_connection<I, S, B>(io: I, service: S) -> Result<(), String>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    builder.serve_connection(TokioIo::new(IdleTimeout::new(io, IDLE_TIMEOUT)), service).await.map_err(|err| err.to_string())
}

/// Fails a read that has waited `limit` since the connection last moved a
/// byte in either direction.
struct IdleTimeout<I> {
    inner: I,
    limit: Duration,
    last_progress: Instant,
    timer: Pin<Box<Sleep>>,
}

impl<I> IdleTimeout<I> {
    fn new(inner: I, limit: Duration) -> Self {
        let now = Instant::now();
        Self { inner, limit, last_progress: now, timer: Box::pin(tokio::time::sleep_until(now + limit)) }
    }

    /// Returns Ready when the connection has been idle for `limit`, and
    /// otherwise registers a wake-up for the moment it would be.
    fn poll_idle(&mut self, cx: &mut TaskContext<'_>) -> Poll<()> {
        loop {
            let deadline = self.last_progress + self.limit;
            if self.timer.deadline() != deadline {
                self.timer.as_mut().reset(deadline);
            }
            match self.timer.as_mut().poll(cx) {
                Poll::Ready(()) if self.last_progress + self.limit <= Instant::now() => return Poll::Ready(()),
                Poll::Ready(()) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for IdleTimeout<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.last_progress = Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending => match self.poll_idle(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no bytes moved for {} s", self.limit.as_secs()),
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for IdleTimeout<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.last_progress = Instant::now();
        }
        polled
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, data: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.last_progress = Instant::now();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn silent_client_is_dropped_after_the_idle_limit() {
        let (_client, server) = tokio::io::duplex(64);
        let mut server = IdleTimeout::new(server, Duration::from_secs(120));
        let started = Instant::now();
        let err = server.read(&mut [0u8; 8]).await.expect_err("a silent client times out");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed().as_secs(), 120);
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_in_either_direction_restart_the_idle_clock() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut server = IdleTimeout::new(server, Duration::from_secs(120));
        let mut buf = [0u8; 8];
        tokio::time::sleep(Duration::from_secs(100)).await;
        client.write_all(b"GET").await.unwrap();
        assert_eq!(server.read(&mut buf).await.unwrap(), 3);
        tokio::time::sleep(Duration::from_secs(100)).await;
        server.write_all(b"HTTP").await.unwrap();
        let started = Instant::now();
        let err = server.read(&mut buf).await.expect_err("idle again after the write");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed().as_secs(), 120);
    }
}
