#!/usr/bin/env bash
# A/B of one broker setting, interleaved: for each of AB_PAIRS pairs, a fresh
# broker with AB_SETTING=AB_OFF, then a fresh one with AB_SETTING=AB_ON (A B
# A B ...), each measured with the same phases (a shortened bench/run.sh):
#   - produce-ack latency at BENCH_RATE msg/s (acks=all, linger.ms=0),
#     100 B and 1 KiB, on a 1-partition and a 64-partition topic;
#   - unwindowed produce 1 KiB (acks=all, linger.ms=5), one producer on a
#     4-partition topic as run.sh does, and AB_CONNECTIONS producers at once
#     (one connection each) on a 16-partition topic;
#   - windowed produce 100 B, 1,000 in flight (acks=all, linger.ms=0);
# with the broker's CPU (utime+stime from /proc/PID/stat) and its threads'
# context switches per phase, and
# /proc/loadavg before each broker. Prints one JSON object per phase
# (with "setting", "pair", "phase") to stdout and to AB_RESULTS; summarise
# with bench/ab_report.py.
#
# Environment (defaults in brackets):
#   AB_SETTING (required, e.g. log.flush.threads)  AB_OFF [false]  AB_ON [true]  AB_PAIRS [3]
#   AB_CONNECTIONS [8]  AB_RESULTS [ab-results.jsonl in the work dir's parent]
#   BENCH_RATE [5000]  BENCH_LATENCY_SECONDS [10]  BENCH_SECONDS [10]
#   BENCH_MESSAGES_1K [300000]  BENCH_MESSAGES_100B [1000000]  BENCH_WINDOW [1000]
#   HOLDFAST_BIN / HOLDFAST_BENCH_BIN / BUILD_DIR / BENCH_DIR as in run.sh
#   AB_EXTRA_SETTINGS: more "key=value" words given to both brokers
set -euo pipefail

BUILD_DIR=${BUILD_DIR:-build/release}
HOLDFAST_BIN=${HOLDFAST_BIN:-$BUILD_DIR/src/cli/holdfast}
HOLDFAST_BENCH_BIN=${HOLDFAST_BENCH_BIN:-$BUILD_DIR/bench/holdfast_bench}
AB_SETTING=${AB_SETTING:?set AB_SETTING to the broker setting to compare (and AB_OFF, AB_ON to its two values)}
AB_OFF=${AB_OFF:-false}
AB_ON=${AB_ON:-true}
AB_PAIRS=${AB_PAIRS:-3}
AB_CONNECTIONS=${AB_CONNECTIONS:-8}
BENCH_RATE=${BENCH_RATE:-5000}
BENCH_LATENCY_SECONDS=${BENCH_LATENCY_SECONDS:-10}
BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_MESSAGES_1K=${BENCH_MESSAGES_1K:-300000}
BENCH_MESSAGES_100B=${BENCH_MESSAGES_100B:-1000000}
BENCH_WINDOW=${BENCH_WINDOW:-1000}
PYTHON=${PYTHON:-/usr/bin/python3}

for binary in "$HOLDFAST_BIN" "$HOLDFAST_BENCH_BIN"; do
  [[ -x "$binary" ]] || { echo "ab: $binary not built" >&2; exit 1; }
done

WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/holdfast-ab.XXXXXX")
AB_RESULTS=${AB_RESULTS:-$WORK.jsonl}
BROKER_PID=""
# stop, free_port, cpu_seconds, ctx_switches
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cleanup() {
  stop "$BROKER_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT

MACHINE="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME")"
echo "ab: machine: $MACHINE; work dir $WORK ($(df -T "$WORK" | awk 'NR==2 {print $2 " on " $1}')); results $AB_RESULTS" >&2

# tag SETTING PAIR PHASE CPU SWITCHES LOAD FILE...: the phase's figures (the sum
# over FILEs for parallel producers) with the broker CPU seconds and context
# switches used meanwhile and the load average before the broker, appended to
# AB_RESULTS.
tag() {
  local setting=$1 pair=$2 phase=$3 cpu=$4 switches=$5 load=$6
  shift 6
  "$PYTHON" - "$setting" "$pair" "$phase" "$cpu" "$switches" "$load" "$@" <<'PY' | tee -a "$AB_RESULTS"
import json, sys
setting, pair, phase, cpu, switches, load = sys.argv[1:7]
runs = [json.load(open(f)) for f in sys.argv[7:]]
r = dict(runs[0])
if len(runs) > 1:  # parallel producers: totals, the slowest one's time
    r["messages"] = sum(x["messages"] for x in runs)
    r["failed"] = sum(x["failed"] for x in runs)
    r["seconds"] = max(x["seconds"] for x in runs)
    r["messages_per_s"] = sum(x["messages_per_s"] for x in runs)
    r["mb_per_s"] = sum(x["mb_per_s"] for x in runs)
    r["connections"] = len(runs)
r.update(setting=setting, pair=int(pair), phase=phase, server_cpu_s=float(cpu),
         server_ctx_switches=int(switches), loadavg=load)
r["server_cpu_us_per_msg"] = 1e6 * float(cpu) / max(1, r["messages"])
r["server_ctx_switches_per_msg"] = int(switches) / max(1, r["messages"])
print(json.dumps(r))
PY
}

run_broker() {  # setting pair
  local value=$1 pair=$2 data="$WORK/data-$1-$2" load
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "ab: pair $pair, $AB_SETTING=$value, loadavg $load" >&2
  PORT=$(free_port)
  BROKERS="127.0.0.1:$PORT"
  mkdir -p "$data"
  local extra=()
  for kv in ${AB_EXTRA_SETTINGS:-}; do extra+=(--set "$kv"); done
  "$HOLDFAST_BIN" serve --data-dir "$data" --listen "$BROKERS" --advertise "$BROKERS" \
      --set flush.policy=always --set "$AB_SETTING=$value" "${extra[@]}" > "$WORK/broker.log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 1 600); do
    grep -q "listening on" "$WORK/broker.log" 2>/dev/null && break
    kill -0 "$BROKER_PID" 2>/dev/null || { cat "$WORK/broker.log" >&2; echo "ab: broker exited" >&2; exit 1; }
    sleep 0.1
  done
  grep -q "listening on" "$WORK/broker.log" || {
    tail -20 "$WORK/broker.log" >&2
    echo "ab: broker not ready in 60 s" >&2
    exit 1
  }
  for t in lat-100:1 lat-1k:1 lat-100-64:64 lat-1k-64:64 tput-1k:4 tput-1k-conns:16 window-100:4; do
    "$HOLDFAST_BIN" topic create "${t%%:*}" --partitions "${t##*:}" --brokers "$BROKERS" >&2
  done
  # phase NAME COMMAND...: one bench process.
  phase() {
    local name=$1 before after switches
    shift
    before=$(cpu_seconds "$BROKER_PID")
    switches=$(ctx_switches "$BROKER_PID")
    "$HOLDFAST_BENCH_BIN" "$@" --brokers "$BROKERS" > "$WORK/phase.json"
    after=$(cpu_seconds "$BROKER_PID")
    switches=$(( $(ctx_switches "$BROKER_PID") - switches ))
    tag "$value" "$pair" "$name" "$(echo "$after - $before" | bc -l)" "$switches" "$load" \
        "$WORK/phase.json"
  }
  local lat=(--rate "$BENCH_RATE" --seconds "$BENCH_LATENCY_SECONDS" --acks all --linger-ms 0)
  phase latency-100B-1p latency --topic lat-100 --size 100 "${lat[@]}"
  phase latency-1KiB-1p latency --topic lat-1k --size 1024 "${lat[@]}"
  phase latency-100B-64p latency --topic lat-100-64 --size 100 "${lat[@]}"
  phase latency-1KiB-64p latency --topic lat-1k-64 --size 1024 "${lat[@]}"
  phase produce-1KiB produce --topic tput-1k --size 1024 --count "$BENCH_MESSAGES_1K" \
      --max-seconds "$BENCH_SECONDS" --acks all --linger-ms 5
  # Many connections: AB_CONNECTIONS producer processes at once.
  local before after switches files=() pids=()
  before=$(cpu_seconds "$BROKER_PID")
  switches=$(ctx_switches "$BROKER_PID")
  for c in $(seq 1 "$AB_CONNECTIONS"); do
    "$HOLDFAST_BENCH_BIN" produce --topic tput-1k-conns --size 1024 \
        --count $((BENCH_MESSAGES_1K / AB_CONNECTIONS)) --max-seconds "$BENCH_SECONDS" \
        --acks all --linger-ms 5 --brokers "$BROKERS" > "$WORK/conn-$c.json" &
    pids+=($!)
    files+=("$WORK/conn-$c.json")
  done
  for p in "${pids[@]}"; do wait "$p"; done
  after=$(cpu_seconds "$BROKER_PID")
  switches=$(( $(ctx_switches "$BROKER_PID") - switches ))
  tag "$value" "$pair" "produce-1KiB-${AB_CONNECTIONS}conns" "$(echo "$after - $before" | bc -l)" \
      "$switches" "$load" "${files[@]}"
  phase windowed-100B produce --topic window-100 --size 100 --count "$BENCH_MESSAGES_100B" \
      --max-seconds "$BENCH_SECONDS" --acks all --linger-ms 0 --window "$BENCH_WINDOW"
  stop "$BROKER_PID"
  BROKER_PID=""
  rm -rf "$data"
}

for pair in $(seq 1 "$AB_PAIRS"); do
  run_broker "$AB_OFF" "$pair"
  run_broker "$AB_ON" "$pair"
done
echo "ab: done; $PYTHON bench/ab_report.py $AB_RESULTS" >&2
