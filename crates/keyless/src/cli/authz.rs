//! `keyless can-i` and `keyless explain`: authorization questions.
//!
//! `can-i` checks whether the API token's own principal may perform an action
//! on every resource given. `explain` has the server evaluate the org policies
//! for any principal (or the principal of a static access key) and shows every
//! statement with the parts that matched or did not.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Value, json};

use super::client::{ApiClient, ClientArgs};
use super::output::{Output, print_json, table, text};
use super::parse_key_values;

/// Exit status of `can-i` when the question could not be answered, distinct
/// from 1 for "no".
const CAN_I_ERROR_EXIT: u8 = 2;

#[derive(clap::Args, Debug)]
pub struct CanIArgs {
    /// Action, such as s3:GetObject or cwobject:CreateAccessKey.
    action: String,
    /// Resources: a bucket, <bucket>/<key>, or * for global actions (the
    /// default). The result is yes only if every resource is allowed.
    #[arg(default_value = "*")]
    resources: Vec<String>,
    // Flattened last, because the arguments after it would be listed under its
    // help heading.
    #[command(flatten)]
    client: ClientArgs,
}

#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// Principal to evaluate, such as user/alice or role/<issuer>:<subject>.
    #[arg(long, required_unless_present = "access_key_id", conflicts_with = "access_key_id")]
    principal: Option<String>,
    /// Static access key whose principal is evaluated.
    #[arg(long)]
    access_key_id: Option<String>,
    /// Action, such as s3:GetObject.
    #[arg(long)]
    action: String,
    /// Resource: a bucket, <bucket>/<key>, or * for global actions.
    #[arg(long)]
    resource: String,
    /// Condition key and value for the evaluation, as KEY=VALUE (such as
    /// aws:SourceIp=10.0.0.1). Repeat for several.
    #[arg(long = "context", value_name = "KEY=VALUE")]
    context: Vec<String>,
    #[command(flatten)]
    client: ClientArgs,
}

/// Runs `can-i`. Errors are printed here, because their exit status (2)
/// differs from the other commands' (1).
pub async fn run_can_i(args: CanIArgs) -> ExitCode {
    match can_i(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(CAN_I_ERROR_EXIT)
        }
    }
}

async fn can_i(args: &CanIArgs) -> anyhow::Result<bool> {
    let client = ApiClient::new(&args.client)?;
    let body = json!({ "actions": [args.action], "resources": args.resources });
    let response = client.call_json(Method::POST, &["v1", "cwobject", "auth", "can-i"], &[], Some(&body)).await?;
    let Some(verdict) = response.get("verdict").and_then(Value::as_bool) else {
        anyhow::bail!("the server's can-i response has no boolean \"verdict\": {response}");
    };
    match args.client.output {
        Output::Json => print_json(&response),
        Output::Text => println!("{}", if verdict { "yes" } else { "no" }),
    }
    Ok(verdict)
}

/// Runs `explain`. It exits 0 whenever the server responded, whatever the
/// decision; use `can-i` to test a decision in a script.
pub async fn run_explain(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.client)?;
    let context = parse_key_values("--context", &args.context)?;

    let mut body = json!({ "action": args.action, "resource": args.resource });
    if let Some(principal) = &args.principal {
        body["principal"] = json!(principal);
    }
    if let Some(key_id) = &args.access_key_id {
        body["accessKeyId"] = json!(key_id);
    }
    if !context.is_empty() {
        body["context"] = json!(context);
    }

    let response = client.call_json(Method::POST, &["v1", "keyless", "explain"], &[], Some(&body)).await?;
    match args.client.output {
        Output::Json => print_json(&response),
        Output::Text => {
            let principal = match text(&response, "principal") {
                "" => args.principal.clone().unwrap_or_default(),
                principal => principal.to_owned(),
            };
            print!("{}", render_explanation(&response, &principal, &args.action, &args.resource));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Renders an explain response: the decision, its reason, and a table of every
/// statement evaluated.
fn render_explanation(response: &Value, principal: &str, action: &str, resource: &str) -> String {
    let allowed = response.get("allowed").and_then(Value::as_bool).unwrap_or(false);
    let mut out = if allowed {
        format!("ALLOWED: {principal} may perform {action} on {resource}\n")
    } else {
        format!("DENIED: {principal} may not perform {action} on {resource}\n")
    };
    out.push_str(&format!("reason: {}\n", describe_reason(response.get("reason").unwrap_or(&Value::Null))));

    let trace = response.get("trace").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    if trace.is_empty() {
        out.push_str("\nthe organization has no policy statements\n");
        return out;
    }
    let rows: Vec<Vec<String>> = trace.iter().map(trace_row).collect();
    out.push('\n');
    out.push_str(&table(&["POLICY", "STATEMENT", "EFFECT", "ACTION", "RESOURCE", "PRINCIPAL", "CONDITIONS", "MATCHED"], &rows));

    let condition_rows = condition_rows(trace);
    if !condition_rows.is_empty() {
        out.push('\n');
        out.push_str(&table(&["POLICY", "STATEMENT", "OPERATOR", "KEY", "REQUEST VALUES", "HELD"], &condition_rows));
    }
    out
}

fn describe_reason(reason: &Value) -> String {
    let policy = text(reason, "policy");
    let statement = text(reason, "statement");
    match text(reason, "kind") {
        "allowed" => format!("allowed by policy {policy:?}, statement {statement:?}, and no Deny statement matched"),
        "explicitDeny" => format!("denied by policy {policy:?}, statement {statement:?}: a matching Deny overrides every Allow"),
        "noAllow" => "no statement allows the request, so it is denied by default".into(),
        "otherOrganization" => format!("bucket {:?} belongs to another organization", text(reason, "bucket")),
        "" => "the server gave no reason".into(),
        other if !policy.is_empty() => format!("{other} (policy {policy:?}, statement {statement:?})"),
        other => other.to_owned(),
    }
}

fn yes_no(value: Option<bool>) -> String {
    match value {
        Some(true) => "yes".into(),
        Some(false) => "no".into(),
        None => "?".into(),
    }
}

/// Builds the table row of one statement of the trace. A statement matches when
/// its action, resource and principal match and each of its conditions holds.
/// The server evaluates conditions only for statements whose other parts match.
fn trace_row(entry: &Value) -> Vec<String> {
    let flag = |field: &str| entry.get(field).and_then(Value::as_bool);
    let (action, resource, principal) = (flag("actionMatched"), flag("resourceMatched"), flag("principalMatched"));
    let conditions = conditions(entry);
    let conditions_held = if conditions.is_empty() {
        None
    } else {
        Some(conditions.iter().all(|c| c.get("matched").and_then(Value::as_bool) == Some(true)))
    };
    let matched = action == Some(true) && resource == Some(true) && principal == Some(true) && conditions_held != Some(false);
    vec![
        text(entry, "policy").to_owned(),
        text(entry, "statement").to_owned(),
        text(entry, "effect").to_owned(),
        yes_no(action),
        yes_no(resource),
        yes_no(principal),
        conditions_held.map_or_else(|| "-".to_owned(), |held| yes_no(Some(held))),
        yes_no(Some(matched)),
    ]
}

/// Returns the evaluated conditions of one trace entry: a list of
/// `{operator, key, matched, values, invalidValue?}` objects.
fn conditions(entry: &Value) -> &[Value] {
    entry.get("conditions").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

/// Builds one table row per evaluated condition, naming its statement.
fn condition_rows(trace: &[Value]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for entry in trace {
        for condition in conditions(entry) {
            let values = condition.get("values").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            let mut values: Vec<String> = values.iter().map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)).collect();
            if values.is_empty() {
                values.push("(no value in the request)".into());
            }
            let mut values = values.join(",");
            if let Some(invalid) = condition.get("invalidValue").and_then(Value::as_str) {
                values.push_str(&format!(" (invalid for the operator: {invalid:?})"));
            }
            rows.push(vec![
                text(entry, "policy").to_owned(),
                text(entry, "statement").to_owned(),
                text(condition, "operator").to_owned(),
                text(condition, "key").to_owned(),
                values,
                yes_no(condition.get("matched").and_then(Value::as_bool)),
            ]);
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct TestCli {
        #[command(flatten)]
        explain: ExplainArgs,
    }

    #[test]
    fn explain_needs_principal_or_key() {
        assert!(TestCli::try_parse_from(["explain", "--action", "s3:GetObject", "--resource", "b/k"]).is_err());
    }

    #[test]
    fn explain_rejects_principal_and_key() {
        let result = TestCli::try_parse_from([
            "explain", "--principal", "user/a", "--access-key-id", "KL1", "--action", "s3:GetObject", "--resource", "b/k",
        ]);
        assert!(result.is_err());
    }

    #[test]
    fn explain_deny_names_statement() {
        let response = json!({
            "allowed": false,
            "reason": {"kind": "explicitDeny", "policy": "guard", "statement": "no-delete"},
            "trace": [
                {"policy": "admin", "statement": "all", "effect": "Allow", "actionMatched": true, "resourceMatched": true, "principalMatched": true},
                {"policy": "guard", "statement": "no-delete", "effect": "Deny", "actionMatched": true, "resourceMatched": true, "principalMatched": true},
                {"policy": "ci", "statement": "#0", "effect": "Allow", "actionMatched": false, "resourceMatched": true, "principalMatched": false},
            ],
        });
        let rendered = render_explanation(&response, "user/alice", "s3:DeleteObject", "data/x");
        assert!(rendered.starts_with("DENIED: user/alice may not perform s3:DeleteObject on data/x\n"), "{rendered}");
        assert!(rendered.contains("denied by policy \"guard\", statement \"no-delete\""), "{rendered}");
        let ci_row = rendered.lines().find(|l| l.starts_with("ci ")).unwrap();
        assert!(ci_row.ends_with("no"), "{ci_row}");
    }

    #[test]
    fn failed_condition_means_no_match() {
        let entry = json!({"policy": "p", "statement": "s", "effect": "Allow", "actionMatched": true,
            "resourceMatched": true, "principalMatched": true, "conditions": [
                {"operator": "IpAddress", "key": "aws:sourceip", "matched": true, "values": ["10.0.0.1"]},
                {"operator": "Bool", "key": "aws:securetransport", "matched": false, "values": ["false"]},
            ]});
        let row = trace_row(&entry);
        assert_eq!(row[6], "no");
        assert_eq!(row[7], "no");
    }

    #[test]
    fn statement_without_conditions_shows_dash() {
        let entry = json!({"policy": "p", "statement": "s", "effect": "Allow", "actionMatched": true,
            "resourceMatched": true, "principalMatched": true, "conditions": []});
        let row = trace_row(&entry);
        assert_eq!(row[6], "-");
        assert_eq!(row[7], "yes");
    }

    #[test]
    fn condition_table_lists_values() {
        let trace = [json!({"policy": "p", "statement": "s", "conditions": [
            {"operator": "StringEquals", "key": "jwt:repository", "matched": false, "values": []},
            {"operator": "NumericLessThan", "key": "jwt:run", "matched": false, "values": ["abc"], "invalidValue": "abc"},
        ]})];
        let rows = condition_rows(&trace);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0][4], "(no value in the request)");
        assert_eq!(rows[1][4], "abc (invalid for the operator: \"abc\")");
        assert_eq!(rows[1][5], "no");
    }

    #[test]
    fn no_allow_reason_is_default_deny() {
        assert_eq!(describe_reason(&json!({"kind": "noAllow"})), "no statement allows the request, so it is denied by default");
    }
}
