//! The per-request authorization path of the S3 endpoint, warm: verifying a
//! temporary credential (open the sealed session token, apply revocations)
//! and deciding the request with cached org policies of 10, 100 and 1,000
//! statements, one org per size.
//!
//! Run: `cargo bench -p keyless-auth --bench authorize`.

use std::collections::BTreeMap;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use keyless_auth::session::SESSION_FORMAT;
use keyless_auth::{Authorizer, Credentials, MasterKey, SessionClaims, request_context};
use keyless_policy::{Effect, OrgPolicy, OrgStatement};
use keyless_store::Store;

fn policy(statements: usize) -> OrgPolicy {
    let statements = (0..statements)
        .map(|i| OrgStatement {
            name: format!("s{i}"),
            effect: if i % 10 == 9 { Effect::Deny } else { Effect::Allow },
            actions: vec!["s3:GetObject".into(), "s3:PutObject".into()],
            resources: vec![format!("bucket{i}/*")],
            principals: vec![format!("role/https://issuer.example:team{i}/*")],
            conditions: None,
        })
        .collect();
    OrgPolicy { version: "v1alpha1".into(), name: "bench".into(), statements }
}

const SIZES: [usize; 3] = [10, 100, 1000];

fn org_name(statements: usize) -> String {
    format!("org{statements}")
}

fn bench_authorization(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = std::env::temp_dir().join(format!("keyless-bench-authorize-{}", std::process::id()));
    let (credentials, authorizer) = runtime.block_on(async {
        let store = Store::open(&dir).await.unwrap();
        for size in SIZES {
            store.ensure_org(&org_name(size)).await.unwrap();
            let document = serde_json::to_string(&policy(size)).unwrap();
            store.put_policy(&org_name(size), "bench", &document).await.unwrap();
        }
        (Credentials::new(store.clone(), &MasterKey::insecure_fixed_for_tests(1)), Authorizer::new(store))
    });

    // Mint one temporary credential per org, for the team before the last:
    // every tenth statement is a Deny, so that team has an Allow.
    let mut cases = Vec::new();
    for size in SIZES {
        let team = size - 2;
        let org = org_name(size);
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let minted = credentials.mint_temporary(SessionClaims {
            v: SESSION_FORMAT,
            ak: String::new(),
            org: org.clone(),
            principal: format!("role/https://issuer.example:team{team}/trainer"),
            sid: "session".into(),
            cfg: "config".into(),
            iat: now,
            exp: now + 3600,
            policy: None,
            attrs: BTreeMap::from([("jwt:sub".to_owned(), format!("team{team}/trainer"))]),
        });
        cases.push((size, org, format!("bucket{team}/key"), minted));
    }

    let (_, _, _, minted) = &cases[1];
    let token = minted.session_token.as_ref().unwrap();
    c.bench_function("temporary credential verify (warm)", |b| {
        b.iter(|| runtime.block_on(credentials.caller_for_key(&minted.access_key_id, Some(token.expose()))).unwrap())
    });

    let mut group = c.benchmark_group("authorize GetObject (warm)");
    for (size, org, resource, minted) in &cases {
        let token = minted.session_token.as_ref().unwrap();
        let caller = runtime.block_on(credentials.caller_for_key(&minted.access_key_id, Some(token.expose()))).unwrap();
        group.bench_function(BenchmarkId::from_parameter(size), |b| {
            b.iter(|| {
                let context = request_context(Some(&caller), Some("127.0.0.1".parse().unwrap()), false).build();
                let decision = runtime.block_on(authorizer.authorize_caller(org, Some(&caller), "s3:GetObject", resource, &context));
                assert!(decision.allowed);
            })
        });
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench_authorization);
criterion_main!(benches);
