"""Closed-loop load generator for small PUT and GET requests.

Each client is one keep-alive connection that sends its next request as soon as the
previous response has arrived. Clients are spread over several worker processes, each
running an asyncio event loop, so the generator can use more than one core. Only
requests that complete inside the measurement window, which starts after the warm-up,
are counted.
"""

import asyncio
import hashlib
import multiprocessing
import os
import random
import time

from . import procstat
from .http1 import AsyncConnection, ProtocolError
from .sigv4 import Signer, encode_path

MAX_ERROR_SAMPLES = 5
READY_TIMEOUT_SECONDS = 300


def object_body(size):
    """Return the body shared by all small objects: fixed pseudo-random bytes."""
    return random.Random(size).randbytes(size)


def get_key(prefix, index):
    return f"{prefix}/get/{index:06d}"


class WorkerStats:
    def __init__(self):
        self.operations = 0
        self.latencies = []
        self.errors = 0
        self.error_samples = []

    def record_error(self, message):
        self.errors += 1
        if len(self.error_samples) < MAX_ERROR_SAMPLES and message not in self.error_samples:
            self.error_samples.append(message)


class Worker:
    """The clients of one worker process."""

    def __init__(self, config):
        self.config = config
        self.signer = Signer(config["access_key"], config["secret_key"], config["region"])
        self.body = object_body(config["object_size"])
        self.body_sha256 = hashlib.sha256(self.body).hexdigest()
        self.stats = WorkerStats()
        self.connections = [AsyncConnection(config["host"], config["port"]) for _ in range(config["connections"])]

    def _object_path(self, key):
        return encode_path(f"/{self.config['bucket']}/{key}")

    async def put(self, connection, key):
        path = self._object_path(key)
        headers = self.signer.sign(
            "PUT", connection.authority, path, None, self.body_sha256, {"Content-Length": str(len(self.body))}
        )
        status, _, response_body = await connection.request("PUT", path, headers, self.body)
        if status != 200:
            return f"PUT {key}: HTTP {status}: {response_body[:300]!r}"
        return None

    async def get(self, connection, key):
        path = self._object_path(key)
        headers = self.signer.sign("GET", connection.authority, path)
        status, _, response_body = await connection.request("GET", path, headers)
        if status != 200:
            return f"GET {key}: HTTP {status}: {response_body[:300]!r}"
        if response_body != self.body:
            return f"GET {key}: body differs from the uploaded object ({len(response_body)} bytes)"
        return None

    async def preload(self):
        """Upload this worker's share of the objects that the GET test reads."""
        config = self.config
        indexes = list(range(config["worker_index"], config["get_key_count"], config["worker_count"]))

        async def upload_slice(connection, slice_indexes):
            for index in slice_indexes:
                error = await self.put(connection, get_key(config["key_prefix"], index))
                if error:
                    raise RuntimeError(f"preloading GET objects failed: {error}")

        count = len(self.connections)
        await asyncio.gather(
            *(upload_slice(connection, indexes[offset::count]) for offset, connection in enumerate(self.connections))
        )

    async def run_client(self, client_index, connection, measure_start, end):
        config = self.config
        stats = self.stats
        rng = random.Random(config["worker_index"] * 100003 + client_index)
        sequence = 0
        while True:
            started = time.monotonic()
            if started >= end:
                return
            if config["operation"] == "put":
                key = f"{config['key_prefix']}/put/w{config['worker_index']}-c{client_index}-{sequence:08d}"
                sequence += 1
                request = self.put(connection, key)
            else:
                request = self.get(connection, get_key(config["key_prefix"], rng.randrange(config["get_key_count"])))
            try:
                error = await request
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ProtocolError) as exc:
                error = f"{config['operation'].upper()}: {type(exc).__name__}: {exc}"
                # Back off briefly so a refused connection does not spin the loop.
                await asyncio.sleep(0.01)
            finished = time.monotonic()
            if error:
                stats.record_error(error)
            elif measure_start <= finished < end:
                stats.operations += 1
                stats.latencies.append(finished - started)

    async def run(self, pipe):
        config = self.config
        for connection in self.connections:
            await connection.open()
        if config["operation"] == "get":
            await self.preload()
        pipe.send({"ready": True})

        # Blocking here is fine: the connections are idle until the start time arrives.
        start_at = pipe.recv()
        measure_start = start_at + config["warmup_seconds"]
        end = measure_start + config["duration_seconds"]
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))

        clients = [
            asyncio.create_task(self.run_client(index, connection, measure_start, end))
            for index, connection in enumerate(self.connections)
        ]
        await asyncio.gather(*clients)
        for connection in self.connections:
            connection.close()

        return {
            "operations": self.stats.operations,
            "latencies": self.stats.latencies,
            "errors": self.stats.errors,
            "error_samples": self.stats.error_samples,
        }


def worker_main(pipe, config):
    """Entry point of one worker process: report readiness, run, and send the results."""
    import uvloop

    try:
        result = uvloop.run(Worker(config).run(pipe))
    except Exception as exc:  # Any failure is sent to the parent, which reports it.
        pipe.send({"failed": f"{type(exc).__name__}: {exc}"})
        return
    pipe.send(result)


def percentile(sorted_values, fraction):
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


def run_small_ops(endpoint, credentials, bucket, operation, options, server_pid, key_prefix):
    """Run one closed-loop test (`operation` is "put" or "get") and return its results.

    `options` supplies clients, client_processes, object_size, get_key_count,
    warmup_seconds and duration_seconds.
    """
    host, port = endpoint
    processes = max(1, min(options.client_processes, options.clients))
    shares = [options.clients // processes + (1 if index < options.clients % processes else 0) for index in range(processes)]

    context = multiprocessing.get_context("spawn")
    workers = []
    for index, connections in enumerate(shares):
        config = {
            "host": host,
            "port": port,
            "access_key": credentials[0],
            "secret_key": credentials[1],
            "region": options.region,
            "bucket": bucket,
            "operation": operation,
            "connections": connections,
            "worker_index": index,
            "worker_count": processes,
            "object_size": options.object_size,
            "get_key_count": options.get_key_count,
            "key_prefix": key_prefix,
            "warmup_seconds": options.warmup_seconds,
            "duration_seconds": options.duration_seconds,
        }
        parent_end, child_end = context.Pipe()
        process = context.Process(target=worker_main, args=(child_end, config), daemon=True)
        process.start()
        workers.append((process, parent_end))

    try:
        for process, pipe in workers:
            if not pipe.poll(READY_TIMEOUT_SECONDS):
                raise RuntimeError(f"load generator process {process.pid} was not ready after {READY_TIMEOUT_SECONDS} s")
            message = pipe.recv()
            if "failed" in message:
                raise RuntimeError(f"load generator process {process.pid} failed: {message['failed']}")

        start_at = time.monotonic() + 0.2
        for _, pipe in workers:
            pipe.send(start_at)
        measure_start = start_at + options.warmup_seconds
        end = measure_start + options.duration_seconds

        cpu_window = procstat.CpuWindow(server_pid, [os.getpid()] + [process.pid for process, _ in workers])
        time.sleep(max(0.0, measure_start - time.monotonic()))
        cpu_window.start()
        time.sleep(max(0.0, end - time.monotonic()))
        cpu_used = cpu_window.stop()

        results = []
        for process, pipe in workers:
            if not pipe.poll(120):
                raise RuntimeError(f"load generator process {process.pid} sent no results")
            message = pipe.recv()
            if "failed" in message:
                raise RuntimeError(f"load generator process {process.pid} failed: {message['failed']}")
            results.append(message)
    finally:
        for process, _ in workers:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()

    latencies = sorted(latency for result in results for latency in result["latencies"])
    operations = sum(result["operations"] for result in results)
    error_samples = []
    for result in results:
        error_samples.extend(sample for sample in result["error_samples"] if sample not in error_samples)

    def milliseconds(value):
        return None if value is None else round(value * 1000, 3)


    return {
        "operation": operation.upper(),
        "object_size_bytes": options.object_size,
        "clients": options.clients,
        "client_processes": processes,
        "warmup_seconds": options.warmup_seconds,
        "duration_seconds": options.duration_seconds,
        "operations": operations,
        "ops_per_second": operations / options.duration_seconds,
        "latency_ms": {
            "p50": milliseconds(percentile(latencies, 0.50)),
            "p90": milliseconds(percentile(latencies, 0.90)),
            "p99": milliseconds(percentile(latencies, 0.99)),
            "max": milliseconds(latencies[-1] if latencies else None),
        },
        "errors": sum(result["errors"] for result in results),
        "error_samples": error_samples[:MAX_ERROR_SAMPLES],
        **cpu_used,
    }
