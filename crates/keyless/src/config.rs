//! Server configuration: a TOML file, overridden by `KEYLESS_*` environment
//! variables, overridden by flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// Flags of `keyless serve`; each also reads the environment variable named.
#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// TOML configuration file. Its fields have the same names as these flags,
    /// with '_' for '-'.
    #[arg(long, env = "KEYLESS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory for metadata (SQLite), object bytes, the master key and the
    /// admin token. Default: ./keyless-data
    #[arg(long, env = "KEYLESS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Address of the S3 endpoint. Default: 127.0.0.1:9000
    #[arg(long, env = "KEYLESS_S3_LISTEN")]
    pub s3_listen: Option<SocketAddr>,
    /// Address of the API endpoint (control plane, token exchange, health).
    /// Default: 127.0.0.1:9001
    #[arg(long, env = "KEYLESS_API_LISTEN")]
    pub api_listen: Option<SocketAddr>,
    /// URL clients use to reach the API endpoint, when a proxy or DNS name
    /// is in front of it. SAML assertions must name it as Recipient and
    /// Destination. Default: http://<api-listen>
    #[arg(long, env = "KEYLESS_PUBLIC_API_URL")]
    pub public_api_url: Option<String>,
    /// PEM certificate chain (leaf first) to serve both endpoints over TLS.
    /// Needs --tls-key. Default: plain HTTP
    #[arg(long, env = "KEYLESS_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "KEYLESS_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The region name signatures must be scoped to. Default: us-east-1
    #[arg(long, env = "KEYLESS_REGION")]
    pub region: Option<String>,
    /// Base domain for virtual-hosted-style S3 requests (<bucket>.<domain>).
    /// Default: none, path-style only.
    #[arg(long, env = "KEYLESS_S3_VIRTUAL_HOST_DOMAIN")]
    pub s3_virtual_host_domain: Option<String>,
    /// Id of the organization created at first start. Default: default
    #[arg(long, env = "KEYLESS_ORG_ID")]
    pub org_id: Option<String>,
    /// Log format: text or json. Default: text
    #[arg(long, env = "KEYLESS_LOG_FORMAT")]
    pub log_format: Option<String>,
}

/// The same settings as a TOML file.
#[derive(Deserialize, Default, Debug)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    s3_listen: Option<SocketAddr>,
    api_listen: Option<SocketAddr>,
    public_api_url: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    region: Option<String>,
    s3_virtual_host_domain: Option<String>,
    org_id: Option<String>,
    log_format: Option<String>,
}

/// The certificate chain and key both endpoints serve TLS with.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub s3_listen: SocketAddr,
    pub api_listen: SocketAddr,
    /// None: http(s)://<bound API address>, known once the listener is bound.
    pub public_api_url: Option<String>,
    /// None: plain HTTP on both endpoints.
    pub tls: Option<TlsFiles>,
    pub region: String,
    pub s3_virtual_host_domain: Option<String>,
    pub org_id: String,
    pub log_json: bool,
}

impl ServeArgs {
    pub fn resolve(self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let log_format = self.log_format.or(file.log_format).unwrap_or_else(|| "text".into());
        let log_json = match log_format.as_str() {
            "text" => false,
            "json" => true,
            other => anyhow::bail!("invalid log format {other:?}: expected \"text\" or \"json\""),
        };
        let org_id = self.org_id.or(file.org_id).unwrap_or_else(|| "default".into());
        let org_ok = !org_id.is_empty() && org_id.len() <= 32 && org_id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        anyhow::ensure!(org_ok, "invalid org id {org_id:?}: expected 1 to 32 lowercase letters or digits");
        let api_listen = self.api_listen.or(file.api_listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9001)));
        let public_api_url = self.public_api_url.or(file.public_api_url);
        if let Some(public_api_url) = &public_api_url {
            let parsed = url::Url::parse(public_api_url).with_context(|| format!("invalid public API URL {public_api_url:?}"))?;
            anyhow::ensure!(
                matches!(parsed.scheme(), "http" | "https") && parsed.query().is_none() && parsed.fragment().is_none(),
                "invalid public API URL {public_api_url:?}: expected an http(s) URL without query or fragment"
            );
        }
        let tls = match (self.tls_cert.or(file.tls_cert), self.tls_key.or(file.tls_key)) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => anyhow::bail!("tls_cert is set but tls_key is not: TLS needs both"),
            (None, Some(_)) => anyhow::bail!("tls_key is set but tls_cert is not: TLS needs both"),
        };
        Ok(Config {
            data_dir: self.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("keyless-data")),
            s3_listen: self.s3_listen.or(file.s3_listen).unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 9000))),
            api_listen,
            public_api_url: public_api_url.map(|url| url.trim_end_matches('/').to_owned()),
            tls,
            region: self.region.or(file.region).unwrap_or_else(|| "us-east-1".into()),
            s3_virtual_host_domain: self.s3_virtual_host_domain.or(file.s3_virtual_host_domain),
            org_id,
            log_json,
        })
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}
