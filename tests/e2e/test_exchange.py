"""Trading OIDC tokens for temporary S3 credentials."""

import datetime
import time

import botocore.exceptions
import pytest

from idp import (
    flip_payload_character,
    hmac_token,
    jwt_claims,
    unsigned_token,
    with_changed_claims,
)
from keyless_client import (
    empty_and_delete_bucket,
    exchange_statement,
    role_principal,
    s3_client,
    unique_name,
)


def parse_rfc3339(value):
    return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))


def seconds_until(value):
    now = datetime.datetime.now(datetime.timezone.utc)
    return (parse_rfc3339(value) - now).total_seconds()


def error_code_of(raised):
    return raised.value.response["Error"]["Code"]


def test_oidc_token_buys_scoped_s3_access(keyless, api, own_oidc):
    provider = own_oidc
    issuer = provider.issuer
    subject = "system:serviceaccount:ml:trainer"
    principal = role_principal(issuer, subject)
    config = api.call(
        "POST",
        "/v1/keyless/wif/oidc",
        {"orgId": "default", "name": "idp", "issuerUrl": issuer, "audiences": ["keyless"]},
    )
    assert config["id"]
    assert config["issuerUrl"] == issuer
    assert config["audiences"] == ["keyless"]

    policy = {
        "policy": {
            "version": "v1alpha1",
            "name": "wl",
            "statements": [
                {
                    "name": "exchange",
                    "effect": "Allow",
                    "actions": ["cwobject:CreateAccessKeyOIDC"],
                    "resources": ["*"],
                    "principals": [principal],
                },
                {
                    "name": "rw",
                    "effect": "Allow",
                    "actions": ["s3:GetObject", "s3:PutObject", "s3:ListBucket"],
                    "resources": ["data", "data/*"],
                    "principals": [principal],
                },
            ],
        }
    }
    api.call("POST", "/v1/cwobject/access-policy", policy)

    static_key = api.call("POST", "/v1/cwobject/access-key", {"durationSeconds": 0})
    assert static_key["accessKeyId"]
    assert static_key["secretKey"]
    assert static_key["principalName"] == "user/admin"
    assert "expiry" in static_key
    admin = s3_client(keyless.s3_url, static_key["accessKeyId"], static_key["secretKey"])
    admin.create_bucket(Bucket="data")
    other_bucket = unique_name()
    admin.create_bucket(Bucket=other_bucket)

    token = provider.token_for_subject(subject, audience="keyless")
    assert jwt_claims(token)["sub"] == subject
    response = api.exchange_oidc(token, duration_seconds=900)
    assert response.status_code == 200, response.text
    credentials = response.json()
    assert credentials["accessKeyId"]
    assert credentials["secretKey"]
    assert credentials["sessionToken"]
    assert credentials["principalName"] == principal
    assert 800 < seconds_until(credentials["expiry"]) <= 960

    workload = s3_client(
        keyless.s3_url,
        credentials["accessKeyId"],
        credentials["secretKey"],
        credentials["sessionToken"],
    )
    workload.put_object(Bucket="data", Key="shard-0001.bin", Body=b"tensor bytes")
    body = workload.get_object(Bucket="data", Key="shard-0001.bin")["Body"].read()
    assert body == b"tensor bytes"
    listing = workload.list_objects_v2(Bucket="data")
    assert [item["Key"] for item in listing["Contents"]] == ["shard-0001.bin"]

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        workload.delete_object(Bucket="data", Key="shard-0001.bin")
    assert error_code_of(raised) == "AccessDenied"
    assert admin.head_object(Bucket="data", Key="shard-0001.bin")["ContentLength"] == 12

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        workload.put_object(Bucket=other_bucket, Key="escape.bin", Body=b"x")
    assert error_code_of(raised) == "AccessDenied"

    empty_and_delete_bucket(admin, "data")
    empty_and_delete_bucket(admin, other_bucket)
    api.delete_org_policy("wl")
    api.call("DELETE", f"/v1/keyless/wif/oidc/{config['id']}")


@pytest.fixture
def exchange_allowed(api, oidc, oidc_config, subject):
    """Allow `subject` of the session provider to exchange tokens and return its principal."""
    principal = role_principal(oidc.issuer, subject)
    policy_name = f"exchange-{subject.rsplit('-', 1)[1]}"
    api.put_org_policy(policy_name, [exchange_statement(principal)])
    yield principal
    api.delete_org_policy(policy_name)


def test_exchange_accepts_valid_token(api, oidc, subject, exchange_allowed):
    response = api.exchange_oidc(oidc.token_for_subject(subject))

    assert response.status_code == 200, response.text
    assert response.json()["principalName"] == exchange_allowed


def test_exchange_accepts_client_credentials_token(api, oidc, oidc_config):
    principal = role_principal(oidc.issuer, "workload-b")
    api.put_org_policy("exchange-workload-b", [exchange_statement(principal)])
    try:
        response = api.exchange_oidc(oidc.client_credentials_token("workload-b"))
        assert response.status_code == 200, response.text
        assert response.json()["principalName"] == principal
    finally:
        api.delete_org_policy("exchange-workload-b")


def test_exchange_default_duration_is_one_hour(api, oidc, subject, exchange_allowed):
    response = api.exchange_oidc(oidc.token_for_subject(subject), duration_seconds=0)

    assert response.status_code == 200, response.text
    assert 3500 < seconds_until(response.json()["expiry"]) <= 3660


@pytest.mark.parametrize("duration_seconds", [60, 899, 43201])
def test_exchange_rejects_duration_out_of_bounds(
    api, oidc, subject, exchange_allowed, duration_seconds
):
    response = api.exchange_oidc(oidc.token_for_subject(subject), duration_seconds=duration_seconds)

    assert response.status_code == 400, response.text
    assert "900" in response.text
    assert "43200" in response.text


def assert_rejected(response, *reason_words):
    """Check a 4xx status and that the body names the reason with one of `reason_words`."""
    assert 400 <= response.status_code < 500, f"{response.status_code} {response.text}"
    text = response.text.lower()
    assert any(word in text for word in reason_words), (
        f"expected one of {reason_words} in the reason: {response.text}"
    )


def test_exchange_rejects_unknown_org(api, oidc, subject, exchange_allowed):
    response = api.exchange_oidc(oidc.token_for_subject(subject), org_id="nosuchorg")

    assert_rejected(response, "org")


def test_exchange_rejects_unknown_issuer(api, own_oidc, subject):
    token = own_oidc.token_for_subject(subject)

    response = api.exchange_oidc(token)

    assert_rejected(response, "issuer")


def test_exchange_rejects_expired_token(api, oidc, subject, exchange_allowed):
    claims = oidc.claims(subject, lifetime_seconds=600, issued_ago_seconds=3600)
    token = oidc.sign(claims)

    response = api.exchange_oidc(token)

    assert_rejected(response, "expired")


def test_exchange_rejects_wrong_audience(api, oidc, subject, exchange_allowed):
    response = api.exchange_oidc(oidc.token_for_subject(subject, audience="someone-else"))

    assert_rejected(response, "audience", "aud")


def test_exchange_rejects_changed_claim(api, oidc, subject, exchange_allowed):
    token = oidc.token_for_subject(f"{subject}x")
    tampered = with_changed_claims(token, sub=subject)

    response = api.exchange_oidc(tampered)

    assert_rejected(response, "signature")


def test_exchange_rejects_flipped_payload_character(api, oidc, subject, exchange_allowed):
    token = flip_payload_character(oidc.token_for_subject(subject))

    response = api.exchange_oidc(token)

    assert_rejected(response, "signature", "malformed", "invalid")


def test_exchange_rejects_alg_none(api, oidc, subject, exchange_allowed):
    token = unsigned_token(oidc.claims(subject), kid=oidc.kid)

    response = api.exchange_oidc(token)

    assert_rejected(response, "alg", "signature")


def test_exchange_rejects_alg_none_with_signature(api, oidc, subject, exchange_allowed):
    real_signature = oidc.token_for_subject(subject).split(".")[2]
    token = unsigned_token(oidc.claims(subject), kid=oidc.kid, signature=real_signature)

    response = api.exchange_oidc(token)

    assert_rejected(response, "alg")


def test_exchange_rejects_hs256_keyed_with_public_key(api, oidc, subject, exchange_allowed):
    token = hmac_token(oidc.claims(subject), oidc.public_key_pem(), kid=oidc.kid)

    response = api.exchange_oidc(token)

    assert_rejected(response, "alg")


def test_exchange_rejects_missing_token(api):
    response = api.exchange_oidc("")

    assert_rejected(response, "missing")


def test_exchange_rejects_principal_without_policy(api, oidc, oidc_config, subject):
    response = api.exchange_oidc(oidc.token_for_subject(subject))

    assert response.status_code == 403, response.text


def test_container_credentials_endpoint_returns_aws_shape(api, oidc, subject, exchange_allowed):
    token = oidc.token_for_subject(subject)
    path = "/v1/cwobject/temporary-credentials/oidc/default"

    for authorization in (token, f"Bearer {token}"):
        response = api.request("GET", path, token="", headers={"Authorization": authorization})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["AccessKeyId"]
        assert body["SecretAccessKey"]
        assert body["Token"]
        assert seconds_until(body["Expiration"]) > 0


def test_container_credentials_endpoint_requires_token(api):
    response = api.request("GET", "/v1/cwobject/temporary-credentials/oidc/default", token="")

    assert_rejected(response, "missing")


def test_session_token_is_required(keyless, api, oidc, subject, exchange_allowed, bucket):
    credentials = api.exchange_oidc(oidc.token_for_subject(subject)).json()
    without_token = s3_client(keyless.s3_url, credentials["accessKeyId"], credentials["secretKey"])

    with pytest.raises(botocore.exceptions.ClientError) as raised:
        without_token.list_objects_v2(Bucket=bucket)

    # NOTE: the expected code is uncertain. A temporary key without its session
    # token can fairly be reported as an invalid token, an unknown key or a denial.
    assert error_code_of(raised) in ("InvalidToken", "InvalidAccessKeyId", "AccessDenied")


def test_temporary_credentials_expire(keyless, api, own_oidc, subject, bucket):
    provider = own_oidc
    principal = role_principal(provider.issuer, subject)
    config = api.create_oidc_config(
        provider.issuer, minDurationSeconds=60, defaultDurationSeconds=60, maxDurationSeconds=3600
    )
    api.put_org_policy(
        "short-lived",
        [
            exchange_statement(principal),
            {
                "name": "list",
                "effect": "Allow",
                "actions": ["s3:ListBucket"],
                "resources": [bucket],
                "principals": [principal],
            },
        ],
    )
    try:
        response = api.exchange_oidc(provider.token_for_subject(subject), duration_seconds=60)
        assert response.status_code == 200, response.text
        credentials = response.json()
        workload = s3_client(
            keyless.s3_url,
            credentials["accessKeyId"],
            credentials["secretKey"],
            credentials["sessionToken"],
        )
        workload.list_objects_v2(Bucket=bucket)

        # 60 s is the shortest lifetime a configuration accepts.
        time.sleep(max(0.0, seconds_until(credentials["expiry"])) + 1.5)

        with pytest.raises(botocore.exceptions.ClientError) as raised:
            workload.list_objects_v2(Bucket=bucket)
        assert error_code_of(raised) == "ExpiredToken"
    finally:
        api.delete_org_policy("short-lived")
        api.call("DELETE", f"/v1/keyless/wif/oidc/{config['id']}")
