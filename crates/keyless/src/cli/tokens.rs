//! `keyless tokens`: API tokens for the control-plane API.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Value, json};

use super::client::{ApiClient, ClientArgs};
use super::output::{Output, print_fields, print_json, table, text};

#[derive(clap::Args, Debug)]
pub struct TokensArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: TokensCommand,
}

#[derive(clap::Subcommand, Debug)]
enum TokensCommand {
    /// Create an API token for the principal user/NAME.
    ///
    /// The token is printed only once, in this command's output. The new
    /// principal may do nothing until a policy allows it.
    Create {
        /// User name: 1 to 64 letters, digits, '-', '_', '.' or '@'.
        name: String,
    },
    /// List the organization's API tokens (never the tokens themselves).
    List,
    /// Revoke an API token.
    Rm {
        /// Token id, as shown by `keyless tokens list`.
        id: String,
    },
}

const TOKENS_PATH: [&str; 3] = ["v1", "keyless", "api-tokens"];

pub async fn run(args: TokensArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.client)?;
    let output = args.client.output;
    match args.command {
        TokensCommand::Create { name } => {
            let created = client.call_json(Method::POST, &TOKENS_PATH, &[], Some(&json!({ "name": name }))).await?;
            match output {
                Output::Json => print_json(&created),
                Output::Text => {
                    print_fields(&[
                        ("id", text(&created, "id").to_owned()),
                        ("principal", text(&created, "principalName").to_owned()),
                        ("token", text(&created, "token").to_owned()),
                    ]);
                    eprintln!("The token is shown only once: store it now, in a file only its owner can read (chmod 600).");
                }
            }
        }

        TokensCommand::List => {
            let listed = client.call_json(Method::GET, &TOKENS_PATH, &[], None).await?;
            match output {
                Output::Json => print_json(&listed),
                Output::Text => {
                    let tokens = listed.get("tokens").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                    if tokens.is_empty() {
                        println!("no API tokens");
                    } else {
                        let rows: Vec<Vec<String>> = tokens
                            .iter()
                            .map(|t| vec![text(t, "id").to_owned(), text(t, "principalName").to_owned(), text(t, "createdAt").to_owned()])
                            .collect();
                        print!("{}", table(&["ID", "PRINCIPAL", "CREATED"], &rows));
                    }
                }
            }
        }

        TokensCommand::Rm { id } => {
            let [v1, service, resource] = TOKENS_PATH;
            client.call(Method::DELETE, &[v1, service, resource, &id], &[], None).await?;
            if output == Output::Text {
                println!("revoked API token {id}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
