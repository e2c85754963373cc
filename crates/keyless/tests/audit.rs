//! End-to-end tests of the audit trail against the real `keyless` binary.

mod common;

use std::io::{Read, Write};

use aws_sdk_s3::primitives::ByteStream;
use serde_json::{Value, json};

use common::{Server, configure_workload, start_server, workload_token};

async fn exchange(server: &Server, sub: &str) -> Value {
    let (status, creds) = server
        .api(
            reqwest::Method::POST,
            "/v1/cwobject/temporary-credentials/oidc",
            json!({"orgId": "default", "oidcToken": workload_token(sub, 600), "durationSeconds": 900}),
        )
        .await;
    assert_eq!(status, 200, "{creds}");
    creds
}

fn events(body: &Value) -> Vec<Value> {
    body["events"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn session_id_ties_data_events_to_exchange() {
    let server = start_server().await;
    server.admin_s3().await.create_bucket().bucket("work").send().await.unwrap();
    configure_workload(&server, "system:serviceaccount:ml:trainer", "work").await;
    let creds = exchange(&server, "system:serviceaccount:ml:trainer").await;
    let key_id = creds["accessKeyId"].as_str().unwrap();
    let s3 = server.s3_client(key_id, creds["secretKey"].as_str().unwrap(), Some(creds["sessionToken"].as_str().unwrap()));
    s3.put_object().bucket("work").key("a").body(ByteStream::from_static(b"1")).send().await.unwrap();
    s3.get_object().bucket("work").key("a").send().await.unwrap();
    assert!(s3.delete_object().bucket("work").key("a").send().await.is_err());

    let (status, by_key) = server.get(&format!("/v1/keyless/audit?kind=exchange&accessKeyId={key_id}")).await;
    assert_eq!(status, 200, "{by_key}");
    let exchange_event = events(&by_key).into_iter().next().expect("the exchange is recorded");
    assert_eq!(exchange_event["decision"], "allow");
    assert_eq!(exchange_event["subject"], "system:serviceaccount:ml:trainer");
    let session_id = exchange_event["sessionId"].as_str().unwrap().to_owned();

    let (_, by_session) = server.get(&format!("/v1/keyless/audit?sessionId={session_id}")).await;
    let mut trail = events(&by_session);
    trail.reverse(); // the API answers newest first
    let actions: Vec<(&str, &str)> = trail.iter().map(|e| (e["action"].as_str().unwrap(), e["decision"].as_str().unwrap())).collect();
    assert_eq!(
        actions,
        vec![
            ("cwobject:CreateAccessKeyOIDC", "allow"),
            ("s3:PutObject", "allow"),
            ("s3:GetObject", "allow"),
            ("s3:DeleteObject", "deny"),
        ]
    );
    for event in &trail[1..] {
        assert_eq!(event["accessKeyId"], key_id);
        assert!(event["requestId"].as_str().is_some_and(|id| !id.is_empty()));
    }
}

#[tokio::test]
async fn rejected_exchange_is_recorded_with_reason() {
    let server = start_server().await;
    configure_workload(&server, "system:serviceaccount:ml:trainer", "work").await;
    // Change a character in the middle of the signature: every bit there is
    // significant, unlike the padding bits of the last character.
    let valid = workload_token("system:serviceaccount:ml:trainer", 600);
    let signature_start = valid.rfind('.').unwrap() + 1;
    let middle = signature_start + (valid.len() - signature_start) / 2;
    let replacement = if &valid[middle..=middle] == "A" { "B" } else { "A" };
    let token = format!("{}{replacement}{}", &valid[..middle], &valid[middle + 1..]);
    let (status, _) = server
        .api(reqwest::Method::POST, "/v1/cwobject/temporary-credentials/oidc", json!({"orgId": "default", "oidcToken": token}))
        .await;
    assert_eq!(status, 401);
    let (_, body) = server.get("/v1/keyless/audit?kind=exchange&decision=deny").await;
    let event = events(&body).into_iter().next().expect("the rejection is recorded");
    assert!(event["reason"].as_str().unwrap().starts_with("signature"), "{event}");
    assert!(event["tokenId"].as_str().unwrap().starts_with("sha256:"));
}

/// Reads every audit object of the org through S3 as the admin.
async fn audit_objects(server: &Server) -> Vec<(String, Vec<u8>)> {
    let s3 = server.admin_s3().await;
    let listed = s3.list_objects_v2().bucket("keyless-default-audit-logs").send().await.unwrap();
    let mut objects = Vec::new();
    for object in listed.contents() {
        let key = object.key().unwrap().to_owned();
        let body = s3.get_object().bucket("keyless-default-audit-logs").key(&key).send().await.unwrap();
        objects.push((key, body.body.collect().await.unwrap().into_bytes().to_vec()));
    }
    objects
}

fn gunzip(bytes: &[u8]) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(bytes).read_to_string(&mut text).unwrap();
    text
}

#[tokio::test]
async fn delivered_batches_verify_and_hold_no_secrets() {
    let server = start_server().await;
    let admin = server.admin_s3().await;
    admin.create_bucket().bucket("work").send().await.unwrap();
    for (path, body) in [
        ("/v1/cwobject/organization/settings", json!({"settings": {"auditLoggingEnabled": true}})),
        ("/v1/cwobject/bucket/settings", json!({"bucketName": "work", "settings": {"auditLoggingEnabled": true}})),
    ] {
        let (status, answer) = server.api(reqwest::Method::PUT, path, body).await;
        assert_eq!(status, 200, "{answer}");
    }
    configure_workload(&server, "system:serviceaccount:ml:trainer", "work").await;
    let token = workload_token("system:serviceaccount:ml:trainer", 600);
    let (_, creds) = server
        .api(reqwest::Method::POST, "/v1/cwobject/temporary-credentials/oidc", json!({"orgId": "default", "oidcToken": token}))
        .await;
    let s3 = server.s3_client(creds["accessKeyId"].as_str().unwrap(), creds["secretKey"].as_str().unwrap(), Some(creds["sessionToken"].as_str().unwrap()));
    s3.put_object().bucket("work").key("x").body(ByteStream::from_static(b"payload")).send().await.unwrap();

    let (status, report) = server.api(reqwest::Method::POST, "/v1/keyless/audit/verify", json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(report["ok"], true, "{report}");

    // The audit bucket is readable by policy but writable by nobody.
    let denied = admin.put_object().bucket("keyless-default-audit-logs").key("forged").body(ByteStream::from_static(b"x")).send().await.unwrap_err();
    assert_eq!(denied.into_service_error().meta().code(), Some("AccessDenied"));

    let objects = audit_objects(&server).await;
    assert!(objects.iter().any(|(k, _)| k.starts_with("control-plane/")), "{:?}", objects.iter().map(|o| &o.0).collect::<Vec<_>>());
    assert!(objects.iter().any(|(k, _)| k.starts_with("data-plane/")));
    let secrets = [
        creds["secretKey"].as_str().unwrap().to_owned(),
        creds["sessionToken"].as_str().unwrap().to_owned(),
        server.admin_token.clone(),
        token.clone(),
        token.split('.').nth(2).unwrap().to_owned(),
    ];
    let mut texts: Vec<String> = objects.iter().map(|(k, b)| if k.ends_with(".gz") { gunzip(b) } else { String::from_utf8_lossy(b).into_owned() }).collect();
    let (_, all_events) = server.get("/v1/keyless/audit?limit=1000").await;
    texts.push(all_events.to_string());
    texts.push(reqwest::get(format!("{}/metrics", server.api)).await.unwrap().text().await.unwrap());
    // The server logs at debug level in these tests.
    let log = std::fs::read_to_string(server.data_dir.0.join("server.log")).unwrap();
    assert!(log.contains("\"request_id\""), "the log carries request ids");
    texts.push(log);
    for text in &texts {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "an audit record or metric holds a secret");
        }
    }
}

#[tokio::test]
async fn edited_batch_fails_verification() {
    let server = start_server().await;
    let (status, _) = server.api(reqwest::Method::PUT, "/v1/cwobject/organization/settings", json!({"settings": {"auditLoggingEnabled": true}})).await;
    assert_eq!(status, 200);
    // Several delivery rounds, so that the chain has more than one batch.
    for name in ["a", "b", "c"] {
        let (status, _) = server.api(reqwest::Method::POST, "/v1/keyless/api-tokens", json!({"name": name})).await;
        assert_eq!(status, 201);
        let (_, report) = server.api(reqwest::Method::POST, "/v1/keyless/audit/verify", json!({})).await;
        assert_eq!(report["ok"], true, "{report}");
    }

    // Edit the first control-plane batch where it lies on disk: rename an
    // action inside it and recompress.
    let blobs = server.data_dir.0.join("data/blobs");
    let mut edited = false;
    for shard in std::fs::read_dir(&blobs).unwrap() {
        for file in std::fs::read_dir(shard.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let mut text = String::new();
            if flate2::read::GzDecoder::new(bytes.as_slice()).read_to_string(&mut text).is_err() {
                continue;
            }
            if text.contains("\"stream\":\"control-plane\"") && text.contains("\"batch\":1,") {
                let forged = text.replacen("cwobject:CreateAPIToken", "cwobject:ListAPIToken", 1);
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(forged.as_bytes()).unwrap();
                std::fs::write(&path, encoder.finish().unwrap()).unwrap();
                edited = true;
            }
        }
    }
    assert!(edited, "the first control-plane batch was found on disk");

    let (_, report) = server.api(reqwest::Method::POST, "/v1/keyless/audit/verify", json!({})).await;
    assert_eq!(report["ok"], false);
    let problems = report["streams"]["control-plane"]["problems"].to_string();
    assert!(problems.contains("batch 2"), "the report names the batch after the edited one: {problems}");
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_loses_no_acknowledged_control_event() {
    let mut server = start_server().await;
    let (status, _) = server.api(reqwest::Method::PUT, "/v1/cwobject/organization/settings", json!({"settings": {"auditLoggingEnabled": true}})).await;
    assert_eq!(status, 200);
    // Concurrent changes, and SIGKILL while some are still in flight: every
    // change whose response arrived must be in the audit trail after restart.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..80 {
        let (api, token, tx) = (server.api.clone(), server.admin_token.clone(), tx.clone());
        tokio::spawn(async move {
            let response = reqwest::Client::new()
                .post(format!("{api}/v1/keyless/api-tokens"))
                .bearer_auth(token)
                .json(&json!({"name": format!("t{i}")}))
                .send()
                .await;
            if let Ok(response) = response
                && response.status().as_u16() == 201
                && let Ok(body) = response.json::<Value>().await
            {
                let _ = tx.send(body["id"].as_str().unwrap_or_default().to_owned());
            }
        });
    }
    drop(tx);
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 30 {
        acknowledged.push(rx.recv().await.expect("at least 30 of 80 changes are acknowledged"));
    }
    server.crash_and_restart().await;
    while let Ok(id) = rx.try_recv() {
        acknowledged.push(id);
    }

    let (status, body) = server.get("/v1/keyless/audit?kind=control&action=cwobject:CreateAPIToken&limit=1000").await;
    assert_eq!(status, 200, "{body}");
    let recorded: Vec<String> = events(&body).iter().filter_map(|e| e["target"].as_str().map(|t| t.split(' ').next().unwrap_or("").to_owned())).collect();
    for id in &acknowledged {
        assert!(recorded.contains(id), "token {id} was acknowledged but its event is missing after the crash");
    }

    // Delivery resumed where it stopped: the chain verifies and holds each
    // control event exactly once.
    let (_, report) = server.api(reqwest::Method::POST, "/v1/keyless/audit/verify", json!({})).await;
    assert_eq!(report["ok"], true, "{report}");
    let (_, all_control) = server.get("/v1/keyless/audit?kind=control&limit=1000").await;
    assert_eq!(report["streams"]["control-plane"]["events"].as_u64(), Some(events(&all_control).len() as u64));
}
