//! Issuer key sets: OIDC discovery, then the JWKS it names, cached per issuer.
//!
//! A key set is fresh for `ttl`; after that the next lookup refetches it, and if
//! the issuer cannot be reached the old set stays usable for `stale_if_error`.
//! A `kid` that the cached set lacks triggers at most one refetch per issuer
//! per `refetch_interval`, so junk tokens cannot make keyless hammer an IdP.
//! Fetches follow no redirects, are capped in size and time, and never go to
//! link-local addresses (cloud metadata services live there).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use tokio::sync::Mutex;

/// Largest discovery document or key set accepted, bytes.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    #[error("the identity provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the identity provider returned an invalid document: {0}")]
    Invalid(String),
    #[error("fetching from {0:?} is not allowed: link-local and unspecified addresses are refused")]
    Forbidden(String),
}

struct Entry {
    keys: Arc<JwkSet>,
    fetched: Instant,
    last_attempt: Instant,
}

pub struct JwksCache {
    http: reqwest::Client,
    entries: Mutex<HashMap<String, Arc<Mutex<Option<Entry>>>>>,
    pub ttl: Duration,
    pub stale_if_error: Duration,
    pub refetch_interval: Duration,
}

impl JwksCache {
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(3))
            .user_agent("keyless")
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        JwksCache {
            http,
            entries: Mutex::default(),
            ttl: Duration::from_secs(300),
            stale_if_error: Duration::from_secs(3600),
            refetch_interval: Duration::from_secs(30),
        }
    }

    /// Returns the issuer's key set. `want_kid` names a key the caller needs:
    /// if the cached set lacks it, one refetch is allowed per refetch interval.
    pub async fn keys(&self, issuer: &str, want_kid: Option<&str>) -> Result<Arc<JwkSet>, JwksError> {
        // One lock per issuer makes concurrent misses share a single fetch.
        let slot = {
            let mut entries = self.entries.lock().await;
            entries.entry(issuer.to_owned()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        let now = Instant::now();

        if let Some(entry) = slot.as_ref() {
            let fresh = now.duration_since(entry.fetched) < self.ttl;
            let has_kid = want_kid.is_none_or(|kid| entry.keys.find(kid).is_some());
            let may_refetch = now.duration_since(entry.last_attempt) >= self.refetch_interval;
            if (fresh && has_kid) || (fresh && !may_refetch) {
                return Ok(entry.keys.clone());
            }
        }

        let fetched = self.fetch(issuer).await;
        match (fetched, slot.as_mut()) {
            (Ok(keys), _) => {
                let keys = Arc::new(keys);
                *slot = Some(Entry { keys: keys.clone(), fetched: now, last_attempt: now });
                Ok(keys)
            }
            (Err(err), Some(entry)) if now.duration_since(entry.fetched) < self.ttl + self.stale_if_error => {
                tracing::warn!(issuer, error = %err, "key set refetch failed; using the cached keys");
                entry.last_attempt = now;
                Ok(entry.keys.clone())
            }
            (Err(err), _) => {
                tracing::warn!(issuer, error = %err, "key set fetch failed");
                Err(err)
            }
        }
    }

    async fn fetch(&self, issuer: &str) -> Result<JwkSet, JwksError> {
        let discovery_url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let discovery: serde_json::Value = self.get_json(&discovery_url).await?;
        if discovery.get("issuer").and_then(|v| v.as_str()) != Some(issuer) {
            return Err(JwksError::Invalid(format!("discovery document of {issuer:?} names another issuer")));
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .ok_or_else(|| JwksError::Invalid("discovery document has no jwks_uri".into()))?;
        let set: JwkSet = serde_json::from_value(self.get_json(jwks_uri).await?)
            .map_err(|err| JwksError::Invalid(format!("key set is not a JWK set: {err}")))?;
        Ok(set)
    }

    async fn get_json(&self, url: &str) -> Result<serde_json::Value, JwksError> {
        let parsed = url::Url::parse(url).map_err(|err| JwksError::Invalid(format!("{url:?} is not a URL: {err}")))?;
        check_fetch_target(&parsed).await?;
        let mut response = self.http.get(parsed).send().await.map_err(|err| JwksError::Unreachable(err.to_string()))?;
        if !response.status().is_success() {
            return Err(JwksError::Unreachable(format!("{url} returned HTTP {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| JwksError::Unreachable(err.to_string()))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(JwksError::Invalid(format!("{url} returned more than {MAX_DOCUMENT_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|err| JwksError::Invalid(format!("{url} did not return JSON: {err}")))
    }
}

impl Default for JwksCache {
    fn default() -> Self {
        Self::new()
    }
}

/// Refuses fetch targets on link-local (including 169.254.169.254 and
/// fd00:ec2::254) and unspecified addresses, and plain HTTP off loopback.
/// NOTE: the name is resolved here and again by the HTTP client, so a DNS
/// answer that changes between the two is not caught.
async fn check_fetch_target(url: &url::Url) -> Result<(), JwksError> {
    let host = url.host_str().ok_or_else(|| JwksError::Invalid(format!("{url} has no host")))?.to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        _ => tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|err| JwksError::Unreachable(format!("cannot resolve {host:?}: {err}")))?
            .map(|a| a.ip())
            .collect(),
    };
    for ip in &addrs {
        let forbidden = match ip {
            IpAddr::V4(v4) => v4.is_link_local() || v4.is_unspecified() || v4.is_broadcast(),
            IpAddr::V6(v6) => {
                v6.is_unspecified() || (v6.segments()[0] & 0xffc0) == 0xfe80 || v6.segments()[..4] == [0xfd00, 0xec2, 0, 0]
            }
        };
        if forbidden {
            return Err(JwksError::Forbidden(url.to_string()));
        }
        if url.scheme() != "https" && !ip.is_loopback() {
            return Err(JwksError::Forbidden(url.to_string()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn metadata_address_is_refused() {
        let url = url::Url::parse("http://169.254.169.254/latest/meta-data").unwrap();
        assert!(matches!(check_fetch_target(&url).await, Err(JwksError::Forbidden(_))));
        let url = url::Url::parse("https://[fe80::1]/jwks").unwrap();
        assert!(matches!(check_fetch_target(&url).await, Err(JwksError::Forbidden(_))));
    }

    #[tokio::test]
    async fn plain_http_off_loopback_is_refused() {
        let url = url::Url::parse("http://10.0.0.1/jwks").unwrap();
        assert!(matches!(check_fetch_target(&url).await, Err(JwksError::Forbidden(_))));
        let url = url::Url::parse("http://127.0.0.1:1/jwks").unwrap();
        assert!(check_fetch_target(&url).await.is_ok());
    }
}
