//! End-to-end tests with the AWS SDK for Rust against the real `keyless` binary.
//!
//! Each test starts its own server on loopback ports with a fresh data
//! directory, drives it with `aws-sdk-s3`, and stops it when dropped.

mod common;

use std::process::Command;

use aws_sdk_s3::primitives::ByteStream;
use serde_json::json;

use common::{ISSUER, Server, configure_workload, start_server, workload_token};

#[tokio::test]
async fn sdk_put_get_with_default_checksums() {
    let server = start_server().await;
    let s3 = server.admin_s3().await;
    s3.create_bucket().bucket("rust-sdk").send().await.unwrap();

    // Current SDKs send aws-chunked bodies with a trailing CRC32 by default.
    let body = vec![7u8; 300_000];
    s3.put_object().bucket("rust-sdk").key("dir/obj").body(ByteStream::from(body.clone())).send().await.unwrap();
    let got = s3.get_object().bucket("rust-sdk").key("dir/obj").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), body.as_slice());

    let listed = s3.list_objects_v2().bucket("rust-sdk").prefix("dir/").send().await.unwrap();
    assert_eq!(listed.key_count(), Some(1));
}

#[tokio::test]
async fn sdk_multipart_upload_roundtrip() {
    let server = start_server().await;
    let s3 = server.admin_s3().await;
    s3.create_bucket().bucket("multi").send().await.unwrap();
    let upload = s3.create_multipart_upload().bucket("multi").key("big").send().await.unwrap();
    let upload_id = upload.upload_id().unwrap();
    let part = vec![1u8; 5 * 1024 * 1024];
    let mut completed = Vec::new();
    for (number, data) in [(1, part.clone()), (2, vec![2u8; 1000])] {
        let out = s3
            .upload_part()
            .bucket("multi")
            .key("big")
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(data))
            .send()
            .await
            .unwrap();
        completed.push(aws_sdk_s3::types::CompletedPart::builder().part_number(number).e_tag(out.e_tag().unwrap()).build());
    }
    let done = aws_sdk_s3::types::CompletedMultipartUpload::builder().set_parts(Some(completed)).build();
    let out = s3.complete_multipart_upload().bucket("multi").key("big").upload_id(upload_id).multipart_upload(done).send().await.unwrap();
    assert!(out.e_tag().unwrap().ends_with("-2\""), "{:?}", out.e_tag());
    let head = s3.head_object().bucket("multi").key("big").send().await.unwrap();
    assert_eq!(head.content_length(), Some(5 * 1024 * 1024 + 1000));
}

#[tokio::test]
async fn sdk_uses_exchanged_credentials_under_policy() {
    let server = start_server().await;
    server.admin_s3().await.create_bucket().bucket("work").send().await.unwrap();
    configure_workload(&server, "system:serviceaccount:ml:trainer", "work").await;

    let token = workload_token("system:serviceaccount:ml:trainer", 600);
    let (status, creds) = server
        .api(reqwest::Method::POST, "/v1/cwobject/temporary-credentials/oidc", json!({"orgId": "default", "oidcToken": token, "durationSeconds": 900}))
        .await;
    assert_eq!(status, 200, "{creds}");
    assert_eq!(creds["principalName"], format!("role/{ISSUER}:system:serviceaccount:ml:trainer"));

    let s3 = server.s3_client(
        creds["accessKeyId"].as_str().unwrap(),
        creds["secretKey"].as_str().unwrap(),
        Some(creds["sessionToken"].as_str().unwrap()),
    );
    s3.put_object().bucket("work").key("x").body(ByteStream::from_static(b"data")).send().await.unwrap();
    let got = s3.get_object().bucket("work").key("x").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"data");

    let denied = s3.delete_object().bucket("work").key("x").send().await.unwrap_err();
    assert_eq!(denied.into_service_error().meta().code(), Some("AccessDenied"));
}

/// Runs `sdk_default_chain_child` in a child process with `vars` set, so the
/// SDK's default credential chain reads them from the real environment.
fn run_default_chain_child(server: &Server, bucket: &str, vars: &[(&str, String)]) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args(["--exact", "sdk_default_chain_child", "--ignored", "--nocapture", "--test-threads", "1"])
        .env("KEYLESS_TEST_S3", &server.s3)
        .env("KEYLESS_TEST_BUCKET", bucket)
        // Nothing from the developer's machine may answer instead of keyless,
        // and the SDK must never try the cloud metadata service.
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1");
    for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"] {
        command.env_remove(name);
    }
    for (name, value) in vars {
        command.env(name, value);
    }
    let status = command.status().expect("the test binary runs as a child");
    assert!(status.success(), "the child using the default credential chain failed");
}

#[tokio::test]
#[ignore = "runs only as a child of the credential-chain tests, which set its environment"]
async fn sdk_default_chain_child() {
    let endpoint = std::env::var("KEYLESS_TEST_S3").unwrap();
    let bucket = std::env::var("KEYLESS_TEST_BUCKET").unwrap();
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let config = aws_sdk_s3::config::Builder::from(&shared).endpoint_url(endpoint).force_path_style(true).build();
    let s3 = aws_sdk_s3::Client::from_conf(config);
    s3.put_object().bucket(&bucket).key("from-chain").body(ByteStream::from_static(b"chain")).send().await.unwrap();
    let got = s3.get_object().bucket(&bucket).key("from-chain").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"chain");
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_container_credentials_provider() {
    let server = start_server().await;
    server.admin_s3().await.create_bucket().bucket("pods").send().await.unwrap();
    configure_workload(&server, "system:serviceaccount:ml:pod", "pods").await;
    let vars = [
        ("AWS_CONTAINER_CREDENTIALS_FULL_URI", format!("{}/v1/cwobject/temporary-credentials/oidc/default", server.api)),
        ("AWS_CONTAINER_AUTHORIZATION_TOKEN", workload_token("system:serviceaccount:ml:pod", 600)),
    ];
    tokio::task::block_in_place(|| run_default_chain_child(&server, "pods", &vars));
}

#[tokio::test(flavor = "multi_thread")]
async fn sdk_web_identity_through_sts() {
    let server = start_server().await;
    server.admin_s3().await.create_bucket().bucket("jobs").send().await.unwrap();
    configure_workload(&server, "repo:acme/train:ref:refs/heads/main", "jobs").await;
    let token_file = server.data_dir.0.join("web-identity-token");
    std::fs::write(&token_file, workload_token("repo:acme/train:ref:refs/heads/main", 600)).unwrap();
    let vars = [
        ("AWS_ROLE_ARN", "arn:aws:iam::default:role/test".to_owned()),
        ("AWS_ROLE_SESSION_NAME", "ci-job".to_owned()),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.display().to_string()),
        ("AWS_ENDPOINT_URL_STS", server.api.clone()),
    ];
    tokio::task::block_in_place(|| run_default_chain_child(&server, "jobs", &vars));
}
