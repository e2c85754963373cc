"""Run the minio-py functional tests to the end and summarize them in Markdown.

The suite's own `main()` stops at the first failing test. `run` imports its tests.py,
wraps the suite's per-test runner so that a failure is recorded and the next test still
runs, and gives each test a time limit. The suite prints one JSON object per test (the
format of MinIO's Mint harness), which `summarize` turns into a Markdown report.

Usage:
    minio_suite.py run TESTS_PY [--test-timeout SECONDS]
    minio_suite.py summarize LOG --output FILE --label TEXT --endpoint HOST:PORT --minio-version VERSION
"""

import argparse
import datetime
import functools
import importlib.util
import json
import re
import signal
import sys
from pathlib import Path


class TestTimeout(Exception):
    """A test ran longer than its time limit."""


def with_time_limit(function, seconds):
    """Wrap a test so that it raises TestTimeout after `seconds`, keeping its name for the report."""

    @functools.wraps(function)
    def limited(*args, **kwargs):
        def on_alarm(_signum, _frame):
            raise TestTimeout(f"test did not finish within {seconds} s")

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(seconds)
        try:
            return function(*args, **kwargs)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)

    return limited


def run(tests_py, test_timeout):
    spec = importlib.util.spec_from_file_location("minio_functional_tests", tests_py)
    suite = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suite)

    original_call_test = suite._call_test

    def call_test_to_the_end(function, *args, **kwargs):
        try:
            original_call_test(with_time_limit(function, test_timeout), *args, **kwargs)
        except suite.TestFailed:
            # The suite has already printed this test's FAIL line.
            pass

    # main() looks the runner up in the module's globals on every call.
    suite._call_test = call_test_to_the_end
    suite.main()
    return 0


def read_entries(log_path):
    """Return the per-test JSON objects from the log, skipping any other output."""
    entries = []
    for line in Path(log_path).read_text(errors="replace").splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and "name" in entry and "status" in entry:
            entries.append(entry)
    return entries


# Python separates chained exceptions in a traceback with one of these lines.
_CHAINED_EXCEPTION_MARKERS = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)


def failure_location(traceback_text):
    """Return the last tests.py frame of a traceback as 'tests.py:LINE in FUNCTION: CODE', or None."""
    lines = traceback_text.splitlines()
    location = None
    for index, line in enumerate(lines):
        match = re.match(r'\s*File ".*tests\.py", line (\d+), in (\w+)', line)
        if match:
            code = lines[index + 1].strip() if index + 1 < len(lines) else ""
            location = f"tests.py:{match.group(1)} in {match.group(2)}: {code}"
    return location


def exception_chain(traceback_text):
    """Return (tests.py location, exception line) for each exception in a traceback, first one first.

    A test's cleanup code often raises in a `finally` block, which hides the original
    failure behind a chained exception, so every exception in the chain is returned.
    """
    segments = [traceback_text]
    for marker in _CHAINED_EXCEPTION_MARKERS:
        segments = [part for segment in segments for part in segment.split(marker)]
    chain = []
    for segment in segments:
        lines = [line for line in segment.splitlines() if line.strip()]
        if lines:
            chain.append((failure_location(segment), lines[-1].strip()))
    return chain


def short_name(entry):
    return entry["name"].removeprefix("minio-py:")


def summarize(log_path, output, label, endpoint, minio_version, mint_mode):
    entries = read_entries(log_path)
    passed = [entry for entry in entries if entry["status"] == "PASS"]
    failed = [entry for entry in entries if entry["status"] == "FAIL"]
    not_applicable = [entry for entry in entries if entry["status"] == "NA"]

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# minio-py functional tests against {label}",
        "",
        f"- Suite: tests/functional/tests.py from the minio {minio_version} source distribution on PyPI, "
        f"MINT_MODE={mint_mode}, run by tests/conformance/minio_functional.sh.",
        f"- Endpoint: {endpoint}, plain HTTP, path-style.",
        f"- Run: {now}.",
        f"- Result: {len(passed)} passed, {len(failed)} failed, {len(not_applicable)} not implemented "
        "(the server returned the NotImplemented error code).",
        "",
        "## Failed",
        "",
    ]
    if not failed:
        lines.append("None.")
    for entry in failed:
        lines.append(f"### {short_name(entry)}")
        lines.append("")
        if entry.get("function"):
            lines.append(f"- Call: `{entry['function']}`")
        if entry.get("args"):
            lines.append(f"- Arguments: `{json.dumps(entry['args'], sort_keys=True)}`")
        chain = exception_chain(entry.get("error", "")) or [(None, entry.get("message", ""))]
        # The first exception is the root cause. Later ones come from the test's cleanup or
        # error handling, which ran after it.
        location, error = chain[0]
        if location:
            lines.append(f"- Failed at: `{location}`")
        lines.append(f"- Error: `{error}`")
        for location, error in chain[1:]:
            where = f" at `{location}`" if location else ""
            lines.append(f"- Then, while handling it: `{error}`{where}")
        lines.append("")

    lines.extend(["## Not implemented", ""])
    if not not_applicable:
        lines.append("None.")
    for entry in not_applicable:
        call = f", in `{entry['function']}`" if entry.get("function") else ""
        lines.append(f"- {short_name(entry)}: {entry.get('alert', 'Not Implemented')}{call}")

    lines.extend(["", "## Passed", ""])
    if not passed:
        lines.append("None.")
    for entry in passed:
        lines.append(f"- {short_name(entry)} ({entry.get('duration', 0)} ms)")

    Path(output).write_text("\n".join(lines) + "\n")
    print(f"summary: {output}")
    # The plain count line that CI log readers recognize.
    print(f"minio-py: {len(passed)} passed, {len(failed)} failed, {len(not_applicable)} skipped")
    if not entries:
        print(f"no test results found in {log_path}", file=sys.stderr)
        return 2
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    run_parser = commands.add_parser("run", help="run the suite, printing one JSON line per test")
    run_parser.add_argument("tests_py", help="path of tests/functional/tests.py from the minio sdist")
    run_parser.add_argument("--test-timeout", type=int, default=300, help="time limit per test in seconds (default 300)")

    summary_parser = commands.add_parser("summarize", help="write the Markdown summary of a run log")
    summary_parser.add_argument("log", help="output of the run command")
    summary_parser.add_argument("--output", required=True, help="Markdown file to write")
    summary_parser.add_argument("--label", required=True, help="server name shown in the title")
    summary_parser.add_argument("--endpoint", required=True, help="HOST:PORT shown in the report")
    summary_parser.add_argument("--minio-version", required=True, help="minio sdist version shown in the report")
    summary_parser.add_argument("--mint-mode", default="full", help="MINT_MODE the suite ran with")

    options = parser.parse_args()
    if options.command == "run":
        return run(options.tests_py, options.test_timeout)
    return summarize(options.log, options.output, options.label, options.endpoint, options.minio_version,
                     options.mint_mode)


if __name__ == "__main__":
    sys.exit(main())
