//! End-to-end tests of the CLI subcommands against the real `keyless` binary.
//!
//! Each test starts its own server with the shared harness, runs
//! `keyless <subcommand>` as a child process with the admin token file, and
//! checks its stdout, stderr and exit status.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{ISSUER, Server, TEST_EC_X, TEST_EC_Y, free_port, start_server, workload_token};
use serde_json::{Value, json};

/// Runs the CLI against a test server.
trait CliExt {
    fn admin_token_file(&self) -> PathBuf;
    fn command(&self, args: &[&str]) -> Command;
    fn run(&self, args: &[&str]) -> Output;
    fn run_ok(&self, args: &[&str]) -> String;
    fn run_json(&self, args: &[&str]) -> Value;
    fn path(&self, name: &str) -> PathBuf;
}

impl CliExt for Server {
    fn admin_token_file(&self) -> PathBuf {
        self.data_dir.0.join("admin-token")
    }

    /// Builds a `keyless` command with the endpoint and admin token file in the
    /// environment, and nothing from the developer's environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_keyless"));
        command.args(args).env("KEYLESS_ENDPOINT", &self.api).env("KEYLESS_TOKEN_FILE", self.admin_token_file());
        for name in ["KEYLESS_TOKEN", "KEYLESS_ORG", "KEYLESS_OUTPUT", "XDG_CACHE_HOME"] {
            command.env_remove(name);
        }
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("the keyless CLI runs")
    }

    /// Runs a command that must succeed and returns its stdout.
    fn run_ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(output.status.success(), "keyless {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs a command with `--output json` that must succeed and parses its stdout.
    fn run_json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        serde_json::from_str(&self.run_ok(&args)).unwrap()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.data_dir.0.join(name)
    }
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn write_jwks(server: &Server) -> PathBuf {
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-256", "x": TEST_EC_X, "y": TEST_EC_Y, "kid": "test-key", "alg": "ES256", "use": "sig"}]});
    let path = server.path("jwks.json");
    std::fs::write(&path, jwks.to_string()).unwrap();
    path
}

/// Trusts the test issuer and lets `sub` exchange tokens, all through the CLI.
fn configure_workload_with_cli(server: &Server, sub: &str) -> String {
    let jwks = write_jwks(server);
    let config = server.run_json(&[
        "wif", "oidc", "add", "--name", "test", "--issuer", ISSUER, "--audience", "keyless", "--jwks-file", jwks.to_str().unwrap(),
    ]);
    let principal = format!("role/{ISSUER}:{sub}");
    let policy = json!({"version": "v1alpha1", "name": "workload", "statements": [
        {"name": "exchange", "effect": "Allow", "actions": ["cwobject:CreateAccessKeyOIDC"], "resources": ["*"], "principals": [principal]}
    ]});
    let policy_file = server.path("workload-policy.json");
    std::fs::write(&policy_file, policy.to_string()).unwrap();
    server.run_ok(&["policy", "put", policy_file.to_str().unwrap()]);
    config["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn policy_put_list_show_rm() {
    let server = start_server().await;
    let policy = json!({"version": "v1alpha1", "name": "readers", "statements": [
        {"name": "read", "effect": "Allow", "actions": ["s3:GetObject"], "resources": ["data/*"], "principals": ["user/dev*"]}
    ]});
    let file = server.path("readers.json");
    std::fs::write(&file, policy.to_string()).unwrap();

    let put = server.run(&["policy", "put", file.to_str().unwrap()]);
    assert!(put.status.success(), "{}", stderr(&put));
    assert!(stdout(&put).contains("stored policy \"readers\" with 1 statement(s)"), "{}", stdout(&put));
    assert!(stderr(&put).contains("\"user/dev-evil\""), "{}", stderr(&put));

    let listed = server.run_json(&["policy", "list"]);
    let names: Vec<&str> = listed["policies"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"readers"), "{names:?}");

    let text = server.run_ok(&["policy", "list"]);
    assert!(text.lines().any(|l| l.starts_with("readers") && l.contains("s3:GetObject")), "{text}");

    let shown: Value = serde_json::from_str(&server.run_ok(&["policy", "show", "readers"])).unwrap();
    assert_eq!(shown["policy"]["statements"][0]["principals"], json!(["user/dev*"]));

    server.run_ok(&["policy", "rm", "readers"]);
    let listed = server.run_json(&["policy", "list"]);
    assert!(listed["policies"].as_array().unwrap().iter().all(|p| p["name"] != "readers"), "{listed}");

    let missing = server.run(&["policy", "rm", "readers"]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("NotFound (HTTP 404)"), "{}", stderr(&missing));
}

#[tokio::test]
async fn policy_put_reads_whole_body_from_stdin() {
    let server = start_server().await;
    let body = json!({"policy": {"version": "v1alpha1", "name": "from-stdin", "statements": [
        {"effect": "Deny", "actions": ["s3:DeleteObject"], "resources": ["*"], "principals": ["user/dev/*"]}
    ]}});
    let mut child = server.command(&["policy", "put", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(body.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stderr(&output).contains("warning"), "{}", stderr(&output));
    let shown: Value = serde_json::from_str(&server.run_ok(&["policy", "show", "from-stdin"])).unwrap();
    assert_eq!(shown["policy"]["statements"][0]["effect"], "Deny");
}

#[tokio::test]
async fn keys_create_list_revoke() {
    let server = start_server().await;
    let created = server.run_json(&["keys", "create", "--duration", "3600", "--attribute", "team=ml"]);
    let id = created["accessKeyId"].as_str().unwrap();
    let secret = created["secretKey"].as_str().unwrap();
    assert!(!secret.is_empty());
    assert_eq!(created["principalName"], "user/admin");

    let text = server.run_ok(&["keys", "list"]);
    assert!(text.lines().any(|l| l.starts_with(id) && l.contains("active")), "{text}");
    assert!(!text.contains(secret), "the key list shows a secret");

    let shown = server.run_json(&["keys", "show", id]);
    assert_eq!(shown["attributes"]["team"], "ml");
    assert!(shown.get("secretKey").is_none(), "{shown}");

    assert!(server.run_ok(&["keys", "revoke", id]).contains("revoked access key"));
    let revoked = server.run_json(&["keys", "list", "--status", "revoked"]);
    assert!(revoked["accessKeys"].as_array().unwrap().iter().any(|k| k["accessKeyId"] == id), "{revoked}");
    let active = server.run_json(&["keys", "list", "--status", "active", "--offset", "0", "--limit", "10"]);
    assert!(active["accessKeys"].as_array().unwrap().iter().all(|k| k["accessKeyId"] != id), "{active}");
}

#[tokio::test]
async fn keys_suspend_reactivate_revoke_principal() {
    let server = start_server().await;
    let token = server.run_json(&["tokens", "create", "alice"])["token"].as_str().unwrap().to_owned();
    let policy = json!({"version": "v1alpha1", "name": "alice-keys", "statements": [
        {"name": "keys", "effect": "Allow", "actions": ["cwobject:CreateAccessKey"], "resources": ["*"], "principals": ["user/alice"]}
    ]});
    let file = server.path("alice.json");
    std::fs::write(&file, policy.to_string()).unwrap();
    server.run_ok(&["policy", "put", file.to_str().unwrap()]);
    let as_alice = |args: &[&str]| server.command(args).env_remove("KEYLESS_TOKEN_FILE").env("KEYLESS_TOKEN", &token).output().unwrap();

    let created = as_alice(&["keys", "create", "--output", "json"]);
    assert!(created.status.success(), "{}", stderr(&created));
    let key: Value = serde_json::from_slice(&created.stdout).unwrap();
    let id = key["accessKeyId"].as_str().unwrap();
    assert_eq!(key["expiry"], Value::Null);

    assert!(server.run_ok(&["keys", "suspend", "user/alice"]).contains("suspended user/alice"));
    assert_eq!(server.run_json(&["keys", "show", id])["status"], "suspended");
    let while_suspended = as_alice(&["keys", "create"]);
    assert_eq!(while_suspended.status.code(), Some(1));
    assert!(stderr(&while_suspended).contains("suspended"), "{}", stderr(&while_suspended));

    server.run_ok(&["keys", "reactivate", "user/alice"]);
    assert_eq!(server.run_json(&["keys", "show", id])["status"], "active");

    let result = server.run_json(&["keys", "revoke-principal", "user/alice"]);
    assert_eq!(result["revokedStaticKeys"], 1);
    assert_eq!(server.run_json(&["keys", "show", id])["status"], "revoked");
}

#[tokio::test]
async fn keys_show_unknown_id_fails() {
    let server = start_server().await;
    let output = server.run(&["keys", "show", "KLDOESNOTEXIST"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("NotFound (HTTP 404)"), "{}", stderr(&output));
}

#[tokio::test]
async fn tokens_create_use_rm() {
    let server = start_server().await;
    let created = server.run_json(&["tokens", "create", "ci-bot"]);
    let id = created["id"].as_str().unwrap().to_owned();
    let token = created["token"].as_str().unwrap().to_owned();
    assert_eq!(created["principalName"], "user/ci-bot");

    let listed = server.run_json(&["tokens", "list"]);
    assert!(listed["tokens"].as_array().unwrap().iter().any(|t| t["id"] == id.as_str()), "{listed}");
    assert!(!listed.to_string().contains(&token), "the token list shows a token");

    // The new principal has no policy yet: the server denies, and the CLI
    // prints the code and message but never the token.
    let denied = server.command(&["keys", "list"]).env_remove("KEYLESS_TOKEN_FILE").env("KEYLESS_TOKEN", &token).output().unwrap();
    assert_eq!(denied.status.code(), Some(1));
    assert!(stderr(&denied).contains("AccessDenied (HTTP 403)"), "{}", stderr(&denied));
    assert!(!stderr(&denied).contains(&token));

    assert!(server.run_ok(&["tokens", "rm", &id]).contains("revoked API token"));
    let revoked = server.command(&["keys", "list"]).env_remove("KEYLESS_TOKEN_FILE").env("KEYLESS_TOKEN", &token).output().unwrap();
    assert!(stderr(&revoked).contains("InvalidToken (HTTP 401)"), "{}", stderr(&revoked));
}

#[tokio::test]
async fn token_file_readable_by_others_is_rejected() {
    let server = start_server().await;
    let loose = server.path("loose-token");
    std::fs::copy(server.admin_token_file(), &loose).unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = server.command(&["policy", "list"]).env("KEYLESS_TOKEN_FILE", &loose).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("chmod 600"), "{}", stderr(&output));
}

#[tokio::test]
async fn missing_api_token_is_explained() {
    let server = start_server().await;
    let output = server.command(&["tokens", "list"]).env_remove("KEYLESS_TOKEN_FILE").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("no API token"), "{}", stderr(&output));
}

#[tokio::test]
async fn wif_oidc_add_list_update_rm() {
    let server = start_server().await;
    let jwks = write_jwks(&server);
    let created = server.run_json(&[
        "wif", "oidc", "add", "--name", "ci", "--issuer", ISSUER, "--audience", "keyless", "--audience", "other",
        "--jwks-file", jwks.to_str().unwrap(), "--max-token-age", "600", "--max-duration", "7200",
    ]);
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["audiences"], json!(["keyless", "other"]));
    assert_eq!(created["maxDurationSeconds"], 7200);
    assert_eq!(created["active"], true);

    let text = server.run_ok(&["wif", "oidc", "list"]);
    assert!(text.lines().any(|l| l.starts_with(&id) && l.contains("uploaded")), "{text}");

    server.run_ok(&["wif", "oidc", "update", &id, "--inactive", "--no-max-token-age"]);
    let shown = server.run_json(&["wif", "oidc", "show", &id]);
    assert_eq!(shown["active"], false);
    assert_eq!(shown["audiences"], json!(["keyless", "other"]));
    assert_eq!(shown["maxDurationSeconds"], 7200);
    assert!(shown.get("maxTokenAgeSeconds").is_none(), "{shown}");
    assert_eq!(shown["jwks"]["keys"][0]["kid"], "test-key");

    let text = server.run_ok(&["wif", "oidc", "show", &id]);
    assert!(text.contains("uploaded (1 key(s): test-key)"), "{text}");

    server.run_ok(&["wif", "oidc", "rm", &id]);
    let listed = server.run_json(&["wif", "oidc", "list"]);
    assert_eq!(listed["configs"], json!([]));
}

#[tokio::test]
async fn wif_saml_add_update_metadata_rm() {
    let server = start_server().await;
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../keyless-saml/tests/fixtures");
    let first = fixtures.join("idp-rsa.crt");
    let second = fixtures.join("rotated-rsa.crt");
    let created = server.run_json(&[
        "wif", "saml", "add", "--name", "corp", "--idp-entity-id", "https://idp.example/saml", "--certificate", first.to_str().unwrap(),
        "--max-duration", "7200",
    ]);
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["spEntityId"], "urn:keyless:default");
    assert_eq!(created["certificates"].as_array().unwrap().len(), 1);
    assert_eq!(created["maxDurationSeconds"], 7200);

    // Rotation: both certificates trusted, everything else kept.
    server.run_ok(&["wif", "saml", "update", &id, "--certificate", first.to_str().unwrap(), "--certificate", second.to_str().unwrap()]);
    let shown = server.run_json(&["wif", "saml", "show", &id]);
    assert_eq!(shown["certificates"].as_array().unwrap().len(), 2);
    assert_eq!(shown["maxDurationSeconds"], 7200);

    let metadata = server.run_ok(&["wif", "saml", "metadata", &id]);
    assert!(metadata.contains("urn:keyless:default"), "{metadata}");
    assert!(metadata.contains("/v1/cwobject/temporary-credentials/saml"), "{metadata}");

    let text = server.run_ok(&["wif", "saml", "list"]);
    assert!(text.lines().any(|l| l.starts_with(&id) && l.contains("https://idp.example/saml")), "{text}");
    server.run_ok(&["wif", "saml", "rm", &id]);
    assert_eq!(server.run_json(&["wif", "saml", "list"])["configs"], json!([]));
}

#[tokio::test]
async fn wif_saml_add_rejects_a_non_certificate() {
    let server = start_server().await;
    let bogus = server.path("bogus.pem");
    std::fs::write(&bogus, "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n").unwrap();
    let output = server.run(&["wif", "saml", "add", "--name", "bad", "--idp-entity-id", "https://idp.example", "--certificate", bogus.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("certificates"), "{}", stderr(&output));
}

#[tokio::test]
async fn wif_oidc_add_rejects_private_jwk() {
    let server = start_server().await;
    let private = server.path("private-jwks.json");
    std::fs::write(&private, json!({"keys": [{"kty": "EC", "crv": "P-256", "x": TEST_EC_X, "y": TEST_EC_Y, "d": "c2VjcmV0"}]}).to_string()).unwrap();
    let output = server.run(&["wif", "oidc", "add", "--name", "bad", "--issuer", ISSUER, "--audience", "keyless", "--jwks-file", private.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("private member \"d\""), "{}", stderr(&output));
}

#[tokio::test]
async fn can_i_answers_for_the_caller() {
    let server = start_server().await;
    let yes = server.run(&["can-i", "s3:GetObject", "data/key", "other/key"]);
    assert_eq!(yes.status.code(), Some(0), "{}", stderr(&yes));
    assert_eq!(stdout(&yes), "yes\n");

    let token = server.run_json(&["tokens", "create", "reader"])["token"].as_str().unwrap().to_owned();
    let no = server.command(&["can-i", "cwobject:CreateAccessKey"]).env_remove("KEYLESS_TOKEN_FILE").env("KEYLESS_TOKEN", &token).output().unwrap();
    assert_eq!(no.status.code(), Some(1), "{}", stderr(&no));
    assert_eq!(stdout(&no), "no\n");

    let unreachable = server.command(&["can-i", "s3:GetObject", "data/key"]).env("KEYLESS_ENDPOINT", format!("http://127.0.0.1:{}", free_port())).output().unwrap();
    assert_eq!(unreachable.status.code(), Some(2), "{}", stderr(&unreachable));
}

#[tokio::test]
async fn explain_shows_decision_and_trace() {
    let server = start_server().await;
    let allowed = server.run_ok(&["explain", "--principal", "user/admin", "--action", "s3:GetObject", "--resource", "data/key"]);
    assert!(allowed.starts_with("ALLOWED: user/admin may perform s3:GetObject on data/key"), "{allowed}");
    assert!(allowed.contains("POLICY"), "{allowed}");

    let denied = server.run_ok(&["explain", "--principal", "user/nobody", "--action", "s3:GetObject", "--resource", "data/key"]);
    assert!(denied.starts_with("DENIED: user/nobody may not perform s3:GetObject on data/key"), "{denied}");
    assert!(denied.contains("denied by default"), "{denied}");

    let json = server.run_json(&["explain", "--principal", "user/nobody", "--action", "s3:GetObject", "--resource", "data/key"]);
    assert_eq!(json["allowed"], false);
    assert_eq!(json["reason"]["kind"], "noAllow");
    assert!(json["trace"].as_array().is_some_and(|t| !t.is_empty()), "{json}");
}

#[tokio::test]
async fn explain_shows_condition_with_context() {
    let server = start_server().await;
    let policy = json!({"version": "v1alpha1", "name": "office", "statements": [
        {"name": "from-office", "effect": "Allow", "actions": ["s3:GetObject"], "resources": ["data/*"], "principals": ["user/bob"],
         "conditions": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}
    ]});
    let file = server.path("office.json");
    std::fs::write(&file, policy.to_string()).unwrap();
    server.run_ok(&["policy", "put", file.to_str().unwrap()]);
    let listed = server.run_ok(&["policy", "list"]);
    assert!(listed.contains("IpAddress(aws:SourceIp)"), "{listed}");

    let inside = server.run_ok(&[
        "explain", "--principal", "user/bob", "--action", "s3:GetObject", "--resource", "data/x", "--context", "aws:SourceIp=10.1.2.3",
    ]);
    assert!(inside.starts_with("ALLOWED:"), "{inside}");

    let outside = server.run_ok(&[
        "explain", "--principal", "user/bob", "--action", "s3:GetObject", "--resource", "data/x", "--context", "aws:SourceIp=192.0.2.1",
    ]);
    assert!(outside.starts_with("DENIED:"), "{outside}");
    let condition_row = outside.lines().find(|l| l.contains("IpAddress")).unwrap_or_default();
    assert!(condition_row.contains("192.0.2.1"), "{outside}");
    assert!(condition_row.ends_with("no"), "{outside}");
}

#[tokio::test]
async fn credentials_exchange_and_cache() {
    let server = start_server().await;
    configure_workload_with_cli(&server, "system:serviceaccount:ml:trainer");
    let token_file = server.path("identity-token");
    // A trailing newline, as `echo` and many token files have, must be trimmed.
    std::fs::write(&token_file, format!("{}\n", workload_token("system:serviceaccount:ml:trainer", 600))).unwrap();
    let cache = server.path("cache").join("credentials.json");
    let credentials = |extra: &[&str]| {
        let mut args = vec!["credentials", "--token-file", token_file.to_str().unwrap(), "--cache-file", cache.to_str().unwrap(), "--duration", "900"];
        args.extend_from_slice(extra);
        server.run(&args)
    };

    let first = credentials(&[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let printed: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(printed["Version"], 1);
    assert!(printed["AccessKeyId"].as_str().is_some_and(|id| !id.is_empty()), "{printed}");
    assert!(printed["SecretAccessKey"].as_str().is_some_and(|s| !s.is_empty()), "{printed}");
    assert!(printed["SessionToken"].as_str().is_some_and(|t| !t.is_empty()), "{printed}");
    assert!(printed["Expiration"].as_str().is_some(), "{printed}");
    assert_eq!(mode(&cache), 0o600);
    assert_eq!(mode(cache.parent().unwrap()), 0o700);

    // The second call must not need the token: the cache still has ~15 minutes.
    std::fs::remove_file(&token_file).unwrap();
    let second = credentials(&[]);
    assert!(second.status.success(), "{}", stderr(&second));
    let reused: Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(reused["AccessKeyId"], printed["AccessKeyId"]);

    // With a refresh window longer than the lifetime the cache is stale, so a
    // token is needed again. Without one, the error states that it is missing.
    let stale = credentials(&["--refresh-before", "1000"]);
    assert_eq!(stale.status.code(), Some(1));
    assert!(stderr(&stale).contains("identity token is missing"), "{}", stderr(&stale));
}

#[tokio::test]
async fn credentials_default_cache_and_token_command() {
    let server = start_server().await;
    configure_workload_with_cli(&server, "repo:acme/train:ref:refs/heads/main");
    let token_file = server.path("identity-token");
    std::fs::write(&token_file, workload_token("repo:acme/train:ref:refs/heads/main", 600)).unwrap();
    let xdg = server.path("xdg-cache");
    let command = format!("cat '{}'", token_file.display());

    let output = server.command(&["credentials", "--token-command", &command]).env("XDG_CACHE_HOME", &xdg).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(printed["AccessKeyId"].as_str().is_some(), "{printed}");

    let dir = xdg.join("keyless");
    assert_eq!(mode(&dir), 0o700);
    let files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let name = files[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.starts_with("credentials-"), "{name}");
    assert!(name.ends_with(".json"), "{name}");
    assert_eq!(mode(&files[0]), 0o600);
}

#[tokio::test]
async fn credentials_rejected_token_prints_server_error() {
    let server = start_server().await;
    configure_workload_with_cli(&server, "allowed");
    let token_file = server.path("identity-token");
    std::fs::write(&token_file, workload_token("not-allowed", 600)).unwrap();
    let output = server
        .run(&["credentials", "--token-file", token_file.to_str().unwrap(), "--cache-file", server.path("c.json").to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("AccessDenied (HTTP 403)"), "{}", stderr(&output));
    assert!(output.stdout.is_empty());
}

#[tokio::test]
async fn data_dir_is_private() {
    let server = start_server().await;
    let mode = std::fs::metadata(&server.data_dir.0).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "data directory mode is {mode:o}");
}
