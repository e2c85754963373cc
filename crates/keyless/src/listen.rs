//! The two listeners: accept TCP connections, complete the TLS handshake when
//! TLS is configured, and serve HTTP/1.1 with the connection's facts (client
//! address, TLS or not) attached to every request.
//!
//! HTTP/1.1 only, as S3 itself serves: hyper's header timeout bounds every
//! HTTP/1 connection, but hyper has no such bound for an idle HTTP/2
//! connection, so a client could hold one open forever.

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
use hyper_util::rt::{TokioIo, TokioTimer};
use keyless_auth::Connection;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::Sleep;
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;

/// A client that opens a connection and never finishes the TLS handshake is
/// dropped after this long.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A client that has not sent a whole request head this long after the
/// connection became ready for one is dropped. This also closes idle
/// keep-alive connections.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A client that opens a connection and sends nothing is dropped after this
/// long, so silent connections cannot pin file descriptors.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);

/// Loads the certificate chain and key into a TLS acceptor offering HTTP/1.1.
/// Errors name the file and what is wrong with it.
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
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
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
    hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(FirstByteTimeout::new(io, FIRST_BYTE_TIMEOUT)), service)
        .await
        .map_err(|err| err.to_string())
}

/// Fails the first read if no byte has arrived `limit` after the connection
/// opened. Later reads pass through untouched: hyper's header timeout covers
/// each request head, and body reads carry their own timeouts.
struct FirstByteTimeout<I> {
    inner: I,
    limit: Duration,
    /// None once a byte has arrived.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<I> FirstByteTimeout<I> {
    fn new(inner: I, limit: Duration) -> Self {
        Self { inner, limit, timer: Some(Box::pin(tokio::time::sleep(limit))) }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for FirstByteTimeout<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let limit = self.limit;
        let Some(timer) = self.timer.as_mut() else { return polled };
        match polled {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.timer = None;
                }
                Poll::Ready(result)
            }
            Poll::Pending => match timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("the client sent nothing within {} s", limit.as_secs()),
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for FirstByteTimeout<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>, data: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, data)
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

    use tokio::time::Instant;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn silent_client_is_dropped_after_the_limit() {
        let (_client, server) = tokio::io::duplex(64);
        let mut server = FirstByteTimeout::new(server, FIRST_BYTE_TIMEOUT);
        let started = Instant::now();
        let err = server.read(&mut [0u8; 8]).await.expect_err("a silent client times out");
        assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), FIRST_BYTE_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_first_byte_reads_may_wait() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut server = FirstByteTimeout::new(server, FIRST_BYTE_TIMEOUT);
        let mut buf = [0u8; 8];
        client.write_all(b"G").await.unwrap();
        assert_eq!(server.read(&mut buf).await.unwrap(), 1);
        // A handler may work for a long time while hyper polls the socket.
        let waiting = tokio::spawn(async move { server.read(&mut buf).await.map(|n| n) });
        tokio::time::sleep(FIRST_BYTE_TIMEOUT * 10).await;
        assert!(!waiting.is_finished());
        client.write_all(b"ET").await.unwrap();
        assert_eq!(waiting.await.unwrap().unwrap(), 2);
    }
}
