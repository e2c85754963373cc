"""Attacks on organization isolation in the control plane, the exchange and the audit log,
and on idle HTTP/2 connections.

One server contains two orgs, `default` (the attacker) and `orgb` (the victim),
each with an admin API token. The attacker names the victim's records by id
or name. Each call must act as if the record did not exist, and must tell
nothing about it: not its policy statements, and not a verdict that depends
on them.
"""

import json
import socket

import pytest

from keyless_client import empty_and_delete_bucket, s3_client, s3_error_code, unique_name

# The S3 attack tests define the two-org server. Each module that uses it starts its own.
from test_attack_s3 import OTHER_ORG, two_orgs  # noqa: F401

VICTIM_STATEMENT = "OrgbPartnerDeny"


@pytest.fixture
def victim(two_orgs):  # noqa: F811
    """A bucket, object, static key and OIDC configuration of org `orgb`, with a bucket policy.

    The bucket policy allows orgb's admin everything and denies one partner
    principal, in statements whose ids only orgb has seen.
    """
    server, _, other_api = two_orgs
    key = other_api.create_static_key(0)
    client = s3_client(server.s3_url, key["accessKeyId"], key["secretKey"])
    bucket = unique_name("victim")
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="secret", Body=b"orgb data")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "OrgbAdmin", "Effect": "Allow", "Principal": {"CW": "user/admin"}, "Action": "s3:*", "Resource": f"arn:aws:s3:::{bucket}/*"},
            {
                "Sid": VICTIM_STATEMENT,
                "Effect": "Deny",
                "Principal": {"CW": "role/partner"},
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/*",
            },
        ],
    }
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    config = other_api.call(
        "POST",
        "/v1/keyless/wif/oidc",
        {"orgId": OTHER_ORG, "name": unique_name("orgb-idp"), "issuerUrl": "https://issuer.orgb.example", "audiences": ["keyless"]},
    )
    yield {"client": client, "bucket": bucket, "key": key, "config": config, "api": other_api}
    other_api.call("DELETE", f"/v1/keyless/wif/oidc/{config['id']}")
    client.delete_bucket_policy(Bucket=bucket)
    empty_and_delete_bucket(client, bucket)


# ---- can-i and explain: the attacker's policies allow s3:* on "*" ----


@pytest.mark.parametrize(
    "action, resource",
    [
        ("s3:GetObject", "{bucket}/secret"),
        ("s3:ListBucket", "{bucket}"),
        ("s3:PutBucketPolicy", "{bucket}"),
        ("s3:DeleteBucket", "{bucket}"),
    ],
)
def test_can_i_on_other_org_bucket_is_false(two_orgs, victim, action, resource):  # noqa: F811
    _, api, _ = two_orgs
    resource = resource.format(bucket=victim["bucket"])

    verdict = api.call("POST", "/v1/cwobject/auth/can-i", {"actions": [action], "resources": [resource]})

    # The S3 endpoint rejects every one of these with AccessDenied.
    assert verdict == {"verdict": False}, f"can-i answered {verdict} for {action} on {resource} of org {OTHER_ORG}"


def test_can_i_on_own_bucket_still_true(two_orgs):  # noqa: F811
    server, api, _ = two_orgs
    key = api.create_static_key(0)
    client = s3_client(server.s3_url, key["accessKeyId"], key["secretKey"])
    bucket = unique_name("own")
    client.create_bucket(Bucket=bucket)

    verdict = api.call("POST", "/v1/cwobject/auth/can-i", {"actions": ["s3:GetObject"], "resources": [f"{bucket}/any"]})

    assert verdict == {"verdict": True}
    empty_and_delete_bucket(client, bucket)


def test_explain_hides_other_org_bucket_policy(two_orgs, victim):  # noqa: F811
    _, api, _ = two_orgs

    response = api.request(
        "POST",
        "/v1/keyless/explain",
        json={"principal": "user/admin", "action": "s3:GetObject", "resource": f"{victim['bucket']}/secret"},
    )

    # orgb's bucket policy allows a `user/admin`, but the attacker's own
    # `user/admin` is denied on S3, so explain must deny without reading it.
    assert response.status_code in (200, 404), response.text
    assert VICTIM_STATEMENT not in response.text, "explain revealed a statement of another org's bucket policy"
    assert "OrgbAdmin" not in response.text, "explain revealed a statement of another org's bucket policy"
    if response.status_code == 200:
        body = response.json()
        assert body["allowed"] is False
        own_policies = {policy["name"] for policy in api.call("GET", "/v1/cwobject/access-policy")["policies"]}
        traced_policies = {entry["policy"] for entry in body["trace"]}
        assert traced_policies <= own_policies, f"the trace names policies of another org: {traced_policies - own_policies}"


# ---- records of the other org, named by id ----


def test_other_org_access_key_not_readable(two_orgs, victim):  # noqa: F811
    _, api, _ = two_orgs
    key_id = victim["key"]["accessKeyId"]

    by_id = api.request("GET", f"/v1/cwobject/access-key/{key_id}")
    explained = api.request("POST", "/v1/keyless/explain", json={"accessKeyId": key_id, "action": "s3:GetObject", "resource": "*"})
    listed = api.call("GET", "/v1/cwobject/access-key?limit=1000")

    assert by_id.status_code == 404, by_id.text
    assert explained.status_code == 404, explained.text
    assert key_id not in json.dumps(listed)


def test_other_org_key_revocation_applies_nowhere(two_orgs, victim):  # noqa: F811
    _, api, _ = two_orgs
    key_id = victim["key"]["accessKeyId"]

    revoked = api.request("POST", "/v1/cwobject/revoke-access-key/access-key", json={"accessKey": key_id})

    assert revoked.status_code == 404, revoked.text
    assert s3_error_code(victim["client"].head_object, Bucket=victim["bucket"], Key="secret") is None


def test_other_org_api_token_not_deletable(two_orgs, victim):  # noqa: F811
    _, api, _ = two_orgs
    other_api = victim["api"]
    token_ids = [token["id"] for token in other_api.call("GET", "/v1/keyless/api-tokens")["tokens"]]

    responses = [api.request("DELETE", f"/v1/keyless/api-tokens/{token_id}") for token_id in token_ids]

    assert [response.status_code for response in responses] == [404] * len(token_ids)
    assert other_api.request("GET", "/v1/keyless/api-tokens").status_code == 200
    own_ids = {token["id"] for token in api.call("GET", "/v1/keyless/api-tokens")["tokens"]}
    assert own_ids.isdisjoint(token_ids)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_other_org_wif_config_not_reachable(two_orgs, victim, method):  # noqa: F811
    _, api, _ = two_orgs
    config = victim["config"]
    body = {"orgId": "default", "name": "taken", "issuerUrl": "https://evil.example", "audiences": ["keyless"]}

    response = api.request(method, f"/v1/keyless/wif/oidc/{config['id']}", json=body if method == "PUT" else None)

    assert response.status_code == 404, response.text
    assert victim["api"].call("GET", f"/v1/keyless/wif/oidc/{config['id']}")["issuerUrl"] == config["issuerUrl"]


def test_exchange_with_other_org_config_id_rejected(two_orgs, victim):  # noqa: F811
    _, api, _ = two_orgs

    response = api.exchange_oidc("e30.e30.sig", org_id="default", configId=victim["config"]["id"])

    assert response.status_code == 404, response.text
    assert "does not exist in organization" in response.json()["message"]


def test_other_org_bucket_settings_not_changeable(two_orgs, victim):  # noqa: F811
    _, api, _ = two_orgs

    response = api.request(
        "PUT", "/v1/cwobject/bucket/settings", json={"bucketName": victim["bucket"], "settings": {"auditLoggingEnabled": True}}
    )

    assert response.status_code == 404, response.text


def test_audit_filters_never_reach_other_org(two_orgs, victim):  # noqa: F811
    _, api, _ = two_orgs
    victim["client"].get_object(Bucket=victim["bucket"], Key="secret")

    filters = [f"bucket={victim['bucket']}", f"accessKeyId={victim['key']['accessKeyId']}", "limit=1000"]
    events = [event for query in filters for event in api.call("GET", f"/v1/keyless/audit?{query}")["events"]]

    assert all(event.get("org") == "default" for event in events), [event.get("org") for event in events]
    assert victim["bucket"] not in json.dumps(events)


# ---- idle HTTP/2 connections ----

# The client connection preface and an empty SETTINGS frame (RFC 9113, 3.4).
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
# A HEADERS frame on stream 1 without END_HEADERS, so the header block never ends.
UNFINISHED_HEADERS = b"\x00\x00\x03\x01\x00\x00\x00\x00\x01" + b"\x82\x86\x84"
# keyless closes an HTTP/1.1 connection that sends no request head for 30 s.
# This wait leaves a wide margin on a loaded machine, so it checks no timing.
IDLE_CLOSE_WAIT_SECONDS = 75


def read_until_closed(sock):
    """Read until the server closes the connection and return the bytes, or None if it stayed open."""
    sock.settimeout(IDLE_CLOSE_WAIT_SECONDS)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return None
    return received


@pytest.mark.parametrize("sent", [HTTP2_PREFACE, HTTP2_PREFACE + UNFINISHED_HEADERS], ids=["idle", "unfinished-headers"])
def test_idle_http2_connection_closed(keyless, sent):
    port = int(keyless.api_url.rpartition(":")[2])

    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(sent)
        received = read_until_closed(sock)

    # HTTP/1.1 connections get this bound from the request head timeout, and
    # an HTTP/2 connection must not keep its file descriptor open longer.
    assert received is not None, f"an HTTP/2 connection with no complete request stayed open for {IDLE_CLOSE_WAIT_SECONDS} s"
