#!/usr/bin/env bash
# Run the minio-py functional test suite against an S3 endpoint and write a Markdown
# summary of which tests pass and which fail, with each failure's error.
#
# The suite is tests/functional/tests.py inside the minio source distribution on PyPI;
# it is downloaded once into a cache directory and run with the same minio version,
# installed from that sdist into tests/conformance/.venv.
#
# Usage:
#   SERVER_ENDPOINT=127.0.0.1:9000 ACCESS_KEY=... SECRET_KEY=... tests/conformance/minio_functional.sh
#   tests/conformance/minio_functional.sh --start keyless     # or --start seaweedfs
#
# With --start, bench/serve starts that server on 127.0.0.1 with a fresh data directory
# and a static key, and stops it afterwards.
#
# Environment:
#   SERVER_ENDPOINT, ACCESS_KEY, SECRET_KEY  endpoint as HOST:PORT and a key with full access
#                                            (required unless --start is given)
#   ENABLE_HTTPS     1 to use HTTPS (default 0)
#   MINIO_VERSION    minio sdist version whose tests run (default 7.2.20)
#   MINT_MODE        "full" runs every test, anything else the suite's short list (default full)
#   TEST_TIMEOUT     time limit per test in seconds (default 300)
#   RESULTS_FILE     Markdown summary to write (default tests/conformance/minio-results.md)
#   SERVER_LABEL     server name in the summary title (default: the --start name or the endpoint)
#   MINIO_CACHE_DIR  download and extraction directory (default tests/conformance/.cache)
#
# Exit status: 0 if no test failed, 1 if any failed, 2 if the harness itself failed.
# The last line of output is "minio-py: N passed, N failed, N skipped".

set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPOSITORY_ROOT="$(cd "$HERE/../.." && pwd)"
MINIO_VERSION="${MINIO_VERSION:-7.2.20}"
MINT_MODE="${MINT_MODE:-full}"
TEST_TIMEOUT="${TEST_TIMEOUT:-300}"
ENABLE_HTTPS="${ENABLE_HTTPS:-0}"
RESULTS_FILE="${RESULTS_FILE:-$HERE/minio-results.md}"
CACHE_DIR="${MINIO_CACHE_DIR:-$HERE/.cache}"
VENV_DIR="$HERE/.venv"

start_server=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --start)
            start_server="${2:-}"
            if [[ "$start_server" != "keyless" && "$start_server" != "seaweedfs" ]]; then
                echo "minio_functional.sh: --start takes keyless or seaweedfs, got '${start_server}'" >&2
                exit 2
            fi
            shift 2
            ;;
        -h | --help)
            sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
            exit 0
            ;;
        *)
            echo "minio_functional.sh: unknown argument '$1'; see --help" >&2
            exit 2
            ;;
    esac
done

log() {
    echo "[$(date +%H:%M:%S)] $*" >&2
}

# --- Obtain the suite -------------------------------------------------------------------

sdist="$CACHE_DIR/minio-$MINIO_VERSION.tar.gz"
source_dir="$CACHE_DIR/minio-$MINIO_VERSION"
tests_py="$source_dir/tests/functional/tests.py"
mkdir -p "$CACHE_DIR"
if [[ ! -f "$sdist" ]]; then
    log "downloading the minio $MINIO_VERSION sdist from PyPI"
    python3 -m pip download --quiet --no-binary :all: --no-deps "minio==$MINIO_VERSION" -d "$CACHE_DIR"
fi
if [[ ! -f "$tests_py" ]]; then
    tar -xzf "$sdist" -C "$CACHE_DIR"
fi
if [[ ! -f "$tests_py" ]]; then
    echo "minio_functional.sh: $sdist contains no tests/functional/tests.py" >&2
    exit 2
fi

# --- Install the matching minio library --------------------------------------------------

if [[ ! -x "$VENV_DIR/bin/python" ]]; then
    python3 -m venv "$VENV_DIR"
fi
stamp="$VENV_DIR/installed-minio-version"
if [[ "$(cat "$stamp" 2>/dev/null)" != "$MINIO_VERSION" ]]; then
    log "installing minio $MINIO_VERSION from $sdist into $VENV_DIR"
    "$VENV_DIR/bin/python" -m pip install --quiet "$sdist"
    echo "$MINIO_VERSION" >"$stamp"
fi

# --- Start a server if asked --------------------------------------------------------------

work_dir="$(mktemp -d "${TMPDIR:-/tmp}/minio-functional-XXXXXX")"
serve_pid=""
cleanup() {
    if [[ -n "$serve_pid" ]] && kill -0 "$serve_pid" 2>/dev/null; then
        kill -TERM "$serve_pid"
        wait "$serve_pid" || true
    fi
    rm -rf "$work_dir"
}
trap cleanup EXIT

if [[ -n "$start_server" ]]; then
    info_file="$work_dir/server.json"
    log "starting $start_server with bench/serve"
    "$REPOSITORY_ROOT/bench/serve" "$start_server" --info-file "$info_file" &
    serve_pid=$!
    for _ in $(seq 1 600); do
        [[ -s "$info_file" ]] && break
        if ! kill -0 "$serve_pid" 2>/dev/null; then
            echo "minio_functional.sh: bench/serve $start_server exited before the server was ready" >&2
            exit 2
        fi
        sleep 0.2
    done
    if [[ ! -s "$info_file" ]]; then
        echo "minio_functional.sh: $start_server was not ready after 120 s" >&2
        exit 2
    fi
    read_info() {
        python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$info_file" "$1"
    }
    SERVER_ENDPOINT="$(read_info endpoint)"
    ACCESS_KEY="$(read_info accessKey)"
    SECRET_KEY="$(read_info secretKey)"
    SERVER_LABEL="${SERVER_LABEL:-$start_server}"
fi

for name in SERVER_ENDPOINT ACCESS_KEY SECRET_KEY; do
    if [[ -z "${!name:-}" ]]; then
        echo "minio_functional.sh: $name is not set; set SERVER_ENDPOINT, ACCESS_KEY and SECRET_KEY, or pass --start" >&2
        exit 2
    fi
done
SERVER_LABEL="${SERVER_LABEL:-$SERVER_ENDPOINT}"

# --- Run and summarize ---------------------------------------------------------------------

run_log="$work_dir/minio-functional.log"
log "running minio-py $MINIO_VERSION functional tests (MINT_MODE=$MINT_MODE) against $SERVER_LABEL at $SERVER_ENDPOINT"
# The suite writes its data files into the current directory.
suite_status=0
(
    cd "$work_dir"
    SERVER_ENDPOINT="$SERVER_ENDPOINT" ACCESS_KEY="$ACCESS_KEY" SECRET_KEY="$SECRET_KEY" \
        ENABLE_HTTPS="$ENABLE_HTTPS" MINT_MODE="$MINT_MODE" \
        "$VENV_DIR/bin/python" "$HERE/minio_suite.py" run "$tests_py" --test-timeout "$TEST_TIMEOUT"
) >"$run_log" 2>&1 || suite_status=$?
cp "$run_log" "${RESULTS_FILE%.md}.log"
if [[ $suite_status -ne 0 ]]; then
    log "the suite exited with status $suite_status before finishing; last lines:"
    tail -n 20 "$run_log" >&2
fi

summary_status=0
"$VENV_DIR/bin/python" "$HERE/minio_suite.py" summarize "$run_log" --output "$RESULTS_FILE" \
    --label "$SERVER_LABEL" --endpoint "$SERVER_ENDPOINT" --minio-version "$MINIO_VERSION" \
    --mint-mode "$MINT_MODE" || summary_status=$?

if [[ $suite_status -ne 0 ]]; then
    exit 2
fi
exit "$summary_status"
