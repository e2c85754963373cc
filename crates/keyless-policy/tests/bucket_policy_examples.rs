//! Bucket policies of the kinds the Amazon S3 and IAM user guides show (TLS
//! only, source IP ranges, per-user home folders, time windows, list limits),
//! written for keyless principals and evaluated end to end.

use keyless_policy::{BucketPolicy, Context, DecisionReason, Request};

fn parse(text: &str) -> BucketPolicy {
    BucketPolicy::parse(text, "data").unwrap_or_else(|err| panic!("policy is rejected: {err}"))
}

fn allowed(policy: &BucketPolicy, principal: &str, action: &str, resource: &str, context: &Context) -> bool {
    policy.evaluate(&Request { principal: Some(principal), action, resource, context }).allowed
}

#[test]
fn tls_only_policy_denies_plain_http() {
    let policy = parse(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Sid": "read", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*"},
            {"Sid": "tls-only", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
             "Resource": ["arn:aws:s3:::data", "arn:aws:s3:::data/*"],
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
        ]}"#,
    );
    let tls = Context::builder().value("aws:SecureTransport", "true").build();
    let plain = Context::builder().value("aws:SecureTransport", "false").build();
    assert!(allowed(&policy, "user/a", "s3:GetObject", "data/k", &tls));

    let decision = policy.evaluate(&Request { principal: Some("user/a"), action: "s3:GetObject", resource: "data/k", context: &plain });
    assert!(!decision.allowed);
    assert_eq!(decision.reason, DecisionReason::ExplicitDeny { policy: "bucket policy".into(), statement: "tls-only".into() });
}

#[test]
fn source_ip_policy_limits_networks() {
    let policy = parse(
        r#"{"Version": "2012-10-17", "Statement": {
            "Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::data/*",
            "Condition": {
                "IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]},
                "NotIpAddress": {"aws:SourceIp": "192.0.2.188/32"}
            }
        }}"#,
    );
    let from = |ip: &str| Context::builder().value("aws:SourceIp", ip).build();
    assert!(allowed(&policy, "user/a", "s3:GetObject", "data/k", &from("192.0.2.10")));
    assert!(allowed(&policy, "user/a", "s3:GetObject", "data/k", &from("2001:db8::10")));
    assert!(!allowed(&policy, "user/a", "s3:GetObject", "data/k", &from("192.0.2.188")));
    assert!(!allowed(&policy, "user/a", "s3:GetObject", "data/k", &from("198.51.100.1")));
    assert!(!allowed(&policy, "user/a", "s3:GetObject", "data/k", &Context::new()));
}

#[test]
fn home_folder_policy_confines_each_user() {
    let policy = parse(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Sid": "list-own-folder", "Effect": "Allow", "Principal": {"CW": "user/*"}, "Action": "s3:ListBucket",
             "Resource": "arn:aws:s3:::data",
             "Condition": {"StringLike": {"s3:prefix": ["", "home/", "home/${aws:username}/*"]}}},
            {"Sid": "use-own-folder", "Effect": "Allow", "Principal": {"CW": "user/*"}, "Action": ["s3:GetObject", "s3:PutObject"],
             "Resource": "arn:aws:s3:::data/home/${aws:username}/*"}
        ]}"#,
    );
    let alice = |prefix: &str| Context::builder().value("aws:username", "alice").value("s3:prefix", prefix).build();

    assert!(allowed(&policy, "user/alice", "s3:ListBucket", "data", &alice("")));
    assert!(allowed(&policy, "user/alice", "s3:ListBucket", "data", &alice("home/")));
    assert!(allowed(&policy, "user/alice", "s3:ListBucket", "data", &alice("home/alice/2026/")));
    assert!(!allowed(&policy, "user/alice", "s3:ListBucket", "data", &alice("home/bob/")));
    assert!(!allowed(&policy, "user/alice", "s3:ListBucket", "data", &alice("home/alice2/")));

    let context = alice("");
    assert!(allowed(&policy, "user/alice", "s3:PutObject", "data/home/alice/notes.txt", &context));
    assert!(!allowed(&policy, "user/alice", "s3:PutObject", "data/home/bob/notes.txt", &context));
    assert!(!allowed(&policy, "user/alice", "s3:PutObject", "data/home/alice", &context));
}

#[test]
fn home_folder_policy_treats_wildcard_username_literally() {
    let policy = parse(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::data/home/${aws:username}/*"}}"#,
    );
    let star = Context::builder().value("aws:username", "*").build();
    assert!(!allowed(&policy, "user/x", "s3:GetObject", "data/home/alice/k", &star));
    assert!(allowed(&policy, "user/x", "s3:GetObject", "data/home/*/k", &star));
}

#[test]
fn time_window_policy() {
    let policy = parse(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::data/*",
            "Condition": {
                "DateGreaterThan": {"aws:CurrentTime": "2026-04-01T00:00:00Z"},
                "DateLessThan": {"aws:CurrentTime": "2026-06-30T23:59:59Z"}
            }}}"#,
    );
    let at = |time: &str| Context::builder().value("aws:CurrentTime", time).build();
    assert!(allowed(&policy, "user/a", "s3:GetObject", "data/k", &at("2026-05-15T12:00:00Z")));
    assert!(!allowed(&policy, "user/a", "s3:GetObject", "data/k", &at("2026-03-31T23:59:59Z")));
    assert!(!allowed(&policy, "user/a", "s3:GetObject", "data/k", &at("2026-07-01T00:00:00Z")));
}

#[test]
fn list_limit_policy() {
    let policy = parse(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::data", "Condition": {"NumericLessThanEquals": {"s3:max-keys": "100"}}}}"#,
    );
    let keys = |n: &str| Context::builder().value("s3:max-keys", n).build();
    assert!(allowed(&policy, "user/a", "s3:ListBucket", "data", &keys("100")));
    assert!(!allowed(&policy, "user/a", "s3:ListBucket", "data", &keys("1000")));
    assert!(!allowed(&policy, "user/a", "s3:ListBucket", "data", &Context::new()));
}

#[test]
fn untagged_principals_are_denied() {
    let policy = parse(
        r#"{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::data/*"},
            {"Sid": "needs-team", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::data/*",
             "Condition": {"Null": {"aws:PrincipalTag/team": "true"}}}
        ]}"#,
    );
    let tagged = Context::builder().value("aws:PrincipalTag/team", "ml").build();
    assert!(allowed(&policy, "role/ml", "s3:GetObject", "data/k", &tagged));
    assert!(!allowed(&policy, "role/ml", "s3:GetObject", "data/k", &Context::new()));
}

#[test]
fn group_claim_policy() {
    let policy = parse(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::data/*", "Condition": {"ForAnyValue:StringEquals": {"jwt:groups": ["ml-readers", "ml-admins"]}}}}"#,
    );
    let groups = |list: &[&str]| Context::builder().values("jwt:groups", list.iter().copied()).build();
    assert!(allowed(&policy, "role/x", "s3:GetObject", "data/k", &groups(&["web", "ml-readers"])));
    assert!(!allowed(&policy, "role/x", "s3:GetObject", "data/k", &groups(&["web"])));
    assert!(!allowed(&policy, "role/x", "s3:GetObject", "data/k", &groups(&[])));
}
