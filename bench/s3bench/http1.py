"""Minimal HTTP/1.1 keep-alive clients: an asyncio one for small requests and a blocking
one that streams large bodies without holding them in memory.

Both speak only what S3 responses need: `Content-Length` or chunked bodies, and
`Connection: close`. They exist because aiohttp and urllib3 spend more CPU per request
than the server under test on a 2-core machine.
"""

import asyncio
import socket


class ProtocolError(Exception):
    """The server sent a response that this client cannot parse."""


def build_request_head(method, target, host, headers):
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def parse_response_head(head):
    """Return (status, lowercase header dict) from the bytes up to and including the blank line."""
    lines = head.decode("latin-1").split("\r\n")
    status_line = lines[0].split(" ", 2)
    if len(status_line) < 2 or not status_line[0].startswith("HTTP/1."):
        raise ProtocolError(f"invalid status line: {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line[1]), headers


class AsyncConnection:
    """One keep-alive connection for a sequence of requests with small bodies."""

    def __init__(self, host, port):
        self.host = host
        self.port = port
        self.authority = f"{host}:{port}"
        self._reader = None
        self._writer = None

    async def open(self):
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        sock = self._writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self):
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def request(self, method, target, headers, body=b""):
        """Send one request and return (status, response headers, response body).

        On a connection error the connection is closed and the error is raised, so the
        next call reconnects.
        """
        if self._writer is None:
            await self.open()
        try:
            self._writer.write(build_request_head(method, target, self.authority, headers) + body)
            head = await self._reader.readuntil(b"\r\n\r\n")
            status, response_headers = parse_response_head(head)
            response_body = await self._read_body(method, status, response_headers)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ProtocolError):
            self.close()
            raise
        if response_headers.get("connection", "").lower() == "close":
            self.close()
        return status, response_headers, response_body

    async def _read_body(self, method, status, headers):
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return b""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size_line = await self._reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0], 16)
                if size == 0:
                    # Skip trailer fields up to the final blank line.
                    while await self._reader.readuntil(b"\r\n") != b"\r\n":
                        pass
                    return b"".join(parts)
                parts.append(await self._reader.readexactly(size))
                await self._reader.readexactly(2)
        if "content-length" in headers:
            return await self._reader.readexactly(int(headers["content-length"]))
        # No framing: the body runs until the server closes the connection.
        body = await self._reader.read()
        self.close()
        return body


class BlockingConnection:
    """One blocking connection for a single request with a streamed body."""

    RECEIVE_BUFFER_BYTES = 1 << 20

    def __init__(self, host, port, timeout_seconds=600):
        self.authority = f"{host}:{port}"
        self._sock = socket.create_connection((host, port), timeout=timeout_seconds)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray(self.RECEIVE_BUFFER_BYTES)
        self._pending = b""

    def close(self):
        self._sock.close()

    def send(self, method, target, headers, body_chunks=()):
        """Send the request head and then every chunk of `body_chunks` as it is produced."""
        self._sock.sendall(build_request_head(method, target, self.authority, headers))
        for chunk in body_chunks:
            self._sock.sendall(chunk)

    def read_head(self):
        """Read the response head and return (status, lowercase header dict)."""
        data = self._pending
        while b"\r\n\r\n" not in data:
            received = self._sock.recv(65536)
            if not received:
                raise ProtocolError("connection closed before the response head ended")
            data += received
        end = data.index(b"\r\n\r\n") + 4
        self._pending = data[end:]
        return parse_response_head(data[:end])

    def read_body_into(self, length, consume):
        """Read exactly `length` body bytes and call `consume(memoryview)` on each piece.

        The views point into one reused buffer, so `consume` must not keep them.
        """
        remaining = length
        if self._pending:
            piece = memoryview(self._pending)[:remaining]
            consume(piece)
            remaining -= len(piece)
            self._pending = b""
        view = memoryview(self._buffer)
        while remaining > 0:
            count = self._sock.recv_into(view, min(remaining, len(view)))
            if count == 0:
                raise ProtocolError(f"connection closed with {remaining} body bytes still expected")
            consume(view[:count])
            remaining -= count

    def read_small_body(self, headers):
        """Read a body that fits in memory, such as an S3 error document."""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            # Keep the raw chunked framing: the text is only shown in error messages.
            data = self._pending
            while not data.endswith(b"0\r\n\r\n"):
                received = self._sock.recv(65536)
                if not received:
                    break
                data += received
            self._pending = b""
            return data
        parts = []
        self.read_body_into(int(headers.get("content-length", "0")), lambda piece: parts.append(bytes(piece)))
        return b"".join(parts)
