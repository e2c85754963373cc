//! The per-request authorization path of the S3 endpoint, warm: verifying a
//! temporary credential (open the sealed session token, apply revocations)
//! and deciding the request with cached org policies.

use std::collections::BTreeMap;

use criterion::{Criterion, criterion_group, criterion_main};
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

fn bench_authorization(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = std::env::temp_dir().join(format!("keyless-bench-authorize-{}", std::process::id()));
    let (credentials, authorizer) = runtime.block_on(async {
        let store = Store::open(&dir).await.unwrap();
        store.ensure_org("default").await.unwrap();
        let document = serde_json::to_string(&policy(100)).unwrap();
        store.put_policy("default", "bench", &document).await.unwrap();
        (Credentials::new(store.clone(), &MasterKey::insecure_fixed_for_tests(1)), Authorizer::new(store))
    });
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let minted = credentials.mint_temporary(SessionClaims {
        v: SESSION_FORMAT,
        ak: String::new(),
        org: "default".into(),
        principal: "role/https://issuer.example:team42/trainer".into(),
        sid: "session".into(),
        cfg: "config".into(),
        iat: now,
        exp: now + 3600,
        policy: None,
        attrs: BTreeMap::from([("jwt:sub".to_owned(), "team42/trainer".to_owned())]),
    });
    let token = minted.session_token.unwrap();

    c.bench_function("temporary credential verify (warm)", |b| {
        b.iter(|| runtime.block_on(credentials.caller_for_key(&minted.access_key_id, Some(token.expose()))).unwrap())
    });
    let caller = runtime.block_on(credentials.caller_for_key(&minted.access_key_id, Some(token.expose()))).unwrap();
    c.bench_function("authorize GetObject, 100 statements (warm)", |b| {
        b.iter(|| {
            let context = request_context(Some(&caller), Some("127.0.0.1".parse().unwrap()), false).build();
            let decision = runtime.block_on(authorizer.authorize_caller("default", Some(&caller), "s3:GetObject", "bucket42/key", &context));
            assert!(decision.allowed);
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench_authorization);
criterion_main!(benches);
