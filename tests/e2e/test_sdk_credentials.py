"""boto3 and the AWS CLI get and use keyless credentials by themselves, with no
code change: through container credentials, web identity via keyless's STS
endpoint, and `keyless credentials` as a credential_process."""

import os
import subprocess
import sys
import textwrap

import pytest

from keyless_client import role_principal, unique_name
from processes import keyless_binary

PYTHON_CLIENT = textwrap.dedent(
    """
    import boto3, sys
    s3 = boto3.client("s3", endpoint_url=sys.argv[1])
    s3.put_object(Bucket=sys.argv[2], Key="from-sdk", Body=b"sdk")
    assert s3.get_object(Bucket=sys.argv[2], Key="from-sdk")["Body"].read() == b"sdk"
    print("ok")
    """
)


@pytest.fixture
def workload(keyless, api, s3, oidc, oidc_config, subject, tmp_path):
    """A bucket and a subject allowed to exchange and write it; yields the
    bucket, a token file (no trailing newline) and an environment without AWS
    settings of the developer's machine."""
    bucket = unique_name("sdk")
    s3.create_bucket(Bucket=bucket)
    principal = role_principal(oidc.issuer, subject)
    policy = f"sdk-{bucket}"
    api.put_org_policy(
        policy,
        [
            {"name": "exchange", "effect": "Allow", "actions": ["cwobject:CreateAccessKeyOIDC"], "resources": ["*"], "principals": [principal]},
            {"name": "rw", "effect": "Allow", "actions": ["s3:PutObject", "s3:GetObject"], "resources": [f"{bucket}/*"], "principals": [principal]},
        ],
    )
    token_file = tmp_path / "token"
    token_file.write_text(oidc.token_for_subject(subject))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    yield bucket, token_file, env
    api.delete_org_policy(policy)


def run_boto3(env, keyless, bucket):
    result = subprocess.run([sys.executable, "-c", PYTHON_CLIENT, keyless.s3_url, bucket], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_boto3_container_credentials(keyless, workload):
    bucket, token_file, env = workload
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = f"{keyless.api_url}/v1/cwobject/temporary-credentials/oidc/default"
    env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = str(token_file)
    run_boto3(env, keyless, bucket)


def test_boto3_web_identity_through_sts(keyless, workload):
    bucket, token_file, env = workload
    env["AWS_ROLE_ARN"] = "arn:aws:iam::default:role/session-idp"
    env["AWS_ROLE_SESSION_NAME"] = "e2e"
    env["AWS_WEB_IDENTITY_TOKEN_FILE"] = str(token_file)
    env["AWS_ENDPOINT_URL_STS"] = keyless.api_url
    run_boto3(env, keyless, bucket)


def test_aws_cli_credential_process(keyless, workload, tmp_path):
    bucket, token_file, env = workload
    config = tmp_path / "aws-config"
    helper = f"{keyless_binary()} credentials --endpoint {keyless.api_url} --token-file {token_file} --cache-file {tmp_path / 'cache.json'}"
    config.write_text(f"[default]\nregion = us-east-1\ncredential_process = {helper}\n")
    env["AWS_CONFIG_FILE"] = str(config)
    source = tmp_path / "upload.txt"
    source.write_text("through credential_process")
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    result = subprocess.run([aws, "--endpoint-url", keyless.s3_url, "s3", "cp", str(source), f"s3://{bucket}/cp.txt"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    run_boto3(env, keyless, bucket)


JS_CLIENT = os.path.join(os.path.dirname(__file__), "js_client.mjs")


def run_js_put(env, keyless, bucket, tmp_path):
    """Uploads a file with the JavaScript SDK's default credential chain."""
    source = tmp_path / "js-upload.txt"
    source.write_text("from the JavaScript SDK")
    env = dict(env, KEYLESS_S3_ENDPOINT=keyless.s3_url, AWS_REGION="us-east-1")
    result = subprocess.run(["node", JS_CLIENT, "put", bucket, "from-js", str(source)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_js_sdk_container_credentials(keyless, workload, tmp_path):
    bucket, token_file, env = workload
    env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = f"{keyless.api_url}/v1/cwobject/temporary-credentials/oidc/default"
    env["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"] = str(token_file)
    run_js_put(env, keyless, bucket, tmp_path)


def test_js_sdk_web_identity_through_sts(keyless, workload, tmp_path):
    bucket, token_file, env = workload
    env["AWS_ROLE_ARN"] = "arn:aws:iam::default:role/session-idp"
    env["AWS_ROLE_SESSION_NAME"] = "e2e-js"
    env["AWS_WEB_IDENTITY_TOKEN_FILE"] = str(token_file)
    env["AWS_ENDPOINT_URL_STS"] = keyless.api_url
    run_js_put(env, keyless, bucket, tmp_path)


LONG_RUNNING_CLIENT = textwrap.dedent(
    """
    import boto3, sys, time
    s3 = boto3.client("s3", endpoint_url=sys.argv[1])
    s3.put_object(Bucket=sys.argv[2], Key="before", Body=b"1")
    time.sleep(float(sys.argv[3]))
    s3.put_object(Bucket=sys.argv[2], Key="after", Body=b"2")
    print("ok")
    """
)


def test_boto3_refreshes_expired_credentials(keyless, api, s3, own_oidc, tmp_path):
    """One boto3 client outlives its first credentials and keeps working."""
    api.create_oidc_config(own_oidc.issuer, name="short-lived", minDurationSeconds=60, defaultDurationSeconds=60)
    subject = "system:serviceaccount:e2e:long-running"
    principal = role_principal(own_oidc.issuer, subject)
    bucket = unique_name("refresh")
    s3.create_bucket(Bucket=bucket)
    api.put_org_policy(
        f"refresh-{bucket}",
        [
            {"name": "exchange", "effect": "Allow", "actions": ["cwobject:CreateAccessKeyOIDC"], "resources": ["*"], "principals": [principal]},
            {"name": "write", "effect": "Allow", "actions": ["s3:PutObject"], "resources": [f"{bucket}/*"], "principals": [principal]},
        ],
    )
    token_file = tmp_path / "token"
    token_file.write_text(own_oidc.token_for_subject(subject))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{keyless.api_url}/v1/cwobject/temporary-credentials/oidc/default",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": str(token_file),
        }
    )
    # 65 s: past the 60 s lifetime of the first credentials.
    result = subprocess.run([sys.executable, "-c", LONG_RUNNING_CLIENT, keyless.s3_url, bucket, "65"], env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    events = api.call("GET", "/v1/keyless/audit", params={"kind": "data", "principal": principal, "action": "s3:PutObject"})["events"]
    keys_used = {e["accessKeyId"] for e in events if e["decision"] == "allow"}
    assert len(keys_used) == 2, "the second PUT used freshly minted credentials"
