//! Evaluation cost of organization policy sets of 10, 100 and 1,000 statements.
//!
//! Each set models one team per statement: an Allow for the team's workloads on
//! its own bucket prefix, gated on claim, network, TLS and time conditions, with
//! every tenth statement a conditional Deny. The request comes from the last
//! team that has an Allow, near the end of the set.
//!
//! Two policy shapes:
//! - the realistic case (`<evaluator>`): only the requesting team's statements
//!   match action, resource and principal, so only their conditions run.
//! - the worst case (`<evaluator>_all_conditions`): every statement names the
//!   requester's principal and resource, so the conditions of every statement
//!   are evaluated.
//!
//! Each shape runs under three evaluators. `evaluate_org` traces every
//! statement (the explain path). `decide_org` decides without a trace and
//! tests every statement. `indexed` is `OrgPolicySet::decide`, the request
//! path, which tests only the statements its index cannot rule out.
//!
//! Run: `cargo bench -p keyless-policy --bench evaluator`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use keyless_policy::{Context, Decision, OrgPolicy, OrgPolicySet, Request, decide_org, evaluate_org};
use serde_json::json;

/// Set of statements that match the request apart from their conditions.
#[derive(Clone, Copy)]
enum Shape {
    /// Only the requesting team's statements.
    OneTeam,
    /// Every statement.
    AllTeams,
}

fn statement(i: usize, shape: Shape) -> serde_json::Value {
    let (principal, resource, deny_resource) = match shape {
        Shape::OneTeam => (
            format!("role/https://token.actions.githubusercontent.com:repo:acme/team-{i}/*"),
            format!("team-{i}/*"),
            format!("team-{i}/secrets/*"),
        ),
        Shape::AllTeams => ("role/https://token.actions.githubusercontent.com:repo:acme/*".to_owned(), "team-*/*".to_owned(), "team-*/*".to_owned()),
    };
    if i % 10 == 9 {
        return json!({
            "name": format!("deny-secrets-{i}"),
            "effect": "Deny",
            "actions": ["s3:*"],
            "resources": [deny_resource],
            "principals": ["*"],
            "conditions": {
                "NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"},
                "StringNotEquals": {"jwt:environment": "production"}
            }
        });
    }
    json!({
        "name": format!("team-{i}"),
        "effect": "Allow",
        "actions": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
        "resources": [format!("team-{i}"), resource, "scratch/${jwt:sub}/*"],
        "principals": [principal],
        "conditions": {
            "StringEquals": {"jwt:repository_owner": "acme"},
            "StringLike": {"jwt:ref": ["refs/heads/main", "refs/tags/v*"]},
            "IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]},
            "Bool": {"aws:SecureTransport": "true"},
            "DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}
        }
    })
}

/// Builds the statements as policies of at most 50 statements each, the way an
/// organization would split them by team group.
fn policies(statements: usize, shape: Shape) -> Vec<OrgPolicy> {
    (0..statements)
        .collect::<Vec<_>>()
        .chunks(50)
        .enumerate()
        .map(|(index, chunk)| {
            let document = json!({
                "version": "v1alpha1",
                "name": format!("teams-{index}"),
                "statements": chunk.iter().map(|i| statement(*i, shape)).collect::<Vec<_>>(),
            });
            let policy: OrgPolicy = serde_json::from_value(document).expect("benchmark policy parses");
            policy.validate().expect("benchmark policy is valid");
            policy
        })
        .collect()
}

/// An evaluator under test.
#[derive(Clone, Copy)]
enum Evaluator {
    Traced,
    Plain,
    Indexed,
}

impl Evaluator {
    fn name(self) -> &'static str {
        match self {
            Evaluator::Traced => "evaluate_org",
            Evaluator::Plain => "decide_org",
            Evaluator::Indexed => "indexed",
        }
    }
}

fn evaluate(c: &mut Criterion) {
    for evaluator in [Evaluator::Traced, Evaluator::Plain, Evaluator::Indexed] {
        bench_group(c, evaluator.name(), Shape::OneTeam, evaluator);
        bench_group(c, &format!("{}_all_conditions", evaluator.name()), Shape::AllTeams, evaluator);
    }
}

fn bench_group(c: &mut Criterion, name: &str, shape: Shape, evaluator: Evaluator) {
    let mut group = c.benchmark_group(name);
    for size in [10, 100, 1000] {
        let policies = policies(size, shape);
        // The last statement is a Deny, so the last Allow belongs to the team before it.
        let team = size - 2;
        let principal = format!("role/https://token.actions.githubusercontent.com:repo:acme/team-{team}/ref:refs/heads/main");
        let resource = format!("team-{team}/datasets/part-0001.parquet");
        let context = Context::builder()
            .value("aws:SourceIp", "10.20.30.40")
            .value("aws:SecureTransport", "true")
            .value("aws:CurrentTime", "2026-05-01T12:00:00Z")
            .value("jwt:sub", "repo:acme/team-1:ref:refs/heads/main")
            .value("jwt:repository_owner", "acme")
            .value("jwt:ref", "refs/heads/main")
            .value("jwt:environment", "production")
            .build();
        let request = Request { principal: Some(&principal), action: "s3:GetObject", resource: &resource, context: &context };
        let set = OrgPolicySet::new(policies.clone());
        let decide = |request: &Request<'_>| -> Decision {
            match evaluator {
                Evaluator::Traced => evaluate_org(std::hint::black_box(&policies), request),
                Evaluator::Plain => decide_org(std::hint::black_box(&policies), request),
                Evaluator::Indexed => std::hint::black_box(&set).decide(request),
            }
        };
        assert!(decide(&request).allowed, "the benchmark request must be allowed by the last team's statement");

        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &request, |b, request| b.iter(|| decide(std::hint::black_box(request))));
    }
    group.finish();
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
