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
exec /usr/bin/python3 -m pytest -q --durations=15 tests/e2e "$@"
