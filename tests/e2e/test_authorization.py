"""Authorization end to end with boto3: bucket policies, explicit denies,
source-address conditions and explain."""

import json
import secrets

import pytest

from keyless_client import Api, s3_client, s3_error_code, unique_name


@pytest.fixture
def bob(keyless, api):
    """user/bob-<random> with a static key and no S3 permission of its own."""
    name = f"bob-{secrets.token_hex(4)}"
    token = api.call("POST", "/v1/keyless/api-tokens", {"name": name})
    keys_policy = f"keys-{name}"
    api.put_org_policy(
        keys_policy,
        [{"name": "own-keys", "effect": "Allow", "actions": ["cwobject:CreateAccessKey"], "resources": ["*"], "principals": [f"user/{name}"]}],
    )
    key = Api(keyless.api_url, token["token"]).create_static_key(0)
    yield f"user/{name}", s3_client(keyless.s3_url, key["accessKeyId"], key["secretKey"])
    api.delete_org_policy(keys_policy)


def test_bucket_policy_grants_another_principal_read_only(api, s3, bob):
    principal, bob_s3 = bob
    bucket = unique_name("shared")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="doc", Body=b"hello")
    org_policy = f"org-{bucket}"
    api.put_org_policy(
        org_policy,
        [{"name": "rw", "effect": "Allow", "actions": ["s3:GetObject", "s3:PutObject"], "resources": [f"{bucket}/*"], "principals": [principal]}],
    )
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "owner", "Effect": "Allow", "Principal": {"CW": "user/admin"}, "Action": "s3:*", "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]},
            {"Sid": "read-only", "Effect": "Allow", "Principal": {"AWS": [principal]}, "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    try:
        assert bob_s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"hello"
        assert s3_error_code(bob_s3.put_object, Bucket=bucket, Key="doc", Body=b"x") == "AccessDenied"
        assert s3.get_object(Bucket=bucket, Key="doc")["Body"].read() == b"hello"
    finally:
        api.delete_org_policy(org_policy)


def test_explicit_deny_overrides_org_allow(api, s3):
    bucket = unique_name("deny")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="open/a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="closed/b", Body=b"b")
    api.put_org_policy(
        f"deny-{bucket}",
        [{"name": "no-closed", "effect": "Deny", "actions": ["s3:GetObject"], "resources": [f"{bucket}/closed/*"], "principals": ["user/admin"]}],
    )
    try:
        assert s3.get_object(Bucket=bucket, Key="open/a")["Body"].read() == b"a"
        with pytest.raises(Exception) as denied:
            s3.get_object(Bucket=bucket, Key="closed/b")
        error = denied.value.response["Error"]
        assert error["Code"] == "AccessDenied"
        assert "no-closed" in error["Message"]
        explained = api.call("POST", "/v1/keyless/explain", {"principal": "user/admin", "action": "s3:GetObject", "resource": f"{bucket}/closed/b"})
        assert explained["allowed"] is False
        assert explained["reason"]["kind"] == "explicitDeny"
        assert explained["reason"]["statement"] == "no-closed"
    finally:
        api.delete_org_policy(f"deny-{bucket}")


def test_source_ip_condition_denies_loopback_clients(s3):
    bucket = unique_name("lan")
    s3.create_bucket(Bucket=bucket)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "owner", "Effect": "Allow", "Principal": {"CW": "user/admin"}, "Action": "s3:*", "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]},
            {
                "Sid": "no-writes-from-loopback",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
                "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}},
            },
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert s3_error_code(s3.put_object, Bucket=bucket, Key="k", Body=b"x") == "AccessDenied"
    s3.list_objects_v2(Bucket=bucket)
    s3.delete_bucket_policy(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="k", Body=b"x")


def test_malformed_bucket_policy_is_rejected(s3):
    bucket = unique_name("bad")
    s3.create_bucket(Bucket=bucket)
    bad = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*", "Condition": {"StringEqualz": {"aws:username": "x"}}}]}
    assert s3_error_code(s3.put_bucket_policy, Bucket=bucket, Policy=json.dumps(bad)) == "MalformedPolicy"
