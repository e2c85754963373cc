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

use crate::keys::KeySet;

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

/// Cached state of one issuer.
#[derive(Default)]
struct Slot {
    keys: Option<Arc<KeySet>>,
    /// When `keys` was fetched, and how long it stays fresh.
    fetched: Option<Instant>,
    ttl: Duration,
    /// Last fetch attempt, successful or not, for the refetch rate limit.
    last_attempt: Option<Instant>,
    /// Last failure, served again without a fetch for `negative_ttl`.
    last_error: Option<JwksError>,
}

pub struct JwksCache {
    http: reqwest::Client,
    /// One slot per issuer. The map's lock is a plain mutex because it is never
    /// held across an await; each slot's lock is held across its fetch.
    slots: std::sync::Mutex<HashMap<String, Arc<Mutex<Slot>>>>,
    /// Freshness when the key set response has no usable `Cache-Control: max-age`.
    pub default_ttl: Duration,
    /// Bounds applied to an issuer's `max-age`.
    pub min_ttl: Duration,
    pub max_ttl: Duration,
    /// How long stale keys stay usable while the issuer cannot be reached.
    pub stale_if_error: Duration,
    /// Least time between two fetches for one issuer, whatever tokens arrive.
    pub refetch_interval: Duration,
    /// How long a failed first fetch is remembered before trying again.
    pub negative_ttl: Duration,
    /// Fetch attempts so far, for metrics and tests.
    pub fetch_attempts: std::sync::atomic::AtomicU64,
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
            slots: std::sync::Mutex::default(),
            default_ttl: Duration::from_secs(300),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(24 * 3600),
            stale_if_error: Duration::from_secs(3600),
            refetch_interval: Duration::from_secs(30),
            negative_ttl: Duration::from_secs(10),
            fetch_attempts: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Returns the issuer's key set, parsed for verification. `want_kid` names
    /// a key the caller needs: if the cached set lacks it, one refetch is
    /// allowed per refetch interval.
    pub async fn keys(&self, issuer: &str, want_kid: Option<&str>) -> Result<Arc<KeySet>, JwksError> {
        // One lock per issuer makes concurrent misses share a single fetch.
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match slots.get(issuer) {
                Some(slot) => slot.clone(),
                None => slots.entry(issuer.to_owned()).or_default().clone(),
            }
        };
        let mut slot = slot.lock().await;
        let now = Instant::now();
        let since = |t: Option<Instant>| t.map_or(Duration::MAX, |t| now.duration_since(t));

        let may_refetch = since(slot.last_attempt) >= self.refetch_interval;
        if let Some(keys) = &slot.keys {
            let fresh = since(slot.fetched) < slot.ttl;
            let has_kid = want_kid.is_none_or(|kid| keys.has_kid(kid));
            if fresh && (has_kid || !may_refetch) {
                return Ok(keys.clone());
            }
        } else if let Some(err) = &slot.last_error
            && since(slot.last_attempt) < self.negative_ttl
        {
            return Err(err.clone());
        }

        slot.last_attempt = Some(now);
        self.fetch_attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match self.fetch(issuer).await {
            Ok((keys, max_age)) => {
                let keys = Arc::new(KeySet::new(keys));
                slot.keys = Some(keys.clone());
                slot.fetched = Some(now);
                slot.ttl = max_age.map_or(self.default_ttl, |age| age.clamp(self.min_ttl, self.max_ttl));
                slot.last_error = None;
                Ok(keys)
            }
            Err(err) => {
                tracing::warn!(issuer, error = %err, "key set fetch failed");
                slot.last_error = Some(err.clone());
                let usable_stale = slot.keys.is_some() && since(slot.fetched) < slot.ttl + self.stale_if_error;
                match (&slot.keys, usable_stale) {
                    (Some(keys), true) => Ok(keys.clone()),
                    _ => Err(err),
                }
            }
        }
    }

    async fn fetch(&self, issuer: &str) -> Result<(JwkSet, Option<Duration>), JwksError> {
        let discovery_url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let (discovery, _) = self.get_json(&discovery_url).await?;
        if discovery.get("issuer").and_then(|v| v.as_str()) != Some(issuer) {
            return Err(JwksError::Invalid(format!("discovery document of {issuer:?} names another issuer")));
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(|v| v.as_str())
            .ok_or_else(|| JwksError::Invalid("discovery document has no jwks_uri".into()))?;
        let (set, max_age) = self.get_json(jwks_uri).await?;
        let set: JwkSet = serde_json::from_value(set).map_err(|err| JwksError::Invalid(format!("key set is not a JWK set: {err}")))?;
        Ok((set, max_age))
    }

    /// GETs a JSON document; returns it with the response's `max-age`, if any.
    async fn get_json(&self, url: &str) -> Result<(serde_json::Value, Option<Duration>), JwksError> {
        let parsed = url::Url::parse(url).map_err(|err| JwksError::Invalid(format!("{url:?} is not a URL: {err}")))?;
        check_fetch_target(&parsed).await?;
        let mut response = self.http.get(parsed).send().await.map_err(|err| JwksError::Unreachable(err.to_string()))?;
        if !response.status().is_success() {
            return Err(JwksError::Unreachable(format!("{url} returned HTTP {}", response.status())));
        }
        let max_age = response
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_max_age);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| JwksError::Unreachable(err.to_string()))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(JwksError::Invalid(format!("{url} returned more than {MAX_DOCUMENT_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        let json = serde_json::from_slice(&body).map_err(|err| JwksError::Invalid(format!("{url} did not return JSON: {err}")))?;
        Ok((json, max_age))
    }
}

/// Reads `max-age=N` from a Cache-Control value; `no-store`/`no-cache` mean 0,
/// which the minimum TTL then raises.
fn parse_max_age(value: &str) -> Option<Duration> {
    let mut max_age = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            max_age = n.trim_matches('"').parse::<u64>().ok().map(Duration::from_secs);
        }
    }
    max_age
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

    #[test]
    fn cache_control_max_age() {
        assert_eq!(parse_max_age("public, max-age=600"), Some(Duration::from_secs(600)));
        assert_eq!(parse_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(parse_max_age("public"), None);
        assert_eq!(parse_max_age("max-age=abc"), None);
    }

    #[tokio::test]
    async fn failed_fetch_is_not_retried_within_negative_ttl() {
        // Port 9 on loopback refuses connections: the first lookup fails, and
        // the second returns the remembered error without a new attempt.
        let cache = JwksCache::new();
        let first = cache.keys("http://127.0.0.1:9", None).await.unwrap_err();
        let second = cache.keys("http://127.0.0.1:9", Some("kid")).await.unwrap_err();
        assert_eq!(first, second);
        assert_eq!(cache.fetch_attempts.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

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
