//! `keyless keys`: static access keys, revocation, and the status of principals.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Value, json};

use super::client::{ApiClient, ClientArgs};
use super::output::{Output, expiry, print_fields, print_json, table, text};
use super::parse_key_values;

#[derive(clap::Args, Debug)]
pub struct KeysArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: KeysCommand,
}

/// Key status accepted by the list filter.
#[derive(clap::ValueEnum, Debug, Clone, Copy)]
enum StatusFilter {
    Active,
    Suspended,
    Revoked,
}

impl StatusFilter {
    fn as_str(self) -> &'static str {
        match self {
            StatusFilter::Active => "active",
            StatusFilter::Suspended => "suspended",
            StatusFilter::Revoked => "revoked",
        }
    }
}

#[derive(clap::Subcommand, Debug)]
enum KeysCommand {
    /// Create a static access key for the API token's principal.
    ///
    /// The secret key is printed only once, in this command's output.
    Create {
        /// Lifetime of the key in seconds; 0 creates a key that never expires.
        #[arg(long, value_name = "SECONDS", default_value_t = 0)]
        duration: u64,
        /// Attribute stored with the key, as KEY=VALUE. Repeat for several.
        #[arg(long = "attribute", value_name = "KEY=VALUE")]
        attributes: Vec<String>,
    },
    /// List the organization's access keys (never their secrets).
    List {
        /// Show only keys with this status.
        #[arg(long, value_enum)]
        status: Option<StatusFilter>,
        /// Number of keys to skip, for paging.
        #[arg(long, value_name = "N")]
        offset: Option<u32>,
        /// Maximum number of keys to return, 1 to 1000. Server default: 100.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: Option<u32>,
    },
    /// Show one access key.
    Show {
        /// Access key id.
        id: String,
    },
    /// Revoke one access key.
    Revoke {
        /// Access key id.
        id: String,
    },
    /// Revoke every static key of a principal and every temporary key issued to it until now.
    RevokePrincipal {
        /// Principal, such as user/alice or role/<issuer>:<subject>.
        principal: String,
    },
    /// Suspend a principal: its keys and token exchanges are rejected until it is reactivated.
    Suspend {
        /// Principal, such as user/alice or role/<issuer>:<subject>.
        principal: String,
    },
    /// Reactivate a suspended principal.
    Reactivate {
        /// Principal, such as user/alice or role/<issuer>:<subject>.
        principal: String,
    },
}

const ACCESS_KEY_PATH: [&str; 3] = ["v1", "cwobject", "access-key"];

pub async fn run(args: KeysArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.client)?;
    let output = args.client.output;
    match args.command {
        KeysCommand::Create { duration, attributes } => {
            let attributes = parse_key_values("--attribute", &attributes)?;
            let body = json!({ "durationSeconds": duration, "attributes": attributes });
            let key = client.call_json(Method::POST, &ACCESS_KEY_PATH, &[], Some(&body)).await?;
            match output {
                Output::Json => print_json(&key),
                Output::Text => {
                    print_fields(&[
                        ("access key id", text(&key, "accessKeyId").to_owned()),
                        ("secret key", text(&key, "secretKey").to_owned()),
                        ("principal", text(&key, "principalName").to_owned()),
                        ("expiry", expiry(&key)),
                    ]);
                    eprintln!("The secret key is shown only once: store it now.");
                }
            }
        }

        KeysCommand::List { status, offset, limit } => {
            let mut query = Vec::new();
            if let Some(status) = status {
                query.push(("status", status.as_str().to_owned()));
            }
            if let Some(offset) = offset {
                query.push(("offset", offset.to_string()));
            }
            if let Some(limit) = limit {
                query.push(("limit", limit.to_string()));
            }
            let listed = client.call_json(Method::GET, &ACCESS_KEY_PATH, &query, None).await?;
            match output {
                Output::Json => print_json(&listed),
                Output::Text => print_key_table(&listed, offset.unwrap_or(0), limit.unwrap_or(100)),
            }
        }

        KeysCommand::Show { id } => {
            let [v1, service, resource] = ACCESS_KEY_PATH;
            let key = client.call_json(Method::GET, &[v1, service, resource, &id], &[], None).await?;
            match output {
                Output::Json => print_json(&key),
                Output::Text => {
                    let attributes = key.get("attributes").filter(|a| a.as_object().is_some_and(|o| !o.is_empty()));
                    let mut fields = vec![
                        ("access key id", text(&key, "accessKeyId").to_owned()),
                        ("principal", text(&key, "principalName").to_owned()),
                        ("status", text(&key, "status").to_owned()),
                        ("created", text(&key, "createdAt").to_owned()),
                        ("expiry", expiry(&key)),
                    ];
                    if let Some(attributes) = attributes {
                        fields.push(("attributes", attributes.to_string()));
                    }
                    print_fields(&fields);
                }
            }
        }

        KeysCommand::Revoke { id } => {
            let body = json!({ "accessKey": id });
            let result = client.call_json(Method::POST, &["v1", "cwobject", "revoke-access-key", "access-key"], &[], Some(&body)).await?;
            match output {
                Output::Json => print_json(&result),
                Output::Text => println!("revoked access key {id}"),
            }
        }

        KeysCommand::RevokePrincipal { principal } => {
            let body = json!({ "principalName": principal });
            let result = client.call_json(Method::POST, &["v1", "cwobject", "revoke-access-key", "principal"], &[], Some(&body)).await?;
            match output {
                Output::Json => print_json(&result),
                Output::Text => {
                    let count = result.get("revokedStaticKeys").and_then(Value::as_u64).unwrap_or(0);
                    println!("revoked every key of {principal}: {count} static key(s) and every temporary key issued to it until now");
                }
            }
        }

        KeysCommand::Suspend { principal } => {
            set_status(&client, output, &principal, "ACCESS_KEY_STATUS_SUSPENDED", "suspended").await?;
        }
        KeysCommand::Reactivate { principal } => {
            set_status(&client, output, &principal, "ACCESS_KEY_STATUS_ACTIVE", "reactivated").await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_status(client: &ApiClient, output: Output, principal: &str, status: &str, done: &str) -> anyhow::Result<()> {
    let body = json!({ "principalName": principal, "status": status });
    let result = client.call_json(Method::PUT, &["v1", "cwobject", "access-key-status"], &[], Some(&body)).await?;
    match output {
        Output::Json => print_json(&result),
        Output::Text => println!("{done} {principal}"),
    }
    Ok(())
}

fn print_key_table(listed: &Value, offset: u32, limit: u32) {
    let keys = listed.get("accessKeys").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    if keys.is_empty() {
        println!("no access keys");
        return;
    }
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|key| {
            vec![
                text(key, "accessKeyId").to_owned(),
                text(key, "principalName").to_owned(),
                text(key, "status").to_owned(),
                text(key, "createdAt").to_owned(),
                expiry(key),
            ]
        })
        .collect();
    print!("{}", table(&["ACCESS KEY ID", "PRINCIPAL", "STATUS", "CREATED", "EXPIRY"], &rows));
    if keys.len() as u64 >= u64::from(limit) {
        eprintln!("more keys may exist: pass --offset {}", u64::from(offset) + keys.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct TestCli {
        #[command(flatten)]
        keys: KeysArgs,
    }

    #[test]
    fn client_options_follow_subcommand() {
        let cli = TestCli::try_parse_from(["keys", "list", "--endpoint", "http://127.0.0.1:1", "--output", "json"]).unwrap();
        assert_eq!(cli.keys.client.endpoint, "http://127.0.0.1:1");
        assert_eq!(cli.keys.client.output, Output::Json);
    }

    #[test]
    fn limit_out_of_range_is_rejected() {
        assert!(TestCli::try_parse_from(["keys", "list", "--limit", "0"]).is_err());
        assert!(TestCli::try_parse_from(["keys", "list", "--limit", "1001"]).is_err());
    }
}
