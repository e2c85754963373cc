"""Single S3 requests over a blocking connection, including streamed large objects."""

import hashlib
import random
import time

from .http1 import BlockingConnection
from .sigv4 import EMPTY_PAYLOAD_SHA256, UNSIGNED_PAYLOAD, encode_path

# Large bodies repeat this block, so the client never holds more than one block in memory
# and a reader can check any byte of the object against it.
PATTERN_BYTES = 1 << 20
PATTERN = random.Random(20240611).randbytes(PATTERN_BYTES)
# The pattern followed by its own start, so that a slice starting near its end does not wrap.
_PATTERN_EXTENDED = PATTERN + PATTERN[:64]
# Bytes compared at the start of every received piece of a large GET.
_SAMPLE_BYTES = 16


class S3Error(Exception):
    """A request returned an unexpected HTTP status."""


def request_once(endpoint, signer, method, path, body=b"", headers=None):
    """Send one signed request with an in-memory body and return (status, headers, body)."""
    host, port = endpoint
    connection = BlockingConnection(host, port, timeout_seconds=60)
    try:
        encoded_path = encode_path(path)
        extra = dict(headers or {})
        extra["Content-Length"] = str(len(body))
        payload_hash = hashlib.sha256(body).hexdigest() if body else EMPTY_PAYLOAD_SHA256
        signed = signer.sign(method, connection.authority, encoded_path, None, payload_hash, extra)
        connection.send(method, encoded_path, signed, [body] if body else [])
        status, response_headers = connection.read_head()
        response_body = b"" if method == "HEAD" else connection.read_small_body(response_headers)
        return status, response_headers, response_body
    finally:
        connection.close()


def create_bucket(endpoint, signer, bucket):
    status, _, body = request_once(endpoint, signer, "PUT", f"/{bucket}")
    if status != 200:
        raise S3Error(f"CreateBucket {bucket} failed: HTTP {status}: {body[:500]!r}")


def put_object(endpoint, signer, bucket, key, body):
    status, _, response_body = request_once(endpoint, signer, "PUT", f"/{bucket}/{key}", body)
    if status != 200:
        raise S3Error(f"PUT {key} failed: HTTP {status}: {response_body[:500]!r}")


def pattern_chunks(size):
    """Yield views of the repeated pattern that add up to `size` bytes."""
    view = memoryview(PATTERN)
    remaining = size
    while remaining > 0:
        count = min(remaining, PATTERN_BYTES)
        yield view[:count]
        remaining -= count


def put_streamed(endpoint, signer, bucket, key, size):
    """Upload `size` bytes of the pattern with one PUT (UNSIGNED-PAYLOAD) and return the seconds taken.

    The body is produced block by block while it is sent, so memory use does not depend on `size`.
    """
    host, port = endpoint
    connection = BlockingConnection(host, port)
    encoded_path = encode_path(f"/{bucket}/{key}")
    headers = signer.sign(
        "PUT", connection.authority, encoded_path, None, UNSIGNED_PAYLOAD, {"Content-Length": str(size)}
    )
    try:
        started = time.monotonic()
        try:
            connection.send("PUT", encoded_path, headers, pattern_chunks(size))
        except OSError as exc:
            # The server may have sent an early error response and closed the connection.
            raise S3Error(f"PUT {key} ({size} bytes) failed while sending: {exc}: {_try_read_error(connection)}") from exc
        status, response_headers = connection.read_head()
        response_body = connection.read_small_body(response_headers)
        elapsed = time.monotonic() - started
    finally:
        connection.close()
    if status != 200:
        raise S3Error(f"PUT {key} ({size} bytes) failed: HTTP {status}: {response_body[:500]!r}")
    return elapsed


def _try_read_error(connection):
    try:
        status, headers = connection.read_head()
        return f"HTTP {status}: {connection.read_small_body(headers)[:500]!r}"
    except OSError as exc:
        return f"no response ({exc})"
    except Exception as exc:  # Only used to enrich an error that is raised anyway.
        return f"unreadable response ({type(exc).__name__}: {exc})"


def get_streamed(endpoint, signer, bucket, key, size):
    """Download an object written by `put_streamed` and return the seconds taken.

    The body is discarded as it arrives. The length is checked exactly, and the first bytes
    of every received piece are compared with the pattern at that offset.
    """
    host, port = endpoint
    connection = BlockingConnection(host, port)
    encoded_path = encode_path(f"/{bucket}/{key}")
    headers = signer.sign("GET", connection.authority, encoded_path)
    offset = 0

    def check_piece(piece):
        nonlocal offset
        start = offset % PATTERN_BYTES
        count = min(_SAMPLE_BYTES, len(piece))
        if piece[:count] != _PATTERN_EXTENDED[start : start + count]:
            raise S3Error(f"GET {key}: content differs from the uploaded object at byte {offset}")
        offset += len(piece)

    try:
        started = time.monotonic()
        connection.send("GET", encoded_path, headers)
        status, response_headers = connection.read_head()
        if status != 200:
            raise S3Error(f"GET {key} failed: HTTP {status}: {connection.read_small_body(response_headers)[:500]!r}")
        length = response_headers.get("content-length")
        if length is None or int(length) != size:
            raise S3Error(f"GET {key}: expected Content-Length {size}, got {length}")
        connection.read_body_into(size, check_piece)
        elapsed = time.monotonic() - started
    finally:
        connection.close()
    return elapsed
