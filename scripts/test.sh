#!/usr/bin/env bash
# The README's test command: everything CI runs.
#   1. installs what is missing (scripts/bootstrap.sh)
#   2. checks the committed protoc-c output against a fresh regeneration
#   3. builds everything and fails on any compiler warning in our code
#   4. runs the whole test suite (unit, socket, end-to-end process tests), the
#      systemd units under a real systemd in a container (about a minute; a
#      first run also builds the container's root, 1-3 minutes), the C
#      client's tests (ASan + UBSan), the Python client's tests, the ACP test
#      agents' own tests (Tests/Agents, on the ACP Python SDK), and the
#      conformance suite with every client (conformance/run.sh)
#   5. runs the benchmark harness in its quick mode (Benchmarks/run.sh --quick:
#      Switchboard only, debug build, seconds of load, no figures asserted)
#      and the libFuzzer targets for 20 s each (scripts/fuzz.sh; docs/SECURITY.md)
#   6. runs the in-process suites again under Thread Sanitizer
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "bootstrap"
scripts/bootstrap.sh

step "generated code is up to date"
scripts/generate-protos.sh --check

step "build (warnings are errors in our code)"
log=$(mktemp)
swift build --build-tests 2>&1 | tee "$log"
if grep -E '^/.*(Sources|Tests)/.*: warning:' "$log" | grep -v '/.build' ; then
  echo "test: compiler warnings in Switchboard code (above)" >&2
  exit 1
fi

step "swift test"
swift test --skip-build

# The clients and the conformance suite run against the debug server just built.
switchboard_bin="$(swift build --show-bin-path)/switchboard"

step "the units under systemd 252 as PID 1 of a container (scripts/systemd-container-test.sh)"
scripts/systemd-container-test.sh "$switchboard_bin"

step "C client tests under AddressSanitizer + UBSan (make -C clients/c test)"
make -C clients/c test SWITCHBOARD_BIN="$switchboard_bin"

step "Python client tests (pytest clients/python/tests)"
SWITCHBOARD_BIN="$switchboard_bin" python3 -m pytest -q -p no:cacheprovider clients/python/tests

step "ACP test agents on the official Python SDK (pytest Tests/Agents, in .venv-acp)"
.venv-acp/bin/python -m pytest -q -p no:cacheprovider Tests/Agents

step "conformance: every scenario with the Swift, C and Python clients"
SWITCHBOARD_BIN="$switchboard_bin" conformance/run.sh

step "benchmark harness, quick mode (Benchmarks/run.sh --quick)"
Benchmarks/run.sh --quick

step "fuzzing, short run (scripts/fuzz.sh --seconds 20: six libFuzzer targets, ASan)"
scripts/fuzz.sh --seconds 20

step "swift test --sanitize=thread (every in-process suite)"
# The in-process suites (protocol, core, transport, server over real sockets,
# client) run under TSan. The end-to-end suite is skipped here: it spawns
# `switchboard` processes, where TSan could not fail a test for a race anyway, and
# instrumented processes start and run far too slowly for its turn-length windows.
# It runs in full in the plain `swift test` step above. Instrumented code is
# several times slower, so tests stretch their wall-clock windows by
# SWITCHBOARD_TEST_TIME_SCALE: long turns and hang guards, and in the suites built
# on windows (drain grace, turn deadlines and stall timeouts, the client's
# connect/call timeouts against a scripted fake server) the timeout under test
# together with the waits around it, so every assertion holds unchanged. The
# suppressions file documents the one runtime false positive it silences.
SWITCHBOARD_TEST_TIME_SCALE=4 \
TSAN_OPTIONS="suppressions=$PWD/scripts/tsan-suppressions.txt ${TSAN_OPTIONS:-}" \
  swift test --sanitize=thread --scratch-path .build-tsan --skip EndToEndTests

step "all checks passed"
