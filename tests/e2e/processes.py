"""Start and stop the servers the end-to-end tests run against.

Every server binds to 127.0.0.1 and is stopped by its process id.
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

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


class KeylessServer:
    """One `keyless serve` process with its own data directory and ports."""

    def __init__(self, data_dir, extra_args=(), env=None):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.s3_port = free_port()
        self.api_port = free_port()
        self.s3_url = f"http://127.0.0.1:{self.s3_port}"
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.log"
        self.extra_args = list(extra_args)
        self.env = env
        self.process = None
        self.admin_token = None

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
            f"127.0.0.1:{self.s3_port}",
            "--api-listen",
            f"127.0.0.1:{self.api_port}",
            *self.extra_args,
        ]
        env = dict(os.environ, **(self.env or {}))
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self._wait_until_healthy()
        token_path = self.data_dir / "admin-token"
        self.admin_token = token_path.read_text().strip()
        return self

    def _wait_until_healthy(self):
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        last_error = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"keyless exited with status {self.process.returncode} during startup; "
                    f"log {self.log_path}:\n{log_tail(self.log_path)}"
                )
            try:
                response = requests.get(f"{self.api_url}/healthz", timeout=2)
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

    def stop(self):
        if self.process is not None:
            stop_process(self.process)
