#!/usr/bin/env bash
# End-to-end tests: real clients (confluent-kafka, kafka-python, kcat, kafkajs)
# against a `holdfast serve` that the tests start themselves on loopback.
# Usage: scripts/run-e2e.sh <build-dir> [pytest args...]
set -euo pipefail
build_dir=${1:-build/release}
shift || true
cd "$(dirname "$0")/.."
export HOLDFAST_BIN="$PWD/$build_dir/src/cli/holdfast"

if [ -f tests/e2e/js/package.json ]; then
  (cd tests/e2e/js && if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --silent; \
    else npm install --no-audit --no-fund --silent; fi)
fi

# Debian's interpreter: it has the python3-confluent-kafka and python3-kafka packages.
# The files run in E2E_WORKERS processes (pytest-xdist, python3-pytest-xdist), a file's
# tests together in one process (--dist loadfile: module fixtures such as a file's shared
# broker or the sarama build stay per file). Every broker a test starts has its own free
# loopback port and data directory, so files do not share state. E2E_WORKERS=0 runs them
# in this one process.
if ! /usr/bin/python3 -c "import xdist" 2>/dev/null; then
  echo "run-e2e: pytest-xdist is missing: install python3-pytest-xdist (scripts/install-deps.sh)" >&2
  exit 1
fi
workers=${E2E_WORKERS:-2}
parallel=()
if [ "$workers" != "0" ]; then parallel=(-n "$workers" --dist loadfile); fi
exec /usr/bin/python3 -m pytest -q --durations=15 "${parallel[@]}" tests/e2e "$@"
