"""Malformed or forged requests: each gets a precise error and changes nothing."""

import base64
import datetime
import hashlib
import urllib.parse
import zlib

import botocore.exceptions
import pytest
import requests
from botocore.credentials import Credentials

from keyless_client import items_of, policy_names, s3_error
from raw_s3 import (
    credentials_of,
    error_code,
    error_field,
    presign,
    send,
    sign,
    sign_streaming,
    utc_now,
)

MINUTE = datetime.timedelta(minutes=1)


@pytest.fixture
def admin_credentials(admin_key):
    return credentials_of(admin_key)


@pytest.fixture
def object_url(keyless, bucket):
    return f"{keyless.s3_url}/{bucket}/target"


def assert_absent(s3, bucket, key="target"):
    assert s3_error(s3.head_object, Bucket=bucket, Key=key) == ("404", 404)


# Signed requests that work, so the failures below are not signer bugs.


def test_hand_signed_put_and_get_work(s3, bucket, object_url, admin_credentials):
    put = send(sign("PUT", object_url, admin_credentials, body=b"signed by hand"))
    assert put.status_code == 200, put.text

    get = send(sign("GET", object_url, admin_credentials))
    assert get.status_code == 200, get.text
    assert get.content == b"signed by hand"


def test_unsigned_payload_put_works(s3, bucket, object_url, admin_credentials):
    request = sign(
        "PUT", object_url, admin_credentials, body=b"unsigned body", payload_hash="UNSIGNED-PAYLOAD"
    )

    response = send(request)

    assert response.status_code == 200, response.text
    assert s3.get_object(Bucket=bucket, Key="target")["Body"].read() == b"unsigned body"


def test_streaming_signed_put_works(s3, bucket, object_url, admin_credentials):
    chunks = [b"a" * 65536, b"b" * 1000]
    request, body = sign_streaming("PUT", object_url, admin_credentials, chunks)

    response = send(request, body=body)

    assert response.status_code == 200, response.text
    assert s3.get_object(Bucket=bucket, Key="target")["Body"].read() == b"".join(chunks)


def test_error_body_carries_request_id(keyless, bucket, admin_credentials):
    response = send(sign("GET", f"{keyless.s3_url}/{bucket}/missing", admin_credentials))

    assert error_code(response) == "NoSuchKey"
    assert error_field(response, "RequestId")
    assert error_field(response, "RequestId") == response.headers["x-amz-request-id"]


# Authorization header


def test_sigv2_header_rejected(s3, bucket, object_url, admin_key):
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")
    headers = {"Date": date, "Authorization": f"AWS {admin_key['accessKeyId']}:c2lnbmF0dXJl"}

    response = requests.put(object_url, data=b"v2", headers=headers, timeout=30)

    assert response.status_code == 400, response.text
    assert error_code(response) == "InvalidRequest"
    assert "AWS4-HMAC-SHA256" in response.text
    assert_absent(s3, bucket)


def test_sigv2_presigned_url_rejected(s3, bucket, admin_key):
    s3.put_object(Bucket=bucket, Key="target", Body=b"x")
    expires = int(utc_now().replace(tzinfo=datetime.timezone.utc).timestamp()) + 300
    query = urllib.parse.urlencode(
        {"AWSAccessKeyId": admin_key["accessKeyId"], "Expires": expires, "Signature": "c2ln"}
    )
    url = f"{s3.meta.endpoint_url}/{bucket}/target?{query}"

    response = requests.get(url, timeout=30)

    assert response.status_code == 400, response.text
    assert error_code(response) == "InvalidRequest"
    assert "AWS4-HMAC-SHA256" in response.text


def cut_authorization(authorization, part):
    """Return the Authorization header with one structural part broken."""
    credential, signed_headers, signature = authorization.split(", ")
    if part == "no-signature":
        return f"{credential}, {signed_headers}"
    if part == "no-signed-headers":
        return f"{credential}, {signature}"
    if part == "credential-cut":
        return f"{credential[: credential.index('/') + 5]}, {signed_headers}, {signature}"
    if part == "algorithm-only":
        return "AWS4-HMAC-SHA256"
    if part == "garbage":
        return "AWS4-HMAC-SHA256 Credential"
    raise ValueError(part)


@pytest.mark.parametrize(
    "part", ["no-signature", "no-signed-headers", "credential-cut", "algorithm-only", "garbage"]
)
def test_malformed_authorization_rejected(s3, bucket, object_url, admin_credentials, part):
    request = sign("PUT", object_url, admin_credentials, body=b"x")
    broken = cut_authorization(request.headers["Authorization"], part)

    response = send(request, headers={"Authorization": broken})

    assert response.status_code == 400, response.text
    assert error_code(response) == "AuthorizationHeaderMalformed"
    assert_absent(s3, bucket)


def test_truncated_signature_rejected(s3, bucket, object_url, admin_credentials):
    request = sign("PUT", object_url, admin_credentials, body=b"x")
    authorization = request.headers["Authorization"][:-20]

    response = send(request, headers={"Authorization": authorization})

    # A signature that is not 64 hex digits is a malformed header, not a
    # wrong signature.
    assert response.status_code == 400, response.text
    assert error_code(response) == "AuthorizationHeaderMalformed"
    assert_absent(s3, bucket)


def test_wrong_region_names_expected_region(s3, bucket, object_url, admin_credentials):
    request = sign("PUT", object_url, admin_credentials, body=b"x", region="eu-west-1")

    response = send(request)

    assert response.status_code == 400, response.text
    assert error_code(response) == "AuthorizationHeaderMalformed"
    assert "us-east-1" in response.text
    assert_absent(s3, bucket)


def test_unknown_access_key_rejected(s3, bucket, object_url):
    stranger = Credentials("AKIDONOTEXIST0000000", "not-a-real-secret")

    response = send(sign("PUT", object_url, stranger, body=b"x"))

    assert response.status_code == 403, response.text
    assert error_code(response) == "InvalidAccessKeyId"
    assert_absent(s3, bucket)


def test_wrong_secret_rejected(s3, bucket, object_url, admin_key):
    forged = Credentials(admin_key["accessKeyId"], "wrong-secret")

    response = send(sign("PUT", object_url, forged, body=b"x"))

    assert response.status_code == 403, response.text
    assert error_code(response) == "SignatureDoesNotMatch"
    assert_absent(s3, bucket)


def test_signed_header_missing_from_request(s3, bucket, object_url, admin_credentials):
    request = sign(
        "PUT", object_url, admin_credentials, body=b"x", headers={"X-Amz-Meta-Origin": "signed"}
    )
    assert "x-amz-meta-origin" in request.headers["Authorization"]

    response = send(request, headers={"X-Amz-Meta-Origin": None})

    assert response.status_code == 403, response.text
    assert error_code(response) == "AccessDenied"
    assert "x-amz-meta-origin" in response.text
    assert_absent(s3, bucket)


def test_signed_header_changed_after_signing(s3, bucket, object_url, admin_credentials):
    request = sign(
        "PUT", object_url, admin_credentials, body=b"x", headers={"Content-Type": "text/plain"}
    )

    response = send(request, headers={"Content-Type": "application/x-evil"})

    assert response.status_code == 403, response.text
    assert error_code(response) == "SignatureDoesNotMatch"
    assert_absent(s3, bucket)


def test_unsigned_amz_header_rejected(s3, bucket, object_url, admin_credentials):
    request = sign("PUT", object_url, admin_credentials, body=b"x")

    response = send(request, headers={"X-Amz-Meta-Injected": "not signed"})

    assert response.status_code == 403, response.text
    assert error_code(response) == "AccessDenied"
    assert_absent(s3, bucket)


def test_unsigned_copy_source_rejected(s3, bucket, object_url, admin_credentials):
    s3.put_object(Bucket=bucket, Key="private", Body=b"private bytes")
    request = sign("PUT", object_url, admin_credentials, body=b"")

    # An unsigned x-amz-copy-source would turn the signed PutObject into a
    # CopyObject of any object the key can read.
    response = send(request, headers={"x-amz-copy-source": f"/{bucket}/private"})

    assert response.status_code == 403, response.text
    assert error_code(response) == "AccessDenied"
    assert_absent(s3, bucket)


@pytest.mark.parametrize("skew_minutes", [20, -20])
def test_clock_skew_rejected(s3, bucket, object_url, admin_credentials, skew_minutes):
    when = utc_now() + skew_minutes * MINUTE

    response = send(sign("PUT", object_url, admin_credentials, body=b"x", when=when))

    assert response.status_code == 403, response.text
    assert error_code(response) == "RequestTimeTooSkewed"
    assert_absent(s3, bucket)


def test_clock_skew_within_window_accepted(s3, bucket, object_url, admin_credentials):
    when = utc_now() - 10 * MINUTE

    response = send(sign("PUT", object_url, admin_credentials, body=b"x", when=when))

    assert response.status_code == 200, response.text


# Presigned URLs


def test_presigned_expiry_over_a_week_rejected(s3, bucket, object_url, admin_credentials):
    s3.put_object(Bucket=bucket, Key="target", Body=b"x")
    url = presign("GET", object_url, admin_credentials, 604801)
    assert "X-Amz-Expires=604801" in url

    response = requests.get(url, timeout=30)

    assert response.status_code in (400, 403), response.text
    assert error_code(response) == "AuthorizationQueryParametersError"


def test_presigned_expiry_zero_rejected(s3, bucket, object_url, admin_credentials):
    s3.put_object(Bucket=bucket, Key="target", Body=b"x")
    url = presign("GET", object_url, admin_credentials, 0)
    assert "X-Amz-Expires=0" in url

    response = requests.get(url, timeout=30)

    # A zero lifetime is outside 1..604800 and also already expired, so both
    # the parameter error and AWS's "Request has expired" fit.
    assert response.status_code in (400, 403), response.text
    assert error_code(response) in ("AuthorizationQueryParametersError", "AccessDenied")


def test_presigned_max_expiry_accepted(s3, bucket, object_url, admin_credentials):
    s3.put_object(Bucket=bucket, Key="target", Body=b"x")

    response = requests.get(presign("GET", object_url, admin_credentials, 604800), timeout=30)

    assert response.status_code == 200, response.text


def test_presigned_url_expired(s3, bucket, object_url, admin_credentials):
    s3.put_object(Bucket=bucket, Key="target", Body=b"x")
    url = presign("GET", object_url, admin_credentials, 60, when=utc_now() - 10 * MINUTE)

    response = requests.get(url, timeout=30)

    assert response.status_code == 403, response.text
    assert error_code(response) == "AccessDenied"
    assert "expired" in response.text.lower()


def test_presigned_url_not_yet_valid(s3, bucket, object_url, admin_credentials):
    s3.put_object(Bucket=bucket, Key="target", Body=b"x")
    url = presign("GET", object_url, admin_credentials, 3600, when=utc_now() + 20 * MINUTE)

    response = requests.get(url, timeout=30)

    # Both the expiry code and the clock-skew code describe a presigned URL
    # dated 20 minutes ahead, so either is accepted.
    assert response.status_code == 403, response.text
    assert error_code(response) in ("AccessDenied", "RequestTimeTooSkewed")


def test_presigned_put_with_changed_method_rejected(s3, bucket, object_url, admin_credentials):
    url = presign("GET", object_url, admin_credentials, 300)

    response = requests.put(url, data=b"x", timeout=30)

    assert response.status_code == 403, response.text
    assert error_code(response) == "SignatureDoesNotMatch"
    assert_absent(s3, bucket)


# Payload integrity


def test_body_not_matching_content_sha256(s3, bucket, object_url, admin_credentials):
    s3.put_object(Bucket=bucket, Key="target", Body=b"original")
    request = sign("PUT", object_url, admin_credentials, body=b"declared body")

    response = send(request, body=b"swapped body!")

    assert response.status_code == 400, response.text
    assert error_code(response) in ("XAmzContentSHA256Mismatch", "BadDigest")
    assert s3.get_object(Bucket=bucket, Key="target")["Body"].read() == b"original"


def test_wrong_content_md5_rejected(s3, bucket, object_url, admin_credentials):
    wrong_md5 = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    request = sign(
        "PUT", object_url, admin_credentials, body=b"x", headers={"Content-MD5": wrong_md5}
    )

    response = send(request)

    assert response.status_code == 400, response.text
    assert error_code(response) == "BadDigest"
    assert_absent(s3, bucket)


def test_invalid_content_md5_rejected(s3, bucket, object_url, admin_credentials):
    request = sign(
        "PUT", object_url, admin_credentials, body=b"x", headers={"Content-MD5": "not-base64-md5"}
    )

    response = send(request)

    assert response.status_code == 400, response.text
    assert error_code(response) == "InvalidDigest"
    assert_absent(s3, bucket)


def test_correct_content_md5_accepted(s3, bucket, object_url, admin_credentials):
    md5 = base64.b64encode(hashlib.md5(b"x").digest()).decode()
    request = sign("PUT", object_url, admin_credentials, body=b"x", headers={"Content-MD5": md5})

    response = send(request)

    assert response.status_code == 200, response.text


def test_wrong_checksum_crc32_rejected(s3, bucket, object_url, admin_credentials):
    wrong = base64.b64encode(zlib.crc32(b"something else").to_bytes(4, "big")).decode()
    request = sign(
        "PUT", object_url, admin_credentials, body=b"x", headers={"x-amz-checksum-crc32": wrong}
    )

    response = send(request)

    assert response.status_code == 400, response.text
    assert error_code(response) == "BadDigest"
    assert_absent(s3, bucket)


def test_streaming_chunk_tampered(s3, bucket, object_url, admin_credentials):
    request, body = sign_streaming("PUT", object_url, admin_credentials, [b"a" * 8192, b"b" * 100])
    tampered = body.replace(b"b" * 100, b"c" * 100)

    response = send(request, body=tampered)

    assert response.status_code == 403, response.text
    assert error_code(response) == "SignatureDoesNotMatch"
    assert_absent(s3, bucket)


def test_streaming_decoded_length_mismatch(s3, bucket, object_url, admin_credentials):
    # The signature covers x-amz-decoded-content-length = 150, but the chunks
    # carry 100 bytes, so only the length is wrong.
    request, body = sign_streaming(
        "PUT",
        object_url,
        admin_credentials,
        [b"a" * 100],
        headers={"X-Amz-Decoded-Content-Length": "150"},
    )

    response = send(request, body=body)

    assert 400 <= response.status_code < 500, response.text
    assert error_code(response) == "IncompleteBody"
    assert_absent(s3, bucket)


# Names and numbers


@pytest.mark.parametrize("name", ["ab", "Upper", "-x", "x-", "keyless-foo", "a" * 64, "a_b"])
def test_invalid_bucket_name_rejected(s3, name):
    assert s3_error(s3.create_bucket, Bucket=name) == ("InvalidBucketName", 400)

    names = [entry["Name"] for entry in s3.list_buckets()["Buckets"]]
    assert name not in names


def test_bucket_name_limits_accepted(s3):
    for name in ("abc", "a" * 63, "0-9"):
        s3.create_bucket(Bucket=name)
        s3.delete_bucket(Bucket=name)


def test_key_too_long_rejected(s3, bucket):
    assert s3_error(s3.put_object, Bucket=bucket, Key="k" * 1025, Body=b"x") == (
        "KeyTooLongError",
        400,
    )
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


def test_key_of_1024_bytes_accepted(s3, bucket):
    key = "é" * 512

    s3.put_object(Bucket=bucket, Key=key, Body=b"x")

    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"x"


@pytest.mark.parametrize("part_number", [0, 10001, -1])
def test_part_number_out_of_range_rejected(keyless, s3, bucket, admin_credentials, part_number):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="target")["UploadId"]
    query = urllib.parse.urlencode({"partNumber": part_number, "uploadId": upload_id})
    url = f"{keyless.s3_url}/{bucket}/target?{query}"

    response = send(sign("PUT", url, admin_credentials, body=b"x"))

    assert response.status_code == 400, response.text
    assert error_code(response) == "InvalidArgument"
    parts = s3.list_parts(Bucket=bucket, Key="target", UploadId=upload_id)
    assert parts.get("Parts", []) == []


def test_part_number_limits_accepted(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="target")["UploadId"]

    for number in (1, 10000):
        s3.upload_part(
            Bucket=bucket, Key="target", UploadId=upload_id, PartNumber=number, Body=b"x"
        )

    parts = s3.list_parts(Bucket=bucket, Key="target", UploadId=upload_id)["Parts"]
    assert [part["PartNumber"] for part in parts] == [1, 10000]


def test_no_such_upload(s3, bucket):
    error = s3_error(
        s3.upload_part,
        Bucket=bucket,
        Key="target",
        UploadId="no-such-upload",
        PartNumber=1,
        Body=b"x",
    )

    assert error == ("NoSuchUpload", 404)


# Control-plane JSON


def count_keys(api):
    return len(items_of(api.call("GET", "/v1/cwobject/access-key?limit=1000")))


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/cwobject/access-key", {"durationSeconds": 0, "bogusField": 1}, "bogusField"),
        ("/v1/cwobject/access-key", {"durationSeconds": "soon"}, "durationSeconds"),
        ("/v1/cwobject/access-key", {"durationSeconds": 0, "attributes": ["a"]}, "attributes"),
        (
            "/v1/keyless/wif/oidc",
            {
                "orgId": "default",
                "name": "typo",
                "issuerUrl": "http://127.0.0.1:1",
                "audiences": "keyless",
            },
            "audiences",
        ),
        (
            "/v1/keyless/wif/oidc",
            {
                "orgId": "default",
                "name": "typo",
                "issuerUrl": "http://127.0.0.1:1",
                "audiences": ["keyless"],
                "audience": "keyless",
            },
            "audience",
        ),
        (
            "/v1/cwobject/access-policy",
            {"policy": {"version": "v1alpha1", "name": "p", "statements": {}}},
            "statements",
        ),
    ],
)
def test_api_rejects_bad_json_field(api, path, body, field):
    keys_before = count_keys(api)

    response = api.request("POST", path, json=body)

    assert response.status_code == 400, response.text
    assert field in response.text
    assert count_keys(api) == keys_before


def test_api_rejects_invalid_json(api):
    response = api.request(
        "POST",
        "/v1/cwobject/access-key",
        data=b'{"durationSeconds": ',
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 400, response.text


def test_api_rejects_missing_bearer_token(api):
    response = api.request("GET", "/v1/cwobject/access-key", token="")

    assert response.status_code == 401, response.text


def test_api_rejects_unknown_bearer_token(api):
    response = api.request("GET", "/v1/cwobject/access-key", token="not-a-token")

    assert response.status_code == 401, response.text


def test_policy_with_unknown_effect_rejected(api):
    statement = {
        "name": "odd",
        "effect": "Maybe",
        "actions": ["s3:GetObject"],
        "resources": ["*"],
        "principals": ["user/admin"],
    }

    response = api.request(
        "POST",
        "/v1/cwobject/access-policy",
        json={"policy": {"version": "v1alpha1", "name": "odd-effect", "statements": [statement]}},
    )

    assert response.status_code == 400, response.text
    assert "effect" in response.text.lower()
    names = policy_names(api.call("GET", "/v1/cwobject/access-policy"))
    assert "odd-effect" not in names


@pytest.mark.parametrize("operation", ["put_object", "create_multipart_upload", "copy_object"])
def test_user_metadata_over_2_kib_is_rejected(s3, bucket, operation):
    s3.put_object(Bucket=bucket, Key="source", Body=b"v")
    calls = {
        "put_object": lambda metadata: s3.put_object(Bucket=bucket, Key="k", Body=b"v", Metadata=metadata),
        "create_multipart_upload": lambda metadata: s3.create_multipart_upload(Bucket=bucket, Key="k", Metadata=metadata),
        "copy_object": lambda metadata: s3.copy_object(
            Bucket=bucket, Key="k", CopySource=f"{bucket}/source", Metadata=metadata, MetadataDirective="REPLACE"
        ),
    }
    # Names and values count together: 2 + 2,046 bytes is the most S3 allows.
    calls[operation]({"ok": "x" * 2046})
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        calls[operation]({"ok": "x" * 2047})
    error = raised.value.response["Error"]
    assert error["Code"] == "MetadataTooLarge"
    assert "2049 bytes" in error["Message"]
