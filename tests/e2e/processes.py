"""Start and stop the servers the end-to-end tests run against.

Every server binds to 127.0.0.1 and is stopped by its process id.
"""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
TESTS_DIR = REPO_ROOT / "tests"
STARTUP_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 10


def free_port():
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def keyless_binary():
    """Return the keyless binary: $KEYLESS_BIN, else the cargo release build."""
    if os.environ.get("KEYLESS_BIN"):
        return Path(os.environ["KEYLESS_BIN"])
    target_dir = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
    if not target_dir.is_absolute():
        target_dir = REPO_ROOT / target_dir
    return target_dir / "release" / "keyless"


def log_tail(path, lines=40):
    """Return the last lines of a log file, for failure messages."""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


def stop_process(process):
    """Stop a child process by its pid: SIGTERM, then SIGKILL after a timeout."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class TlsFiles(NamedTuple):
    """A server certificate chain, its key, and the CA file clients trust it with."""

    cert: Path
    key: Path
    ca: Path


class KeylessServer:
    """One `keyless serve` process with its own data directory.

    The first start binds both listeners to port 0, so the kernel picks free
    ports and no other process can take them between choosing and binding.
    keyless logs the addresses it bound in its "keyless serving" line, and
    `start` reads them from the lines this start appended to the log. A
    restart of the same object binds the ports of the previous start again,
    so that clients keep their endpoints.
    """

    def __init__(self, data_dir, extra_args=(), env=None, tls=None):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.s3_port = None
        self.api_port = None
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.extra_args = list(extra_args)
        # With `tls` (TlsFiles), both endpoints serve HTTPS only.
        self.tls = tls
        self.env = env
        self.process = None
        self.admin_token = None

    @property
    def scheme(self):
        return "https" if self.tls else "http"

    @property
    def s3_url(self):
        return f"{self.scheme}://127.0.0.1:{self._port('s3_port')}"

    @property
    def api_url(self):
        return f"{self.scheme}://127.0.0.1:{self._port('api_port')}"

    def _port(self, name):
        port = getattr(self, name)
        if port is None:
            raise RuntimeError(f"keyless has no {name} yet: ports are known once start() returns")
        return port

    def start(self):
        binary = keyless_binary()
        if not binary.exists():
            raise RuntimeError(
                f"keyless binary not found at {binary}: run `cargo build --release` "
                "or set KEYLESS_BIN"
            )
        command = [
            str(binary),
            "serve",
            "--data-dir",
            str(self.data_dir),
            "--s3-listen",
            f"127.0.0.1:{self.s3_port or 0}",
            "--api-listen",
            f"127.0.0.1:{self.api_port or 0}",
            # The "keyless serving" line is read as JSON.
            "--log-format",
            "json",
            *self.extra_args,
        ]
        if self.tls:
            command += ["--tls-cert", str(self.tls.cert), "--tls-key", str(self.tls.key)]
        env = dict(os.environ, **(self.env or {}))
        # The log is appended across restarts, so this start's lines begin at the current end.
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        self.s3_port, self.api_port = self._wait_for_serving_line(log_start, deadline)
        self._wait_until_healthy(deadline)
        token_path = self.data_dir / "admin-token"
        self.admin_token = token_path.read_text().strip()
        return self

    def _wait_for_serving_line(self, log_start, deadline):
        """Return the (S3, API) ports from this start's "keyless serving" log line."""
        while time.monotonic() < deadline:
            self._check_running()
            with open(self.log_path, "rb") as log:
                log.seek(log_start)
                ports = serving_ports(log.read())
            if ports is not None:
                return ports
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"keyless logged no \"keyless serving\" line within {STARTUP_TIMEOUT_SECONDS} s; "
            f"log {self.log_path}:\n{log_tail(self.log_path)}"
        )

    def _wait_until_healthy(self, deadline):
        last_error = None
        while time.monotonic() < deadline:
            self._check_running()
            try:
                verify = str(self.tls.ca) if self.tls else True
                response = requests.get(f"{self.api_url}/healthz", timeout=2, verify=verify)
                if response.status_code == 200:
                    return
                last_error = f"status {response.status_code}"
            except requests.ConnectionError as error:
                last_error = error
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"keyless was not healthy within {STARTUP_TIMEOUT_SECONDS} s "
            f"(last error: {last_error}); log {self.log_path}:\n{log_tail(self.log_path)}"
        )

    def _check_running(self):
        if self.process.poll() is not None:
            raise RuntimeError(
                f"keyless exited with status {self.process.returncode} during startup; "
                f"log {self.log_path}:\n{log_tail(self.log_path)}"
            )

    def stop(self):
        if self.process is not None:
            stop_process(self.process)


def serving_ports(log):
    """Return the (S3, API) ports of the first "keyless serving" line in JSON `log`, or None.

    A line still being written has no newline yet and is skipped.
    """
    for line in log.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            event = json.loads(line)
        except ValueError:
            continue
        fields = event.get("fields") if isinstance(event, dict) else None
        if not isinstance(fields, dict) or fields.get("message") != "keyless serving":
            continue
        return port_of(fields["s3"]), port_of(fields["api"])
    return None


def port_of(address):
    """Return the port of a socket address such as `127.0.0.1:9000`."""
    return int(address.rpartition(":")[2])
