"""Virtual-hosted-style addressing: the bucket in the Host header, under `localhost`.

Names such as `data.localhost` resolve to 127.0.0.1 only where the resolver
knows the `localhost` zone (systemd-resolved, nss-myhostname). Elsewhere the
boto3 client here signs for `<bucket>.localhost:<port>` as usual, and a
`before-send` hook connects to 127.0.0.1 while keeping that Host header, so
the server sees exactly what it would see with working name resolution.
"""

import socket
import urllib.parse

import pytest

from keyless_client import Api, empty_and_delete_bucket, s3_client, unique_name
from processes import KeylessServer
from raw_s3 import credentials_of, send, sign

DOMAIN = "localhost"


def localhost_subdomains_resolve():
    try:
        addresses = socket.getaddrinfo(f"probe.{DOMAIN}", 80, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return False
    return all(address[4][0] in ("127.0.0.1", "::1") for address in addresses)


def connect_to_loopback(request, **_kwargs):
    """Send a request for `<bucket>.localhost` to 127.0.0.1, keeping its Host header."""
    parts = urllib.parse.urlsplit(request.url)
    request.headers["Host"] = parts.netloc
    request.url = urllib.parse.urlunsplit(parts._replace(netloc=f"127.0.0.1:{parts.port}"))


@pytest.fixture(scope="module")
def virtual_host_server(tmp_path_factory):
    server = KeylessServer(
        tmp_path_factory.mktemp("virtual-host") / "data",
        extra_args=["--s3-virtual-host-domain", DOMAIN],
    ).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def virtual_host_key(virtual_host_server):
    api = Api(virtual_host_server.api_url, virtual_host_server.admin_token)
    return api.create_static_key(0)


@pytest.fixture(scope="module")
def virtual_s3(virtual_host_server, virtual_host_key):
    client = s3_client(
        f"http://{DOMAIN}:{virtual_host_server.s3_port}",
        virtual_host_key["accessKeyId"],
        virtual_host_key["secretKey"],
        s3={"addressing_style": "virtual"},
    )
    if not localhost_subdomains_resolve():
        client.meta.events.register("before-send.s3", connect_to_loopback)
    return client


def test_virtual_host_object_round_trip(virtual_s3):
    bucket = unique_name()
    virtual_s3.create_bucket(Bucket=bucket)
    try:
        virtual_s3.put_object(Bucket=bucket, Key="dir/file.txt", Body=b"virtual")

        got = virtual_s3.get_object(Bucket=bucket, Key="dir/file.txt")
        assert got["Body"].read() == b"virtual"
        listed = virtual_s3.list_objects_v2(Bucket=bucket, Prefix="dir/")
        assert [item["Key"] for item in listed["Contents"]] == ["dir/file.txt"]
        virtual_s3.head_bucket(Bucket=bucket)
    finally:
        empty_and_delete_bucket(virtual_s3, bucket)


def test_virtual_host_raw_request_host_header(virtual_host_server, virtual_host_key):
    bucket = unique_name()
    path_style = s3_client(
        virtual_host_server.s3_url,
        virtual_host_key["accessKeyId"],
        virtual_host_key["secretKey"],
    )
    path_style.create_bucket(Bucket=bucket)
    path_style.put_object(Bucket=bucket, Key="k", Body=b"by host header")
    try:
        port = virtual_host_server.s3_port
        host = f"{bucket}.{DOMAIN}:{port}"
        request = sign(
            "GET", f"http://{host}/k", credentials_of(virtual_host_key), headers={"Host": host}
        )
        request.url = f"http://127.0.0.1:{port}/k"

        response = send(request)

        assert response.status_code == 200, response.text
        assert response.content == b"by host header"
    finally:
        empty_and_delete_bucket(path_style, bucket)


def test_path_style_still_served(virtual_host_server, virtual_host_key):
    path_style = s3_client(
        virtual_host_server.s3_url,
        virtual_host_key["accessKeyId"],
        virtual_host_key["secretKey"],
    )

    response = path_style.list_buckets()

    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
