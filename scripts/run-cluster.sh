#!/usr/bin/env bash
# Runs a 3-node Holdfast cluster on 127.0.0.1 (`make cluster`): node N takes
# client port 909(1+N) and CONTROLLER (Raft) port 1909(1+N), with its data in
# ./data/node-N and its log in ./data/node-N.log. Ctrl-C (or SIGTERM) stops
# the nodes this script started. A node that exits (kill -9 it to see the
# cluster carry on) is reported and the others keep running; start it again,
# in another terminal, with `scripts/run-cluster.sh --node N`.
# Cluster mode is experimental (holdfast.cluster.experimental=true);
# docs/cluster.md lists what is not built yet.
# Usage: scripts/run-cluster.sh [--node N] [path/to/holdfast]
set -euo pipefail
cd "$(dirname "$0")/.."
only_node=""
if [ "${1:-}" = "--node" ]; then
  only_node=${2:?"--node needs a node id (1, 2 or 3)"}
  shift 2
fi
bin=${1:-build/release/src/cli/holdfast}
voters="1@127.0.0.1:19092,2@127.0.0.1:19093,3@127.0.0.1:19094"
pids=()

stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT INT TERM

# Runs in a background subshell that becomes the broker (exec), so $! is its pid.
run_node() {
  local n=$1
  exec "$bin" serve --data-dir "data/node-$n" --node-id "$n" \
    --set "listeners=PLAINTEXT://127.0.0.1:$((9091 + n)),CONTROLLER://127.0.0.1:$((19091 + n))" \
    --set "controller.quorum.voters=$voters" \
    --set holdfast.cluster.experimental=true >>"data/node-$n.log" 2>&1
}

if [ -n "$only_node" ]; then
  mkdir -p "data/node-$only_node"
  echo "holdfast cluster: node $only_node starting again (log in data/node-$only_node.log); Ctrl-C stops it"
  run_node "$only_node" &
  pids+=($!)
  wait "${pids[0]}" || echo "holdfast cluster: node $only_node exited (status $?)"
  exit 0
fi

declare -A node_of
for n in 1 2 3; do
  mkdir -p "data/node-$n"
  run_node "$n" &
  pids+=($!)
  node_of[$!]=$n
done

cat <<INFO
holdfast cluster: 3 nodes starting (logs in data/node-1.log .. node-3.log)
  bootstrap servers: 127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094
  e.g. kcat -b 127.0.0.1:9092 -L     (brokers, controller, partitions)
       build/release/src/cli/holdfast cluster status -b 127.0.0.1:9092
Ctrl-C stops all three.
INFO
# Report each node that exits; carry on while any is running (or until Ctrl-C).
running=("${pids[@]}")
while [ ${#running[@]} -gt 0 ]; do
  status=0
  wait -n -p exited "${running[@]}" || status=$?
  [ -n "${exited:-}" ] || break
  n=${node_of[$exited]}
  echo "holdfast cluster: node $n exited (status $status); the others keep running." \
       "Start it again with: scripts/run-cluster.sh --node $n"
  remaining=()
  for pid in "${running[@]}"; do [ "$pid" != "$exited" ] && remaining+=("$pid"); done
  running=("${remaining[@]}")
  exited=""
done
