"""Attacks on the S3 data plane and the credential lifecycle that keyless must stop.

Each test reproduces one finding of an attack run: a caller with valid but
limited credentials must not reach data or keys of another organization, and
per-key permissions must work for batch operations.
"""

import pytest
import requests

from keyless_client import Api, empty_and_delete_bucket, s3_client, s3_error_code, unique_name
from processes import KeylessServer
from raw_s3 import credentials_of, error_code, send, sign

OTHER_ORG = "orgb"


@pytest.fixture(scope="module")
def two_orgs(tmp_path_factory):
    """A server whose store contains two orgs, `default` and `orgb`, each with an admin API token.

    The first start creates `orgb` and its admin token. Removing the token
    file makes the second start, with the default org id, create `default`
    and a token for it in the same store.
    """
    data_dir = tmp_path_factory.mktemp("two-orgs") / "data"
    first = KeylessServer(data_dir, extra_args=["--org-id", OTHER_ORG]).start()
    other_token = first.admin_token
    first.stop()
    (data_dir / "admin-token").unlink()
    server = KeylessServer(data_dir).start()
    yield server, Api(server.api_url, server.admin_token), Api(server.api_url, other_token)
    server.stop()


@pytest.fixture
def victim_object(two_orgs):
    """A bucket of org `orgb` holding one object: (s3 client, bucket, key, access key id)."""
    server, _, other_api = two_orgs
    key = other_api.create_static_key(0)
    client = s3_client(server.s3_url, key["accessKeyId"], key["secretKey"])
    bucket = unique_name("victim")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="secret", Body=b"orgb data")
    yield client, bucket, "secret", key["accessKeyId"]
    # A fresh key, in case the test got this one revoked.
    cleanup_key = other_api.create_static_key(0)
    empty_and_delete_bucket(s3_client(server.s3_url, cleanup_key["accessKeyId"], cleanup_key["secretKey"]), bucket)


@pytest.fixture
def attacker(two_orgs):
    """The admin of org `default` (allowed s3:* on * in its own org) and a bucket of its own."""
    server, api, _ = two_orgs
    key = api.create_static_key(0)
    client = s3_client(server.s3_url, key["accessKeyId"], key["secretKey"])
    bucket = unique_name("attacker")
    client.create_bucket(Bucket=bucket)
    yield client, bucket
    empty_and_delete_bucket(client, bucket)


def test_direct_read_of_other_org_denied(victim_object, attacker):
    _, victim_bucket, victim_key, _ = victim_object
    client, _ = attacker

    assert s3_error_code(client.get_object, Bucket=victim_bucket, Key=victim_key) == "AccessDenied"


def test_copy_object_from_other_org_denied(victim_object, attacker):
    _, victim_bucket, victim_key, _ = victim_object
    client, bucket = attacker

    code = s3_error_code(
        client.copy_object,
        Bucket=bucket,
        Key="stolen",
        CopySource={"Bucket": victim_bucket, "Key": victim_key},
    )

    assert code == "AccessDenied"
    assert s3_error_code(client.head_object, Bucket=bucket, Key="stolen") == "404"


def test_upload_part_copy_from_other_org_denied(victim_object, attacker):
    _, victim_bucket, victim_key, _ = victim_object
    client, bucket = attacker
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="stolen")["UploadId"]

    code = s3_error_code(
        client.upload_part_copy,
        Bucket=bucket,
        Key="stolen",
        UploadId=upload_id,
        PartNumber=1,
        CopySource={"Bucket": victim_bucket, "Key": victim_key},
    )

    assert code == "AccessDenied"
    parts = client.list_parts(Bucket=bucket, Key="stolen", UploadId=upload_id).get("Parts", [])
    assert parts == []
    client.abort_multipart_upload(Bucket=bucket, Key="stolen", UploadId=upload_id)


def test_copy_within_own_org_still_works(two_orgs, attacker):
    client, bucket = attacker
    client.put_object(Bucket=bucket, Key="source", Body=b"own data")

    client.copy_object(Bucket=bucket, Key="copy", CopySource={"Bucket": bucket, "Key": "source"})

    assert client.get_object(Bucket=bucket, Key="copy")["Body"].read() == b"own data"


def test_revoking_other_org_key_changes_nothing(two_orgs, victim_object):
    _, api, _ = two_orgs
    victim_client, victim_bucket, victim_key, victim_key_id = victim_object

    response = api.request(
        "POST", "/v1/cwobject/revoke-access-key/access-key", json={"accessKey": victim_key_id}
    )

    assert response.status_code == 404
    # A policy write applies every pending change of the feed before it
    # returns, so a wrongly recorded revocation is in force after it.
    api.put_org_policy(
        "apply-changes",
        [{"name": "none", "effect": "Deny", "actions": ["s3:GetObject"], "resources": ["nothing/*"], "principals": ["user/nobody"]}],
    )
    assert s3_error_code(victim_client.head_object, Bucket=victim_bucket, Key=victim_key) is None


@pytest.fixture
def prefix_deleter(keyless, api, s3, bucket):
    """A user allowed s3:DeleteObject only under `allowed/` of `bucket`, and its S3 client."""
    name = f"deleter-{unique_name('u')}"
    token = api.call("POST", "/v1/keyless/api-tokens", {"name": name})
    policy = f"policy-{name}"
    api.put_org_policy(
        policy,
        [
            {"name": "keys", "effect": "Allow", "actions": ["cwobject:CreateAccessKey"], "resources": ["*"], "principals": [f"user/{name}"]},
            {"name": "delete", "effect": "Allow", "actions": ["s3:DeleteObject"], "resources": [f"{bucket}/allowed/*"], "principals": [f"user/{name}"]},
        ],
    )
    key = Api(keyless.api_url, token["token"]).create_static_key(0)
    yield s3_client(keyless.s3_url, key["accessKeyId"], key["secretKey"])
    api.delete_org_policy(policy)


def test_delete_objects_decides_each_key(s3, bucket, prefix_deleter):
    s3.put_object(Bucket=bucket, Key="allowed/a", Body=b"a")
    s3.put_object(Bucket=bucket, Key="denied/b", Body=b"b")

    result = prefix_deleter.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "allowed/a"}, {"Key": "denied/b"}]}
    )

    assert [item["Key"] for item in result.get("Deleted", [])] == ["allowed/a"]
    assert [(item["Key"], item["Code"]) for item in result.get("Errors", [])] == [("denied/b", "AccessDenied")]
    assert s3_error_code(s3.head_object, Bucket=bucket, Key="allowed/a") == "404"
    assert s3.get_object(Bucket=bucket, Key="denied/b")["Body"].read() == b"b"


def test_delete_objects_without_any_permission_deletes_nothing(s3, bucket, prefix_deleter):
    s3.put_object(Bucket=bucket, Key="denied/b", Body=b"b")

    try:
        result = prefix_deleter.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "denied/b"}]})
        assert result.get("Deleted", []) == []
    except s3.exceptions.ClientError as error:
        assert error.response["Error"]["Code"] == "AccessDenied"

    assert s3.get_object(Bucket=bucket, Key="denied/b")["Body"].read() == b"b"


def test_range_on_empty_object_not_satisfiable(keyless, s3, bucket, admin_key):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    request = sign("GET", f"{keyless.s3_url}/{bucket}/empty", credentials_of(admin_key), headers={"Range": "bytes=-1"})

    response = send(request)

    assert response.status_code == 416, response.headers.get("Content-Range")
    assert error_code(response) == "InvalidRange"


def test_full_get_of_empty_object_works(keyless, s3, bucket, admin_key):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")

    response = requests.get(s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "empty"}), timeout=30)

    assert response.status_code == 200
    assert response.content == b""
