"""STS GetCallerIdentity, signed with keyless credentials by boto3."""

import boto3
import botocore.exceptions
import pytest
import requests

from keyless_client import role_principal


def sts_client(keyless, access_key_id, secret_key, session_token=None):
    return boto3.client(
        "sts",
        endpoint_url=keyless.api_url,
        region_name="us-east-1",
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_key,
        aws_session_token=session_token,
    )


def test_caller_identity_of_static_key(keyless, admin_key):
    identity = sts_client(keyless, admin_key["accessKeyId"], admin_key["secretKey"]).get_caller_identity()
    assert identity["Account"] == "default"
    assert identity["Arn"] == "arn:aws:iam::default:user/admin"
    assert identity["UserId"] == admin_key["accessKeyId"]
    metadata = identity["ResponseMetadata"]
    assert metadata["RequestId"] == metadata["HTTPHeaders"]["x-amz-request-id"]


def test_caller_identity_of_exchanged_credentials(keyless, api, oidc, oidc_config, subject):
    principal = role_principal(oidc.issuer, subject)
    api.put_org_policy(
        f"sts-{subject[-8:]}",
        [{"name": "exchange", "effect": "Allow", "actions": ["cwobject:CreateAccessKeyOIDC"], "resources": ["*"], "principals": [principal]}],
    )
    creds = api.exchange_oidc(oidc.token_for_subject(subject)).json()
    identity = sts_client(keyless, creds["accessKeyId"], creds["secretKey"], creds["sessionToken"]).get_caller_identity()
    assert identity["Arn"].endswith(principal.removeprefix("role/"))


def test_caller_identity_rejects_wrong_secret(keyless, admin_key):
    client = sts_client(keyless, admin_key["accessKeyId"], "not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        client.get_caller_identity()
    assert raised.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


@pytest.mark.parametrize("form", [
    {"Action": "AssumeRoleWithWebIdentity", "Version": "2011-06-15"},
    {"Action": "NoSuchAction", "Version": "2011-06-15"},
])
def test_sts_error_request_id_matches_header(keyless, form):
    response = requests.post(f"{keyless.api_url}/", data=form, timeout=30)

    assert response.status_code == 400
    header = response.headers["x-amz-request-id"]
    assert f"<RequestId>{header}</RequestId>" in response.text
