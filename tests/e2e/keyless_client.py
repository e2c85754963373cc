"""Clients for a running keyless server: the control-plane API and S3."""

import secrets
import time
from xml.etree import ElementTree

import boto3
import botocore.exceptions
import requests
from botocore.config import Config

REGION = "us-east-1"
STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"


class ApiError(AssertionError):
    pass


class Api:
    """Control-plane API calls with `Authorization: Bearer <token>`."""

    def __init__(self, base_url, token, verify=True):
        self.base_url = base_url
        self.token = token
        # requests' `verify`: True, or the CA bundle of a TLS server.
        self.verify = verify

    def request(self, method, path, json=None, token=None, headers=None, **kwargs):
        """Send one request and return the response, whatever its status."""
        all_headers = dict(headers or {})
        bearer = self.token if token is None else token
        if bearer:
            all_headers.setdefault("Authorization", f"Bearer {bearer}")
        kwargs.setdefault("verify", self.verify)
        return requests.request(
            method, f"{self.base_url}{path}", json=json, headers=all_headers, timeout=30, **kwargs
        )

    def call(self, method, path, json=None, expected_status=None, **kwargs):
        """Send one request, check its status, and return the JSON body (None if empty).

        Without `expected_status` any 2xx status passes, since creations may
        answer 201 and deletions 204.
        """
        response = self.request(method, path, json=json, **kwargs)
        if expected_status is None:
            succeeded = 200 <= response.status_code < 300
        else:
            succeeded = response.status_code == expected_status
        if not succeeded:
            expected = expected_status or "2xx"
            raise ApiError(
                f"{method} {path} returned {response.status_code}, expected {expected}: "
                f"{response.text}"
            )
        return response.json() if response.content else None

    def create_static_key(self, duration_seconds=0):
        return self.call("POST", "/v1/cwobject/access-key", {"durationSeconds": duration_seconds})

    def put_org_policy(self, name, statements):
        body = {"policy": {"version": "v1alpha1", "name": name, "statements": statements}}
        return self.call("POST", "/v1/cwobject/access-policy", body)

    def delete_org_policy(self, name):
        return self.call("DELETE", f"/v1/cwobject/access-policy/{name}")

    def create_oidc_config(self, issuer, name=None, audiences=("keyless",), **options):
        body = {
            "orgId": "default",
            "name": name or f"idp-{secrets.token_hex(4)}",
            "issuerUrl": issuer,
            "audiences": list(audiences),
            **options,
        }
        return self.call("POST", "/v1/keyless/wif/oidc", body)

    def exchange_oidc(self, token, org_id="default", duration_seconds=900, **extra):
        """POST the token to the exchange endpoint and return the raw response."""
        body = {"orgId": org_id, "oidcToken": token, "durationSeconds": duration_seconds, **extra}
        return requests.post(
            f"{self.base_url}/v1/cwobject/temporary-credentials/oidc", json=body, timeout=30
        )


def assume_role_with_web_identity(api_url, role_arn, token, session_name="e2e", **extra):
    """POST an STS AssumeRoleWithWebIdentity form to keyless and return the raw response."""
    form = {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": "2011-06-15",
        "RoleArn": role_arn,
        "RoleSessionName": session_name,
        "WebIdentityToken": token,
        **extra,
    }
    return requests.post(f"{api_url}/", data=form, timeout=30)


def sts_error(response):
    """Return the (Code, Message) of an STS XML error response."""
    root = ElementTree.fromstring(response.content)
    namespace = {"sts": STS_NAMESPACE}
    code = root.findtext("sts:Error/sts:Code", namespaces=namespace)
    message = root.findtext("sts:Error/sts:Message", namespaces=namespace)
    assert code is not None, f"no STS error code in {response.status_code}: {response.text}"
    return code, message or ""


def exchange_outcome(response):
    """Describe an exchange response for a failure message without its credentials."""
    if response.status_code == 200:
        return "200 with credentials (not shown)"
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.text[:300]}"
    return f"{response.status_code} {body.get('code')}: {body.get('message')}"


def role_principal(issuer, subject):
    """Return the principal keyless derives from an OIDC token."""
    return f"role/{issuer}:{subject}"


def exchange_statement(principal):
    """Return an org policy statement that lets `principal` exchange OIDC tokens."""
    return {
        "name": "exchange",
        "effect": "Allow",
        "actions": ["cwobject:CreateAccessKeyOIDC"],
        "resources": ["*"],
        "principals": [principal],
    }


def items_of(body):
    """Return the list in a list response, whether bare or the one list field of an object.

    NOTE: the API contract names no envelope field for list responses, so
    this accepts `[...]` and `{"<anything>": [...]}`.
    """
    if isinstance(body, list):
        return body
    lists = [value for value in body.values() if isinstance(value, list)]
    assert len(lists) == 1, f"expected one list field in the response: {body}"
    return lists[0]


def policy_names(body):
    """Return the policy names in a `GET /v1/cwobject/access-policy` response.

    Each item is either the policy itself or `{"policy": {...}}`, as in the
    request that created it.
    """
    return [item.get("policy", item)["name"] for item in items_of(body)]


def s3_client(endpoint_url, access_key_id, secret_key, session_token=None, **config):
    """Return a boto3 S3 client that sends every request once (no retries)."""
    options = {
        "signature_version": "s3v4",
        "s3": {"addressing_style": "path"},
        "retries": {"total_max_attempts": 1},
        **config,
    }
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
        config=Config(**options),
    )


def unique_name(prefix="t"):
    """Return a fresh valid bucket name."""
    return f"{prefix}-{secrets.token_hex(6)}"


def empty_and_delete_bucket(client, bucket):
    """Delete every object and multipart upload, then the bucket. A missing bucket is no error."""
    try:
        paginator = client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=item["Key"])
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        for upload in uploads:
            client.abort_multipart_upload(
                Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        client.delete_bucket(Bucket=bucket)
    except client.exceptions.NoSuchBucket:
        pass


def wait_for(condition, timeout_seconds, interval_seconds=0.1):
    """Poll `condition` until it returns a true value or the timeout passes."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        result = condition()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(interval_seconds)


def s3_error_code(call, *args, **kwargs):
    """Run a boto3 call and return its S3 error code, or None when it succeeds."""
    try:
        call(*args, **kwargs)
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"]
    return None


def s3_error(call, *args, **kwargs):
    """Run a boto3 call that must fail and return its (error code, HTTP status)."""
    try:
        call(*args, **kwargs)
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError(f"{call.__name__} succeeded but an S3 error was expected")
