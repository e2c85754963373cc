"""Issuer keys and tenants: key rotation without a restart, the JWKS refetch
rate limit under junk tokens, and tokens presented to the wrong org.

The issuers are oauth2-mock-server processes, each with its own URL, so
keyless's key set cache starts empty for every test here.
"""

import base64
import re
import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from idp import MockIssuer, jwt_header
from keyless_client import (
    Api,
    assume_role_with_web_identity,
    exchange_outcome,
    exchange_statement,
    role_principal,
    sts_error,
    wait_for,
)
from processes import KeylessServer

# keyless fetches an issuer's key set again for an unknown `kid` at most once
# per this interval (`refetch_interval` of the JWKS cache in keyless-federation).
REFETCH_INTERVAL_SECONDS = 30
JUNK_TOKENS = 300
JUNK_CLIENTS = 16

# `kid` values that would do harm if keyless used them as a path, a query or a URL.
HOSTILE_KIDS = [
    "../../../../etc/passwd",
    "/dev/zero",
    "' OR '1'='1' --",
    "kid\"; DROP TABLE keys; --",
    "http://169.254.169.254/latest/meta-data/",
    "%2e%2e%2f%2e%2e%2f",
    "*",
    "\u0000",
]


@pytest.fixture
def issuer(work_dir):
    mock = MockIssuer(work_dir).start()
    yield mock
    mock.stop()


@pytest.fixture
def trusted_issuer(api, issuer):
    """The fresh issuer, trusted by org `default`, with all its subjects allowed to exchange."""
    config = api.create_oidc_config(issuer.issuer)
    policy = f"exchange-{config['name']}"
    api.put_org_policy(policy, [exchange_statement(role_principal(issuer.issuer, "*"))])
    yield issuer
    api.delete_org_policy(policy)
    api.call("DELETE", f"/v1/keyless/wif/oidc/{config['id']}")


def jwks_fetches_metric(keyless):
    """Return keyless's `keyless_jwks_fetches_total` from /metrics."""
    text = requests.get(f"{keyless.api_url}/metrics", timeout=10).text
    match = re.search(r"^keyless_jwks_fetches_total(?:\{[^}]*\})? ([0-9.e+]+)$", text, re.MULTILINE)
    assert match, f"keyless_jwks_fetches_total is missing from /metrics:\n{text}"
    return float(match.group(1))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_rotated_key_works_without_restart(keyless, api, trusted_issuer):
    issuer = trusted_issuer
    subject = "system:serviceaccount:rotation:trainer"
    old_token = issuer.token(sub=subject, aud="keyless")
    first = api.exchange_oidc(old_token)
    assert first.status_code == 200, first.text
    server_pid = keyless.process.pid

    new_kid = issuer.rotate_key()
    new_token = issuer.token(sub=subject, aud="keyless")
    assert jwt_header(new_token)["kid"] == new_kid != jwt_header(old_token)["kid"]

    # The new kid is unknown to the cached key set, and the rate limit
    # allows one refetch once the interval since the first fetch has passed.
    accepted = wait_for(
        lambda: api.exchange_oidc(new_token).status_code == 200,
        timeout_seconds=REFETCH_INTERVAL_SECONDS + 30,
        interval_seconds=1,
    )
    assert accepted, "a token signed with the rotated key was never accepted"
    assert keyless.process.pid == server_pid
    assert keyless.process.poll() is None

    # The old key left the issuer's JWKS, so keyless no longer trusts it.
    after = api.exchange_oidc(old_token)
    assert after.status_code == 401, exchange_outcome(after)
    assert after.json()["code"] == "InvalidIdentityToken"
    assert "signature" in after.json()["message"]

    # One fetch at the first exchange and one for the rotated kid, however
    # often the polling above sent the unknown kid.
    assert issuer.key_set_requests() == 2


def junk_token(issuer_url, attacker_key, kid):
    claims = {
        "iss": issuer_url,
        "sub": "system:serviceaccount:junk:attacker",
        "aud": "keyless",
        "iat": int(time.time()),
        "exp": int(time.time()) + 600,
    }
    return jwt.encode(claims, attacker_key, algorithm="RS256", headers={"kid": kid})


def test_junk_kids_do_not_hammer_the_issuer(keyless, api, trusted_issuer):
    issuer = trusted_issuer
    started = time.monotonic()
    metric_before = jwks_fetches_metric(keyless)
    valid = api.exchange_oidc(issuer.token(sub="system:serviceaccount:junk:valid", aud="keyless"))
    assert valid.status_code == 200, valid.text
    assert issuer.key_set_requests() == 1

    attacker_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kids = HOSTILE_KIDS + [b64url(secrets.token_bytes(16)) for _ in range(JUNK_TOKENS)]
    tokens = [junk_token(issuer.issuer, attacker_key, kid) for kid in kids]

    with ThreadPoolExecutor(max_workers=JUNK_CLIENTS) as pool:
        responses = list(pool.map(api.exchange_oidc, tokens))
    elapsed = time.monotonic() - started

    codes = {(r.status_code, r.json().get("code")) for r in responses}
    assert codes == {(401, "InvalidIdentityToken")}, codes
    assert all("signature" in r.json()["message"] for r in responses)

    # One fetch for the valid token, then at most one refetch per interval.
    allowed_fetches = 1 + int(elapsed // REFETCH_INTERVAL_SECONDS)
    assert issuer.key_set_requests() <= allowed_fetches, (
        f"{issuer.key_set_requests()} key set fetches for {len(tokens)} junk tokens "
        f"in {elapsed:.1f} s; the rate limit allows {allowed_fetches}"
    )
    assert jwks_fetches_metric(keyless) - metric_before <= allowed_fetches

    # The cached keys still serve valid tokens after the flood.
    again = api.exchange_oidc(issuer.token(sub="system:serviceaccount:junk:valid", aud="keyless"))
    assert again.status_code == 200, again.text


def test_concurrent_first_tokens_share_one_fetch(keyless, api, trusted_issuer):
    issuer = trusted_issuer
    tokens = [
        issuer.token(sub=f"system:serviceaccount:burst:sa-{index}", aud="keyless")
        for index in range(JUNK_CLIENTS * 2)
    ]

    with ThreadPoolExecutor(max_workers=JUNK_CLIENTS) as pool:
        responses = list(pool.map(api.exchange_oidc, tokens))

    assert [r.status_code for r in responses] == [200] * len(tokens)
    assert issuer.key_set_requests() == 1


@pytest.fixture
def two_orgs(tmp_path):
    """Yield a keyless server with the orgs `default` and `tenantb`, and an API client for each.

    keyless creates the org named by --org-id at startup, so the same data
    directory is started once as `tenantb` and then as `default`. The
    `tenantb` admin token stays valid across the restart.
    """
    data_dir = tmp_path / "data"
    first = KeylessServer(data_dir, extra_args=["--org-id", "tenantb"]).start()
    tenantb_token = first.admin_token
    first.stop()
    (data_dir / "admin-token").rename(data_dir / "admin-token-tenantb")

    server = KeylessServer(data_dir, extra_args=["--org-id", "default"]).start()
    yield server, Api(server.api_url, server.admin_token), Api(server.api_url, tenantb_token)
    server.stop()


def trust(org_api, org_id, issuer_url, audience):
    """Trust `issuer_url` with `audience` in one org and allow all its subjects to exchange."""
    config = org_api.create_oidc_config(issuer_url, audiences=[audience], orgId=org_id)
    org_api.put_org_policy(
        f"exchange-{config['name']}", [exchange_statement(role_principal(issuer_url, "*"))]
    )
    return config


def test_token_rejected_on_other_org(two_orgs, issuer, work_dir):
    server, default_api, tenantb_api = two_orgs
    subject = "system:serviceaccount:tenants:trainer"
    trust(default_api, "default", issuer.issuer, "keyless")
    tenantb_config = trust(tenantb_api, "tenantb", issuer.issuer, "tenantb")
    assert tenantb_config["orgId"] == "tenantb"

    for_tenantb = issuer.token(sub=subject, aud="tenantb")
    for_default = issuer.token(sub=subject, aud="keyless")

    accepted = default_api.exchange_oidc(for_tenantb, org_id="tenantb")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["principalName"] == role_principal(issuer.issuer, subject)
    assert default_api.exchange_oidc(for_default, org_id="default").status_code == 200

    for token, wrong_org in [(for_tenantb, "default"), (for_default, "tenantb")]:
        response = default_api.exchange_oidc(token, org_id=wrong_org)
        assert response.status_code == 401, exchange_outcome(response)
        assert response.json()["code"] == "InvalidIdentityToken"
        assert "audience" in response.json()["message"]

    # An issuer that only tenantb trusts is unknown to org default on every path.
    tenantb_only = MockIssuer(work_dir).start()
    try:
        only_config = trust(tenantb_api, "tenantb", tenantb_only.issuer, "keyless")
        token = tenantb_only.token(sub=subject, aud="keyless")
        assert default_api.exchange_oidc(token, org_id="tenantb").status_code == 200

        posted = default_api.exchange_oidc(token, org_id="default")
        assert posted.status_code == 401, exchange_outcome(posted)
        assert posted.json()["code"] == "InvalidIdentityToken"
        assert "issuer" in posted.json()["message"]
        assert '"default"' in posted.json()["message"]

        container = default_api.request(
            "GET",
            "/v1/cwobject/temporary-credentials/oidc/default",
            token="",
            headers={"Authorization": token},
        )
        assert container.status_code == 401, exchange_outcome(container)
        assert container.json()["code"] == "InvalidIdentityToken"

        role_arn = f"arn:aws:iam::default:role/{only_config['name']}"
        sts = assume_role_with_web_identity(server.api_url, role_arn, token)
        assert sts.status_code == 400, "STS accepted a token of another org"
        code, message = sts_error(sts)
        assert code == "InvalidIdentityToken"
        assert "issuer" in message
    finally:
        tenantb_only.stop()

