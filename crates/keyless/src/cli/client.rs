//! The HTTP client of the control-plane API: endpoint, API token, errors.
//!
//! The API token is read from `--token`, `KEYLESS_TOKEN`, or a file named by
//! `--token-file` / `KEYLESS_TOKEN_FILE`. A token file must be readable by its
//! owner only. The token is kept in `ApiToken`, whose `Debug` output is
//! redacted, and it never appears in an error message.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

use super::output::Output;

/// Default API endpoint, the server's default `--api-listen` address.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:9001";

/// Time allowed to open a connection to the API endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for a whole request, from connecting to reading the body.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Options shared by every admin subcommand.
#[derive(clap::Args, Debug, Clone)]
#[command(next_help_heading = "Client options")]
pub struct ClientArgs {
    /// URL of the keyless API endpoint.
    #[arg(long, env = "KEYLESS_ENDPOINT", default_value = DEFAULT_ENDPOINT, global = true)]
    pub endpoint: String,
    /// API token. Prefer --token-file or KEYLESS_TOKEN: other local users can
    /// read command-line arguments in the process list.
    #[arg(long, env = "KEYLESS_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// File that contains the API token, such as <data-dir>/admin-token. It must
    /// be readable by its owner only (chmod 600).
    #[arg(long, env = "KEYLESS_TOKEN_FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// Output format: text for people, json for scripts (the server's JSON).
    #[arg(long, value_enum, env = "KEYLESS_OUTPUT", default_value_t = Output::Text, global = true)]
    pub output: Output,
}

/// An API token. `Debug` never shows its value.
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(redacted)")
    }
}

/// An error response of the API: its HTTP status and the `code` and `message`
/// of the JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (HTTP {}): {}", self.code, self.status, self.message)
    }
}

impl std::error::Error for ApiError {}

/// Resolves the API token from the options. Exactly one source must be set.
pub fn load_token(args: &ClientArgs) -> anyhow::Result<ApiToken> {
    let token = match (&args.token, &args.token_file) {
        (Some(_), Some(_)) => {
            bail!("both --token (KEYLESS_TOKEN) and --token-file (KEYLESS_TOKEN_FILE) are set: set only one")
        }
        (Some(token), None) => token.trim().to_owned(),
        (None, Some(path)) => read_token_file(path)?,
        (None, None) => bail!(
            "no API token: pass --token-file FILE (such as <data-dir>/admin-token), or set KEYLESS_TOKEN_FILE or KEYLESS_TOKEN"
        ),
    };
    if token.is_empty() {
        bail!("the API token is empty");
    }
    Ok(ApiToken(token))
}

/// Reads a token file, rejecting one that group or others may access, as
/// OpenSSH does for private keys.
pub fn read_token_file(path: &Path) -> anyhow::Result<String> {
    // The mode is checked on the open file, so the file read is the file checked.
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot read the API token file {}", path.display()))?;
    let metadata = file.metadata().with_context(|| format!("cannot read the API token file {}", path.display()))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "the API token file {} has mode {mode:04o}, so other users may read it: run chmod 600 {}",
            path.display(),
            path.display()
        );
    }
    let mut text = String::new();
    file.read_to_string(&mut text).with_context(|| format!("cannot read the API token file {}", path.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!("the API token file {} is empty", path.display());
    }
    Ok(token.to_owned())
}

/// Parses an endpoint URL and warns on stderr when credentials would cross the
/// network in clear text.
pub fn parse_endpoint(endpoint: &str) -> anyhow::Result<Url> {
    let url = Url::parse(endpoint).with_context(|| format!("invalid endpoint {endpoint:?}: expected a URL such as {DEFAULT_ENDPOINT}"))?;
    match url.scheme() {
        "https" => {}
        "http" => {
            if !is_loopback(&url) {
                eprintln!(
                    "warning: {endpoint} uses plain HTTP, so tokens and secrets cross the network unencrypted; use https"
                );
            }
        }
        other => bail!("invalid endpoint {endpoint:?}: scheme {other:?} is not http or https"),
    }
    if url.cannot_be_a_base() || url.query().is_some() || url.fragment().is_some() {
        bail!("invalid endpoint {endpoint:?}: expected scheme, host, port and optional path only");
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Appends path segments to the endpoint, percent-encoding each one, so an id or
/// name from the command line cannot change the path.
pub fn endpoint_url(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// Builds the HTTP client every command uses.
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("keyless-cli/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")
}

/// Sends a request and returns the JSON body of a success, `None` for a
/// success without a body (204), or the server's error.
pub async fn send_json(request: reqwest::RequestBuilder, request_line: &str) -> anyhow::Result<Option<Value>> {
    let response = request.send().await.map_err(|err| anyhow::anyhow!("{request_line} failed: {}", describe_transport_error(&err)))?;
    let status = response.status();
    let bytes = response.bytes().await.with_context(|| format!("{request_line} failed: cannot read the response body"))?;

    if status.is_success() {
        if bytes.is_empty() || status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let body = serde_json::from_slice(&bytes).with_context(|| format!("{request_line} returned HTTP {status} with a body that is not JSON"))?;
        return Ok(Some(body));
    }
    Err(error_from_response(status, &bytes, request_line).into())
}

/// Turns an error response into an `ApiError`. A body that is not the API's
/// JSON error (such as the empty 404 of a server that lacks a route) is
/// described by its status.
pub fn error_from_response(status: StatusCode, body: &[u8], request_line: &str) -> ApiError {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |name: &str| parsed.as_ref().and_then(|v| v.get(name)).and_then(Value::as_str).map(str::to_owned);
    match (field("code"), field("message")) {
        (Some(code), Some(message)) => ApiError { status: status.as_u16(), code, message },
        _ => {
            let looks_like_s3 = body.trim_ascii_start().starts_with(b"<");
            let message = if looks_like_s3 {
                format!("{request_line} failed with an XML response: --endpoint may name the S3 endpoint instead of the API endpoint")
            } else if status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED {
                format!("{request_line} failed: the server has no such endpoint. It may be older than this CLI")
            } else {
                format!("{request_line} failed: {}", status.canonical_reason().unwrap_or("unexpected status"))
            };
            ApiError { status: status.as_u16(), code: "HttpError".into(), message }
        }
    }
}

/// Describes a connection failure without the request's headers.
fn describe_transport_error(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else {
        "request error"
    };
    // The URL contains no secret: tokens travel only in headers and bodies.
    let url = err.url().map(|u| format!(" to {u}")).unwrap_or_default();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(err);
    let mut detail = String::new();
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() { format!("{kind}{url}") } else { format!("{kind}{url}: {detail}") }
}

/// A client of the control-plane API, authenticated with an API token.
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    token: ApiToken,
}

impl ApiClient {
    pub fn new(args: &ClientArgs) -> anyhow::Result<Self> {
        let base = parse_endpoint(&args.endpoint)?;
        let token = load_token(args)?;
        Ok(ApiClient { http: http_client()?, base, token })
    }

    /// Sends one authenticated request to the path made of `segments`, with a
    /// JSON body and query parameters when given.
    pub async fn call(&self, method: Method, segments: &[&str], query: &[(&str, String)], body: Option<&Value>) -> anyhow::Result<Option<Value>> {
        let mut url = endpoint_url(&self.base, segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let request_line = format!("{method} {}", url.path());
        let mut request = self.http.request(method, url).bearer_auth(self.token.expose());
        if let Some(body) = body {
            request = request.json(body);
        }
        send_json(request, &request_line).await
    }

    /// Sends one authenticated GET to the path made of `segments` and returns
    /// the response body as text, for documents that are not JSON.
    pub async fn get_text(&self, segments: &[&str]) -> anyhow::Result<String> {
        let url = endpoint_url(&self.base, segments);
        let request_line = format!("GET {}", url.path());
        let request = self.http.get(url).bearer_auth(self.token.expose());
        let response = request.send().await.map_err(|err| anyhow::anyhow!("{request_line} failed: {}", describe_transport_error(&err)))?;
        let status = response.status();
        let bytes = response.bytes().await.with_context(|| format!("{request_line} failed: cannot read the response body"))?;
        if !status.is_success() {
            return Err(error_from_response(status, &bytes, &request_line).into());
        }
        String::from_utf8(bytes.to_vec()).with_context(|| format!("{request_line} returned a body that is not UTF-8"))
    }

    /// Sends a request like `call` and fails unless the response has a JSON body.
    pub async fn call_json(&self, method: Method, segments: &[&str], query: &[(&str, String)], body: Option<&Value>) -> anyhow::Result<Value> {
        let path = segments.join("/");
        self.call(method.clone(), segments, query, body)
            .await?
            .with_context(|| format!("{method} /{path} returned no body, but a JSON body was expected"))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn args(token: Option<&str>, token_file: Option<PathBuf>) -> ClientArgs {
        ClientArgs { endpoint: DEFAULT_ENDPOINT.into(), token: token.map(str::to_owned), token_file, output: Output::Text }
    }

    /// A file in the temporary directory, removed when dropped.
    struct TempFile(PathBuf);

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn temp_file(name: &str, content: &str, mode: u32) -> TempFile {
        let path = std::env::temp_dir().join(format!("keyless-cli-client-{}-{name}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        TempFile(path)
    }

    #[test]
    fn token_file_readable_by_group_is_rejected() {
        let file = temp_file("group-readable", "secret-token\n", 0o640);
        let err = load_token(&args(None, Some(file.0.clone()))).unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(err.contains("0640"), "{err}");
        assert!(!err.contains("secret-token"), "{err}");
    }

    #[test]
    fn token_file_is_trimmed() {
        let file = temp_file("owner-only", "  secret-token\n", 0o600);
        let token = load_token(&args(None, Some(file.0.clone()))).unwrap();
        assert_eq!(token.expose(), "secret-token");
    }

    #[test]
    fn token_debug_is_redacted() {
        let token = load_token(&args(Some("secret-token"), None)).unwrap();
        assert!(!format!("{token:?}").contains("secret-token"));
    }

    #[test]
    fn missing_token_names_the_options() {
        let err = load_token(&args(None, None)).unwrap_err().to_string();
        assert!(err.contains("--token-file"), "{err}");
        assert!(err.contains("KEYLESS_TOKEN"), "{err}");
    }

    #[test]
    fn two_token_sources_are_rejected() {
        let file = temp_file("both", "t", 0o600);
        let err = load_token(&args(Some("t"), Some(file.0.clone()))).unwrap_err().to_string();
        assert!(err.contains("set only one"), "{err}");
    }

    #[test]
    fn path_segments_are_encoded() {
        let base = parse_endpoint("http://127.0.0.1:9001/").unwrap();
        let url = endpoint_url(&base, &["v1", "cwobject", "access-policy", "../x?y"]);
        assert_eq!(url.as_str(), "http://127.0.0.1:9001/v1/cwobject/access-policy/..%2Fx%3Fy");
    }

    #[test]
    fn endpoint_base_path_is_kept() {
        let base = parse_endpoint("https://proxy.example/keyless/").unwrap();
        let url = endpoint_url(&base, &["v1", "keyless", "api-tokens"]);
        assert_eq!(url.as_str(), "https://proxy.example/keyless/v1/keyless/api-tokens");
    }

    #[test]
    fn endpoint_without_http_scheme_is_rejected() {
        let err = parse_endpoint("ftp://127.0.0.1").unwrap_err().to_string();
        assert!(err.contains("\"ftp\""), "{err}");
    }

    #[test]
    fn json_error_body_becomes_api_error() {
        let err = error_from_response(StatusCode::FORBIDDEN, br#"{"code":"AccessDenied","message":"no policy allows it"}"#, "GET /x");
        assert_eq!(err.code, "AccessDenied");
        assert_eq!(err.to_string(), "AccessDenied (HTTP 403): no policy allows it");
    }

    #[test]
    fn s3_error_body_names_the_wrong_endpoint() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code></Error>";
        let err = error_from_response(StatusCode::FORBIDDEN, body, "GET /v1/keyless/api-tokens");
        assert!(err.message.contains("S3 endpoint"), "{}", err.message);
    }

    #[test]
    fn missing_route_is_described() {
        let err = error_from_response(StatusCode::NOT_FOUND, b"", "POST /v1/keyless/explain");
        assert_eq!(err.code, "HttpError");
        assert!(err.message.contains("no such endpoint"), "{}", err.message);
    }
}
