//! `keyless policy`: organization access policies.
//!
//! Before storing a policy, `put` warns about principal patterns that match
//! more principals than they appear to. A principal pattern ending in `*` is a
//! prefix match on the text before the `*`, so `role/<issuer>:repo:acme*` also
//! matches `role/<issuer>:repo:acme-evil`. Any other `*` or `?` in a principal
//! pattern matches only itself.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};

use super::client::{ApiClient, ClientArgs};
use super::output::{Output, print_json, table, text};

const POLICY_PATH: [&str; 3] = ["v1", "cwobject", "access-policy"];

/// Characters after which a principal prefix ends cleanly: `/` after the
/// principal kind and in issuer URLs and subjects, `:` between issuer and
/// subject and inside subjects such as `repo:acme/app:ref:...`.
const PRINCIPAL_SEPARATORS: [char; 2] = ['/', ':'];

#[derive(clap::Args, Debug)]
pub struct PolicyArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(clap::Subcommand, Debug)]
enum PolicyCommand {
    /// Create or replace a policy from a JSON file.
    ///
    /// The file contains either the policy object
    /// ({"version":"v1alpha1","name":…,"statements":[…]}) or the whole request
    /// body ({"policy":{…}}). A policy with the same name is replaced.
    Put {
        /// JSON file to read, or - for stdin.
        file: PathBuf,
    },
    /// List the organization's policies and their statements.
    List,
    /// Print one policy as JSON, in the form `policy put` accepts.
    Show {
        /// Policy name.
        name: String,
    },
    /// Delete a policy.
    Rm {
        /// Policy name.
        name: String,
    },
}

pub async fn run(args: PolicyArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.client)?;
    let output = args.client.output;
    match args.command {
        PolicyCommand::Put { file } => put(&client, output, &file).await?,
        PolicyCommand::List => list(&client, output).await?,
        PolicyCommand::Show { name } => show(&client, &name).await?,
        PolicyCommand::Rm { name } => rm(&client, output, &name).await?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn put(client: &ApiClient, output: Output, file: &Path) -> anyhow::Result<()> {
    let (source, content) = if file.as_os_str() == "-" {
        let mut content = String::new();
        std::io::stdin().read_to_string(&mut content).context("cannot read the policy from stdin")?;
        ("stdin".to_owned(), content)
    } else {
        let content = std::fs::read_to_string(file).with_context(|| format!("cannot read the policy file {}", file.display()))?;
        (file.display().to_string(), content)
    };
    let document: Value = serde_json::from_str(&content).with_context(|| format!("the policy in {source} is not valid JSON"))?;
    let body = request_body(document).with_context(|| format!("invalid policy in {source}"))?;

    for warning in policy_warnings(&body["policy"]) {
        eprintln!("warning: {warning}");
    }

    let stored = client.call_json(Method::POST, &POLICY_PATH, &[], Some(&body)).await?;
    match output {
        Output::Json => print_json(&stored),
        Output::Text => {
            let policy = &stored["policy"];
            let count = policy.get("statements").and_then(Value::as_array).map_or(0, Vec::len);
            println!("stored policy {:?} with {count} statement(s)", text(policy, "name"));
        }
    }
    Ok(())
}

/// Builds the request body from a file that contains either the policy object or
/// the whole `{"policy": …}` body.
fn request_body(document: Value) -> anyhow::Result<Value> {
    let Value::Object(object) = &document else {
        bail!("expected a JSON object");
    };
    if object.contains_key("policy") {
        if object.len() != 1 {
            let extra: Vec<&str> = object.keys().map(String::as_str).filter(|k| *k != "policy").collect();
            bail!("unexpected top-level field(s) {extra:?} next to \"policy\"");
        }
        if !object["policy"].is_object() {
            bail!("\"policy\" must be an object");
        }
        return Ok(document);
    }
    Ok(json!({ "policy": document }))
}

/// Warnings for every principal pattern of a policy, each naming the policy and
/// statement. A statement without a name is called `#<index>`, as in the
/// server's explain trace.
pub fn policy_warnings(policy: &Value) -> Vec<String> {
    let policy_name = text(policy, "name");
    let statements = policy.get("statements").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut warnings = Vec::new();
    for (index, statement) in statements.iter().enumerate() {
        let statement_name = match text(statement, "name") {
            "" => format!("#{index}"),
            name => name.to_owned(),
        };
        let principals = statement.get("principals").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for pattern in principals.iter().filter_map(Value::as_str) {
            for warning in principal_pattern_warnings(pattern) {
                warnings.push(format!("policy {policy_name:?}, statement {statement_name:?}: {warning}"));
            }
        }
    }
    warnings
}

/// Warnings for one principal pattern: a prefix that does not end at a
/// separator, and wildcard characters that are matched literally.
pub fn principal_pattern_warnings(pattern: &str) -> Vec<String> {
    if pattern == "*" {
        return Vec::new();
    }
    let mut warnings = Vec::new();
    let prefix = pattern.strip_suffix('*');
    let body = prefix.unwrap_or(pattern);

    if body.contains(['*', '?']) {
        warnings.push(format!(
            "principal pattern {pattern:?} contains '*' or '?' before its end; only a final '*' is a wildcard, so these characters match only themselves"
        ));
    }
    if let Some(prefix) = prefix
        && !prefix.ends_with(PRINCIPAL_SEPARATORS)
    {
        warnings.push(format!(
            "principal pattern {pattern:?} also matches {:?}, because a final '*' matches any text after {prefix:?}; end the prefix at a separator, as in {:?}",
            format!("{prefix}-evil"),
            format!("{prefix}/*"),
        ));
    }
    warnings
}

async fn list(client: &ApiClient, output: Output) -> anyhow::Result<()> {
    let listed = client.call_json(Method::GET, &POLICY_PATH, &[], None).await?;
    if output == Output::Json {
        print_json(&listed);
        return Ok(());
    }

    let policies = listed.get("policies").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut rows = Vec::new();
    for policy in policies {
        let statements = policy.get("statements").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        for (index, statement) in statements.iter().enumerate() {
            let name = match text(statement, "name") {
                "" => format!("#{index}"),
                name => name.to_owned(),
            };
            rows.push(vec![
                text(policy, "name").to_owned(),
                name,
                text(statement, "effect").to_owned(),
                join_list(statement, "actions"),
                join_list(statement, "resources"),
                join_list(statement, "principals"),
                describe_conditions(statement),
            ]);
        }
        for warning in policy_warnings(policy) {
            eprintln!("warning: {warning}");
        }
    }
    if rows.is_empty() {
        println!("no policies");
    } else {
        print!("{}", table(&["POLICY", "STATEMENT", "EFFECT", "ACTIONS", "RESOURCES", "PRINCIPALS", "CONDITIONS"], &rows));
    }
    Ok(())
}

async fn show(client: &ApiClient, name: &str) -> anyhow::Result<()> {
    // The API has no single-policy read, so the list is filtered here.
    let listed = client.call_json(Method::GET, &POLICY_PATH, &[], None).await?;
    let policies = listed.get("policies").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    match policies.iter().find(|p| text(p, "name") == name) {
        Some(policy) => {
            print_json(&json!({ "policy": policy }));
            Ok(())
        }
        None => bail!("policy {name:?} does not exist"),
    }
}

async fn rm(client: &ApiClient, output: Output, name: &str) -> anyhow::Result<()> {
    let [v1, service, resource] = POLICY_PATH;
    client.call(Method::DELETE, &[v1, service, resource, name], &[], None).await?;
    if output == Output::Text {
        println!("deleted policy {name:?}");
    }
    Ok(())
}

/// Summarizes a statement's conditions as `Operator(key)` entries, or `-`.
/// `policy show` prints them in full.
fn describe_conditions(statement: &Value) -> String {
    let Some(operators) = statement.get("conditions").and_then(Value::as_object) else {
        return "-".into();
    };
    let mut entries = Vec::new();
    for (operator, keys) in operators {
        match keys.as_object() {
            Some(keys) => entries.extend(keys.keys().map(|key| format!("{operator}({key})"))),
            None => entries.push(operator.clone()),
        }
    }
    if entries.is_empty() { "-".into() } else { entries.join(",") }
}

fn join_list(value: &Value, field: &str) -> String {
    let items = value.get(field).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    items.iter().map(|item| item.as_str().map_or_else(|| item.to_string(), str::to_owned)).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_without_separator_warns() {
        let warnings = principal_pattern_warnings("role/https://issuer:repo:acme*");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("\"role/https://issuer:repo:acme-evil\""), "{}", warnings[0]);
        assert!(warnings[0].contains("\"role/https://issuer:repo:acme/*\""), "{}", warnings[0]);
    }

    #[test]
    fn prefix_after_separator_is_quiet() {
        assert!(principal_pattern_warnings("role/https://issuer:repo:acme/*").is_empty());
        assert!(principal_pattern_warnings("role/https://issuer:system:serviceaccount:ml:*").is_empty());
        assert!(principal_pattern_warnings("user/*").is_empty());
    }

    #[test]
    fn exact_and_anyone_patterns_are_quiet() {
        assert!(principal_pattern_warnings("*").is_empty());
        assert!(principal_pattern_warnings("user/admin").is_empty());
    }

    #[test]
    fn inner_wildcard_warns_literal() {
        let warnings = principal_pattern_warnings("role/*:repo:acme/*");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("match only themselves"), "{}", warnings[0]);
    }

    #[test]
    fn policy_warnings_name_policy_and_statement() {
        let policy = json!({"name": "ci", "statements": [
            {"name": "ok", "principals": ["user/admin"]},
            {"principals": ["user/a*"]},
        ]});
        let warnings = policy_warnings(&policy);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].starts_with("policy \"ci\", statement \"#1\": "), "{}", warnings[0]);
    }

    #[test]
    fn conditions_are_summarized() {
        let statement = json!({"conditions": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}, "Bool": {"aws:SecureTransport": "true"}}});
        assert_eq!(describe_conditions(&statement), "Bool(aws:SecureTransport),IpAddress(aws:SourceIp)");
        assert_eq!(describe_conditions(&json!({})), "-");
    }

    #[test]
    fn bare_policy_is_wrapped() {
        let body = request_body(json!({"version": "v1alpha1", "name": "p", "statements": []})).unwrap();
        assert_eq!(body["policy"]["name"], "p");
    }

    #[test]
    fn whole_body_is_kept() {
        let body = request_body(json!({"policy": {"name": "p"}})).unwrap();
        assert_eq!(body, json!({"policy": {"name": "p"}}));
    }

    #[test]
    fn body_with_extra_fields_is_rejected() {
        let err = request_body(json!({"policy": {"name": "p"}, "polcy": 1})).unwrap_err().to_string();
        assert!(err.contains("polcy"), "{err}");
    }

    #[test]
    fn non_object_policy_is_rejected() {
        assert!(request_body(json!([1, 2])).is_err());
        assert!(request_body(json!({"policy": "p"})).is_err());
    }
}
