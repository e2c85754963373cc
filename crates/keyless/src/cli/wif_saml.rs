//! `keyless wif saml`: SAML workload identity federation (WIF) configurations.
//!
//! A configuration trusts one SAML IdP for one organization: responses whose
//! Issuer equals the IdP entity id, signed with one of the configured
//! certificates and addressed to keyless, can be exchanged for temporary
//! credentials.

use std::path::PathBuf;

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::client::ApiClient;
use super::output::{Output, print_fields, print_json, table, text};
use super::wif::{active, seconds};

#[derive(clap::Subcommand, Debug)]
pub(super) enum SamlCommand {
    /// Trust a SAML IdP.
    Add(AddArgs),
    /// List the organization's SAML configurations.
    List,
    /// Show one SAML configuration.
    Show {
        /// Configuration id.
        id: String,
    },
    /// Change a SAML configuration; options not given keep their current value.
    Update(UpdateArgs),
    /// Delete a SAML configuration.
    Rm {
        /// Configuration id.
        id: String,
    },
    /// Print keyless's SP metadata for this configuration, for the IdP to import.
    Metadata {
        /// Configuration id.
        id: String,
    },
}

#[derive(clap::Args, Debug)]
pub(super) struct AddArgs {
    /// Organization that trusts the IdP.
    #[arg(long, env = "KEYLESS_ORG", default_value = "default")]
    org: String,
    /// Configuration name: 1 to 64 letters, digits, '-', '_' or '.'. An STS
    /// PrincipalArn `arn:aws:iam::<org>:saml-provider/<name>` names it.
    #[arg(long)]
    name: String,
    /// IdP metadata file to import the entity id and signing certificates from.
    #[arg(long, value_name = "FILE", required_unless_present = "certificates", conflicts_with = "certificates")]
    metadata_file: Option<PathBuf>,
    /// IdP entity id, exactly as in the responses' Issuer. Required with --certificate.
    #[arg(long, required_unless_present = "metadata_file")]
    idp_entity_id: Option<String>,
    /// PEM file with an IdP signing certificate. Repeat for several (rotation).
    #[arg(long = "certificate", value_name = "FILE")]
    certificates: Vec<PathBuf>,
    #[command(flatten)]
    settings: Settings,
}

#[derive(clap::Args, Debug)]
pub(super) struct UpdateArgs {
    /// Configuration id.
    id: String,
    /// New configuration name.
    #[arg(long)]
    name: Option<String>,
    /// New IdP entity id.
    #[arg(long)]
    idp_entity_id: Option<String>,
    /// PEM certificate file; when given, the certificates are replaced by the
    /// ones given. Repeat for several.
    #[arg(long = "certificate", value_name = "FILE")]
    certificates: Vec<PathBuf>,
    /// Accept responses from this configuration again.
    #[arg(long, conflicts_with = "inactive")]
    active: bool,
    #[command(flatten)]
    settings: Settings,
}

/// Settings shared by `add` and `update`. The server applies its defaults to
/// those not given and checks them.
#[derive(clap::Args, Debug)]
struct Settings {
    /// Audience the assertions must name. Server default: urn:keyless:<org>.
    #[arg(long)]
    sp_entity_id: Option<String>,
    /// Recipient/Destination URL the assertions may name; replaces the list.
    /// Repeat for several. Server default: the public URLs of the SAML
    /// exchange endpoint and of the STS endpoint.
    #[arg(long = "acs-url", value_name = "URL")]
    acs_urls: Vec<String>,
    /// Attribute holding the role name.
    #[arg(long)]
    role_attribute: Option<String>,
    /// Attribute holding the principal's name.
    #[arg(long)]
    principal_name_attribute: Option<String>,
    /// Free-text description.
    #[arg(long)]
    description: Option<String>,
    /// Reject responses from this configuration until it is activated.
    #[arg(long)]
    inactive: bool,
    /// Clock leeway for the time conditions, in seconds (at most 600). Server default: 60.
    #[arg(long, value_name = "SECONDS")]
    leeway: Option<u64>,
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

impl Settings {
    /// Writes the settings that were given into a request body and returns
    /// how many there were.
    fn apply(&self, body: &mut Map<String, Value>) -> usize {
        let mut count = 0;
        let mut set = |field: &str, value: Value| {
            body.insert(field.into(), value);
            count += 1;
        };
        for (field, value) in [
            ("spEntityId", &self.sp_entity_id),
            ("roleAttribute", &self.role_attribute),
            ("principalNameAttribute", &self.principal_name_attribute),
            ("description", &self.description),
        ] {
            if let Some(value) = value {
                set(field, json!(value));
            }
        }
        if !self.acs_urls.is_empty() {
            set("acsUrls", json!(self.acs_urls));
        }
        if self.inactive {
            set("active", json!(false));
        }
        for (field, value) in [
            ("leewaySeconds", self.leeway),
            ("minDurationSeconds", self.min_duration),
            ("maxDurationSeconds", self.max_duration),
            ("defaultDurationSeconds", self.default_duration),
        ] {
            if let Some(value) = value {
                set(field, json!(value));
            }
        }
        count
    }
}

const SAML_PATH: [&str; 4] = ["v1", "keyless", "wif", "saml"];

pub(super) async fn run(client: &ApiClient, output: Output, command: SamlCommand) -> anyhow::Result<()> {
    match command {
        SamlCommand::Add(add) => {
            let body = add_body(&add)?;
            let created = client.call_json(Method::POST, &SAML_PATH, &[], Some(&body)).await?;
            match output {
                Output::Json => print_json(&created),
                Output::Text => println!("created SAML configuration {} ({:?})", text(&created, "id"), text(&created, "name")),
            }
        }
        SamlCommand::List => {
            let listed = client.call_json(Method::GET, &SAML_PATH, &[], None).await?;
            match output {
                Output::Json => print_json(&listed),
                Output::Text => print_config_table(&listed),
            }
        }
        SamlCommand::Show { id } => {
            let config = client.call_json(Method::GET, &config_path(&id), &[], None).await?;
            match output {
                Output::Json => print_json(&config),
                Output::Text => print_config(&config),
            }
        }
        SamlCommand::Update(update) => {
            let current = client.call_json(Method::GET, &config_path(&update.id), &[], None).await?;
            let body = update_body(current, &update)?;
            let replaced = client.call_json(Method::PUT, &config_path(&update.id), &[], Some(&body)).await?;
            match output {
                Output::Json => print_json(&replaced),
                Output::Text => println!("updated SAML configuration {} ({:?})", text(&replaced, "id"), text(&replaced, "name")),
            }
        }
        SamlCommand::Rm { id } => {
            client.call(Method::DELETE, &config_path(&id), &[], None).await?;
            if output == Output::Text {
                println!("deleted SAML configuration {id}");
            }
        }
        SamlCommand::Metadata { id } => {
            let [v1, service, wif, saml] = SAML_PATH;
            let xml = client.get_text(&[v1, service, wif, saml, &id, "metadata"]).await?;
            println!("{xml}");
        }
    }
    Ok(())
}

fn config_path(id: &str) -> [&str; 5] {
    let [v1, service, wif, saml] = SAML_PATH;
    [v1, service, wif, saml, id]
}

fn read_text(path: &PathBuf, kind: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read the {kind} file {}", path.display()))
}

fn add_body(add: &AddArgs) -> anyhow::Result<Value> {
    let mut body = Map::new();
    body.insert("orgId".into(), json!(add.org));
    body.insert("name".into(), json!(add.name));
    if let Some(entity_id) = &add.idp_entity_id {
        body.insert("idpEntityId".into(), json!(entity_id));
    }
    if let Some(path) = &add.metadata_file {
        body.insert("metadataXml".into(), json!(read_text(path, "IdP metadata")?));
    }
    if !add.certificates.is_empty() {
        let pems = add.certificates.iter().map(|p| read_text(p, "certificate")).collect::<anyhow::Result<Vec<_>>>()?;
        body.insert("certificates".into(), json!(pems));
    }
    add.settings.apply(&mut body);
    Ok(Value::Object(body))
}

/// Builds the full replacement body from the current configuration and the
/// changes given; fields this CLI does not know are kept.
fn update_body(current: Value, update: &UpdateArgs) -> anyhow::Result<Value> {
    let Value::Object(mut body) = current else {
        bail!("the server returned a configuration that is not a JSON object");
    };
    for field in ["id", "createdAt", "updatedAt"] {
        body.remove(field);
    }
    let mut changes = update.settings.apply(&mut body);
    if let Some(name) = &update.name {
        body.insert("name".into(), json!(name));
        changes += 1;
    }
    if let Some(entity_id) = &update.idp_entity_id {
        body.insert("idpEntityId".into(), json!(entity_id));
        changes += 1;
    }
    if !update.certificates.is_empty() {
        let pems = update.certificates.iter().map(|p| read_text(p, "certificate")).collect::<anyhow::Result<Vec<_>>>()?;
        body.insert("certificates".into(), json!(pems));
        changes += 1;
    }
    if update.active {
        body.insert("active".into(), json!(true));
        changes += 1;
    }
    if changes == 0 {
        bail!("nothing to update: give at least one option, such as --certificate or --inactive");
    }
    Ok(Value::Object(body))
}

fn list(config: &Value, field: &str) -> String {
    let items = config.get(field).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(",")
}

fn certificate_count(config: &Value) -> usize {
    config.get("certificates").and_then(Value::as_array).map_or(0, Vec::len)
}

fn print_config(config: &Value) {
    let mut fields = vec![
        ("id", text(config, "id").to_owned()),
        ("name", text(config, "name").to_owned()),
        ("organization", text(config, "orgId").to_owned()),
        ("IdP entity id", text(config, "idpEntityId").to_owned()),
        ("certificates", certificate_count(config).to_string()),
        ("SP entity id", text(config, "spEntityId").to_owned()),
        ("ACS URLs", list(config, "acsUrls")),
        ("role attribute", text(config, "roleAttribute").to_owned()),
        ("principal name attribute", text(config, "principalNameAttribute").to_owned()),
        ("active", active(config).to_owned()),
    ];
    if let Some(description) = config.get("description").and_then(Value::as_str) {
        fields.push(("description", description.to_owned()));
    }
    fields.extend([
        ("leeway", seconds(config, "leewaySeconds")),
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
        println!("no SAML configurations");
        return;
    }
    let rows: Vec<Vec<String>> = configs
        .iter()
        .map(|c| {
            vec![
                text(c, "id").to_owned(),
                text(c, "name").to_owned(),
                active(c).to_owned(),
                certificate_count(c).to_string(),
                text(c, "idpEntityId").to_owned(),
            ]
        })
        .collect();
    print!("{}", table(&["ID", "NAME", "ACTIVE", "CERTS", "IDP ENTITY ID"], &rows));
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct TestCli {
        #[command(subcommand)]
        command: SamlCommand,
    }

    fn parse(args: &[&str]) -> Result<SamlCommand, clap::Error> {
        TestCli::try_parse_from(std::iter::once("saml").chain(args.iter().copied())).map(|cli| cli.command)
    }

    #[test]
    fn add_needs_certificates_or_metadata() {
        assert!(parse(&["add", "--name", "corp", "--idp-entity-id", "https://idp"]).is_err());
        assert!(parse(&["add", "--name", "corp", "--metadata-file", "m.xml", "--certificate", "c.pem"]).is_err());
        assert!(parse(&["add", "--name", "corp", "--metadata-file", "m.xml"]).is_ok());
    }

    #[test]
    fn update_keeps_unknown_fields_and_sets_given_ones() {
        let Ok(SamlCommand::Update(update)) = parse(&["update", "abc", "--inactive", "--acs-url", "https://k/"]) else {
            panic!("expected update");
        };
        let current = json!({"id": "abc", "name": "corp", "active": true, "conditions": {"StringEquals": {"saml:team": "ml"}}});
        let body = update_body(current, &update).unwrap();
        assert_eq!(body["active"], json!(false));
        assert_eq!(body["acsUrls"], json!(["https://k/"]));
        assert!(body.get("conditions").is_some());
        assert!(body.get("id").is_none());
    }

    #[test]
    fn update_without_changes_is_rejected() {
        let Ok(SamlCommand::Update(update)) = parse(&["update", "abc"]) else {
            panic!("expected update");
        };
        assert!(update_body(json!({}), &update).is_err());
    }
}
