"""Run the selected tests against every server, one test at a time across the servers.

All servers run for the whole benchmark, and each test runs against each server in turn
before the next test starts. Load from other processes that comes and goes during a run
then affects both servers' results for a test about equally.
"""

import datetime
import os
import secrets
import time
import traceback

from . import procstat, report, s3ops
from .small_ops import run_small_ops

BUCKET = "bench"


class SmallOpsOptions:
    """The subset of the command line that the load generator needs."""

    def __init__(self, options):
        self.clients = options.clients
        self.client_processes = options.client_processes
        self.object_size = options.object_size
        self.get_key_count = options.get_objects
        self.warmup_seconds = options.warmup
        self.duration_seconds = options.duration
        self.region = options.region


def _timed_transfer(server, size, transfer):
    """Run `transfer()`, which returns its seconds, and add MB/s and the CPU used on both sides."""
    cpu_window = procstat.CpuWindow(server.pid, [os.getpid()])
    cpu_window.start()
    seconds = transfer()
    return {
        "size_bytes": size,
        "seconds": seconds,
        "megabytes_per_second": size / seconds / report.MEGABYTE,
        **cpu_window.stop(),
    }


def _median_of(samples):
    """Return the sample with the median MB/s, plus every sample's MB/s."""
    ordered = sorted(samples, key=lambda sample: sample["megabytes_per_second"])
    result = dict(ordered[(len(ordered) - 1) // 2])
    result["repeats"] = len(samples)
    result["all_megabytes_per_second"] = [sample["megabytes_per_second"] for sample in samples]
    # The worst sample, so that a disturbance in any repeat is reported.
    result["other_processes_cpu_cores"] = max(sample["other_processes_cpu_cores"] for sample in samples)
    return result


def measure_large(server, signer, size, repeats):
    """PUT then GET a new object `repeats` times; return the median PUT and the median GET."""
    puts, gets = [], []
    for repeat in range(repeats):
        key = f"large/{size}-{repeat}"
        puts.append(_timed_transfer(server, size, lambda: s3ops.put_streamed(server.endpoint, signer, BUCKET, key, size)))
        gets.append(_timed_transfer(server, size, lambda: s3ops.get_streamed(server.endpoint, signer, BUCKET, key, size)))
    return _median_of(puts), _median_of(gets)


def measure_rss(server, signer, size):
    baseline = procstat.tree_rss_bytes(server.pid)
    with procstat.RssSampler(server.pid, interval_seconds=0.1) as sampler:
        result = _timed_transfer(
            server, size, lambda: s3ops.put_streamed(server.endpoint, signer, BUCKET, f"rss/{size}", size)
        )
    return {
        **result,
        "baseline_rss_mebibytes": baseline / report.MEBIBYTE,
        "peak_rss_mebibytes": sampler.peak_bytes / report.MEBIBYTE,
        "samples": sampler.samples,
        "sample_interval_seconds": sampler.interval_seconds,
        # VmHWM covers the whole life of the process, including the earlier tests.
        "lifetime_vmhwm_mebibytes": procstat.tree_hwm_bytes(server.pid) / report.MEBIBYTE,
    }


def warn_if_disturbed(result):
    if result.get("other_processes_cpu_cores", 0.0) > report.OTHER_CPU_WARNING_CORES:
        log(f"  WARNING: other processes used {result['other_processes_cpu_cores']:.2f} CPU cores during this test; "
            "rerun on an idle machine for comparable numbers")


def log(message):
    print(f"[{datetime.datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def run_test(entry, test, function):
    """Return the result of `function`, or record its failure in `entry` and return None."""
    try:
        return function()
    except Exception as exc:  # Any failure is recorded and printed, and the run goes on.
        entry["failures"][test] = f"{type(exc).__name__}: {exc}"
        log(f"{entry['display_name']} {test} failed: {type(exc).__name__}: {exc}")
        traceback.print_exc()
        return None


class ServerRun:
    """One server under test, with its results and failures as stored in the JSON document."""

    def __init__(self, server):
        self.server = server
        self.signer = None
        self.ready = False
        self.entry = {
            "display_name": server.display_name,
            "durability_note": server.durability_note,
            "version": server.version(),
            "binary": server.binary,
            "binary_modified_at": datetime.datetime.fromtimestamp(
                os.stat(server.binary).st_mtime, datetime.timezone.utc
            ).isoformat(timespec="seconds"),
            "results": {},
            "failures": {},
        }

    @property
    def name(self):
        return self.server.display_name

    def set_up(self, options):
        """Start the server, create the bucket and write a first object; record any failure."""
        server = self.server
        log(f"starting {server.display_name} ({self.entry['version']})")
        started = time.monotonic()
        try:
            server.start()
            self.entry["startup_seconds"] = time.monotonic() - started
            log(f"{server.display_name} serves S3 on {server.endpoint[0]}:{server.endpoint[1]} (pid {server.pid})")
            self.signer = server.signer()
            s3ops.create_bucket(server.endpoint, self.signer, BUCKET)
            # SeaweedFS allocates its volumes on the first write, which can take seconds; keep
            # that out of the measured windows.
            first_put_started = time.monotonic()
            s3ops.put_object(server.endpoint, self.signer, BUCKET, "first-object", b"x" * options.object_size)
            self.entry["first_put_seconds"] = time.monotonic() - first_put_started
            self.ready = True
        except Exception as exc:  # Recorded as this server's failure; the other servers still run.
            self.entry["failures"]["setup"] = f"{type(exc).__name__}: {exc}"
            log(f"{server.display_name} setup failed: {type(exc).__name__}: {exc}")

    def run_small(self, operation, options, key_prefix):
        test = f"small_{operation}"
        log(f"{self.name}: {report.format_size(options.object_size)} {operation.upper()}, "
            f"{options.clients} clients, {options.warmup:g} s warm-up + {options.duration:g} s")
        server = self.server
        result = run_test(self.entry, test, lambda: run_small_ops(
            server.endpoint, server.credentials, BUCKET, operation, SmallOpsOptions(options), server.pid, key_prefix))
        if not result:
            return
        self.entry["results"][test] = result
        log(f"  {result['ops_per_second']:,.0f} ops/s, p99 {result['latency_ms']['p99']} ms, "
            f"{result['errors']} errors; CPU cores: server {result['server_cpu_cores']:.2f}, "
            f"client {result['client_cpu_cores']:.2f}, kernel {result['kernel_cpu_cores']:.2f}, "
            f"other processes {result['other_processes_cpu_cores']:.2f}")
        if result["operations"] == 0:
            log(f"  WARNING: no {operation.upper()} completed inside the measured window; "
                "the server stalled or the window is too short")
        warn_if_disturbed(result)

    def run_large(self, options):
        log(f"{self.name}: {report.format_size(options.large_size)} PUT then GET, one stream, "
            f"{options.large_repeats} times")
        result = run_test(self.entry, "large",
                          lambda: measure_large(self.server, self.signer, options.large_size, options.large_repeats))
        if not result:
            return
        self.entry["results"]["large_put"], self.entry["results"]["large_get"] = result
        log(f"  median PUT {result[0]['megabytes_per_second']:,.0f} MB/s, "
            f"median GET {result[1]['megabytes_per_second']:,.0f} MB/s")
        warn_if_disturbed(result[0])
        warn_if_disturbed(result[1])

    def run_rss(self, options):
        log(f"{self.name}: {report.format_size(options.rss_size)} PUT while sampling server RSS")
        result = run_test(self.entry, "rss_put", lambda: measure_rss(self.server, self.signer, options.rss_size))
        if not result:
            return
        self.entry["results"]["rss_put"] = result
        log(f"  peak RSS {result['peak_rss_mebibytes']:,.0f} MiB (baseline {result['baseline_rss_mebibytes']:,.0f} MiB), "
            f"{result['megabytes_per_second']:,.0f} MB/s")
        warn_if_disturbed(result)


def run_benchmark(servers, options):
    """Start every server, run the tests selected by `options.only`, stop the servers.

    Returns {server name: JSON entry}.
    """
    runs = [ServerRun(server) for server in servers]
    key_prefix = secrets.token_hex(4)
    try:
        for run in runs:
            run.set_up(options)
        ready = [run for run in runs if run.ready]

        if "small" in options.only:
            for operation in ("put", "get"):
                for run in ready:
                    run.run_small(operation, options, key_prefix)
        if "large" in options.only:
            for run in ready:
                run.run_large(options)
        if "rss" in options.only:
            for run in ready:
                run.run_rss(options)
    finally:
        for run in runs:
            run.server.stop(options.stop_grace)
            log(f"stopped {run.name}")
    return {run.server.name: run.entry for run in runs}
