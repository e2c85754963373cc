"""Kubernetes service-account and GitHub Actions tokens with claim conditions,
attribute mapping and policies on the mapped keys, driven with boto3.

oauth2-mock-server signs tokens shaped like the real ones: the claims and
issuer URLs below are those that Kubernetes and GitHub Actions put in their
tokens. keyless cannot reach those issuers from a test, so each
configuration carries the signer's public JWK set as an uploaded `jwks`,
as an air-gapped cluster would.

Every workload exchanges its token through STS AssumeRoleWithWebIdentity
with boto3 and then uses the credentials with boto3's S3 client.
"""

import json
import re
import secrets
import time

import boto3
import botocore
import botocore.exceptions
import pytest
from botocore.config import Config

from idp import MockIssuer
from keyless_client import (
    REGION,
    empty_and_delete_bucket,
    exchange_outcome,
    s3_client,
    s3_error_code,
    unique_name,
)

KUBERNETES_ISSUER = "https://kubernetes.default.svc.cluster.local"
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"


@pytest.fixture(scope="module")
def signer(work_dir):
    mock = MockIssuer(work_dir).start()
    yield mock
    mock.stop()


def sts_client(keyless):
    return boto3.client(
        "sts",
        endpoint_url=keyless.api_url,
        region_name=REGION,
        config=Config(signature_version=botocore.UNSIGNED, retries={"total_max_attempts": 1}),
    )


def assume_role(keyless, config, token):
    """Exchange `token` through STS with boto3 and return an S3 client with the credentials."""
    response = sts_client(keyless).assume_role_with_web_identity(
        RoleArn=f"arn:aws:iam::default:role/{config['name']}",
        RoleSessionName="e2e-workload",
        WebIdentityToken=token,
    )
    credentials = response["Credentials"]
    return s3_client(
        keyless.s3_url,
        credentials["AccessKeyId"],
        credentials["SecretAccessKey"],
        credentials["SessionToken"],
    )


def assume_role_error(keyless, config, token):
    """Exchange `token` through STS with boto3; it must fail. Returns (code, message)."""
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        sts_client(keyless).assume_role_with_web_identity(
            RoleArn=f"arn:aws:iam::default:role/{config['name']}",
            RoleSessionName="e2e-workload",
            WebIdentityToken=token,
        )
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def assert_claim_rejected(keyless, config, token, condition_key):
    code, message = assume_role_error(keyless, config, token)
    assert code == "IDPRejectedClaim", message
    # The whole key, so that `jwt:ref` is not found inside `jwt:ref_type`.
    named = re.search(re.escape(condition_key) + r"(?![\w.])", message)
    assert named, f"the message should name {condition_key}: {message}"


def owner_statement(bucket):
    return {
        "Sid": "owner",
        "Effect": "Allow",
        "Principal": {"CW": "user/admin"},
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
    }


# Kubernetes: a projected service-account token of a pod.


def kubernetes_token(signer, namespace, service_account, audience=("keyless",)):
    now = int(time.time())
    claims = {
        "iss": KUBERNETES_ISSUER,
        "sub": f"system:serviceaccount:{namespace}:{service_account}",
        "aud": list(audience),
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "jti": secrets.token_hex(16),
        "kubernetes.io": {
            "namespace": namespace,
            "node": {"name": "gpu-node-7", "uid": "0f6a4b1e-8c55-4bd2-9d6e-1c0f5b2a9e01"},
            "pod": {"name": f"{service_account}-0", "uid": "6f0b2b7e-2f0c-4c6e-9a51-5a4f8a3d2c10"},
            "serviceaccount": {
                "name": service_account,
                "uid": "c9e2f6a4-7a3b-4d1e-8f5c-2b6d9e0a1f23",
            },
            "warnafter": now + 3000,
        },
    }
    return signer.token(**claims)


@pytest.fixture(scope="module")
def kubernetes(keyless, api, s3, signer):
    """Yield a cluster configuration that admits only namespace ml-training, and its bucket.

    The org policy lets a namespace use only keys under its own name. The
    bucket policy narrows that to `<namespace>/home/<sub>/`, for the
    service accounts `trainer` and `*`.
    """
    principal_prefix = f"role/{KUBERNETES_ISSUER}:system:serviceaccount:*"
    config = api.create_oidc_config(
        KUBERNETES_ISSUER,
        name=f"cluster-{secrets.token_hex(3)}",
        jwks=signer.jwks(),
        conditions={"StringEquals": {"jwt:kubernetes.io.namespace": "ml-training"}},
        attributeMapping={
            "aws:PrincipalTag/namespace": "kubernetes.io.namespace",
            "jwt:serviceaccount": "kubernetes.io.serviceaccount.name",
        },
    )
    assert config["conditions"]
    assert config["attributeMapping"]["aws:PrincipalTag/namespace"] == "kubernetes.io.namespace"

    bucket = unique_name("k8s")
    s3.create_bucket(Bucket=bucket)
    policy_name = f"k8s-{bucket}"
    api.put_org_policy(
        policy_name,
        [
            {
                "name": "exchange",
                "effect": "Allow",
                "actions": ["cwobject:CreateAccessKeyOIDC"],
                "resources": ["*"],
                "principals": [principal_prefix],
            },
            {
                "name": "own-namespace",
                "effect": "Allow",
                "actions": ["s3:GetObject", "s3:PutObject"],
                "resources": [f"{bucket}/${{aws:PrincipalTag/namespace}}/*"],
                "principals": [principal_prefix],
            },
        ],
    )
    bucket_policy = {
        "Version": "2012-10-17",
        "Statement": [
            owner_statement(bucket),
            {
                "Sid": "own-home",
                "Effect": "Allow",
                "Principal": {"CW": principal_prefix},
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"arn:aws:s3:::{bucket}/${{aws:PrincipalTag/namespace}}/home/${{jwt:sub}}/*",
                "Condition": {"StringEquals": {"jwt:serviceaccount": ["trainer", "*"]}},
            },
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(bucket_policy))
    yield config, bucket
    empty_and_delete_bucket(s3, bucket)
    api.delete_org_policy(policy_name)
    api.call("DELETE", f"/v1/keyless/wif/oidc/{config['id']}")


def test_kubernetes_trainer_reaches_only_its_home(keyless, signer, kubernetes):
    config, bucket = kubernetes
    workload = assume_role(keyless, config, kubernetes_token(signer, "ml-training", "trainer"))
    home = "ml-training/home/system:serviceaccount:ml-training:trainer"

    workload.put_object(Bucket=bucket, Key=f"{home}/ckpt-1", Body=b"weights")
    assert workload.get_object(Bucket=bucket, Key=f"{home}/ckpt-1")["Body"].read() == b"weights"

    other_home = "ml-training/home/system:serviceaccount:ml-training:evaluator/ckpt-1"
    assert s3_error_code(workload.put_object, Bucket=bucket, Key=other_home, Body=b"x") == "AccessDenied"
    other_namespace = "default/home/system:serviceaccount:ml-training:trainer/ckpt-1"
    assert s3_error_code(workload.put_object, Bucket=bucket, Key=other_namespace, Body=b"x") == "AccessDenied"


def test_kubernetes_mapped_key_condition_denies(keyless, signer, kubernetes):
    config, bucket = kubernetes
    workload = assume_role(keyless, config, kubernetes_token(signer, "ml-training", "evaluator"))
    home = "ml-training/home/system:serviceaccount:ml-training:evaluator"

    # The namespace condition admits the evaluator, but the bucket policy's
    # condition on the mapped `jwt:serviceaccount` allows only the trainer.
    assert s3_error_code(workload.put_object, Bucket=bucket, Key=f"{home}/x", Body=b"x") == "AccessDenied"


@pytest.mark.parametrize("namespace", ["default", "ml-training-evil", "ml"])
def test_kubernetes_other_namespace_is_rejected(keyless, signer, kubernetes, namespace):
    config, _bucket = kubernetes

    token = kubernetes_token(signer, namespace, "trainer")

    assert_claim_rejected(keyless, config, token, "jwt:kubernetes.io.namespace")


@pytest.mark.parametrize(
    "namespace",
    ["*", "ml-*", "ml-training*", "?l-training", "ml-training/..", "../ml-training", "ML-TRAINING", "ml-training "],
)
def test_kubernetes_hostile_namespace_matches_literally(keyless, signer, kubernetes, namespace):
    config, _bucket = kubernetes

    token = kubernetes_token(signer, namespace, "trainer")

    assert_claim_rejected(keyless, config, token, "jwt:kubernetes.io.namespace")


def test_kubernetes_wildcard_subject_matches_literally(keyless, signer, kubernetes):
    config, bucket = kubernetes
    # A service account named `*` passes the namespace condition, and the
    # mapped name `*` satisfies the bucket policy's literal "*" value.
    workload = assume_role(keyless, config, kubernetes_token(signer, "ml-training", "*"))
    own_home = "ml-training/home/system:serviceaccount:ml-training:*"
    trainer_home = "ml-training/home/system:serviceaccount:ml-training:trainer"

    workload.put_object(Bucket=bucket, Key=f"{own_home}/file", Body=b"star")
    assert s3_error_code(workload.put_object, Bucket=bucket, Key=f"{trainer_home}/file", Body=b"x") == "AccessDenied"
    assert s3_error_code(workload.get_object, Bucket=bucket, Key=f"{trainer_home}/ckpt-1") == "AccessDenied"


# GitHub Actions: the OIDC token of a workflow job.


def github_token(
    signer,
    repository,
    ref="refs/heads/main",
    environment=None,
    job_workflow_ref=None,
    audience="keyless",
):
    owner = repository.split("/")[0]
    now = int(time.time())
    if environment:
        subject = f"repo:{repository}:environment:{environment}"
    else:
        subject = f"repo:{repository}:ref:{ref}"
    claims = {
        "iss": GITHUB_ISSUER,
        "sub": subject,
        "aud": audience,
        "iat": now,
        "nbf": now - 5,
        "exp": now + 300,
        "jti": secrets.token_hex(16),
        "ref": ref,
        "ref_type": "branch",
        "sha": secrets.token_hex(20),
        "repository": repository,
        "repository_id": "690751432",
        "repository_owner": owner,
        "repository_owner_id": "81946531",
        "repository_visibility": "private",
        "run_id": "9188390219",
        "run_number": "42",
        "run_attempt": "1",
        "actor": "octocat",
        "actor_id": "583231",
        "workflow": "train",
        "workflow_ref": f"{repository}/.github/workflows/train.yml@{ref}",
        "job_workflow_ref": job_workflow_ref
        or "acme/workflows/.github/workflows/train.yml@refs/heads/main",
        "event_name": "push",
        "runner_environment": "github-hosted",
    }
    if environment:
        claims["environment"] = environment
    return signer.token(**claims)


@pytest.fixture(scope="module")
def github(keyless, api, s3, signer):
    """Yield a GitHub Actions configuration and its bucket.

    The configuration admits repositories of acme on main that run the
    reusable workflow of acme/workflows. In the bucket each repository writes
    under its own name, and only the production environment writes releases.
    """
    principal_prefix = f"role/{GITHUB_ISSUER}:repo:acme/*"
    config = api.create_oidc_config(
        GITHUB_ISSUER,
        name=f"github-{secrets.token_hex(3)}",
        jwks=signer.jwks(),
        conditions={
            "StringLike": {
                "jwt:repository": "acme/*",
                "jwt:job_workflow_ref": "acme/workflows/.github/workflows/*@refs/heads/main",
            },
            "StringEquals": {"jwt:ref": "refs/heads/main"},
        },
        attributeMapping={
            "aws:PrincipalTag/repository": "repository",
            "jwt:environment": "environment",
        },
    )

    bucket = unique_name("gha")
    s3.create_bucket(Bucket=bucket)
    policy_name = f"gha-{bucket}"
    api.put_org_policy(
        policy_name,
        [
            {
                "name": "exchange",
                "effect": "Allow",
                "actions": ["cwobject:CreateAccessKeyOIDC"],
                "resources": ["*"],
                "principals": [principal_prefix],
            },
            {
                "name": "objects",
                "effect": "Allow",
                "actions": ["s3:GetObject", "s3:PutObject"],
                "resources": [f"{bucket}/*"],
                "principals": [principal_prefix],
            },
        ],
    )

    bucket_policy = {
        "Version": "2012-10-17",
        "Statement": [
            owner_statement(bucket),
            {
                "Sid": "own-repository",
                "Effect": "Allow",
                "Principal": {"CW": principal_prefix},
                "Action": ["s3:GetObject", "s3:PutObject"],
                "Resource": f"arn:aws:s3:::{bucket}/${{aws:PrincipalTag/repository}}/*",
            },
            {
                "Sid": "releases-from-production",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:PutObject",
                "Resource": f"arn:aws:s3:::{bucket}/*/releases/*",
                "Condition": {"StringNotEquals": {"jwt:environment": "production"}},
            },
        ],
    }
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(bucket_policy))

    yield config, bucket
    empty_and_delete_bucket(s3, bucket)
    api.delete_org_policy(policy_name)
    api.call("DELETE", f"/v1/keyless/wif/oidc/{config['id']}")


def test_github_main_branch_writes_its_repository(keyless, signer, github):
    config, bucket = github
    workload = assume_role(keyless, config, github_token(signer, "acme/train"))

    workload.put_object(Bucket=bucket, Key="acme/train/model.bin", Body=b"model")
    assert workload.get_object(Bucket=bucket, Key="acme/train/model.bin")["Body"].read() == b"model"
    assert s3_error_code(workload.put_object, Bucket=bucket, Key="acme/infer/model.bin", Body=b"x") == "AccessDenied"
    # No environment claim, so the release deny applies.
    assert s3_error_code(workload.put_object, Bucket=bucket, Key="acme/train/releases/v1", Body=b"x") == "AccessDenied"


def test_github_production_environment_writes_releases(keyless, signer, github):
    config, bucket = github
    production = assume_role(keyless, config, github_token(signer, "acme/train", environment="production"))
    staging = assume_role(keyless, config, github_token(signer, "acme/train", environment="staging"))

    production.put_object(Bucket=bucket, Key="acme/train/releases/v1", Body=b"release")
    assert s3_error_code(staging.put_object, Bucket=bucket, Key="acme/train/releases/v2", Body=b"x") == "AccessDenied"
    staging.put_object(Bucket=bucket, Key="acme/train/staging.bin", Body=b"staging")


@pytest.mark.parametrize("repository", ["acme-evil/x", "evil/acme", "acme", "ACME/train"])
def test_github_other_repository_is_rejected(keyless, signer, github, repository):
    config, _bucket = github

    token = github_token(signer, repository)

    assert_claim_rejected(keyless, config, token, "jwt:repository")


@pytest.mark.parametrize("ref", ["refs/heads/feature", "refs/heads/main2", "refs/tags/v1", "refs/pull/7/merge"])
def test_github_other_ref_is_rejected(keyless, signer, github, ref):
    config, _bucket = github

    token = github_token(signer, "acme/train", ref=ref)

    assert_claim_rejected(keyless, config, token, "jwt:ref")


@pytest.mark.parametrize(
    "job_workflow_ref",
    [
        "acme-evil/workflows/.github/workflows/train.yml@refs/heads/main",
        "acme/workflows/.github/workflows/train.yml@refs/heads/feature",
        "acme/train/.github/workflows/train.yml@refs/heads/main",
    ],
)
def test_github_other_workflow_is_rejected(keyless, signer, github, job_workflow_ref):
    config, _bucket = github

    token = github_token(signer, "acme/train", job_workflow_ref=job_workflow_ref)

    assert_claim_rejected(keyless, config, token, "jwt:job_workflow_ref")


@pytest.mark.parametrize("repository", ["*", "*/*", "acme*", "?cme/train", "..", "/acme/train"])
def test_github_hostile_repository_is_rejected(keyless, signer, github, repository):
    config, _bucket = github

    token = github_token(signer, repository)

    assert_claim_rejected(keyless, config, token, "jwt:repository")


@pytest.mark.parametrize("repository", ["acme/*", "acme/.."])
def test_github_hostile_repository_tag_matches_literally(keyless, signer, github, s3, repository):
    config, bucket = github
    s3.put_object(Bucket=bucket, Key="acme/train/secret.bin", Body=b"secret")
    # `acme/*` and `acme/..` satisfy StringLike "acme/*", so the exchange
    # succeeds, but the mapped tag in the bucket policy's resource is literal.
    workload = assume_role(keyless, config, github_token(signer, repository))

    assert s3_error_code(workload.get_object, Bucket=bucket, Key="acme/train/secret.bin") == "AccessDenied"
    assert s3_error_code(workload.put_object, Bucket=bucket, Key="acme/train/model.bin", Body=b"x") == "AccessDenied"
    if repository == "acme/*":
        workload.put_object(Bucket=bucket, Key="acme/*/model.bin", Body=b"literal")


def test_github_conditions_on_json_exchange(api, signer, github):
    config, _bucket = github

    rejected = api.exchange_oidc(github_token(signer, "acme-evil/x"))
    accepted = api.exchange_oidc(github_token(signer, "acme/train"))

    assert rejected.status_code == 403, exchange_outcome(rejected)
    assert rejected.json()["code"] == "IDPRejectedClaim"
    assert "jwt:repository" in rejected.json()["message"]
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["principalName"] == (
        f"role/{GITHUB_ISSUER}:repo:acme/train:ref:refs/heads/main"
    )
