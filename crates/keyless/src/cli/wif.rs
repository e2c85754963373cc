//! `keyless wif oidc`: OIDC workload identity federation (WIF) configurations.
//! `keyless wif saml` lives in `wif_saml`.
//!
//! A configuration trusts one issuer for one organization: tokens whose `iss`
//! equals the issuer URL and whose `aud` contains a configured audience can be
//! exchanged for temporary credentials. Its keys are fetched from the issuer,
//! or taken from an uploaded JWK set (`--jwks-file`) for issuers the server
//! cannot reach.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::client::{ApiClient, ClientArgs};
use super::output::{Output, print_fields, print_json, table, text};

#[derive(clap::Args, Debug)]
pub struct WifArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: WifCommand,
}

#[derive(clap::Subcommand, Debug)]
enum WifCommand {
    /// Manage OIDC configurations.
    Oidc {
        #[command(subcommand)]
        command: OidcCommand,
    },
    /// Manage SAML configurations.
    Saml {
        #[command(subcommand)]
        command: super::wif_saml::SamlCommand,
    },
}

#[derive(clap::Subcommand, Debug)]
enum OidcCommand {
    /// Trust an OIDC issuer.
    Add(AddArgs),
    /// List the organization's OIDC configurations.
    List,
    /// Show one OIDC configuration.
    Show {
        /// Configuration id.
        id: String,
    },
    /// Change an OIDC configuration; options not given keep their current value.
    Update(UpdateArgs),
    /// Delete an OIDC configuration.
    Rm {
        /// Configuration id.
        id: String,
    },
}

#[derive(clap::Args, Debug)]
struct AddArgs {
    /// Organization that trusts the issuer.
    #[arg(long, env = "KEYLESS_ORG", default_value = "default")]
    org: String,
    /// Configuration name: 1 to 64 letters, digits, '-', '_' or '.'. The STS
    /// role name selects a configuration by this name.
    #[arg(long)]
    name: String,
    /// Issuer URL, exactly as in the tokens' `iss` claim. HTTPS, except on loopback.
    #[arg(long)]
    issuer: String,
    /// Audience the tokens' `aud` claim must contain. Repeat for several.
    #[arg(long = "audience", required = true)]
    audiences: Vec<String>,
    /// Free-text description.
    #[arg(long)]
    description: Option<String>,
    /// JSON file with the issuer's public keys (a JWK set), used instead of
    /// fetching them from the issuer.
    #[arg(long, value_name = "FILE")]
    jwks_file: Option<PathBuf>,
    /// Create the configuration inactive: its tokens are rejected until it is
    /// activated with `keyless wif oidc update ID --active`.
    #[arg(long)]
    inactive: bool,
    #[command(flatten)]
    limits: Limits,
}

#[derive(clap::Args, Debug)]
struct UpdateArgs {
    /// Configuration id.
    id: String,
    /// New configuration name.
    #[arg(long)]
    name: Option<String>,
    /// New issuer URL.
    #[arg(long)]
    issuer: Option<String>,
    /// Audience; when given, the list of audiences is replaced by the ones
    /// given. Repeat for several.
    #[arg(long = "audience")]
    audiences: Vec<String>,
    /// New description.
    #[arg(long)]
    description: Option<String>,
    /// Replace the uploaded JWK set with the keys in this file.
    #[arg(long, value_name = "FILE", conflicts_with = "no_jwks")]
    jwks_file: Option<PathBuf>,
    /// Remove the uploaded JWK set, so keys are fetched from the issuer.
    #[arg(long)]
    no_jwks: bool,
    /// Accept tokens from this configuration again.
    #[arg(long, conflicts_with = "inactive")]
    active: bool,
    /// Reject tokens from this configuration until it is activated.
    #[arg(long)]
    inactive: bool,
    /// Remove the maximum token age.
    #[arg(long, conflicts_with = "max_token_age")]
    no_max_token_age: bool,
    #[command(flatten)]
    limits: Limits,
}

/// Validation and lifetime settings shared by `add` and `update`. The server
/// applies its defaults to those not given and checks the bounds.
#[derive(clap::Args, Debug)]
struct Limits {
    /// Clock leeway for `exp`, `nbf` and `iat`, in seconds (at most 600). Server default: 60.
    #[arg(long, value_name = "SECONDS")]
    leeway: Option<u64>,
    /// Reject tokens issued (`iat`) more than this many seconds ago.
    #[arg(long, value_name = "SECONDS")]
    max_token_age: Option<u64>,
    /// Minimum credential lifetime a caller may request, in seconds. Server default: 900.
    #[arg(long, value_name = "SECONDS")]
    min_duration: Option<u64>,
    /// Maximum credential lifetime a caller may request, in seconds. Server default: 43200.
    #[arg(long, value_name = "SECONDS")]
    max_duration: Option<u64>,
    /// Credential lifetime when the caller requests none, in seconds. Server default: 3600.
    #[arg(long, value_name = "SECONDS")]
    default_duration: Option<u64>,
}

impl Limits {
    /// Writes the limits that were given into a request body and returns how
    /// many there were.
    fn apply(&self, body: &mut Map<String, Value>) -> usize {
        let fields = [
            ("leewaySeconds", self.leeway),
            ("maxTokenAgeSeconds", self.max_token_age),
            ("minDurationSeconds", self.min_duration),
            ("maxDurationSeconds", self.max_duration),
            ("defaultDurationSeconds", self.default_duration),
        ];
        let mut count = 0;
        for (field, value) in fields {
            if let Some(value) = value {
                body.insert(field.into(), json!(value));
                count += 1;
            }
        }
        count
    }
}

const OIDC_PATH: [&str; 4] = ["v1", "keyless", "wif", "oidc"];

/// Members that only a private or symmetric JWK has (RFC 7518 §6.2.2, §6.3.2
/// and §6.4.1). An uploaded key set must carry public keys only.
const PRIVATE_JWK_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

pub async fn run(args: WifArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.client)?;
    let output = args.client.output;
    let command = match args.command {
        WifCommand::Oidc { command } => command,
        WifCommand::Saml { command } => {
            super::wif_saml::run(&client, output, command).await?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    match command {
        OidcCommand::Add(add) => {
            let body = add_body(&add)?;
            let created = client.call_json(Method::POST, &OIDC_PATH, &[], Some(&body)).await?;
            match output {
                Output::Json => print_json(&created),
                Output::Text => println!("created OIDC configuration {} ({:?})", text(&created, "id"), text(&created, "name")),
            }
        }

        OidcCommand::List => {
            let listed = client.call_json(Method::GET, &OIDC_PATH, &[], None).await?;
            match output {
                Output::Json => print_json(&listed),
                Output::Text => print_config_table(&listed),
            }
        }

        OidcCommand::Show { id } => {
            let config = client.call_json(Method::GET, &config_path(&id), &[], None).await?;
            match output {
                Output::Json => print_json(&config),
                Output::Text => print_config(&config),
            }
        }

        OidcCommand::Update(update) => {
            let current = client.call_json(Method::GET, &config_path(&update.id), &[], None).await?;
            let body = update_body(current, &update)?;
            let replaced = client.call_json(Method::PUT, &config_path(&update.id), &[], Some(&body)).await?;
            match output {
                Output::Json => print_json(&replaced),
                Output::Text => println!("updated OIDC configuration {} ({:?})", text(&replaced, "id"), text(&replaced, "name")),
            }
        }

        OidcCommand::Rm { id } => {
            client.call(Method::DELETE, &config_path(&id), &[], None).await?;
            if output == Output::Text {
                println!("deleted OIDC configuration {id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn config_path(id: &str) -> [&str; 5] {
    let [v1, service, wif, oidc] = OIDC_PATH;
    [v1, service, wif, oidc, id]
}

fn add_body(add: &AddArgs) -> anyhow::Result<Value> {
    let mut body = Map::new();
    body.insert("orgId".into(), json!(add.org));
    body.insert("name".into(), json!(add.name));
    body.insert("issuerUrl".into(), json!(add.issuer));
    body.insert("audiences".into(), json!(add.audiences));
    body.insert("active".into(), json!(!add.inactive));
    if let Some(description) = &add.description {
        body.insert("description".into(), json!(description));
    }
    if let Some(path) = &add.jwks_file {
        body.insert("jwks".into(), read_jwks(path)?);
    }
    add.limits.apply(&mut body);
    Ok(Value::Object(body))
}

/// Builds the full replacement body from the current configuration and the
/// changes given. Server-managed fields (`id`, `createdAt`, `updatedAt`) are
/// dropped. Every other field is kept, including ones this CLI does not know,
/// so an update keeps every setting it does not change.
fn update_body(current: Value, update: &UpdateArgs) -> anyhow::Result<Value> {
    let Value::Object(mut body) = current else {
        bail!("the server returned a configuration that is not a JSON object");
    };
    for field in ["id", "createdAt", "updatedAt"] {
        body.remove(field);
    }

    let mut changes = update.limits.apply(&mut body);
    let mut set = |field: &str, value: Value| {
        body.insert(field.into(), value);
        changes += 1;
    };
    if let Some(name) = &update.name {
        set("name", json!(name));
    }
    if let Some(issuer) = &update.issuer {
        set("issuerUrl", json!(issuer));
    }
    if !update.audiences.is_empty() {
        set("audiences", json!(update.audiences));
    }
    if let Some(description) = &update.description {
        set("description", json!(description));
    }
    if update.active {
        set("active", json!(true));
    }
    if update.inactive {
        set("active", json!(false));
    }
    if let Some(path) = &update.jwks_file {
        set("jwks", read_jwks(path)?);
    }
    if update.no_jwks {
        set("jwks", Value::Null);
    }
    if update.no_max_token_age {
        set("maxTokenAgeSeconds", Value::Null);
    }

    if changes == 0 {
        bail!("nothing to update: give at least one option, such as --audience or --inactive");
    }
    Ok(Value::Object(body))
}

/// Reads a JWK set, or a single JWK, from a file, and rejects private key
/// material: an issuer's public keys are all the server needs.
fn read_jwks(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read the JWK set file {}", path.display()))?;
    let value: Value = serde_json::from_str(&text).with_context(|| format!("the JWK set in {} is not valid JSON", path.display()))?;
    let set = if value.get("keys").is_some() {
        value
    } else if value.get("kty").is_some() {
        json!({ "keys": [value] })
    } else {
        bail!("{} contains neither a JWK set ({{\"keys\": [...]}}) nor a single JWK", path.display());
    };

    let Some(keys) = set.get("keys").and_then(Value::as_array) else {
        bail!("\"keys\" in {} is not a list", path.display());
    };
    if keys.is_empty() {
        bail!("the JWK set in {} has no keys", path.display());
    }
    for (index, key) in keys.iter().enumerate() {
        if let Some(member) = PRIVATE_JWK_MEMBERS.iter().find(|m| key.get(**m).is_some()) {
            let kid = key.get("kid").and_then(Value::as_str).map_or_else(|| format!("#{index}"), |kid| format!("{kid:?}"));
            bail!(
                "key {kid} in {} contains the private member {member:?}: upload only the public keys",
                path.display()
            );
        }
    }
    Ok(set)
}

fn describe_keys(config: &Value) -> String {
    match config.get("jwks").and_then(|j| j.get("keys")).and_then(Value::as_array) {
        Some(keys) => {
            let kids: Vec<&str> = keys.iter().filter_map(|k| k.get("kid").and_then(Value::as_str)).collect();
            if kids.is_empty() {
                format!("uploaded ({} key(s))", keys.len())
            } else {
                format!("uploaded ({} key(s): {})", keys.len(), kids.join(", "))
            }
        }
        None => "fetched from the issuer".into(),
    }
}

pub(super) fn seconds(config: &Value, field: &str) -> String {
    match config.get(field).and_then(Value::as_u64) {
        Some(value) => format!("{value} s"),
        None => "none".into(),
    }
}

pub(super) fn active(config: &Value) -> &'static str {
    if config.get("active").and_then(Value::as_bool).unwrap_or(false) { "yes" } else { "no" }
}

fn audiences(config: &Value) -> String {
    let list = config.get("audiences").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    list.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")
}

fn print_config(config: &Value) {
    let mut fields = vec![
        ("id", text(config, "id").to_owned()),
        ("name", text(config, "name").to_owned()),
        ("organization", text(config, "orgId").to_owned()),
        ("issuer", text(config, "issuerUrl").to_owned()),
        ("audiences", audiences(config)),
        ("active", active(config).to_owned()),
    ];
    if let Some(description) = config.get("description").and_then(Value::as_str) {
        fields.push(("description", description.to_owned()));
    }
    fields.extend([
        ("keys", describe_keys(config)),
        ("leeway", seconds(config, "leewaySeconds")),
        ("max token age", seconds(config, "maxTokenAgeSeconds")),
        ("min duration", seconds(config, "minDurationSeconds")),
        ("max duration", seconds(config, "maxDurationSeconds")),
        ("default duration", seconds(config, "defaultDurationSeconds")),
        ("created", text(config, "createdAt").to_owned()),
        ("updated", text(config, "updatedAt").to_owned()),
    ]);
    print_fields(&fields);
}

fn print_config_table(listed: &Value) {
    let configs = listed.get("configs").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    if configs.is_empty() {
        println!("no OIDC configurations");
        return;
    }
    let rows: Vec<Vec<String>> = configs
        .iter()
        .map(|c| {
            let keys = if c.get("jwks").is_some_and(|j| !j.is_null()) { "uploaded" } else { "fetched" };
            vec![
                text(c, "id").to_owned(),
                text(c, "name").to_owned(),
                active(c).to_owned(),
                keys.to_owned(),
                text(c, "issuerUrl").to_owned(),
                audiences(c),
            ]
        })
        .collect();
    print!("{}", table(&["ID", "NAME", "ACTIVE", "KEYS", "ISSUER", "AUDIENCES"], &rows));
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct TestCli {
        #[command(subcommand)]
        command: OidcCommand,
    }

    fn parse(args: &[&str]) -> OidcCommand {
        TestCli::try_parse_from(std::iter::once("oidc").chain(args.iter().copied())).unwrap().command
    }

    fn current() -> Value {
        json!({
            "id": "abc", "orgId": "default", "name": "ci", "issuerUrl": "https://issuer.example",
            "audiences": ["keyless"], "active": true, "leewaySeconds": 60, "maxTokenAgeSeconds": 300,
            "minDurationSeconds": 900, "maxDurationSeconds": 43200, "defaultDurationSeconds": 3600,
            "conditions": {"StringEquals": {"repository": "acme/app"}},
            "createdAt": "2030-01-01T00:00:00Z", "updatedAt": "2030-01-01T00:00:00Z"
        })
    }

    /// A file in the temporary directory, removed when dropped.
    struct TempFile(PathBuf);

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn temp_file(name: &str, content: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("keyless-cli-wif-{}-{name}", std::process::id()));
        std::fs::write(&path, content).unwrap();
        TempFile(path)
    }

    #[test]
    fn add_collects_audiences_and_limits() {
        let OidcCommand::Add(add) = parse(&[
            "add", "--name", "ci", "--issuer", "https://issuer.example", "--audience", "a", "--audience", "b", "--inactive",
            "--max-duration", "7200",
        ]) else {
            panic!("expected add");
        };
        let body = add_body(&add).unwrap();
        assert_eq!(body["audiences"], json!(["a", "b"]));
        assert_eq!(body["active"], json!(false));
        assert_eq!(body["maxDurationSeconds"], json!(7200));
        assert!(body.get("leewaySeconds").is_none());
    }

    #[test]
    fn add_without_audience_is_rejected() {
        let result = TestCli::try_parse_from(["oidc", "add", "--name", "ci", "--issuer", "https://issuer.example"]);
        assert!(result.is_err());
    }

    #[test]
    fn update_keeps_unknown_fields() {
        let OidcCommand::Update(update) = parse(&["update", "abc", "--inactive"]) else {
            panic!("expected update");
        };
        let body = update_body(current(), &update).unwrap();
        assert_eq!(body["active"], json!(false));
        assert_eq!(body["conditions"], current()["conditions"]);
        assert!(body.get("id").is_none());
        assert!(body.get("createdAt").is_none());
    }

    #[test]
    fn update_replaces_audiences() {
        let OidcCommand::Update(update) = parse(&["update", "abc", "--audience", "x"]) else {
            panic!("expected update");
        };
        let body = update_body(current(), &update).unwrap();
        assert_eq!(body["audiences"], json!(["x"]));
    }

    #[test]
    fn update_can_clear_max_token_age() {
        let OidcCommand::Update(update) = parse(&["update", "abc", "--no-max-token-age"]) else {
            panic!("expected update");
        };
        let body = update_body(current(), &update).unwrap();
        assert_eq!(body["maxTokenAgeSeconds"], Value::Null);
    }

    #[test]
    fn update_without_changes_is_rejected() {
        let OidcCommand::Update(update) = parse(&["update", "abc"]) else {
            panic!("expected update");
        };
        let err = update_body(current(), &update).unwrap_err().to_string();
        assert!(err.contains("nothing to update"), "{err}");
    }

    #[test]
    fn active_and_inactive_conflict() {
        assert!(TestCli::try_parse_from(["oidc", "update", "abc", "--active", "--inactive"]).is_err());
    }

    #[test]
    fn single_jwk_is_wrapped_in_a_set() {
        let file = temp_file("single.json", r#"{"kty":"EC","crv":"P-256","x":"x","y":"y","kid":"k1"}"#);
        let set = read_jwks(&file.0).unwrap();
        assert_eq!(set["keys"][0]["kid"], "k1");
    }

    #[test]
    fn private_jwk_is_rejected() {
        let file = temp_file("private.json", r#"{"keys":[{"kty":"EC","crv":"P-256","x":"x","y":"y","d":"secret","kid":"k1"}]}"#);
        let err = read_jwks(&file.0).unwrap_err().to_string();
        assert!(err.contains("private member \"d\""), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn empty_jwk_set_is_rejected() {
        let file = temp_file("empty.json", r#"{"keys":[]}"#);
        assert!(read_jwks(&file.0).is_err());
    }
}
