//! Authorization end to end: every S3 operation is decided by policy before
//! it can touch storage.

mod common;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, Delete, ObjectIdentifier};
use serde_json::json;

use common::{Server, start_server};

/// A static key for `user/<name>`, whose only permission is to create keys.
async fn key_for_user(server: &Server, name: &str) -> aws_sdk_s3::Client {
    let policy = json!({"policy": {"version": "v1alpha1", "name": format!("keys-{name}"), "statements": [
        {"name": "own-keys", "effect": "Allow", "actions": ["cwobject:CreateAccessKey"], "resources": ["*"], "principals": [format!("user/{name}")]}
    ]}});
    let (status, body) = server.api(reqwest::Method::POST, "/v1/cwobject/access-policy", policy).await;
    assert_eq!(status, 200, "{body}");
    let (status, token) = server.api(reqwest::Method::POST, "/v1/keyless/api-tokens", json!({"name": name})).await;
    assert_eq!(status, 201, "{token}");
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/cwobject/access-key", server.api))
        .bearer_auth(token["token"].as_str().unwrap())
        .json(&json!({"durationSeconds": 0}))
        .send()
        .await
        .unwrap();
    let key: serde_json::Value = resp.json().await.unwrap();
    server.s3_client(key["accessKeyId"].as_str().unwrap(), key["secretKey"].as_str().unwrap(), None)
}

fn code<E: aws_sdk_s3::error::ProvideErrorMetadata>(result: Result<impl std::fmt::Debug, E>) -> String {
    match result {
        Ok(ok) => panic!("expected a denial, got {ok:?}"),
        Err(err) => err.code().unwrap_or("").to_owned(),
    }
}

#[tokio::test]
async fn every_operation_is_denied_without_a_policy() {
    let server = start_server().await;
    let admin = server.admin_s3().await;
    admin.create_bucket().bucket("guarded").send().await.unwrap();
    admin.put_object().bucket("guarded").key("k").body(ByteStream::from_static(b"v")).send().await.unwrap();
    let upload = admin.create_multipart_upload().bucket("guarded").key("mp").send().await.unwrap();
    let upload_id = upload.upload_id().unwrap().to_owned();

    let s3 = key_for_user(&server, "nobody").await;
    let b = "guarded";
    let mut results: Vec<(&str, String)> = Vec::new();
    macro_rules! denied {
        ($name:expr, $call:expr) => {
            results.push(($name, code($call.send().await.map_err(|e| e.into_service_error()))));
        };
    }
    denied!("ListBuckets", s3.list_buckets());
    denied!("CreateBucket", s3.create_bucket().bucket("other-bucket"));
    denied!("DeleteBucket", s3.delete_bucket().bucket(b));
    denied!("GetBucketLocation", s3.get_bucket_location().bucket(b));
    denied!("ListObjects", s3.list_objects().bucket(b));
    denied!("ListObjectsV2", s3.list_objects_v2().bucket(b));
    denied!("ListMultipartUploads", s3.list_multipart_uploads().bucket(b));
    denied!("GetBucketPolicy", s3.get_bucket_policy().bucket(b));
    denied!("PutBucketPolicy", s3.put_bucket_policy().bucket(b).policy(r#"{"Version":"2012-10-17","Statement":[]}"#));
    denied!("DeleteBucketPolicy", s3.delete_bucket_policy().bucket(b));
    denied!("PutObject", s3.put_object().bucket(b).key("x").body(ByteStream::from_static(b"x")));
    denied!("GetObject", s3.get_object().bucket(b).key("k"));
    denied!("DeleteObject", s3.delete_object().bucket(b).key("k"));
    denied!("CopyObject", s3.copy_object().bucket(b).key("copy").copy_source("guarded/k"));
    denied!("CreateMultipartUpload", s3.create_multipart_upload().bucket(b).key("mp2"));
    denied!("UploadPart", s3.upload_part().bucket(b).key("mp").upload_id(&upload_id).part_number(1).body(ByteStream::from_static(b"p")));
    denied!("UploadPartCopy", s3.upload_part_copy().bucket(b).key("mp").upload_id(&upload_id).part_number(1).copy_source("guarded/k"));
    denied!(
        "CompleteMultipartUpload",
        s3.complete_multipart_upload().bucket(b).key("mp").upload_id(&upload_id).multipart_upload(CompletedMultipartUpload::builder().build())
    );
    denied!("AbortMultipartUpload", s3.abort_multipart_upload().bucket(b).key("mp").upload_id(&upload_id));
    denied!("ListParts", s3.list_parts().bucket(b).key("mp").upload_id(&upload_id));
    for (name, code) in &results {
        assert_eq!(code, "AccessDenied", "{name}");
    }
    // HeadObject and HeadBucket carry no body, so only the status tells.
    let head = s3.head_object().bucket(b).key("k").send().await.unwrap_err();
    assert_eq!(head.raw_response().map(|r| r.status().as_u16()), Some(403));
    let head = s3.head_bucket().bucket(b).send().await.unwrap_err();
    assert_eq!(head.raw_response().map(|r| r.status().as_u16()), Some(403));

    // DeleteObjects reports each key as denied and deletes nothing.
    let delete = Delete::builder().objects(ObjectIdentifier::builder().key("k").build().unwrap()).build().unwrap();
    let out = s3.delete_objects().bucket(b).delete(delete).send().await;
    match out {
        Ok(out) => assert_eq!(out.errors().first().and_then(|e| e.code()), Some("AccessDenied")),
        Err(err) => assert_eq!(err.into_service_error().meta().code(), Some("AccessDenied")),
    }
    let still_there = admin.get_object().bucket(b).key("k").send().await.unwrap();
    assert_eq!(still_there.body.collect().await.unwrap().into_bytes().as_ref(), b"v");
}

#[tokio::test]
async fn bucket_policy_grants_read_only_and_deny_overrides() {
    let server = start_server().await;
    let admin = server.admin_s3().await;
    admin.create_bucket().bucket("shared").send().await.unwrap();
    admin.put_object().bucket("shared").key("doc").body(ByteStream::from_static(b"hello")).send().await.unwrap();
    admin.put_object().bucket("shared").key("secret/x").body(ByteStream::from_static(b"s")).send().await.unwrap();
    let bob = key_for_user(&server, "bob").await;

    // Org policy lets bob read and write the bucket; the bucket policy then
    // narrows him to reading, and an explicit Deny hides secret/.
    let org = json!({"policy": {"version": "v1alpha1", "name": "bob-rw", "statements": [
        {"name": "rw", "effect": "Allow", "actions": ["s3:GetObject", "s3:PutObject"], "resources": ["shared/*"], "principals": ["user/bob"]}
    ]}});
    assert_eq!(server.api(reqwest::Method::POST, "/v1/cwobject/access-policy", org).await.0, 200);
    let bucket_policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "admin", "Effect": "Allow", "Principal": {"CW": "user/admin"}, "Action": "s3:*", "Resource": ["arn:aws:s3:::shared", "arn:aws:s3:::shared/*"]},
        {"Sid": "bob-read", "Effect": "Allow", "Principal": {"AWS": ["user/bob"]}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::shared/*"},
        {"Sid": "no-secrets", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::shared/secret/*"}
    ]});
    admin.put_bucket_policy().bucket("shared").policy(bucket_policy.to_string()).send().await.unwrap();

    let got = bob.get_object().bucket("shared").key("doc").send().await.unwrap();
    assert_eq!(got.body.collect().await.unwrap().into_bytes().as_ref(), b"hello");
    let put = bob.put_object().bucket("shared").key("doc").body(ByteStream::from_static(b"x")).send().await.unwrap_err();
    assert_eq!(put.into_service_error().meta().code(), Some("AccessDenied"));
    let secret = bob.get_object().bucket("shared").key("secret/x").send().await.unwrap_err();
    let secret = secret.into_service_error();
    assert_eq!(secret.meta().code(), Some("AccessDenied"));
    assert!(secret.meta().message().unwrap_or("").contains("no-secrets"), "{:?}", secret.meta().message());
    // The Deny applies to the owner as well, but the owner can still repair the policy.
    assert!(admin.get_object().bucket("shared").key("secret/x").send().await.is_err());
    admin.delete_bucket_policy().bucket("shared").send().await.unwrap();
    admin.get_object().bucket("shared").key("secret/x").send().await.unwrap();
}

#[tokio::test]
async fn source_ip_condition_denies() {
    let server = start_server().await;
    let admin = server.admin_s3().await;
    admin.create_bucket().bucket("lan").send().await.unwrap();
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "owner", "Effect": "Allow", "Principal": {"CW": "user/admin"}, "Action": "s3:*", "Resource": ["arn:aws:s3:::lan", "arn:aws:s3:::lan/*"]},
        {"Sid": "not-from-loopback", "Effect": "Deny", "Principal": "*", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::lan/*",
         "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}
    ]});
    admin.put_bucket_policy().bucket("lan").policy(policy.to_string()).send().await.unwrap();
    let err = admin.put_object().bucket("lan").key("k").body(ByteStream::from_static(b"x")).send().await.unwrap_err();
    assert_eq!(err.into_service_error().meta().code(), Some("AccessDenied"));
    admin.list_objects_v2().bucket("lan").send().await.unwrap();
}

#[tokio::test]
async fn revoked_temporary_credentials_fail_within_five_seconds() {
    let server = start_server().await;
    server.admin_s3().await.create_bucket().bucket("rev").send().await.unwrap();
    common::configure_workload(&server, "system:serviceaccount:ml:rev", "rev").await;
    let (status, creds) = server
        .api(
            reqwest::Method::POST,
            "/v1/cwobject/temporary-credentials/oidc",
            json!({"orgId": "default", "oidcToken": common::workload_token("system:serviceaccount:ml:rev", 600)}),
        )
        .await;
    assert_eq!(status, 200);
    let s3 = server.s3_client(creds["accessKeyId"].as_str().unwrap(), creds["secretKey"].as_str().unwrap(), Some(creds["sessionToken"].as_str().unwrap()));
    s3.list_objects_v2().bucket("rev").send().await.unwrap();

    let principal = creds["principalName"].as_str().unwrap();
    let (status, _) = server.api(reqwest::Method::POST, "/v1/cwobject/revoke-access-key/principal", json!({"principalName": principal})).await;
    assert_eq!(status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match s3.list_objects_v2().bucket("rev").send().await {
            Err(err) => {
                assert_eq!(err.into_service_error().meta().code(), Some("InvalidAccessKeyId"));
                break;
            }
            Ok(_) => {
                assert!(std::time::Instant::now() < deadline, "revocation not observed within 5 s");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
