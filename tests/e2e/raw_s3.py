"""Hand-built S3 requests, signed with botocore's SigV4 code, for malformed-input tests.

Signing through botocore keeps the signature itself correct, so a test can
break exactly one thing afterwards: the body, a header, the clock, the
expiry.
"""

import datetime
import hashlib
import hmac
import xml.etree.ElementTree as ElementTree
from unittest import mock

import requests
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from keyless_client import REGION


def credentials_of(key):
    """Return botocore credentials for a static or temporary key from the API."""
    return Credentials(key["accessKeyId"], key["secretKey"], key.get("sessionToken"))


EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
STREAMING_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"


class _DeclaredPayloadSigner(S3SigV4Auth):
    """S3 SigV4 signer that puts a given x-amz-content-sha256 value in the signature."""

    def __init__(self, credentials, region, payload_hash):
        super().__init__(credentials, "s3", region)
        self._payload_hash = payload_hash

    def payload(self, request):
        return self._payload_hash


def _frozen_clock(when):
    return mock.patch("botocore.auth.get_current_datetime", return_value=when)


def sign(
    method, url, credentials, body=b"", headers=None, when=None, region=REGION, payload_hash=None
):
    """Return an AWSRequest signed with SigV4 in the Authorization header.

    `when` is a naive UTC datetime to sign at; the default is now.
    `payload_hash` replaces the SHA-256 of the body in x-amz-content-sha256,
    for `UNSIGNED-PAYLOAD` and the streaming forms.
    """
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers or {}))
    if payload_hash is None:
        signer = S3SigV4Auth(credentials, "s3", region)
    else:
        signer = _DeclaredPayloadSigner(credentials, region, payload_hash)
    with _frozen_clock(when or utc_now()):
        signer.add_auth(request)
    return request


def _hmac(key, message):
    return hmac.new(key, message.encode(), hashlib.sha256).digest()


def signing_key(secret_key, date, region=REGION):
    """Derive the SigV4 signing key for one day, region and the s3 service."""
    key = _hmac(f"AWS4{secret_key}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, "s3")
    return _hmac(key, "aws4_request")


def sign_streaming(method, url, credentials, chunks, headers=None, region=REGION):
    """Return (request, body) for a STREAMING-AWS4-HMAC-SHA256-PAYLOAD upload of `chunks`.

    Each chunk signature chains from the previous one, starting with the
    seed signature of the Authorization header, and a zero-length chunk ends
    the body.
    """
    decoded_length = sum(len(chunk) for chunk in chunks)
    all_headers = {
        "Content-Encoding": "aws-chunked",
        "X-Amz-Decoded-Content-Length": str(decoded_length),
        **(headers or {}),
    }
    request = sign(
        method, url, credentials, headers=all_headers, region=region, payload_hash=STREAMING_PAYLOAD
    )
    timestamp = request.headers["X-Amz-Date"]
    date = timestamp[:8]
    scope = f"{date}/{region}/s3/aws4_request"
    key = signing_key(credentials.secret_key, date, region)
    previous = request.headers["Authorization"].rsplit("Signature=", 1)[1]

    body = b""
    for chunk in [*chunks, b""]:
        string_to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256-PAYLOAD",
                timestamp,
                scope,
                previous,
                EMPTY_SHA256,
                hashlib.sha256(chunk).hexdigest(),
            ]
        )
        signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        body += f"{len(chunk):x};chunk-signature={signature}\r\n".encode() + chunk + b"\r\n"
        previous = signature
    return request, body


def presign(method, url, credentials, expires_seconds, when=None, region=REGION):
    """Return a presigned URL with `X-Amz-Expires` = `expires_seconds`."""
    request = AWSRequest(method=method, url=url)
    signer = S3SigV4QueryAuth(credentials, "s3", region, expires=expires_seconds)
    with _frozen_clock(when or utc_now()):
        signer.add_auth(request)
    return request.url


def send(request, headers=None, body=None):
    """Send a signed AWSRequest, optionally with headers or body replaced afterwards."""
    all_headers = dict(request.headers.items())
    for name, value in (headers or {}).items():
        if value is None:
            all_headers.pop(name, None)
        else:
            all_headers[name] = value
    data = request.body if body is None else body
    return requests.request(request.method, request.url, headers=all_headers, data=data, timeout=30)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def error_code(response):
    """Return the `<Code>` of an S3 XML error body, or None when there is none."""
    if not response.content:
        return None
    try:
        root = ElementTree.fromstring(response.content)
    except ElementTree.ParseError:
        return None
    code = root.find("Code")
    return code.text if code is not None else None


def error_field(response, name):
    root = ElementTree.fromstring(response.content)
    element = root.find(name)
    return element.text if element is not None else None
