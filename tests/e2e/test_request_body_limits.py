"""Request bodies over the API's size limits get a 413 in the endpoint's own error shape.

JSON routes take at most 1 MiB and reject a larger body with the API's JSON
error. The STS route takes at most 2 MiB and rejects a larger body with the STS
XML error. Each limit applies whether the client declares the length in
Content-Length or sends the body chunked without one.
"""

import pytest
import requests

from keyless_client import sts_error

JSON_BODY_LIMIT = 1024 * 1024
STS_BODY_LIMIT = 2 * 1024 * 1024
CHUNK_BYTES = 64 * 1024

# Every route of the API that reads a request body, with the method it reads it on.
JSON_BODY_ROUTES = [
    ("PUT", "/v1/cwobject/organization/settings"),
    ("PUT", "/v1/cwobject/bucket/settings"),
    ("POST", "/v1/keyless/audit/verify"),
    ("POST", "/v1/cwobject/access-key"),
    ("POST", "/v1/cwobject/revoke-access-key/access-key"),
    ("POST", "/v1/cwobject/revoke-access-key/principal"),
    ("PUT", "/v1/cwobject/access-key-status"),
    ("POST", "/v1/keyless/api-tokens"),
    ("POST", "/v1/cwobject/access-policy"),
    ("POST", "/v1/keyless/wif/oidc"),
    ("PUT", "/v1/keyless/wif/oidc/some-id"),
    ("POST", "/v1/keyless/wif/saml"),
    ("PUT", "/v1/keyless/wif/saml/some-id"),
    ("POST", "/v1/cwobject/auth/can-i"),
    ("POST", "/v1/keyless/explain"),
    ("POST", "/v1/cwobject/temporary-credentials/oidc"),
    ("POST", "/v1/cwobject/temporary-credentials/saml"),
]


def json_body(size):
    """Return a JSON object of exactly `size` bytes: one long string field."""
    prefix, suffix = b'{"padding":"', b'"}'
    return prefix + b"a" * (size - len(prefix) - len(suffix)) + suffix


def form_body(size):
    """Return an STS AssumeRoleWithWebIdentity form of exactly `size` bytes."""
    prefix = b"Action=AssumeRoleWithWebIdentity&Version=2011-06-15&WebIdentityToken="
    return prefix + b"a" * (size - len(prefix))


def in_chunks(body):
    """Yield `body` in pieces, so that requests sends it chunked without Content-Length."""
    for start in range(0, len(body), CHUNK_BYTES):
        yield body[start : start + CHUNK_BYTES]


def send(url, method, body, content_type, chunked, token=None):
    headers = {"Content-Type": content_type}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = in_chunks(body) if chunked else body
    response = requests.request(method, url, data=data, headers=headers, timeout=60)
    if chunked:
        assert "Content-Length" not in response.request.headers
        assert response.request.headers.get("Transfer-Encoding") == "chunked"
    return response


def assert_json_too_large(response):
    assert response.status_code == 413, response.text
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    error = response.json()
    assert error["code"] == "RequestEntityTooLarge", error
    assert str(JSON_BODY_LIMIT) in error["message"], error


def assert_sts_too_large(response):
    assert response.status_code == 413, response.text
    assert response.headers["Content-Type"].startswith("text/xml"), response.text
    code, message = sts_error(response)
    assert code == "RequestEntityTooLargeException", response.text
    assert str(STS_BODY_LIMIT) in message, response.text


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize(("method", "path"), JSON_BODY_ROUTES)
def test_json_route_rejects_body_over_limit(keyless, method, path, chunked):
    body = json_body(3 * 1024 * 1024)

    response = send(
        f"{keyless.api_url}{path}", method, body, "application/json", chunked, keyless.admin_token
    )

    assert_json_too_large(response)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_json_body_one_byte_over_limit_rejected(keyless, chunked):
    body = json_body(JSON_BODY_LIMIT + 1)

    response = send(
        f"{keyless.api_url}/v1/cwobject/auth/can-i",
        "POST",
        body,
        "application/json",
        chunked,
        keyless.admin_token,
    )

    assert_json_too_large(response)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_json_body_at_limit_reaches_handler(keyless, chunked):
    body = json_body(JSON_BODY_LIMIT)

    response = send(
        f"{keyless.api_url}/v1/cwobject/auth/can-i",
        "POST",
        body,
        "application/json",
        chunked,
        keyless.admin_token,
    )

    # The handler reads the body and rejects its unknown field, so the size passed.
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "InvalidArgument"
    assert "padding" in response.json()["message"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("size", [STS_BODY_LIMIT + 1, 3 * 1024 * 1024])
def test_sts_rejects_body_over_limit(keyless, size, chunked):
    body = form_body(size)

    response = send(
        f"{keyless.api_url}/", "POST", body, "application/x-www-form-urlencoded", chunked
    )

    assert_sts_too_large(response)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_sts_body_at_limit_reaches_handler(keyless, chunked):
    body = form_body(STS_BODY_LIMIT)

    response = send(
        f"{keyless.api_url}/", "POST", body, "application/x-www-form-urlencoded", chunked
    )

    # The form lacks RoleArn, so the handler parsed it: the size passed.
    assert response.status_code == 400, response.text
    code, message = sts_error(response)
    assert code == "ValidationError", response.text
    assert "RoleArn" in message, response.text
