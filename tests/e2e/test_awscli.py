"""AWS CLI v1 (PyPI awscli) against keyless, with the admin static key."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from keyless_client import REGION, unique_name

AWS_CLI = Path(sys.executable).parent / "aws"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def aws(keyless, admin_key, tmp_path_factory):
    """Return a function that runs `aws ARGS...` against keyless and returns the result."""
    home = tmp_path_factory.mktemp("aws-home")
    # `aws s3 presign` signs with SigV2 unless the config selects s3v4, and
    # keyless accepts SigV4 only.
    (home / "config").write_text("[default]\ns3 =\n    signature_version = s3v4\n")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") or key == "AWS_CA_BUNDLE"
    }
    env.update(
        {
            "HOME": str(home),
            "AWS_ACCESS_KEY_ID": admin_key["accessKeyId"],
            "AWS_SECRET_ACCESS_KEY": admin_key["secretKey"],
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(home / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
            "AWS_MAX_ATTEMPTS": "1",
        }
    )

    def run(*args, check=True):
        command = [str(AWS_CLI), "--endpoint-url", keyless.s3_url, *args]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(args)} exited with {result.returncode}:\n{result.stderr}"
            )
        return result

    return run


@pytest.fixture
def cli_bucket(aws):
    name = unique_name("cli")
    aws("s3", "mb", f"s3://{name}")
    yield name
    aws("s3", "rb", "--force", f"s3://{name}", check=False)


def sha256_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_cli_copies_20_mib_file_as_multipart(aws, cli_bucket, tmp_path):
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(20 * MIB))

    aws("s3", "cp", str(source), f"s3://{cli_bucket}/big.bin")

    head = json.loads(
        aws("s3api", "head-object", "--bucket", cli_bucket, "--key", "big.bin").stdout
    )
    assert head["ContentLength"] == 20 * MIB
    # The CLI's default chunk size is 8 MiB, so 20 MiB go up in three parts.
    assert head["ETag"].endswith('-3"')

    downloaded = tmp_path / "downloaded.bin"
    aws("s3", "cp", f"s3://{cli_bucket}/big.bin", str(downloaded))
    assert sha256_of(downloaded) == sha256_of(source)


def test_cli_ls_sync_and_rm(aws, cli_bucket, tmp_path):
    tree = tmp_path / "tree"
    (tree / "nested").mkdir(parents=True)
    (tree / "one.txt").write_text("one")
    (tree / "nested" / "two.txt").write_text("two")

    aws("s3", "sync", str(tree), f"s3://{cli_bucket}/tree")

    listing = aws("s3", "ls", "--recursive", f"s3://{cli_bucket}/").stdout
    assert "tree/one.txt" in listing
    assert "tree/nested/two.txt" in listing
    top = aws("s3", "ls", f"s3://{cli_bucket}/tree/").stdout
    assert "PRE nested/" in top

    second_sync = aws("s3", "sync", str(tree), f"s3://{cli_bucket}/tree").stdout
    assert second_sync.strip() == ""

    aws("s3", "rm", "--recursive", f"s3://{cli_bucket}/tree")
    assert aws("s3", "ls", "--recursive", f"s3://{cli_bucket}/", check=False).stdout == ""


def test_cli_s3api_object_calls(aws, cli_bucket, tmp_path):
    body = tmp_path / "body.txt"
    body.write_text("hello from the cli")

    aws(
        "s3api",
        "put-object",
        "--bucket",
        cli_bucket,
        "--key",
        "k.txt",
        "--body",
        str(body),
        "--metadata",
        "origin=cli",
    )
    out = tmp_path / "out.txt"
    got = json.loads(
        aws("s3api", "get-object", "--bucket", cli_bucket, "--key", "k.txt", str(out)).stdout
    )

    assert out.read_text() == "hello from the cli"
    assert got["Metadata"] == {"origin": "cli"}
    listed = json.loads(aws("s3api", "list-objects-v2", "--bucket", cli_bucket).stdout)
    assert [item["Key"] for item in listed["Contents"]] == ["k.txt"]


def test_cli_reports_missing_key(aws, cli_bucket, tmp_path):
    result = aws(
        "s3api",
        "get-object",
        "--bucket",
        cli_bucket,
        "--key",
        "absent",
        str(tmp_path / "x"),
        check=False,
    )

    assert result.returncode != 0
    assert "NoSuchKey" in result.stderr


def test_cli_presign(aws, cli_bucket, tmp_path):
    body = tmp_path / "body.txt"
    body.write_text("presigned by the cli")
    aws("s3", "cp", str(body), f"s3://{cli_bucket}/p.txt")

    url = aws("s3", "presign", f"s3://{cli_bucket}/p.txt", "--expires-in", "120").stdout.strip()

    response = requests.get(url, timeout=30)
    assert response.status_code == 200, response.text
    assert response.text == "presigned by the cli"
