//! Token exchanges against the real `keyless` binary, where a configuration
//! change must reach the exchange path of every node.

mod common;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{configure_workload, start_server, workload_token};

const SUBJECT: &str = "system:serviceaccount:ml:cache";

/// Exchanges a fresh token on the API endpoint `api`; returns the status and body.
async fn exchange_on(api: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{api}/v1/cwobject/temporary-credentials/oidc"))
        .json(&json!({"orgId": "default", "oidcToken": workload_token(SUBJECT, 600)}))
        .send()
        .await
        .expect("the exchange request is sent");
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Replaces the org's only OIDC configuration with a copy whose `active` is `active`.
async fn set_active(server: &common::Server, active: bool) {
    let (status, list) = server.get("/v1/keyless/wif/oidc").await;
    assert_eq!(status, 200, "{list}");
    let mut config = list["configs"][0].clone();
    let id = config["id"].as_str().expect("the configuration has an id").to_owned();
    for field in ["id", "createdAt", "updatedAt"] {
        config.as_object_mut().expect("the configuration is an object").remove(field);
    }
    config["active"] = json!(active);
    let (status, body) = server.api(reqwest::Method::PUT, &format!("/v1/keyless/wif/oidc/{id}"), config).await;
    assert_eq!(status, 200, "{body}");
}

/// Exchanges on `api` until the status is `expected`, for at most `limit`.
async fn wait_for_status(api: &str, expected: u16, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let (status, body) = exchange_on(api).await;
        if status == expected {
            return body;
        }
        assert!(Instant::now() < deadline, "expected status {expected} within {limit:?}, last got {status}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn deactivated_configuration_stops_exchanges_on_every_node() {
    let server = start_server().await;
    configure_workload(&server, SUBJECT, "cache").await;
    let other = server.start_second_node().await;

    // Both nodes accept, so both now hold the configuration in memory.
    for api in [&server.api, &other.api] {
        let (status, body) = exchange_on(api).await;
        assert_eq!(status, 200, "{body}");
    }

    set_active(&server, false).await;
    // The node that made the change rejects at once.
    let (status, body) = exchange_on(&server.api).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "InvalidIdentityToken", "{body}");
    // The other node learns of it from the change feed, polled every second.
    let body = wait_for_status(&other.api, 401, Duration::from_secs(5)).await;
    assert_eq!(body["code"], "InvalidIdentityToken", "{body}");

    set_active(&server, true).await;
    let (status, body) = exchange_on(&server.api).await;
    assert_eq!(status, 200, "{body}");
    wait_for_status(&other.api, 200, Duration::from_secs(5)).await;
}
