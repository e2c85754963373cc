"""TLS on both endpoints, and the transport facts policies can test.

A server started with --tls-cert and --tls-key serves S3 and the API over
HTTPS only. Requests that arrive over TLS carry aws:SecureTransport "true",
and every request, on the S3 endpoint and on the API, carries aws:SourceIp.
The certificates come from a throwaway CA made for this module.
"""

import datetime
import ipaddress
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keyless_client import REGION, Api, s3_error_code, unique_name
from processes import KeylessServer, TlsFiles, keyless_binary


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path, key):
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def make_certificates(directory):
    """Write a CA and a leaf for 127.0.0.1 and localhost, and return their paths."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("keyless test CA"))
        .issuer_name(_name("keyless test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )

    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(cert=directory / "leaf.pem", key=directory / "leaf.key", ca=directory / "ca.pem")
    files.cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    _write_key(files.key, leaf_key)
    files.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return files


@pytest.fixture(scope="module")
def certificates(work_dir):
    return make_certificates(work_dir / "tls")


@pytest.fixture(scope="module")
def tls_server(work_dir, certificates):
    server = KeylessServer(work_dir / "tls-data", tls=certificates).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_api(tls_server, certificates):
    return Api(tls_server.api_url, tls_server.admin_token, verify=str(certificates.ca))


def tls_s3_client(server, key, ca):
    return boto3.client(
        "s3",
        endpoint_url=server.s3_url,
        region_name=REGION,
        aws_access_key_id=key["accessKeyId"],
        aws_secret_access_key=key["secretKey"],
        verify=str(ca),
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
    )


def test_both_endpoints_serve_https_only(tls_server, certificates):
    assert tls_server.api_url.startswith("https://127.0.0.1:")
    assert tls_server.s3_url.startswith("https://127.0.0.1:")
    health = requests.get(f"{tls_server.api_url}/healthz", verify=str(certificates.ca), timeout=10)
    assert health.status_code == 200
    for url in (tls_server.api_url, tls_server.s3_url):
        plain = url.replace("https://", "http://") + "/healthz"
        with pytest.raises(requests.ConnectionError):
            requests.get(plain, timeout=10)
        # A client that does not trust the CA refuses the certificate.
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{url}/healthz", timeout=10)


def test_boto3_and_aws_cli_over_tls(tls_server, tls_api, certificates, tmp_path):
    key = tls_api.create_static_key(0)
    s3 = tls_s3_client(tls_server, key, certificates.ca)
    bucket = unique_name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="over/tls", Body=b"sealed")
    assert s3.get_object(Bucket=bucket, Key="over/tls")["Body"].read() == b"sealed"

    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": key["accessKeyId"],
            "AWS_SECRET_ACCESS_KEY": key["secretKey"],
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(tmp_path / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        }
    )
    aws_cli = Path(sys.executable).parent / "aws"
    listed = subprocess.run(
        [str(aws_cli), "--endpoint-url", tls_server.s3_url, "--ca-bundle", str(certificates.ca), "s3", "ls", f"s3://{bucket}/over/"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert "tls" in listed.stdout


def _deny_plain_http_policy(bucket):
    """Allow everyone the bucket, but deny any request that is not over TLS.

    A bucket policy without an Allow rejects every request, so it has both.
    """
    resources = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "AllowAll", "Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": resources},
            {
                "Sid": "DenyPlainHttp",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": resources,
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def test_secure_transport_deny_holds_on_plain_http_only(tls_server, tls_api, certificates, s3, bucket):
    # The same bucket policy on a TLS server and on the plain session server.
    key = tls_api.create_static_key(0)
    tls_s3 = tls_s3_client(tls_server, key, certificates.ca)
    tls_bucket = unique_name()
    tls_s3.create_bucket(Bucket=tls_bucket)
    tls_s3.put_bucket_policy(Bucket=tls_bucket, Policy=json.dumps(_deny_plain_http_policy(tls_bucket)))
    tls_s3.put_object(Bucket=tls_bucket, Key="k", Body=b"v")
    assert tls_s3.get_object(Bucket=tls_bucket, Key="k")["Body"].read() == b"v"

    s3.put_object(Bucket=bucket, Key="k", Body=b"v")
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(_deny_plain_http_policy(bucket)))
    assert s3_error_code(s3.get_object, Bucket=bucket, Key="k") == "AccessDenied"
    assert s3_error_code(s3.put_object, Bucket=bucket, Key="k2", Body=b"v") == "AccessDenied"
    # PutBucketPolicy is decided by org policies alone, so the admin can undo it.
    s3.delete_bucket_policy(Bucket=bucket)


def _user_with_policy(api, statements):
    """Create a fresh user whose only org policy is `statements`, and return its name and API token."""
    name = f"tls-{secrets.token_hex(4)}"
    for statement in statements:
        statement["principals"] = [f"user/{name}"]
    api.put_org_policy(name, statements)
    token = api.call("POST", "/v1/keyless/api-tokens", {"name": name})
    return name, token["token"]


def _can_i(api, token, action="s3:GetObject", resource="data/key"):
    return api.call("POST", "/v1/cwobject/auth/can-i", {"actions": [action], "resources": [resource]}, token=token)["verdict"]


def test_api_requests_carry_secure_transport(keyless, api, tls_api):
    statement = {
        "name": "only-over-tls",
        "effect": "Allow",
        "actions": ["s3:GetObject"],
        "resources": ["*"],
        "conditions": {"Bool": {"aws:SecureTransport": "true"}},
    }
    for server_api, expected in ((tls_api, True), (api, False)):
        name, token = _user_with_policy(server_api, [dict(statement)])
        try:
            assert _can_i(server_api, token) is expected
        finally:
            server_api.delete_org_policy(name)


def test_api_requests_carry_source_ip(api):
    for cidr, expected in (("127.0.0.0/8", True), ("10.0.0.0/8", False)):
        statement = {
            "name": "from-here",
            "effect": "Allow",
            "actions": ["s3:GetObject"],
            "resources": ["*"],
            "conditions": {"IpAddress": {"aws:SourceIp": cidr}},
        }
        name, token = _user_with_policy(api, [statement])
        try:
            assert _can_i(api, token) is expected
        finally:
            api.delete_org_policy(name)


@pytest.mark.parametrize(
    "case, expected",
    [
        ("cert-without-key", "--tls-key"),
        ("key-without-cert", "--tls-cert"),
        ("not-pem", "no PEM CERTIFICATE block"),
        ("missing-file", "cannot read the TLS certificate chain"),
        ("wrong-key", "does not fit the certificate"),
    ],
)
def test_bad_tls_configuration_stops_startup(work_dir, certificates, case, expected, tmp_path):
    other = make_certificates(tmp_path / "other")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    flags = {
        "cert-without-key": ["--tls-cert", str(certificates.cert)],
        "key-without-cert": ["--tls-key", str(certificates.key)],
        "not-pem": ["--tls-cert", str(junk), "--tls-key", str(certificates.key)],
        "missing-file": ["--tls-cert", str(tmp_path / "absent.pem"), "--tls-key", str(certificates.key)],
        "wrong-key": ["--tls-cert", str(certificates.cert), "--tls-key", str(other.key)],
    }[case]
    result = subprocess.run(
        [str(keyless_binary()), "serve", "--data-dir", str(tmp_path / "data"),
         "--s3-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0", *flags],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert expected in output, output
