//! The administrator and workload CLI: every `keyless` subcommand except `serve`.
//!
//! Each admin subcommand is a thin client of the control-plane API on the API
//! endpoint. It authenticates with an API token (`client::ClientArgs`), sends
//! one or two JSON requests, and prints the result as text for people or as the
//! server's JSON for scripts (`--output json`). Server errors are printed with
//! their `code` and `message`, and the process exits with a non-zero status.
//!
//! `keyless credentials` is the workload side: an AWS `credential_process`
//! helper that exchanges an identity token (an OIDC JWT) for temporary S3
//! credentials and caches them on disk.
//!
//! No command prints an API token or a secret key, except the one-time secret of
//! a key or token it has just created.

mod audit;
mod authz;
mod client;
mod credentials;
mod keys;
mod output;
mod policy;
mod tokens;
mod wif;
mod wif_saml;

use std::process::ExitCode;

use clap::Subcommand;

/// The CLI subcommands, flattened into the binary's top-level commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Manage organization access policies.
    Policy(policy::PolicyArgs),
    /// Manage static access keys and the status of principals.
    Keys(keys::KeysArgs),
    /// Manage API tokens for the control-plane API.
    Tokens(tokens::TokensArgs),
    /// Manage workload identity federation (WIF) configurations.
    Wif(wif::WifArgs),
    /// Ask whether the API token's principal may perform an action.
    ///
    /// Prints "yes" and exits 0, or prints "no" and exits 1. Exits 2 when the
    /// question cannot be answered (for example, the server is unreachable).
    #[command(name = "can-i")]
    CanI(authz::CanIArgs),
    /// Explain why a principal or access key is allowed or denied an action.
    Explain(authz::ExplainArgs),
    /// Query the audit trail (newest first), follow it, or verify its chains.
    Audit(audit::AuditArgs),
    /// Print temporary S3 credentials for an AWS credential_process.
    ///
    /// Exchanges an identity token (an OIDC JWT) for temporary credentials,
    /// caches them in a file readable only by the current user, and prints
    /// them in the AWS process-credentials JSON format.
    Credentials(credentials::CredentialsArgs),
}

/// Runs one CLI subcommand and returns the process exit code.
pub async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Policy(args) => policy::run(args).await,
        Command::Keys(args) => keys::run(args).await,
        Command::Tokens(args) => tokens::run(args).await,
        Command::Audit(args) => audit::run(args).await,
        Command::Wif(args) => wif::run(args).await,
        Command::CanI(args) => Ok(authz::run_can_i(args).await),
        Command::Explain(args) => authz::run_explain(args).await,
        Command::Credentials(args) => credentials::run(args).await,
    }
}

/// Parses repeated `KEY=VALUE` options into a map, rejecting a key given twice
/// so that no value is silently dropped.
pub(crate) fn parse_key_values(option: &str, pairs: &[String]) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let mut map = std::collections::BTreeMap::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            anyhow::bail!("invalid {option} {pair:?}: expected KEY=VALUE");
        };
        if key.is_empty() {
            anyhow::bail!("invalid {option} {pair:?}: the key is empty");
        }
        if map.insert(key.to_owned(), value.to_owned()).is_some() {
            anyhow::bail!("{option} {key:?} is given twice: give each key once");
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[derive(Parser)]
    struct TestCli {
        #[command(subcommand)]
        command: Command,
    }

    #[test]
    fn cli_definition_is_consistent() {
        TestCli::command().debug_assert();
    }

    #[test]
    fn key_values_split_at_first_equals() {
        let map = parse_key_values("--context", &["aws:SourceIp=10.0.0.1".into(), "q=a=b".into()]).unwrap();
        assert_eq!(map["aws:SourceIp"], "10.0.0.1");
        assert_eq!(map["q"], "a=b");
    }

    #[test]
    fn key_value_without_equals_is_rejected() {
        let err = parse_key_values("--context", &["novalue".into()]).unwrap_err().to_string();
        assert!(err.contains("KEY=VALUE"), "{err}");
    }

    #[test]
    fn duplicate_key_is_rejected() {
        let err = parse_key_values("--attribute", &["a=1".into(), "a=2".into()]).unwrap_err().to_string();
        assert!(err.contains("given twice"), "{err}");
    }
}
