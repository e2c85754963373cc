//! Condition tests. The evaluation tables restate rules of the AWS IAM User
//! Guide (pages "IAM JSON policy elements: Condition operators", "Conditions
//! with multiple context keys or values", "Single-valued vs. multivalued context
//! keys" and "IAM policy elements: Variables and tags") as cases.

use super::*;

fn parse(json: &str) -> Conditions {
    let value: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|err| panic!("test JSON is invalid: {err}: {json}"));
    Conditions::from_json(&value).unwrap_or_else(|err| panic!("{json}: {err}"))
}

fn parse_error(json: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|err| panic!("test JSON is invalid: {err}: {json}"));
    match Conditions::from_json(&value) {
        Ok(conditions) => panic!("{json} should be rejected, parsed as {conditions:?}"),
        Err(err) => err.to_string(),
    }
}

/// Builds a context from `(key, values)` pairs.
fn context(pairs: &[(&str, &[&str])]) -> Context {
    let mut builder = Context::builder();
    for (key, values) in pairs {
        builder = builder.values(key, values.iter().copied());
    }
    builder.build()
}

/// Returns whether every condition is satisfied in an Allow statement.
fn holds(json: &str, context: &Context) -> bool {
    parse(json).evaluate(context, Effect::Allow).iter().all(|trace| trace.matched)
}

/// Runs a table of `(request values of the key, expected result)` for one
/// condition on one key. `None` leaves the key out of the request.
fn check_table(json: &str, key: &str, cases: &[(Option<&[&str]>, bool)]) {
    for (values, expected) in cases {
        let ctx = match values {
            Some(values) => context(&[(key, values)]),
            None => Context::new(),
        };
        assert_eq!(holds(json, &ctx), *expected, "{json} with {key} = {values:?}");
    }
}

// ---- Evaluation: combining operators, keys and values ----

#[test]
fn operators_are_anded() {
    let json = r#"{"StringEquals": {"aws:username": "alice"}, "Bool": {"aws:SecureTransport": "true"}}"#;
    assert!(holds(json, &context(&[("aws:username", &["alice"]), ("aws:SecureTransport", &["true"])])));
    assert!(!holds(json, &context(&[("aws:username", &["alice"]), ("aws:SecureTransport", &["false"])])));
    assert!(!holds(json, &context(&[("aws:username", &["bob"]), ("aws:SecureTransport", &["true"])])));
}

#[test]
fn keys_under_one_operator_are_anded() {
    let json = r#"{"StringEquals": {"aws:PrincipalTag/team": "ml", "aws:PrincipalTag/role": "admin"}}"#;
    assert!(holds(json, &context(&[("aws:PrincipalTag/team", &["ml"]), ("aws:PrincipalTag/role", &["admin"])])));
    assert!(!holds(json, &context(&[("aws:PrincipalTag/team", &["ml"])])));
}

#[test]
fn values_of_one_key_are_ored() {
    check_table(
        r#"{"StringEquals": {"aws:PrincipalTag/team": ["ml", "data"]}}"#,
        "aws:PrincipalTag/team",
        &[(Some(&["ml"]), true), (Some(&["data"]), true), (Some(&["web"]), false)],
    );
}

#[test]
fn negated_values_are_nored() {
    check_table(
        r#"{"StringNotEquals": {"aws:PrincipalTag/team": ["ml", "data"]}}"#,
        "aws:PrincipalTag/team",
        &[(Some(&["ml"]), false), (Some(&["data"]), false), (Some(&["web"]), true)],
    );
}

// ---- Evaluation: keys missing from the request ----

#[test]
fn missing_key_rules() {
    // A positive operator fails and a negated one holds; IfExists holds;
    // ForAllValues holds; ForAnyValue fails.
    let cases = [
        (r#"{"StringEquals": {"jwt:team": "ml"}}"#, false),
        (r#"{"StringNotEquals": {"jwt:team": "ml"}}"#, true),
        (r#"{"StringLike": {"jwt:team": "*"}}"#, false),
        (r#"{"StringNotLike": {"jwt:team": "*"}}"#, true),
        (r#"{"NumericLessThan": {"s3:max-keys": "10"}}"#, false),
        (r#"{"NumericNotEquals": {"s3:max-keys": "10"}}"#, true),
        (r#"{"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}"#, false),
        (r#"{"DateNotEquals": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}"#, true),
        (r#"{"Bool": {"aws:SecureTransport": "true"}}"#, false),
        (r#"{"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}"#, false),
        (r#"{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#, true),
        (r#"{"ArnLike": {"jwt:arn": "arn:*:*:*:*:*"}}"#, false),
        (r#"{"ArnNotLike": {"jwt:arn": "arn:*:*:*:*:*"}}"#, true),
        (r#"{"StringEqualsIfExists": {"jwt:team": "ml"}}"#, true),
        (r#"{"NumericLessThanIfExists": {"s3:max-keys": "10"}}"#, true),
        (r#"{"BoolIfExists": {"aws:SecureTransport": "true"}}"#, true),
        (r#"{"ForAllValues:StringEquals": {"jwt:groups": "ml"}}"#, true),
        (r#"{"ForAnyValue:StringEquals": {"jwt:groups": "ml"}}"#, false),
        (r#"{"ForAnyValue:StringNotEquals": {"jwt:groups": "ml"}}"#, false),
        (r#"{"ForAnyValue:StringEqualsIfExists": {"jwt:groups": "ml"}}"#, true),
        (r#"{"Null": {"jwt:team": "true"}}"#, true),
        (r#"{"Null": {"jwt:team": "false"}}"#, false),
    ];
    for (json, expected) in cases {
        assert_eq!(holds(json, &Context::new()), expected, "{json}");
    }
}

#[test]
fn if_exists_compares_a_present_key() {
    check_table(
        r#"{"StringEqualsIfExists": {"jwt:team": "ml"}}"#,
        "jwt:team",
        &[(None, true), (Some(&["ml"]), true), (Some(&["web"]), false)],
    );
}

#[test]
fn null_tests_presence() {
    check_table(r#"{"Null": {"aws:TokenIssueTime": "true"}}"#, "aws:TokenIssueTime", &[(None, true), (Some(&["2026-01-01T00:00:00Z"]), false)]);
    check_table(r#"{"Null": {"aws:TokenIssueTime": false}}"#, "aws:TokenIssueTime", &[(None, false), (Some(&["2026-01-01T00:00:00Z"]), true)]);
}

// ---- Evaluation: string operators ----

#[test]
fn string_equals_is_case_sensitive() {
    check_table(
        r#"{"StringEquals": {"aws:username": "Alice"}}"#,
        "aws:username",
        &[(Some(&["Alice"]), true), (Some(&["alice"]), false), (Some(&["Alice "]), false), (Some(&["*"]), false)],
    );
}

#[test]
fn string_equals_has_no_wildcards() {
    check_table(r#"{"StringEquals": {"s3:prefix": "home/*"}}"#, "s3:prefix", &[(Some(&["home/*"]), true), (Some(&["home/x"]), false)]);
}

#[test]
fn string_equals_ignore_case() {
    check_table(
        r#"{"StringEqualsIgnoreCase": {"aws:username": "Alice"}}"#,
        "aws:username",
        &[(Some(&["alice"]), true), (Some(&["ALICE"]), true), (Some(&["alicia"]), false)],
    );
    check_table(
        r#"{"StringNotEqualsIgnoreCase": {"aws:username": "Alice"}}"#,
        "aws:username",
        &[(Some(&["ALICE"]), false), (Some(&["bob"]), true)],
    );
}

#[test]
fn string_like_wildcards() {
    check_table(
        r#"{"StringLike": {"s3:prefix": ["home/*", "tmp/????/"]}}"#,
        "s3:prefix",
        &[
            (Some(&["home/"]), true),
            (Some(&["home/a/b/c"]), true),
            (Some(&["home"]), false),
            (Some(&["homes/"]), false),
            (Some(&["tmp/2026/"]), true),
            (Some(&["tmp/26/"]), false),
        ],
    );
}

#[test]
fn string_not_like() {
    check_table(r#"{"StringNotLike": {"s3:prefix": "private/*"}}"#, "s3:prefix", &[(Some(&["private/x"]), false), (Some(&["public/x"]), true)]);
}

#[test]
fn empty_string_value_matches_empty_prefix() {
    // Listing the root of a bucket sends an empty s3:prefix.
    check_table(r#"{"StringEquals": {"s3:prefix": ["", "home/"]}}"#, "s3:prefix", &[(Some(&[""]), true), (Some(&["x"]), false)]);
}

#[test]
fn key_names_ignore_case_but_values_do_not() {
    let json = r#"{"StringEquals": {"AWS:PrincipalTag/Team": "ML"}}"#;
    assert!(holds(json, &context(&[("aws:principaltag/team", &["ML"])])));
    assert!(!holds(json, &context(&[("aws:principaltag/team", &["ml"])])));
}

// ---- Evaluation: numeric, date, Bool and IP operators ----

#[test]
fn numeric_operators() {
    let key = "s3:max-keys";
    check_table(r#"{"NumericEquals": {"s3:max-keys": "10"}}"#, key, &[(Some(&["10"]), true), (Some(&["10.0"]), true), (Some(&["11"]), false)]);
    check_table(r#"{"NumericNotEquals": {"s3:max-keys": "10"}}"#, key, &[(Some(&["10"]), false), (Some(&["9"]), true)]);
    check_table(r#"{"NumericLessThan": {"s3:max-keys": 10}}"#, key, &[(Some(&["9"]), true), (Some(&["10"]), false)]);
    check_table(r#"{"NumericLessThanEquals": {"s3:max-keys": "10"}}"#, key, &[(Some(&["10"]), true), (Some(&["11"]), false)]);
    check_table(r#"{"NumericGreaterThan": {"s3:max-keys": "10"}}"#, key, &[(Some(&["11"]), true), (Some(&["10"]), false)]);
    check_table(r#"{"NumericGreaterThanEquals": {"s3:max-keys": "-1.5"}}"#, key, &[(Some(&["-1.5"]), true), (Some(&["-2"]), false)]);
}

#[test]
fn date_operators_accept_both_formats() {
    let key = "aws:CurrentTime";
    let before = "2025-12-31T23:59:59Z";
    let at = "2026-01-01T00:00:00Z";
    let after = "2026-01-01T00:00:01Z";
    check_table(r#"{"DateEquals": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}"#, key, &[(Some(&[at]), true), (Some(&["1767225600"]), true), (Some(&[after]), false)]);
    check_table(r#"{"DateNotEquals": {"aws:CurrentTime": "1767225600"}}"#, key, &[(Some(&[at]), false), (Some(&[after]), true)]);
    check_table(r#"{"DateLessThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}"#, key, &[(Some(&[before]), true), (Some(&[at]), false)]);
    check_table(r#"{"DateLessThanEquals": {"aws:CurrentTime": "2026-01-01T01:00:00+01:00"}}"#, key, &[(Some(&[at]), true), (Some(&[after]), false)]);
    check_table(r#"{"DateGreaterThan": {"aws:CurrentTime": 1767225600}}"#, key, &[(Some(&[after]), true), (Some(&[at]), false)]);
    check_table(r#"{"DateGreaterThanEquals": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}"#, key, &[(Some(&[at]), true), (Some(&[before]), false)]);
}

#[test]
fn bool_operator() {
    check_table(
        r#"{"Bool": {"aws:SecureTransport": "false"}}"#,
        "aws:SecureTransport",
        &[(Some(&["false"]), true), (Some(&["FALSE"]), true), (Some(&["true"]), false)],
    );
    check_table(r#"{"Bool": {"aws:SecureTransport": true}}"#, "aws:SecureTransport", &[(Some(&["true"]), true), (Some(&["false"]), false)]);
}

#[test]
fn ip_address_operators() {
    // The two networks of the IAM documentation's IpAddress example.
    let json = r#"{"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]}}"#;
    check_table(
        json,
        "aws:SourceIp",
        &[
            (Some(&["203.0.113.7"]), true),
            (Some(&["203.0.114.7"]), false),
            (Some(&["2001:db8:1234:5678::9"]), true),
            (Some(&["2001:db8:1234:5679::9"]), false),
            (Some(&["::ffff:203.0.113.7"]), true),
        ],
    );
    check_table(
        r#"{"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}"#,
        "aws:SourceIp",
        &[(Some(&["10.1.2.3"]), false), (Some(&["192.0.2.1"]), true)],
    );
    check_table(r#"{"IpAddress": {"aws:SourceIp": "192.0.2.1"}}"#, "aws:SourceIp", &[(Some(&["192.0.2.1"]), true), (Some(&["192.0.2.2"]), false)]);
}

// ---- Evaluation: ARN operators ----

#[test]
fn arn_like_matches_component_by_component() {
    check_table(
        r#"{"ArnLike": {"jwt:role_arn": "arn:aws:iam::*:role/*"}}"#,
        "jwt:role_arn",
        &[
            (Some(&["arn:aws:iam::123456789012:role/Admin"]), true),
            (Some(&["arn:aws:iam::123456789012:user/Admin"]), false),
            (Some(&["arn:aws:iam::123456789012"]), false),
            (Some(&["not-an-arn"]), false),
        ],
    );
}

#[test]
fn arn_wildcard_does_not_span_components() {
    check_table(r#"{"ArnLike": {"jwt:arn": "arn:*:iam::1:role/x"}}"#, "jwt:arn", &[(Some(&["arn:aws:iam::1:role/x"]), true), (Some(&["arn:aws:extra:iam::1:role/x"]), false)]);
}

#[test]
fn arn_resource_component_may_contain_colons() {
    check_table(r#"{"ArnEquals": {"jwt:arn": "arn:aws:logs:*:1:log-group:*"}}"#, "jwt:arn", &[(Some(&["arn:aws:logs:us-east-1:1:log-group:app"]), true)]);
}

#[test]
fn arn_equals_behaves_like_arn_like() {
    let value = ["arn:aws:iam::123456789012:role/Admin"];
    check_table(r#"{"ArnEquals": {"jwt:arn": "arn:aws:iam::*:role/*"}}"#, "jwt:arn", &[(Some(&value), true)]);
    check_table(r#"{"ArnNotEquals": {"jwt:arn": "arn:aws:iam::*:role/*"}}"#, "jwt:arn", &[(Some(&value), false)]);
    check_table(r#"{"ArnNotLike": {"jwt:arn": "arn:aws:iam::*:user/*"}}"#, "jwt:arn", &[(Some(&value), true)]);
}

// ---- Evaluation: multivalued keys and set qualifiers ----

#[test]
fn for_any_value_needs_one_satisfying_value() {
    check_table(
        r#"{"ForAnyValue:StringEquals": {"jwt:groups": ["ml", "data"]}}"#,
        "jwt:groups",
        &[(Some(&["web", "ml"]), true), (Some(&["web", "ops"]), false), (Some(&["data"]), true)],
    );
}

#[test]
fn for_all_values_needs_every_value_to_satisfy() {
    check_table(
        r#"{"ForAllValues:StringEquals": {"jwt:groups": ["ml", "data"]}}"#,
        "jwt:groups",
        &[(None, true), (Some(&["ml"]), true), (Some(&["ml", "data"]), true), (Some(&["ml", "web"]), false)],
    );
}

#[test]
fn for_any_value_negated() {
    check_table(
        r#"{"ForAnyValue:StringNotEquals": {"jwt:groups": ["DataClass", "Owner"]}}"#,
        "jwt:groups",
        &[(Some(&["DataClass", "Owner"]), false), (Some(&["Dept", "DataClass"]), true), (Some(&["Dept", "SIC"]), true)],
    );
}

#[test]
fn for_all_values_negated() {
    check_table(
        r#"{"ForAllValues:StringNotEquals": {"jwt:groups": ["admin", "root"]}}"#,
        "jwt:groups",
        &[(Some(&["ml", "web"]), true), (Some(&["ml", "admin"]), false)],
    );
}

#[test]
fn for_all_values_string_like() {
    check_table(r#"{"ForAllValues:StringLike": {"jwt:groups": "team-*"}}"#, "jwt:groups", &[(Some(&["team-a", "team-b"]), true), (Some(&["team-a", "admins"]), false)]);
}

#[test]
fn unqualified_operator_on_multivalued_key() {
    // keyless's rule: a positive operator holds when any value hits, and a
    // negated operator holds only when no value hits.
    check_table(r#"{"StringEquals": {"jwt:groups": "ml"}}"#, "jwt:groups", &[(Some(&["web", "ml"]), true), (Some(&["web", "ops"]), false)]);
    check_table(r#"{"StringNotEquals": {"jwt:groups": "ml"}}"#, "jwt:groups", &[(Some(&["web", "ml"]), false), (Some(&["web", "ops"]), true)]);
}

// ---- Evaluation: request values of the wrong type ----

#[test]
fn invalid_request_value_follows_effect() {
    let conditions = parse(r#"{"NumericLessThan": {"jwt:level": "5"}}"#);
    let ctx = context(&[("jwt:level", &["abc"])]);

    let allow = conditions.evaluate(&ctx, Effect::Allow);
    assert!(!allow[0].matched);
    assert_eq!(allow[0].invalid_value.as_deref(), Some("abc"));

    let deny = conditions.evaluate(&ctx, Effect::Deny);
    assert!(deny[0].matched);
    assert_eq!(deny[0].invalid_value.as_deref(), Some("abc"));
}

#[test]
fn invalid_request_value_applies_to_negated_operators_too() {
    for json in [
        r#"{"NumericNotEquals": {"jwt:level": "5"}}"#,
        r#"{"DateNotEquals": {"jwt:iat": "2026-01-01T00:00:00Z"}}"#,
        r#"{"NotIpAddress": {"jwt:ip": "10.0.0.0/8"}}"#,
        r#"{"Bool": {"jwt:admin": "false"}}"#,
    ] {
        let conditions = parse(json);
        let ctx = context(&[("jwt:level", &["x"]), ("jwt:iat", &["x"]), ("jwt:ip", &["x"]), ("jwt:admin", &["x"])]);
        assert!(!conditions.evaluate(&ctx, Effect::Allow)[0].matched, "{json}");
        assert!(conditions.evaluate(&ctx, Effect::Deny)[0].matched, "{json}");
    }
}

// ---- Evaluation: policy variables in values ----

#[test]
fn variable_in_value_is_substituted() {
    let json = r#"{"StringLike": {"s3:prefix": ["home/${aws:username}/*", "home/${aws:username}"]}}"#;
    let alice = |prefix: &'static str| context(&[("aws:username", &["alice"]), ("s3:prefix", &[prefix])]);
    assert!(holds(json, &alice("home/alice/docs/")));
    assert!(holds(json, &alice("home/alice")));
    assert!(!holds(json, &alice("home/alice2/")));
    assert!(!holds(json, &alice("home/bob/")));
}

#[test]
fn hostile_variable_values_are_literal_in_conditions() {
    let json = r#"{"StringLike": {"s3:prefix": "home/${aws:username}/*"}}"#;
    for (username, reachable, unreachable) in [
        ("*", "home/*/x", "home/bob/x"),
        ("?", "home/?/x", "home/b/x"),
        ("/", "home///x", "home/x"),
        ("..", "home/../x", "home/x"),
    ] {
        let ctx = |prefix: &str| context(&[("aws:username", &[username]), ("s3:prefix", &[prefix])]);
        assert!(holds(json, &ctx(reachable)), "{username:?} should reach {reachable:?}");
        assert!(!holds(json, &ctx(unreachable)), "{username:?} should not reach {unreachable:?}");
    }
}

#[test]
fn hostile_value_in_string_equals_is_literal() {
    let json = r#"{"StringEquals": {"jwt:repository": "${jwt:sub}"}}"#;
    assert!(!holds(json, &context(&[("jwt:sub", &["*"]), ("jwt:repository", &["acme/train"])])));
    assert!(holds(json, &context(&[("jwt:sub", &["*"]), ("jwt:repository", &["*"])])));
}

#[test]
fn unresolved_variable_value_matches_nothing() {
    // The variable's key is absent, so its value matches no request value:
    // the positive operator fails and the negated one holds.
    let ctx = context(&[("s3:prefix", &[""])]);
    assert!(!holds(r#"{"StringLike": {"s3:prefix": "${aws:username}*"}}"#, &ctx));
    assert!(!holds(r#"{"StringEquals": {"s3:prefix": "${aws:username}"}}"#, &ctx));
    assert!(holds(r#"{"StringNotEquals": {"s3:prefix": "${aws:username}"}}"#, &ctx));
    // Other values of the same key still count.
    assert!(holds(r#"{"StringEquals": {"s3:prefix": ["${aws:username}", ""]}}"#, &ctx));
}

#[test]
fn escaped_characters_in_values() {
    check_table(r#"{"StringLike": {"jwt:note": "a${*}b"}}"#, "jwt:note", &[(Some(&["a*b"]), true), (Some(&["axb"]), false)]);
}

#[test]
fn variable_in_arn_value() {
    let json = r#"{"ArnLike": {"jwt:role_arn": "arn:aws:iam::${jwt:account}:role/*"}}"#;
    assert!(holds(json, &context(&[("jwt:account", &["123"]), ("jwt:role_arn", &["arn:aws:iam::123:role/x"])])));
    assert!(!holds(json, &context(&[("jwt:account", &["*"]), ("jwt:role_arn", &["arn:aws:iam::123:role/x"])])));
}

// ---- Trace ----

#[test]
fn trace_lists_operator_key_and_request_values() {
    let conditions = parse(r#"{"ForAnyValue:StringLike": {"JWT:Groups": "team-*"}, "Bool": {"aws:SecureTransport": "true"}}"#);
    let ctx = context(&[("jwt:groups", &["team-a", "ops"])]);
    let trace = conditions.evaluate(&ctx, Effect::Allow);
    assert_eq!(trace.len(), 2);

    let groups = trace.iter().find(|t| t.operator == "ForAnyValue:StringLike").expect("ForAnyValue:StringLike is traced");
    assert_eq!(groups.key, "jwt:groups");
    assert!(groups.matched);
    assert_eq!(groups.values, ["team-a", "ops"]);

    let transport = trace.iter().find(|t| t.operator == "Bool").expect("Bool is traced");
    assert_eq!(transport.key, "aws:securetransport");
    assert!(!transport.matched);
    assert!(transport.values.is_empty());
}

#[test]
fn trace_serializes_in_camel_case() {
    let trace = parse(r#"{"NumericLessThan": {"jwt:level": "5"}}"#).evaluate(&context(&[("jwt:level", &["x"])]), Effect::Allow);
    let json = serde_json::to_value(&trace[0]).unwrap();
    assert_eq!(json, serde_json::json!({"operator": "NumericLessThan", "key": "jwt:level", "matched": false, "values": ["x"], "invalidValue": "x"}));
}

// ---- Parsing: errors name the operator, key and value ----

#[test]
fn parse_errors_name_the_problem() {
    let cases = [
        (r#"{"StringEqual": {"aws:username": "a"}}"#, "unknown condition operator \"StringEqual\""),
        (r#"{"stringEquals": {"aws:username": "a"}}"#, "did you mean \"StringEquals\""),
        (r#"{"NullIfExists": {"aws:username": "true"}}"#, "no IfExists suffix"),
        (r#"{"ForAllValues:Null": {"aws:username": "true"}}"#, "no ForAnyValue: or ForAllValues: prefix"),
        (r#"{"StringEquals": {}}"#, "StringEquals: the operator names no condition key"),
        (r#"{"StringEquals": {"username": "a"}}"#, "StringEquals: invalid condition key \"username\""),
        (r#"{"StringEquals": {"aws:user name": "a"}}"#, "invalid condition key \"aws:user name\""),
        (r#"{"StringEquals": {"aws:username": []}}"#, "StringEquals: condition key \"aws:username\" has no values"),
        (r#"{"StringEquals": {"aws:username": [["a"]]}}"#, "must not contain nested lists"),
        (r#"{"StringEquals": {"aws:username": null}}"#, "as the value of \"aws:username\" under \"StringEquals\""),
        (r#"{"StringEquals": {"aws:username": {"a": "b"}}}"#, "as the value of \"aws:username\" under \"StringEquals\""),
        (r#"{"StringEquals": "aws:username"}"#, "an object mapping condition keys to values under \"StringEquals\""),
        (r#"{"StringEquals": {"aws:username": "a\u0000"}}"#, "without control characters"),
        (r#"{"StringLike": {"s3:prefix": "home/${aws:username"}}"#, "StringLike: key \"s3:prefix\": invalid policy variable"),
        (r#"{"NumericLessThan": {"s3:max-keys": "ten"}}"#, "NumericLessThan: value \"ten\" for key \"s3:max-keys\" is invalid: expected a decimal number"),
        (r#"{"NumericLessThan": {"s3:max-keys": "${jwt:limit}"}}"#, "policy variables are not allowed"),
        (r#"{"DateLessThan": {"aws:CurrentTime": "2026-01-01"}}"#, "DateLessThan: value \"2026-01-01\" for key \"aws:CurrentTime\" is invalid: expected an RFC 3339 date"),
        (r#"{"Bool": {"aws:SecureTransport": "yes"}}"#, "Bool: value \"yes\" for key \"aws:SecureTransport\" is invalid: expected \"true\" or \"false\""),
        (r#"{"Bool": {"aws:SecureTransport": ["true", "false"]}}"#, "lists both true and false"),
        (r#"{"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}"#, "IpAddress: value \"10.0.0.0/33\" for key \"aws:SourceIp\" is invalid"),
        (r#"{"NotIpAddress": {"aws:SourceIp": "localhost"}}"#, "NotIpAddress: value \"localhost\""),
        (r#"{"ArnLike": {"jwt:arn": "arn:aws:iam"}}"#, "ArnLike: value \"arn:aws:iam\" for key \"jwt:arn\" is invalid: expected an ARN of six colon-separated parts"),
        (r#"{"ArnLike": {"jwt:arn": "*"}}"#, "expected an ARN"),
        (r#"{"Null": {"jwt:sub": "maybe"}}"#, "Null: value \"maybe\" for key \"jwt:sub\" is invalid"),
        (r#"{"Null": {"jwt:sub": ["true", "false"]}}"#, "Null takes exactly one"),
    ];
    for (json, expected) in cases {
        let err = parse_error(json);
        assert!(err.contains(expected), "{json}\n  error: {err}\n  expected to contain: {expected}");
    }
}

#[test]
fn oversized_value_is_rejected() {
    let json = format!(r#"{{"StringEquals": {{"jwt:sub": "{}"}}}}"#, "a".repeat(MAX_VALUE_CHARS + 1));
    assert!(parse_error(&json).contains("at most 2048 characters"));
}

#[test]
fn duplicate_keys_are_rejected() {
    let exact = r#"{"StringEquals": {"jwt:sub": "a", "jwt:sub": "b"}}"#;
    assert!(serde_json::from_str::<Conditions>(exact).unwrap_err().to_string().contains("StringEquals: condition key \"jwt:sub\" appears twice"));
    let by_case = r#"{"StringEquals": {"jwt:sub": "a", "JWT:Sub": "b"}}"#;
    assert!(serde_json::from_str::<Conditions>(by_case).unwrap_err().to_string().contains("keys compare case-insensitively"));
    let operator = r#"{"StringEquals": {"jwt:sub": "a"}, "StringEquals": {"jwt:aud": "b"}}"#;
    assert!(serde_json::from_str::<Conditions>(operator).unwrap_err().to_string().contains("condition operator \"StringEquals\" appears twice"));
}

#[test]
fn same_key_under_two_operators_is_allowed() {
    let json = r#"{"NumericGreaterThanEquals": {"s3:max-keys": "1"}, "NumericLessThanEquals": {"s3:max-keys": "100"}}"#;
    check_table(json, "s3:max-keys", &[(Some(&["50"]), true), (Some(&["0"]), false), (Some(&["101"]), false)]);
}

#[test]
fn empty_block_always_holds() {
    let conditions = parse("{}");
    assert!(conditions.is_empty());
    assert!(conditions.evaluate(&Context::new(), Effect::Allow).is_empty());
}

// ---- Serialization ----

#[test]
fn serializes_back_as_written() {
    let json = r#"{"StringLike":{"S3:Prefix":["home/${aws:username}/*",""],"jwt:sub":"repo:acme/*"},"Bool":{"aws:SecureTransport":"true"},"NumericLessThan":{"s3:max-keys":"10"}}"#;
    let conditions = parse(json);
    let written = serde_json::to_value(&conditions).unwrap();
    assert_eq!(written, serde_json::from_str::<serde_json::Value>(json).unwrap());
    assert_eq!(serde_json::from_value::<Conditions>(written).unwrap(), conditions);
}

#[test]
fn json_scalars_serialize_as_strings() {
    let conditions = parse(r#"{"Bool": {"aws:SecureTransport": false}, "NumericLessThan": {"s3:max-keys": 10}}"#);
    let written = serde_json::to_value(&conditions).unwrap();
    assert_eq!(written, serde_json::json!({"Bool": {"aws:SecureTransport": "false"}, "NumericLessThan": {"s3:max-keys": "10"}}));
}
