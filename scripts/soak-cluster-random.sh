#!/usr/bin/env bash
# Random-fault soak of a 3-node cluster (tests/cluster/soak.py), run by
# `make soak`: per round one fault (kill -9 / SIGSTOP past the session timeout /
# network partition / power loss) on a random node (leader, follower or
# controller) under an idempotent acks=all producer and `holdfast verify` with a
# consumer group; at the end a table of counts per fault kind.
#
#   HOLDFAST_CLUSTER_SOAK_SEED     the seed (default: chosen here and printed)
#   HOLDFAST_CLUSTER_SOAK_ROUNDS   at most this many rounds (default 1000)
#   HOLDFAST_CLUSTER_SOAK_SECONDS  no round starts after this (default 1200: ~20 min)
#   HOLDFAST_CLUSTER_SOAK_RESULTS  file the table is appended to
#                                  (default build/soak-cluster-results.txt)
#   HOLDFAST_CLUSTER_SOAK_FAULTS   e.g. kill,pause: only these kinds (default all four)
# Usage: scripts/soak-cluster-random.sh [path/to/holdfast]
set -euo pipefail
cd "$(dirname "$0")/.."
export HOLDFAST_BIN="${1:-${HOLDFAST_BIN:-$PWD/build/release/src/cli/holdfast}}"
export HOLDFAST_CLUSTER_SOAK_SEED="${HOLDFAST_CLUSTER_SOAK_SEED:-$(( $(date +%s%N) % 1000000007 ))}"
export HOLDFAST_CLUSTER_SOAK_ROUNDS="${HOLDFAST_CLUSTER_SOAK_ROUNDS:-1000}"
export HOLDFAST_CLUSTER_SOAK_SECONDS="${HOLDFAST_CLUSTER_SOAK_SECONDS:-1200}"
export HOLDFAST_CLUSTER_SOAK_RESULTS="${HOLDFAST_CLUSTER_SOAK_RESULTS:-$PWD/build/soak-cluster-results.txt}"
mkdir -p "$(dirname "$HOLDFAST_CLUSTER_SOAK_RESULTS")"
echo "== cluster soak: seed $HOLDFAST_CLUSTER_SOAK_SEED, up to $HOLDFAST_CLUSTER_SOAK_ROUNDS rounds" \
     "or $HOLDFAST_CLUSTER_SOAK_SECONDS s; table in $HOLDFAST_CLUSTER_SOAK_RESULTS"
exec /usr/bin/python3 -m pytest -s -q -p no:cacheprovider tests/cluster/test_soak.py
