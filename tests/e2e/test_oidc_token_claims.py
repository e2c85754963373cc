"""Well-signed tokens with bad or unusual claims, from oauth2-mock-server.

Every token here carries a valid signature from a key that the issuer's
JWKS publishes, so only the claim under test can make keyless reject it.
Each case goes through all three exchange paths: the JSON POST, the
container-credentials GET and STS AssumeRoleWithWebIdentity.
"""

import secrets
import time

import pytest

from idp import MockIssuer, jwt_claims
from keyless_client import (
    assume_role_with_web_identity,
    exchange_statement,
    role_principal,
    sts_error,
)

# The configuration's default leeway for exp, nbf and iat, in seconds.
LEEWAY_SECONDS = 60
PATHS = ["json", "container", "sts"]

# The error code each path returns for a rejection class. The JSON paths
# return keyless's own codes, and STS returns the AWS STS codes that SDKs act on.
EXPIRED_CODES = {"json": "ExpiredToken", "container": "ExpiredToken", "sts": "ExpiredTokenException"}
INVALID_CODES = {
    "json": "InvalidIdentityToken",
    "container": "InvalidIdentityToken",
    "sts": "InvalidIdentityToken",
}


@pytest.fixture(scope="module")
def mock_issuer(work_dir):
    issuer = MockIssuer(work_dir).start()
    yield issuer
    issuer.stop()


@pytest.fixture(scope="module")
def mock_config(api, mock_issuer):
    """A configuration trusting the mock issuer, and a policy letting all its subjects exchange."""
    name = f"mock-{secrets.token_hex(4)}"
    config = api.create_oidc_config(mock_issuer.issuer, name=name)
    policy = f"exchange-{name}"
    api.put_org_policy(policy, [exchange_statement(role_principal(mock_issuer.issuer, "*"))])
    yield config
    api.delete_org_policy(policy)
    api.call("DELETE", f"/v1/keyless/wif/oidc/{config['id']}")


def exchange(api, config, path, token):
    """Exchange `token` through one path. Returns (HTTP status, error code or None, message)."""
    if path == "json":
        response = api.exchange_oidc(token)
    elif path == "container":
        response = api.request(
            "GET",
            "/v1/cwobject/temporary-credentials/oidc/default",
            token="",
            headers={"Authorization": token},
        )
    else:
        role_arn = f"arn:aws:iam::default:role/{config['name']}"
        response = assume_role_with_web_identity(api.base_url, role_arn, token)
        if response.status_code == 200:
            assert b"<AccessKeyId>" in response.content, response.text
            return 200, None, ""
        code, message = sts_error(response)
        return response.status_code, code, message

    if response.status_code == 200:
        return 200, None, ""
    body = response.json()
    return response.status_code, body.get("code"), body.get("message", "")


def assert_accepted(api, config, path, token):
    status, code, message = exchange(api, config, path, token)
    assert status == 200, f"{path}: {status} {code} {message}"


def assert_rejected(api, config, path, token, expected_code, reason_word):
    status, code, message = exchange(api, config, path, token)
    assert 400 <= status < 500, f"{path}: {status} {code} {message}"
    assert code == expected_code, f"{path}: {code} {message}"
    assert reason_word in message.lower(), f"{path}: the message should name {reason_word!r}: {message}"


def subject_of(name):
    return f"system:serviceaccount:claims:{name}-{secrets.token_hex(3)}"


@pytest.mark.parametrize("path", PATHS)
def test_valid_mock_token_is_accepted(api, mock_issuer, mock_config, path):
    token = mock_issuer.token(sub=subject_of("valid"), aud="keyless")

    assert_accepted(api, mock_config, path, token)


@pytest.mark.parametrize("path", PATHS)
def test_expired_token_is_rejected(api, mock_issuer, mock_config, path):
    now = int(time.time())
    token = mock_issuer.token(
        sub=subject_of("expired"), aud="keyless", iat=now - 7200, nbf=now - 7200, exp=now - 3600
    )

    assert_rejected(api, mock_config, path, token, EXPIRED_CODES[path], "expired")


@pytest.mark.parametrize("path", PATHS)
def test_expiry_just_past_leeway_is_rejected(api, mock_issuer, mock_config, path):
    now = int(time.time())
    exp = now - LEEWAY_SECONDS - 30
    token = mock_issuer.token(sub=subject_of("past-leeway"), aud="keyless", iat=exp - 600, exp=exp)

    assert_rejected(api, mock_config, path, token, EXPIRED_CODES[path], "expired")


@pytest.mark.parametrize("path", PATHS)
def test_expiry_inside_leeway_is_accepted(api, mock_issuer, mock_config, path):
    now = int(time.time())
    exp = now - LEEWAY_SECONDS // 2
    token = mock_issuer.token(sub=subject_of("in-leeway"), aud="keyless", iat=exp - 600, exp=exp)

    assert_accepted(api, mock_config, path, token)


@pytest.mark.parametrize("path", PATHS)
def test_missing_exp_is_rejected(api, mock_issuer, mock_config, path):
    token = mock_issuer.token(sub=subject_of("no-exp"), aud="keyless", exp=None)
    assert "exp" not in jwt_claims(token)

    assert_rejected(api, mock_config, path, token, INVALID_CODES[path], "exp")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "exp",
    ["4102444800", "tomorrow", [4102444800], {"at": 4102444800}, True],
    ids=["numeric-string", "word", "array", "object", "bool"],
)
def test_non_numeric_exp_is_rejected(api, mock_issuer, mock_config, path, exp):
    token = mock_issuer.token(sub=subject_of("string-exp"), aud="keyless", exp=exp)

    assert_rejected(api, mock_config, path, token, INVALID_CODES[path], "exp")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_time_claim_beyond_leeway_is_rejected(api, mock_issuer, mock_config, path, claim):
    future = int(time.time()) + LEEWAY_SECONDS + 300
    token = mock_issuer.token(sub=subject_of(f"future-{claim}"), aud="keyless", **{claim: future})

    assert_rejected(api, mock_config, path, token, INVALID_CODES[path], claim)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_time_claim_inside_leeway_is_accepted(api, mock_issuer, mock_config, path, claim):
    near_future = int(time.time()) + LEEWAY_SECONDS // 2
    token = mock_issuer.token(sub=subject_of(f"near-{claim}"), aud="keyless", **{claim: near_future})

    assert_accepted(api, mock_config, path, token)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "audience",
    [["keyless"], ["https://kubernetes.default.svc", "keyless"], ["keyless", "other", "third"]],
    ids=["only-ours", "ours-second", "ours-first"],
)
def test_array_audience_with_ours_is_accepted(api, mock_issuer, mock_config, path, audience):
    token = mock_issuer.token(sub=subject_of("aud-array"), aud=audience)

    assert_accepted(api, mock_config, path, token)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "audience",
    [
        [],
        ["other"],
        ["keyless-evil", "Keyless", "keyless "],
        [["keyless"]],
        [{"aud": "keyless"}],
        "keyless,other",
    ],
    ids=["empty", "other", "near-misses", "nested-array", "object", "comma-joined"],
)
def test_audience_without_ours_is_rejected(api, mock_issuer, mock_config, path, audience):
    token = mock_issuer.token(sub=subject_of("aud-wrong"), aud=audience)

    assert_rejected(api, mock_config, path, token, INVALID_CODES[path], "audience")


@pytest.mark.parametrize("path", PATHS)
def test_missing_audience_is_rejected(api, mock_issuer, mock_config, path):
    token = mock_issuer.token(sub=subject_of("no-aud"), aud=None)
    assert "aud" not in jwt_claims(token)

    assert_rejected(api, mock_config, path, token, INVALID_CODES[path], "audience")


NESTED_CLAIMS = {
    "kubernetes.io": {
        "namespace": "ml",
        "pod": {"name": "trainer-0", "uid": "5f0c1d2e-0000-4000-8000-000000000001"},
        "serviceaccount": {"name": "trainer", "uid": "5f0c1d2e-0000-4000-8000-000000000002"},
        "warnafter": 1_700_000_000,
    },
    "groups": ["ml", "gpu-users", 7, True, None, {"not": "a scalar"}, ["nested", "list"]],
    "deep": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": "bottom"}}}}}}}}}},
    "empty": {},
    "nothing": None,
    "ratio": 0.25,
    "big": 2**63 + 1,
    "unicode": "naïve \u2603 \U0001f600",
    "dots.in.name": {"and": "values"},
    "": "empty name",
}


@pytest.mark.parametrize("path", PATHS)
def test_arbitrary_nested_claims_are_accepted(api, mock_issuer, mock_config, path):
    subject = subject_of("nested")
    token = mock_issuer.token(sub=subject, aud="keyless", **NESTED_CLAIMS)
    assert jwt_claims(token)["deep"]["a"]["b"]["c"]["d"]["e"]["f"]["g"]["h"]["i"]["j"] == "bottom"

    assert_accepted(api, mock_config, path, token)


def test_nested_claims_keep_principal(api, mock_issuer, mock_config):
    subject = subject_of("principal")
    token = mock_issuer.token(sub=subject, aud="keyless", **NESTED_CLAIMS)

    response = api.exchange_oidc(token)

    assert response.status_code == 200, response.text
    assert response.json()["principalName"] == role_principal(mock_issuer.issuer, subject)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "subject", [None, "", 42, ["a"]], ids=["missing", "empty", "number", "array"]
)
def test_bad_subject_is_rejected(api, mock_issuer, mock_config, path, subject):
    token = mock_issuer.token(sub=subject, aud="keyless")

    assert_rejected(api, mock_config, path, token, INVALID_CODES[path], "sub")
