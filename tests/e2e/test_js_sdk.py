"""AWS SDK for JavaScript v3 with its default checksum behaviour."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from keyless_client import exchange_statement, role_principal

JS_CLIENT = Path(__file__).with_name("js_client.mjs")
MIB = 1024 * 1024


def run_js(endpoint, key, *args):
    """Run js_client.mjs with `key`'s credentials; return its JSON output and exit status."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        {
            "KEYLESS_S3_ENDPOINT": endpoint,
            "AWS_ACCESS_KEY_ID": key["accessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["secretKey"],
            "AWS_REGION": "us-east-1",
            # The SDK warns on Node 20 about a future version floor.
            "NODE_NO_WARNINGS": "1",
        }
    )
    if key.get("sessionToken"):
        env["AWS_SESSION_TOKEN"] = key["sessionToken"]
    result = subprocess.run(
        ["node", str(JS_CLIENT), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.stdout, f"js_client.mjs printed nothing; stderr:\n{result.stderr}"
    return json.loads(result.stdout), result.returncode


@pytest.mark.parametrize("size", [0, 100, 3 * MIB])
def test_js_put_streamed_with_checksum_trailer(keyless, admin_key, bucket, tmp_path, size):
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(size))

    put, status = run_js(
        keyless.s3_url, admin_key, "put", bucket, "streamed.bin", str(source), "--stream"
    )

    assert status == 0, put
    assert put["requestHeaders"]["content-encoding"] == "aws-chunked"
    assert put["requestHeaders"]["x-amz-trailer"] == "x-amz-checksum-crc32"
    assert put["requestHeaders"]["x-amz-content-sha256"].startswith("STREAMING-")
    target = tmp_path / "target.bin"
    got, status = run_js(keyless.s3_url, admin_key, "get", bucket, "streamed.bin", str(target))
    assert status == 0, got
    assert got["contentLength"] == size
    assert target.read_bytes() == source.read_bytes()


def test_js_put_buffer_with_checksum_header(keyless, admin_key, bucket, tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(4096))

    put, status = run_js(keyless.s3_url, admin_key, "put", bucket, "buffered.bin", str(source))

    assert status == 0, put
    assert "x-amz-checksum-crc32" in put["requestHeaders"]
    target = tmp_path / "target.bin"
    got, status = run_js(keyless.s3_url, admin_key, "get", bucket, "buffered.bin", str(target))
    assert status == 0, got
    assert target.read_bytes() == source.read_bytes()


def test_js_with_temporary_credentials(
    keyless, api, oidc, oidc_config, subject, bucket, s3, tmp_path
):
    principal = role_principal(oidc.issuer, subject)
    policy_name = f"js-{subject.rsplit('-', 1)[1]}"
    api.put_org_policy(
        policy_name,
        [
            exchange_statement(principal),
            {
                "name": "rw",
                "effect": "Allow",
                "actions": ["s3:PutObject", "s3:GetObject", "s3:ListBucket"],
                "resources": [bucket, f"{bucket}/*"],
                "principals": [principal],
            },
        ],
    )
    try:
        response = api.exchange_oidc(oidc.token_for_subject(subject))
        assert response.status_code == 200, response.text
        credentials = response.json()
        source = tmp_path / "source.bin"
        source.write_bytes(os.urandom(2048))

        put, status = run_js(
            keyless.s3_url, credentials, "put", bucket, "from-js.bin", str(source), "--stream"
        )
        assert status == 0, put
        assert "x-amz-security-token" in put["requestHeaders"]
        listed, status = run_js(keyless.s3_url, credentials, "list", bucket)
        assert status == 0, listed
        assert listed["keys"] == ["from-js.bin"]
        assert s3.get_object(Bucket=bucket, Key="from-js.bin")["Body"].read() == source.read_bytes()
    finally:
        api.delete_org_policy(policy_name)
