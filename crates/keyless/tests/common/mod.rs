//! Shared harness of the integration tests: starts the real `keyless` binary
//! on loopback ports with a fresh data directory and stops it when dropped.
#![allow(dead_code)] // Each test file uses a different part of the harness.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use serde_json::{Value, json};

// A throwaway P-256 key generated for these tests; its public half is uploaded
// as the JWKS of the test OIDC configuration.
pub const TEST_EC_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgsts70Pp9kPyKodSv\n7OWP/pOY79UORp04200Po4QzDXChRANCAASo8bghdyEDTvn18PUyQbw6LrkcAeGX\nvwaFg5CzUrqSsGAPmQ14O6hUDVXfGdDB3GodzSYozLwAMaZGZKbCxj9W\n-----END PRIVATE KEY-----\n";
pub const TEST_EC_X: &str = "qPG4IXchA0759fD1MkG8Oi65HAHhl78GhYOQs1K6krA";
pub const TEST_EC_Y: &str = "YA-ZDXg7qFQNVd8Z0MHcah3NJijMvAAxpkZkpsLGP1Y";
pub const ISSUER: &str = "https://issuer.keyless.test";

pub struct Server {
    pub child: Child,
    pub s3: String,
    pub api: String,
    pub admin_token: String,
    pub data_dir: TempDir,
}

pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub async fn start_server() -> Server {
    // Unique per process and per call: two tests must never share a directory.
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("keyless-e2e-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (child, s3, api) = launch(&dir).await;
    let admin_token = std::fs::read_to_string(dir.join("admin-token")).unwrap();
    Server { child, s3, api, admin_token, data_dir: TempDir(dir) }
}

/// Starts the binary on `dir` on ports the kernel picks, so that tests
/// running in parallel never race for a port, and waits for `/healthz`. The
/// addresses come from the "keyless serving" line this launch appends to
/// `server.log`.
async fn launch(dir: &std::path::Path) -> (Child, String, String) {
    let log_path = dir.join("server.log");
    let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).unwrap();
    let log_start = log.metadata().unwrap().len() as usize;
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyless"))
        .args(["serve", "--data-dir"])
        .arg(dir)
        .args(["--s3-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(log)
        .env("KEYLESS_LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .spawn()
        .expect("the keyless binary starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (s3, api) = loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("keyless exited with {status} during startup; see {}", log_path.display());
        }
        let log = std::fs::read(&log_path).unwrap();
        if let Some(addresses) = serving_addresses(&log[log_start.min(log.len())..]) {
            break addresses;
        }
        assert!(Instant::now() < deadline, "keyless did not start serving within 30 s; see {}", log_path.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (s3, api) = (format!("http://{s3}"), format!("http://{api}"));
    loop {
        if let Ok(resp) = reqwest::get(format!("{api}/healthz")).await
            && resp.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "keyless did not become healthy within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (child, s3, api)
}

/// Finds the S3 and API addresses in the JSON "keyless serving" log line, if
/// `log` has one.
fn serving_addresses(log: &[u8]) -> Option<(String, String)> {
    String::from_utf8_lossy(log).lines().find_map(|line| {
        let event: Value = serde_json::from_str(line).ok()?;
        let fields = &event["fields"];
        if fields["message"] != "keyless serving" {
            return None;
        }
        Some((fields["s3"].as_str()?.to_owned(), fields["api"].as_str()?.to_owned()))
    })
}

/// A second `keyless` process on another server's data directory, as a second
/// node sharing its metadata would be. Killed when dropped.
pub struct Node {
    pub child: Child,
    pub s3: String,
    pub api: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts a second node on this server's data directory. Both processes
    /// append to the same audit journal and number its events independently,
    /// so a test with two nodes must not check the journal.
    pub async fn start_second_node(&self) -> Node {
        let (child, s3, api) = launch(&self.data_dir.0).await;
        Node { child, s3, api }
    }

    /// Kills the server with SIGKILL, as a crash would, and starts it again
    /// on the same data directory.
    pub async fn crash_and_restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let (child, s3, api) = launch(&self.data_dir.0).await;
        self.child = child;
        self.s3 = s3;
        self.api = api;
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = reqwest::Client::new().get(format!("{}{path}", self.api)).bearer_auth(&self.admin_token).send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
    pub async fn api(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .request(method, format!("{}{path}", self.api))
            .bearer_auth(&self.admin_token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub fn s3_client(&self, access_key: &str, secret: &str, token: Option<&str>) -> aws_sdk_s3::Client {
        let creds = Credentials::new(access_key, secret, token.map(str::to_owned), None, "keyless-test");
        let config = aws_sdk_s3::Config::builder()
            .behavior_version_latest()
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .endpoint_url(&self.s3)
            .force_path_style(true)
            .credentials_provider(creds)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    pub async fn admin_s3(&self) -> aws_sdk_s3::Client {
        let (status, key) = self.api(reqwest::Method::POST, "/v1/cwobject/access-key", json!({"durationSeconds": 0})).await;
        assert_eq!(status, 200, "{key}");
        self.s3_client(key["accessKeyId"].as_str().unwrap(), key["secretKey"].as_str().unwrap(), None)
    }
}

pub fn workload_token(sub: &str, exp_in: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let claims = json!({"iss": ISSUER, "sub": sub, "aud": "keyless", "iat": now, "exp": now + exp_in});
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("test-key".into());
    let key = jsonwebtoken::EncodingKey::from_ec_pem(TEST_EC_KEY.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

pub async fn configure_workload(server: &Server, sub: &str, bucket: &str) {
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": TEST_EC_X, "y": TEST_EC_Y, "kid": "test-key", "alg": "ES256", "use": "sig"}]});
    let (status, body) = server
        .api(reqwest::Method::POST, "/v1/keyless/wif/oidc", json!({"orgId": "default", "name": "test", "issuerUrl": ISSUER, "audiences": ["keyless"], "jwks": jwks}))
        .await;
    assert_eq!(status, 201, "{body}");
    let principal = format!("role/{ISSUER}:{sub}");
    let policy = json!({"policy": {"version": "v1alpha1", "name": "workload", "statements": [
        {"name": "exchange", "effect": "Allow", "actions": ["cwobject:CreateAccessKeyOIDC"], "resources": ["*"], "principals": [principal]},
        {"name": "rw", "effect": "Allow", "actions": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"], "resources": [bucket, format!("{bucket}/*")], "principals": [principal]}
    ]}});
    let (status, body) = server.api(reqwest::Method::POST, "/v1/cwobject/access-policy", policy).await;
    assert_eq!(status, 200, "{body}");
}

