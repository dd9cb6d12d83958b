#!/usr/bin/env bash
# Runs every test suite against one build directory:
#   1. unit tests (CTest / GoogleTest),
#   2. the fuzzers (request decoder; SASL, TLS and certificate names) for a
#      bounded time each (release builds only),
#   3. end-to-end tests with real Kafka clients (pytest),
#   4. fault-injection scenarios checked by `holdfast verify` (pytest),
#   5. cluster tests: three `holdfast serve` processes with real clients (pytest).
# Usage: scripts/run-tests.sh <build-dir>
set -euo pipefail
build_dir=${1:-build/release}
cd "$(dirname "$0")/.."

# Every GoogleTest binary runs its tests in a new random order each time, to
# catch tests that depend on each other's order or leftovers (twice in `make
# soak`: UNIT_REPEAT). The seed is printed at the top of each binary's output
# ("Randomizing tests' orders with a seed of N"); rerun one order with
# --gtest_random_seed=N.
echo "== unit tests ($build_dir; shuffled, ${UNIT_REPEAT:-1}x)"
(cd "$build_dir" && GTEST_SHUFFLE=1 GTEST_REPEAT="${UNIT_REPEAT:-1}" ctest --output-on-failure -j "$(nproc)")

if [ "$build_dir" = "build/release" ] && [ "${HOLDFAST_SKIP_FUZZ:-0}" != "1" ]; then
  echo "== fuzzers: request decoder, then security (${FUZZ_SECONDS:-60} s each)"
  make --no-print-directory fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
fi

echo "== end-to-end tests"
bash scripts/run-e2e.sh "$build_dir"

echo "== fault-injection tests (holdfast verify under faults)"
HOLDFAST_BIN="$PWD/$build_dir/src/cli/holdfast" /usr/bin/python3 -m pytest -q --durations=5 tests/faults

echo "== cluster tests (3 nodes on 127.0.0.1)"
HOLDFAST_BIN="$PWD/$build_dir/src/cli/holdfast" /usr/bin/python3 -m pytest -q --durations=15 tests/cluster
