#!/usr/bin/env bash
# Benchmark driver (`make bench`). In one run, on one filesystem, it measures:
#   0. the disk: fio sequential 64 KiB writes + fdatasync (MB/s, the ceiling)
#      and 4 KiB writes + fdatasync (the latency of one sync);
#   1. Holdfast (flush.policy=always: fsync before ack), through holdfast_bench
#      (librdkafka), each run with the broker's CPU (utime + stime from
#      /proc/<pid>/stat around the run) per message:
#      - unwindowed produce, 1 KiB and 100 B, acks=all, linger.ms=5
#      - consume (reads the 1 KiB topic back)
#      - windowed produce, 100 B and 1 KiB, acks=all, linger.ms=0, 1,000 in flight
#      - produce-ack latency at a fixed 5,000 msg/s, acks=all, linger.ms=0:
#        100 B and 1 KiB to one partition, 1 KiB over 64 partitions, and
#        100 B to one partition with socket.nagle.disable=true (TCP_NODELAY,
#        which hiredis sets and librdkafka does not by default), and 100 B
#        through kafka_raw_bench (one thread, no client library: built like
#        redis_bench, so the two brokers are timed alike), in BENCH_PAIRS
#        rounds interleaved with redis_bench against a Redis of its own; for each,
#        the broker's own view from its /metrics histograms (bench/broker_hist.py:
#        Produce requests and syncs, their p50 and p99)
#      - the broker's peak RSS (VmHWM)
#   2. Redis Streams, the durable peer of issue 13 (unless BENCH_SKIP_REDIS=1):
#      Debian's redis-server, appendonly yes, appendfsync always, its dir beside
#      the broker's, through redis_bench (hiredis, one XADD per message), with
#      redis-server's CPU per message: XADD-reply latency at the same fixed rate
#      for 100 B and 1 KiB, and pipelined throughput (1,000 in flight over
#      BENCH_REDIS_CONNECTIONS connections) for 1 KiB and 100 B;
#   3. restart after kill -9 with RESTART_BENCH_GB (default 3) GB in one
#      partition, bench/restart_bench.sh, RESTART_BENCH_RUNS (default 1) times
#      (unless BENCH_SKIP_RESTART=1);
# then prints the figures as Markdown tables with the Holdfast ÷ Redis ratios,
# renders the latency percentile curves to BENCH_PLOT (bench/plot_latency.py,
# matplotlib), and (unless BENCH_SKIP_CLUSTER=1) runs the replicated bench,
# bench/replicated.py.
#
# Environment (all optional):
#   BUILD_DIR          build tree with the binaries (default build/release)
#   HOLDFAST_BIN       broker binary (default $BUILD_DIR/src/cli/holdfast)
#   HOLDFAST_BENCH_BIN bench binary (default $BUILD_DIR/bench/holdfast_bench)
#   REDIS_BENCH_BIN    Redis bench binary (default $BUILD_DIR/bench/redis_bench)
#   KAFKA_RAW_BENCH_BIN  the one-thread Kafka client (default $BUILD_DIR/bench/kafka_raw_bench)
#   BENCH_DIR          where the temp dir goes (default /tmp); fio, the broker, Redis
#                      and the restart bench all write there
#   BENCH_SECONDS      upper bound per throughput run (default 30)
#   BENCH_MESSAGES_1K / BENCH_MESSAGES_100B   message counts (default 1000000 / 3000000)
#   BENCH_LATENCY_SECONDS  duration of each fixed-rate run (default 15)
#   BENCH_RATE             fixed rate in msg/s (default 5000)
#   BENCH_WINDOW           messages in flight for the windowed runs (default 1000)
#   BENCH_PAIRS / BENCH_PAIR_SECONDS  rounds and seconds per run of the interleaved
#                          kafka_raw_bench / redis_bench comparison (default 3 / 8)
#   BENCH_REDIS_CONNECTIONS  connections sharing Redis's window (default 32)
#   BENCH_PLOT             the latency picture (default $BUILD_DIR/ack-latency.png)
#   RESTART_BENCH_GB / RESTART_BENCH_RUNS   see bench/restart_bench.sh (3 / 1 here)
#   BENCH_SKIP_FIO=1 BENCH_SKIP_REDIS=1 BENCH_SKIP_RESTART=1 BENCH_SKIP_CLUSTER=1
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/release}
HOLDFAST_BIN=${HOLDFAST_BIN:-$BUILD_DIR/src/cli/holdfast}
HOLDFAST_BENCH_BIN=${HOLDFAST_BENCH_BIN:-$BUILD_DIR/bench/holdfast_bench}
REDIS_BENCH_BIN=${REDIS_BENCH_BIN:-$BUILD_DIR/bench/redis_bench}
KAFKA_RAW_BENCH_BIN=${KAFKA_RAW_BENCH_BIN:-$BUILD_DIR/bench/kafka_raw_bench}
BENCH_SECONDS=${BENCH_SECONDS:-30}
BENCH_MESSAGES_1K=${BENCH_MESSAGES_1K:-1000000}
BENCH_MESSAGES_100B=${BENCH_MESSAGES_100B:-3000000}
BENCH_LATENCY_SECONDS=${BENCH_LATENCY_SECONDS:-15}
BENCH_RATE=${BENCH_RATE:-5000}
BENCH_WINDOW=${BENCH_WINDOW:-1000}
BENCH_PAIRS=${BENCH_PAIRS:-3}
BENCH_PAIR_SECONDS=${BENCH_PAIR_SECONDS:-8}
BENCH_REDIS_CONNECTIONS=${BENCH_REDIS_CONNECTIONS:-32}
BENCH_PLOT=${BENCH_PLOT:-$BUILD_DIR/ack-latency.png}
PYTHON=${PYTHON:-python3}

for binary in "$HOLDFAST_BIN" "$HOLDFAST_BENCH_BIN" "$KAFKA_RAW_BENCH_BIN"; do
  [[ -x "$binary" ]] || { echo "bench: $binary not found; build it first (cmake --build --preset release)" >&2; exit 1; }
done
RUN_REDIS=1
if [[ "${BENCH_SKIP_REDIS:-0}" == 1 ]]; then
  RUN_REDIS=0
elif ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null || [[ ! -x "$REDIS_BENCH_BIN" ]]; then
  echo "bench: redis-server, redis-cli or $REDIS_BENCH_BIN missing (Debian: redis-server, libhiredis-dev, then rebuild); Redis skipped" >&2
  RUN_REDIS=0
fi

WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/holdfast-bench.XXXXXX")
BROKER_PID=""
REDIS_PID=""
PAIR_REDIS_PID=""
# stop, free_port, cpu_seconds
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cleanup() {
  stop "$BROKER_PID"
  stop "$REDIS_PID"
  stop "$PAIR_REDIS_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT

RESULTS="$WORK/results.jsonl"
: > "$RESULTS"
MACHINE="$(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME")"
FILESYSTEM=$(df -T "$WORK" | awk 'NR==2 {print $2 " on " $1}')
echo "bench: machine: $MACHINE" >&2
echo "bench: work dir $WORK ($FILESYSTEM)" >&2

# measure PID COMMAND...: runs COMMAND (which prints one JSON object) and
# appends that object to RESULTS with server_cpu_s, the CPU PID used meanwhile,
# and server_ctx_switches, its threads' context switches meanwhile.
measure() {
  local pid=$1 before after switches_before switches_after
  shift
  before=$(cpu_seconds "$pid")
  switches_before=$(ctx_switches "$pid")
  "$@" > "$WORK/phase.json"
  after=$(cpu_seconds "$pid")
  switches_after=$(ctx_switches "$pid")
  "$PYTHON" -c 'import json, sys
r = json.load(open(sys.argv[1]))
r["server_cpu_s"] = float(sys.argv[3]) - float(sys.argv[2])
r["server_ctx_switches"] = int(sys.argv[5]) - int(sys.argv[4])
print(json.dumps(r))' "$WORK/phase.json" "$before" "$after" "$switches_before" "$switches_after" >> "$RESULTS"
}

# 0. The disk: sequential 64 KiB writes with an fdatasync after each (the
#    bandwidth ceiling), then 4 KiB writes + fdatasync (one sync's latency).
if [[ "${BENCH_SKIP_FIO:-0}" != 1 ]] && command -v fio >/dev/null; then
  mkdir -p "$WORK/fio"
  fio --name=seq --rw=write --bs=64k --size=256m --fdatasync=1 --directory="$WORK/fio" \
      --output-format=json > "$WORK/fio.json"
  rm -rf "$WORK/fio"/*
  fio --name=sync --rw=write --bs=4k --size=32m --fdatasync=1 --directory="$WORK/fio" \
      --output-format=json > "$WORK/fio-4k.json"
  rm -rf "$WORK/fio"
  "$PYTHON" - "$WORK/fio.json" "$WORK/fio-4k.json" >> "$RESULTS" <<'PY'
import json, sys
seq = json.load(open(sys.argv[1]))["jobs"][0]["write"]
sync = json.load(open(sys.argv[2]))["jobs"][0]["sync"]["lat_ns"]["percentile"]
pick = lambda p: next(v for k, v in sync.items() if abs(float(k) - p) < 1e-6) / 1e6
print(json.dumps({"run": "fio", "mb_per_s": seq["bw_bytes"] / 1e6,
                  "sync_p50_ms": pick(50), "sync_p99_ms": pick(99), "sync_p999_ms": pick(99.9)}))
PY
  echo "bench: fio: $(tail -1 "$RESULTS")" >&2
fi

# 1. The broker, durable by default (flush.policy=always: fsync before ack).
PORT=$(free_port)
BROKERS="127.0.0.1:$PORT"
ADMIN="127.0.0.1:$(free_port)"  # its /metrics give the broker's side of each latency run
mkdir -p "$WORK/data"
"$HOLDFAST_BIN" serve --data-dir "$WORK/data" --listen "$BROKERS" --advertise "$BROKERS" \
    --set flush.policy=always --set admin.listener="$ADMIN" > "$WORK/broker.log" 2>&1 &
BROKER_PID=$!
for _ in $(seq 1 200); do
  grep -q "listening on" "$WORK/broker.log" 2>/dev/null && break
  kill -0 "$BROKER_PID" 2>/dev/null || { cat "$WORK/broker.log" >&2; echo "bench: broker exited" >&2; exit 1; }
  sleep 0.1
done
grep -q "listening on" "$WORK/broker.log" || { cat "$WORK/broker.log" >&2; echo "bench: broker not ready in 20 s" >&2; exit 1; }
echo "bench: broker pid $BROKER_PID on $BROKERS" >&2

# merge_last JSON: adds the fields of the JSON object to the last result.
merge_last() {
  "$PYTHON" - "$RESULTS" "$1" <<'PY'
import json, sys
lines = open(sys.argv[1]).read().splitlines()
r = json.loads(lines[-1]); r.update(json.loads(sys.argv[2])); lines[-1] = json.dumps(r)
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
}
hf() { measure "$BROKER_PID" "$HOLDFAST_BENCH_BIN" "$@" --brokers "$BROKERS"; }
# hf_latency ARGS...: a latency run, with the broker's histograms of Produce
# acknowledgements and syncs over the run added to its result.
hf_latency() { with_broker_hist "$HOLDFAST_BENCH_BIN" latency "$@"; }
# raw_latency ARGS...: the same through kafka_raw_bench, the one-thread client
# built like redis_bench.
raw_latency() { with_broker_hist "$KAFKA_RAW_BENCH_BIN" latency "$@"; }
with_broker_hist() {
  "$PYTHON" bench/broker_hist.py snapshot "http://$ADMIN/metrics" "$WORK/hist-before.json"
  measure "$BROKER_PID" "$@" --brokers "$BROKERS"
  "$PYTHON" bench/broker_hist.py snapshot "http://$ADMIN/metrics" "$WORK/hist-after.json"
  merge_last "$("$PYTHON" bench/broker_hist.py diff "$WORK/hist-before.json" "$WORK/hist-after.json")"
}
hf produce --topic bench-1k --size 1024 --count "$BENCH_MESSAGES_1K" --max-seconds "$BENCH_SECONDS" --acks all --linger-ms 5
hf produce --topic bench-100b --size 100 --count "$BENCH_MESSAGES_100B" --max-seconds "$BENCH_SECONDS" --acks all --linger-ms 5
hf consume --topic bench-1k --max-seconds "$BENCH_SECONDS"
hf produce --topic bench-window --size 100 --count "$BENCH_MESSAGES_100B" --max-seconds "$BENCH_SECONDS" --acks all --linger-ms 0 --window "$BENCH_WINDOW"
hf produce --topic bench-window-1k --size 1024 --count "$BENCH_MESSAGES_1K" --max-seconds "$BENCH_SECONDS" --acks all --linger-ms 0 --window "$BENCH_WINDOW"

# Created explicitly: an auto-created topic gets num.partitions (4), and the
# one-partition runs must be one partition.
"$HOLDFAST_BIN" topic create bench-latency --partitions 1 --brokers "$BROKERS" >&2
"$HOLDFAST_BIN" topic create bench-latency-1k --partitions 1 --brokers "$BROKERS" >&2
"$HOLDFAST_BIN" topic create bench-latency-64 --partitions 64 --brokers "$BROKERS" >&2
"$HOLDFAST_BIN" topic create bench-latency-nodelay --partitions 1 --brokers "$BROKERS" >&2
hf_latency --topic bench-latency --rate "$BENCH_RATE" --seconds "$BENCH_LATENCY_SECONDS" --size 100 --acks all --linger-ms 0 \
    --latencies-out "$WORK/latency-holdfast-100.txt"
hf_latency --topic bench-latency-1k --rate "$BENCH_RATE" --seconds "$BENCH_LATENCY_SECONDS" --size 1024 --acks all --linger-ms 0 \
    --latencies-out "$WORK/latency-holdfast-1k.txt"
hf_latency --topic bench-latency-64 --rate "$BENCH_RATE" --seconds "$BENCH_LATENCY_SECONDS" --size 1024 --acks all --linger-ms 0 \
    --latencies-out "$WORK/latency-holdfast-1k-64.txt"
# The client's side of the gap to Redis: hiredis sets TCP_NODELAY, librdkafka
# leaves Nagle's algorithm on unless told (docs/benchmarks.md).
hf_latency --topic bench-latency-nodelay --rate "$BENCH_RATE" --seconds "$BENCH_LATENCY_SECONDS" --size 100 --acks all --linger-ms 0 \
    -X socket.nagle.disable=true --latencies-out "$WORK/latency-holdfast-100-nodelay.txt"
# start_redis DIR: redis-server with the AOF fsynced before every reply
# (appendfsync always), its files in DIR, on a free port; sets
# STARTED_REDIS_PORT and STARTED_REDIS_PID once it answers PING.
start_redis() {
  local dir=$1
  STARTED_REDIS_PORT=$(free_port)
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$STARTED_REDIS_PORT" --dir "$dir" --appendonly yes \
      --appendfsync always --save "" --protected-mode no --daemonize no \
      --logfile "$dir/redis.log" &
  STARTED_REDIS_PID=$!
  for _ in $(seq 1 200); do
    redis-cli -p "$STARTED_REDIS_PORT" ping 2>/dev/null | grep -q PONG && return 0
    kill -0 "$STARTED_REDIS_PID" 2>/dev/null || { cat "$dir/redis.log" >&2; echo "bench: redis-server exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "bench: redis-server did not answer PING in 20 s" >&2
  stop "$STARTED_REDIS_PID"
  exit 1
}
# tag_last KEY VALUE: adds "KEY": VALUE (a number) to the last result.
tag_last() { merge_last "{\"$1\": $2}"; }
# And without a client library's threads, against Redis timed the same way:
# kafka_raw_bench (one thread, one request per message, TCP_NODELAY) and
# redis_bench alternate for BENCH_PAIRS rounds of BENCH_PAIR_SECONDS, so that
# the comparison does not rest on one run each in different minutes of a
# shared machine (a Redis of its own for this, idle while the broker runs).
"$HOLDFAST_BIN" topic create bench-latency-raw --partitions 1 --brokers "$BROKERS" >&2
if [[ "$RUN_REDIS" == 1 ]]; then
  start_redis "$WORK/redis-pairs"
  PAIR_REDIS_PORT=$STARTED_REDIS_PORT
  PAIR_REDIS_PID=$STARTED_REDIS_PID
fi
for round in $(seq 1 "$BENCH_PAIRS"); do
  raw_latency --topic bench-latency-raw --rate "$BENCH_RATE" --seconds "$BENCH_PAIR_SECONDS" --size 100 \
      --latencies-out "$WORK/latency-holdfast-100-raw-$round.txt"
  tag_last pair "$round"
  if [[ "$RUN_REDIS" == 1 ]]; then
    measure "$PAIR_REDIS_PID" "$REDIS_BENCH_BIN" latency --key pair-$round --size 100 --rate "$BENCH_RATE" \
        --seconds "$BENCH_PAIR_SECONDS" --port "$PAIR_REDIS_PORT" \
        --latencies-out "$WORK/latency-redis-100-pair-$round.txt"
    tag_last pair "$round"
  fi
done
cat "$WORK"/latency-holdfast-100-raw-*.txt > "$WORK/latency-holdfast-100-raw.txt"
if [[ "$RUN_REDIS" == 1 ]]; then
  cat "$WORK"/latency-redis-100-pair-*.txt > "$WORK/latency-redis-100-pairs.txt"
  stop "$PAIR_REDIS_PID"
  PAIR_REDIS_PID=""
  rm -rf "$WORK/redis-pairs"
fi

echo "{\"run\": \"rss\", \"system\": \"holdfast\", \"peak_rss_kb\": $(awk '/VmHWM/ {print $2}' "/proc/$BROKER_PID/status"), \"data\": \"$(du -sh "$WORK/data" | cut -f1)\"}" >> "$RESULTS"
stop "$BROKER_PID"  # Redis and the restart bench get the cores to themselves
BROKER_PID=""
rm -rf "$WORK/data"

# 2. Redis Streams with appendfsync always, its dir beside the broker's.
if [[ "$RUN_REDIS" == 1 ]]; then
  start_redis "$WORK/redis"
  REDIS_PORT=$STARTED_REDIS_PORT
  REDIS_PID=$STARTED_REDIS_PID
  echo "bench: $(redis-server --version | cut -d' ' -f1-3) pid $REDIS_PID on 127.0.0.1:$REDIS_PORT" >&2
  # Also counts the AOF rewrites Redis started (by its defaults) during each run:
  # they fork, and the child's CPU is not in redis-server's utime + stime.
  rewrites() { grep -c "Background append only file rewriting started" "$WORK/redis/redis.log" || true; }
  rb() {
    local before
    before=$(rewrites)
    measure "$REDIS_PID" "$REDIS_BENCH_BIN" "$@" --port "$REDIS_PORT"
    merge_last "{\"aof_rewrites\": $(($(rewrites) - before))}"
  }
  rb latency --key latency-100 --size 100 --rate "$BENCH_RATE" --seconds "$BENCH_LATENCY_SECONDS" \
      --latencies-out "$WORK/latency-redis-100.txt"
  rb latency --key latency-1k --size 1024 --rate "$BENCH_RATE" --seconds "$BENCH_LATENCY_SECONDS" \
      --latencies-out "$WORK/latency-redis-1k.txt"
  rb produce --key produce-1k --size 1024 --count "$BENCH_MESSAGES_1K" --max-seconds "$BENCH_SECONDS" \
      --window "$BENCH_WINDOW" --connections "$BENCH_REDIS_CONNECTIONS"
  rb produce --key produce-100 --size 100 --count "$BENCH_MESSAGES_100B" --max-seconds "$BENCH_SECONDS" \
      --window "$BENCH_WINDOW" --connections "$BENCH_REDIS_CONNECTIONS"
  echo "{\"run\": \"rss\", \"system\": \"redis\", \"peak_rss_kb\": $(awk '/VmHWM/ {print $2}' "/proc/$REDIS_PID/status"), \"data\": \"$(du -sh "$WORK/redis" | cut -f1)\"}" >> "$RESULTS"
  stop "$REDIS_PID"
  REDIS_PID=""
  rm -rf "$WORK/redis/appendonlydir"
fi

# 3. Restart after kill -9 with RESTART_BENCH_GB in one partition.
if [[ "${BENCH_SKIP_RESTART:-0}" != 1 ]]; then
  BENCH_DIR="$WORK" RESTART_BENCH_RUNS="${RESTART_BENCH_RUNS:-1}" RESTART_BENCH_RESULTS="$RESULTS" \
    BUILD_DIR="$BUILD_DIR" HOLDFAST_BIN="$HOLDFAST_BIN" HOLDFAST_BENCH_BIN="$HOLDFAST_BENCH_BIN" \
    PYTHON="$PYTHON" bash bench/restart_bench.sh >&2
fi

# The tables, then the picture.
"$PYTHON" bench/report.py "$RESULTS" --machine "$MACHINE; $FILESYSTEM" --rate "$BENCH_RATE"

# Debian's matplotlib belongs to /usr/bin/python3, which may not be $PYTHON.
PLOT_PYTHON=""
for candidate in "$PYTHON" /usr/bin/python3; do
  if "$candidate" -c 'import matplotlib' 2>/dev/null; then PLOT_PYTHON=$candidate; break; fi
done
if [[ -n "$PLOT_PYTHON" ]]; then
  mkdir -p "$(dirname "$BENCH_PLOT")"
  curves=("Holdfast 100 B=$WORK/latency-holdfast-100.txt" "Holdfast 1 KiB=$WORK/latency-holdfast-1k.txt"
          "Holdfast 1 KiB, 64 partitions=$WORK/latency-holdfast-1k-64.txt"
          "Holdfast 100 B, client TCP_NODELAY=$WORK/latency-holdfast-100-nodelay.txt"
          "Holdfast 100 B, one-thread client, all rounds=$WORK/latency-holdfast-100-raw.txt")
  if [[ "$RUN_REDIS" == 1 ]]; then
    curves+=("Redis Streams 100 B=$WORK/latency-redis-100.txt" "Redis Streams 1 KiB=$WORK/latency-redis-1k.txt"
             "Redis Streams 100 B, rounds beside the one-thread client=$WORK/latency-redis-100-pairs.txt")
  fi
  "$PLOT_PYTHON" bench/plot_latency.py "$BENCH_PLOT" "${curves[@]}" \
    --title "Durable acknowledgement latency at a fixed $BENCH_RATE msg/s (Holdfast: acks=all, flush.policy=always; Redis: appendfsync always)"$'\n'"$(date -u +%F), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?'); $MACHINE; $FILESYSTEM"
  echo "bench: latency picture: $BENCH_PLOT"
else
  echo "bench: matplotlib missing (Debian: python3-matplotlib); no latency picture" >&2
fi

# The replicated run beside the single-node figures above (issue 9).
if [[ "${BENCH_SKIP_CLUSTER:-0}" != 1 ]]; then
  echo
  BUILD_DIR="$BUILD_DIR" HOLDFAST_BIN="$HOLDFAST_BIN" HOLDFAST_BENCH_BIN="$HOLDFAST_BENCH_BIN" \
    BENCH_RATE="$BENCH_RATE" "$PYTHON" bench/replicated.py
fi
