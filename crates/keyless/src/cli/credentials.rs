//! `keyless credentials`: an AWS `credential_process` helper for workloads.
//!
//! The helper reads an identity token (an OIDC JWT) from a file or from the
//! stdout of a command, exchanges it at
//! `POST /v1/cwobject/temporary-credentials/oidc`, and prints the temporary
//! credentials in the process-credentials format that AWS SDKs and the AWS CLI
//! read: `{"Version": 1, "AccessKeyId", "SecretAccessKey", "SessionToken",
//! "Expiration"}`.
//!
//! Because an SDK may start the helper often, the credentials are cached in a
//! file (mode 0600, in a directory created with mode 0700) and reused while
//! more than `--refresh-before` seconds of their lifetime remain. A cache file
//! that other users could read is ignored and replaced.

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::client::{DEFAULT_ENDPOINT, endpoint_url, http_client, parse_endpoint, send_json};

/// Time the token command may run before it is killed.
const TOKEN_COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The only version of the process-credentials format AWS defines.
const PROCESS_CREDENTIALS_VERSION: u32 = 1;

#[derive(clap::Args, Debug)]
pub struct CredentialsArgs {
    /// URL of the keyless API endpoint.
    #[arg(long, env = "KEYLESS_ENDPOINT", default_value = DEFAULT_ENDPOINT)]
    endpoint: String,
    /// Organization whose WIF configurations and policies apply.
    #[arg(long, env = "KEYLESS_ORG", default_value = "default")]
    org: String,
    /// File that contains the identity token, such as a projected Kubernetes
    /// service-account token. It is read again at every exchange, so a rotated
    /// token is picked up.
    #[arg(long, value_name = "FILE", conflicts_with = "token_command")]
    token_file: Option<PathBuf>,
    /// Shell command (run with sh -c) that prints the identity token on stdout.
    /// It is killed after 60 seconds.
    #[arg(long, value_name = "CMD")]
    token_command: Option<String>,
    /// Requested credential lifetime in seconds. Default: the WIF
    /// configuration's default duration.
    #[arg(long, value_name = "SECONDS")]
    duration: Option<u64>,
    /// Id of the OIDC configuration to use. Default: the configuration whose
    /// issuer matches the token's `iss`.
    #[arg(long, value_name = "ID")]
    config_id: Option<String>,
    /// Cache file. Default: $XDG_CACHE_HOME/keyless/credentials-<hash>.json (or
    /// ~/.cache/keyless/...), where the hash covers the endpoint, the
    /// organization, the configuration id and the token source.
    #[arg(long, value_name = "FILE")]
    cache_file: Option<PathBuf>,
    /// Exchange a new token once the cached credentials have this many seconds
    /// or fewer left.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    refresh_before: u64,
}

/// Source of the identity token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TokenSource {
    File(PathBuf),
    Command(String),
}

impl TokenSource {
    fn from_args(args: &CredentialsArgs) -> anyhow::Result<Self> {
        match (&args.token_file, &args.token_command) {
            (Some(path), None) => {
                let absolute = std::path::absolute(path).with_context(|| format!("invalid token file path {}", path.display()))?;
                Ok(TokenSource::File(absolute))
            }
            (None, Some(command)) => Ok(TokenSource::Command(command.clone())),
            (Some(_), Some(_)) => bail!("both --token-file and --token-command are set: set only one"),
            (None, None) => bail!("no identity token: pass --token-file FILE or --token-command CMD"),
        }
    }

    /// Returns the part of the cache key that names this source.
    fn cache_identity(&self) -> String {
        match self {
            TokenSource::File(path) => format!("file:{}", path.display()),
            TokenSource::Command(command) => format!("command:{command}"),
        }
    }

    /// Reads the token and trims surrounding whitespace and newlines, which
    /// token files and `echo` often add.
    async fn read(&self) -> anyhow::Result<String> {
        let (raw, origin) = match self {
            TokenSource::File(path) => {
                let raw = tokio::fs::read_to_string(path)
                    .await
                    .with_context(|| format!("the identity token is missing: cannot read the token file {}", path.display()))?;
                (raw, format!("the token file {}", path.display()))
            }
            TokenSource::Command(command) => (run_token_command(command).await?, "the output of --token-command".to_owned()),
        };
        let token = raw.trim();
        if token.is_empty() {
            bail!("the identity token is missing: {origin} is empty");
        }
        Ok(token.to_owned())
    }
}

/// Runs the token command with `sh -c` and returns its stdout. Its stderr goes
/// to this process's stderr, so its own error messages stay visible.
async fn run_token_command(command: &str) -> anyhow::Result<String> {
    let child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start the token command with sh -c")?;
    let output = match tokio::time::timeout(TOKEN_COMMAND_TIMEOUT, child.wait_with_output()).await {
        Ok(output) => output.context("the token command failed")?,
        Err(_) => bail!("the token command timed out after {} s", TOKEN_COMMAND_TIMEOUT.as_secs()),
    };
    if !output.status.success() {
        bail!("the identity token is missing: the token command failed with {}", output.status);
    }
    String::from_utf8(output.stdout).context("the token command printed bytes that are not UTF-8")
}

/// Credentials in the AWS process-credentials format, as printed and cached.
/// There is no `Debug`, so the secret cannot reach a log by accident.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct ProcessCredentials {
    version: u32,
    access_key_id: String,
    secret_access_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session_token: Option<String>,
    /// RFC 3339 time at which the credentials expire.
    expiration: String,
}

impl ProcessCredentials {
    /// Seconds of lifetime left at `now`, or `None` when `Expiration` is not an
    /// RFC 3339 time.
    fn seconds_left(&self, now: OffsetDateTime) -> Option<i64> {
        let expiration = OffsetDateTime::parse(&self.expiration, &Rfc3339).ok()?;
        Some((expiration - now).whole_seconds())
    }

    /// Whether the credentials may still be handed out: more than
    /// `refresh_before` seconds must remain.
    fn is_fresh(&self, now: OffsetDateTime, refresh_before: u64) -> bool {
        let refresh_before = i64::try_from(refresh_before).unwrap_or(i64::MAX);
        self.seconds_left(now).is_some_and(|left| left > refresh_before)
    }
}

pub async fn run(args: CredentialsArgs) -> anyhow::Result<ExitCode> {
    let source = TokenSource::from_args(&args)?;
    let endpoint = parse_endpoint(&args.endpoint)?;
    let cache_path = match &args.cache_file {
        Some(path) => path.clone(),
        None => {
            let dir = default_cache_dir(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))?;
            dir.join(cache_file_name(&endpoint, &args.org, args.config_id.as_deref(), &source))
        }
    };

    // Fast path: cached credentials with enough lifetime left.
    if let Some(cached) = read_cache(&cache_path)
        && cached.is_fresh(OffsetDateTime::now_utc(), args.refresh_before)
    {
        print_credentials(&cached)?;
        return Ok(ExitCode::SUCCESS);
    }

    let token = source.read().await?;
    let credentials = exchange(&endpoint, &args, &token).await.context("cannot exchange the identity token")?;

    if !credentials.is_fresh(OffsetDateTime::now_utc(), args.refresh_before) {
        eprintln!(
            "warning: the credentials expire within --refresh-before ({} s), so every call exchanges a new token; lower --refresh-before or raise --duration",
            args.refresh_before
        );
    }
    if let Err(err) = write_cache(&cache_path, &credentials) {
        eprintln!("warning: cannot write the credential cache {}: {err:#}", cache_path.display());
    }
    print_credentials(&credentials)?;
    Ok(ExitCode::SUCCESS)
}

fn print_credentials(credentials: &ProcessCredentials) -> anyhow::Result<()> {
    let json = serde_json::to_string(credentials).context("cannot serialize the credentials")?;
    println!("{json}");
    Ok(())
}

/// Exchanges the identity token for temporary credentials.
async fn exchange(endpoint: &Url, args: &CredentialsArgs, token: &str) -> anyhow::Result<ProcessCredentials> {
    let mut body = json!({ "orgId": args.org, "oidcToken": token });
    if let Some(duration) = args.duration {
        body["durationSeconds"] = json!(duration);
    }
    if let Some(config_id) = &args.config_id {
        body["configId"] = json!(config_id);
    }

    let url = endpoint_url(endpoint, &["v1", "cwobject", "temporary-credentials", "oidc"]);
    let request_line = format!("POST {}", url.path());
    let request = http_client()?.post(url).json(&body);
    let response = send_json(request, &request_line).await?.with_context(|| format!("{request_line} returned no body"))?;

    let field = |name: &str| response.get(name).and_then(Value::as_str).map(str::to_owned);
    let (Some(access_key_id), Some(secret_access_key), Some(expiration)) = (field("accessKeyId"), field("secretKey"), field("expiry")) else {
        bail!("{request_line} returned a response without accessKeyId, secretKey and expiry");
    };
    Ok(ProcessCredentials {
        version: PROCESS_CREDENTIALS_VERSION,
        access_key_id,
        secret_access_key,
        session_token: field("sessionToken"),
        expiration,
    })
}

/// Returns the cache directory: `$XDG_CACHE_HOME/keyless`, or `$HOME/.cache/keyless`.
/// A relative `XDG_CACHE_HOME` is ignored, as the XDG Base Directory
/// specification requires.
fn default_cache_dir(xdg_cache_home: Option<OsString>, home: Option<OsString>) -> anyhow::Result<PathBuf> {
    if let Some(xdg) = xdg_cache_home.map(PathBuf::from)
        && xdg.is_absolute()
    {
        return Ok(xdg.join("keyless"));
    }
    match home.map(PathBuf::from) {
        Some(home) if home.is_absolute() => Ok(home.join(".cache").join("keyless")),
        _ => bail!("cannot choose a cache file: neither XDG_CACHE_HOME nor HOME is an absolute path; pass --cache-file"),
    }
}

/// Names the cache file after a hash of everything that selects the identity,
/// so two workloads on one machine never share credentials.
fn cache_file_name(endpoint: &Url, org: &str, config_id: Option<&str>, source: &TokenSource) -> String {
    let mut hasher = Sha256::new();
    for part in [endpoint.as_str(), org, config_id.unwrap_or(""), &source.cache_identity()] {
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    format!("credentials-{}.json", hex::encode(&digest[..16]))
}

/// Reads cached credentials. A missing, unreadable, malformed or
/// group/other-accessible cache file yields `None`, and the caller exchanges a
/// new token and replaces the file.
fn read_cache(path: &Path) -> Option<ProcessCredentials> {
    let file = std::fs::File::open(path).ok()?;
    let metadata = file.metadata().ok()?;
    if !metadata.is_file() {
        return None;
    }
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        eprintln!("warning: ignoring the credential cache {}: its mode {mode:04o} lets other users access it", path.display());
        return None;
    }
    match serde_json::from_reader::<_, ProcessCredentials>(std::io::BufReader::new(file)) {
        Ok(credentials) if credentials.version == PROCESS_CREDENTIALS_VERSION => Some(credentials),
        _ => {
            eprintln!("warning: ignoring the credential cache {}: it is not valid process-credentials JSON", path.display());
            None
        }
    }
}

/// Writes the cache atomically: a temporary file with mode 0600 in the same
/// directory, flushed to disk, then renamed over the old file, so a concurrent
/// reader sees the old or the new credentials and never a partial file.
fn write_cache(path: &Path, credentials: &ProcessCredentials) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;

    let file_name = path.file_name().context("the cache path has no file name")?;
    let mut temp_name = OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp_path = dir.join(temp_name);

    let json = serde_json::to_vec(credentials).context("cannot serialize the credentials")?;
    let result = (|| -> anyhow::Result<()> {
        // A file left by a crashed run with the same process id is replaced,
        // because `create_new` below must create the file to set its mode.
        let _ = std::fs::remove_file(&temp_path);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp_path)
            .with_context(|| format!("cannot create {}", temp_path.display()))?;
        // The umask cannot widen 0600, but set it explicitly in case it also
        // cleared the owner's bits.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(&json)?;
        file.sync_all()?;
        std::fs::rename(&temp_path, path).with_context(|| format!("cannot rename {} to {}", temp_path.display(), path.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp_path);
    }
    result
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use time::macros::datetime;

    use super::*;

    #[derive(Parser)]
    struct TestCli {
        #[command(flatten)]
        credentials: CredentialsArgs,
    }

    fn parse(args: &[&str]) -> CredentialsArgs {
        TestCli::try_parse_from(std::iter::once("credentials").chain(args.iter().copied())).unwrap().credentials
    }

    fn credentials(expiration: &str) -> ProcessCredentials {
        ProcessCredentials {
            version: 1,
            access_key_id: "KLTEST".into(),
            secret_access_key: "secret".into(),
            session_token: Some("session".into()),
            expiration: expiration.into(),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("keyless-cli-credentials-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn fresh_until_refresh_window() {
        let creds = credentials("2030-01-01T01:00:00Z");
        assert!(creds.is_fresh(datetime!(2030-01-01 00:54:59 UTC), 300));
        assert!(!creds.is_fresh(datetime!(2030-01-01 00:55:00 UTC), 300));
        assert!(!creds.is_fresh(datetime!(2030-01-01 02:00:00 UTC), 300));
    }

    #[test]
    fn unparsable_expiration_is_stale() {
        assert!(!credentials("soon").is_fresh(datetime!(2030-01-01 00:00:00 UTC), 0));
    }

    #[test]
    fn output_uses_aws_field_names() {
        let json: Value = serde_json::to_value(credentials("2030-01-01T01:00:00Z")).unwrap();
        assert_eq!(
            json,
            json!({"Version": 1, "AccessKeyId": "KLTEST", "SecretAccessKey": "secret", "SessionToken": "session", "Expiration": "2030-01-01T01:00:00Z"})
        );
    }

    #[test]
    fn cache_file_and_directory_are_private() {
        let dir = temp_dir("private");
        let path = dir.join("nested").join("creds.json");
        write_cache(&path, &credentials("2030-01-01T01:00:00Z")).unwrap();
        let file_mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        let dir_mode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777;
        assert_eq!(file_mode, 0o600);
        assert_eq!(dir_mode & 0o077, 0);
        assert!(read_cache(&path).is_some_and(|c| c.access_key_id == "KLTEST"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cache_readable_by_others_is_ignored() {
        let dir = temp_dir("loose");
        let path = dir.join("creds.json");
        write_cache(&path, &credentials("2030-01-01T01:00:00Z")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_cache(&path).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_cache_is_ignored() {
        let dir = temp_dir("corrupt");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("creds.json");
        std::fs::write(&path, "{\"Version\": 1").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read_cache(&path).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cache_name_depends_on_every_input() {
        let endpoint = Url::parse("http://127.0.0.1:9001").unwrap();
        let file = TokenSource::File(PathBuf::from("/var/run/token"));
        let base = cache_file_name(&endpoint, "default", None, &file);
        assert!(base.starts_with("credentials-"), "{base}");
        assert!(base.ends_with(".json"), "{base}");
        assert_eq!(base, cache_file_name(&endpoint, "default", None, &file));
        assert_ne!(base, cache_file_name(&endpoint, "other", None, &file));
        assert_ne!(base, cache_file_name(&endpoint, "default", Some("cfg"), &file));
        assert_ne!(base, cache_file_name(&endpoint, "default", None, &TokenSource::Command("cat /var/run/token".into())));
        let other_endpoint = Url::parse("https://keyless.example").unwrap();
        assert_ne!(base, cache_file_name(&other_endpoint, "default", None, &file));
    }

    #[test]
    fn cache_dir_prefers_absolute_xdg() {
        let dir = default_cache_dir(Some("/xdg".into()), Some("/home/u".into())).unwrap();
        assert_eq!(dir, PathBuf::from("/xdg/keyless"));
        let dir = default_cache_dir(Some("relative".into()), Some("/home/u".into())).unwrap();
        assert_eq!(dir, PathBuf::from("/home/u/.cache/keyless"));
        assert!(default_cache_dir(None, None).is_err());
    }

    #[tokio::test]
    async fn token_file_is_trimmed() {
        let dir = temp_dir("token");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "  eyJ.header.sig\n\n").unwrap();
        let token = TokenSource::File(path).read().await.unwrap();
        assert_eq!(token, "eyJ.header.sig");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn empty_token_file_says_missing() {
        let dir = temp_dir("empty-token");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "\n").unwrap();
        let err = TokenSource::File(path).read().await.unwrap_err().to_string();
        assert!(err.contains("identity token is missing"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn absent_token_file_says_missing() {
        let err = TokenSource::File(PathBuf::from("/nonexistent/keyless/token")).read().await.unwrap_err();
        assert!(format!("{err:#}").contains("identity token is missing"), "{err:#}");
    }

    #[tokio::test]
    async fn token_command_output_is_trimmed() {
        let token = TokenSource::Command("printf ' abc.def.ghi\\n'".into()).read().await.unwrap();
        assert_eq!(token, "abc.def.ghi");
    }

    #[tokio::test]
    async fn failing_token_command_is_reported() {
        let err = TokenSource::Command("exit 3".into()).read().await.unwrap_err().to_string();
        assert!(err.contains("token command failed"), "{err}");
    }

    #[test]
    fn no_token_source_says_missing() {
        let err = TokenSource::from_args(&parse(&[])).unwrap_err().to_string();
        assert!(err.contains("no identity token"), "{err}");
        assert!(err.contains("--token-file"), "{err}");
    }

    #[test]
    fn token_file_and_command_conflict() {
        assert!(TestCli::try_parse_from(["credentials", "--token-file", "t", "--token-command", "cat t"]).is_err());
    }

    #[test]
    fn refresh_before_defaults_to_five_minutes() {
        assert_eq!(parse(&["--token-file", "t"]).refresh_before, 300);
    }
}
