#!/usr/bin/env bash
# Runs a 3-node Holdfast cluster on 127.0.0.1 (`make cluster`): node N takes
# client port 909(1+N) and CONTROLLER (Raft) port 1909(1+N), with its data in
# ./data/node-N and its log in ./data/node-N.log. Ctrl-C (or SIGTERM) stops
# all three.
# Cluster mode is experimental (holdfast.cluster.experimental=true): metadata,
# the controller, placements and partition data replicate (docs/cluster.md
# lists what is not built yet: consumer groups do not work in a cluster).
# Usage: scripts/run-cluster.sh [path/to/holdfast]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/release/src/cli/holdfast}
voters="1@127.0.0.1:19092,2@127.0.0.1:19093,3@127.0.0.1:19094"
pids=()

stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT INT TERM

for n in 1 2 3; do
  port=$((9091 + n))
  raft=$((19091 + n))
  mkdir -p "data/node-$n"
  "$bin" serve --data-dir "data/node-$n" --node-id "$n" \
    --set "listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$raft" \
    --set "controller.quorum.voters=$voters" \
    --set holdfast.cluster.experimental=true \
    >>"data/node-$n.log" 2>&1 &
  pids+=($!)
done

cat <<INFO
holdfast cluster: 3 nodes starting (logs in data/node-1.log .. node-3.log)
  bootstrap servers: 127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094
  e.g. kcat -b 127.0.0.1:9092 -L     (brokers, controller, partitions)
Ctrl-C stops all three.
INFO
# Until one of them exits (or Ctrl-C).
wait -n "${pids[@]}" || true
echo "holdfast cluster: a node exited; stopping the others (see data/node-*.log)"
