#!/usr/bin/env bash
# Benchmark driver (`make bench`): starts a broker on a temp dir with
# flush.policy=always, measures the disk's fsync'd sequential write ceiling
# with fio on the same filesystem, then runs holdfast_bench:
#   1. produce throughput, 1 KiB messages, acks=all, linger.ms=5
#   2. produce throughput, 100 B messages, acks=all, linger.ms=5
#   3. consume throughput (reads the 1 KiB topic back)
#   4. windowed produce: 100 B, acks=all, linger.ms=0, at most 1,000 in flight
#   5. produce-ack latency at a fixed 5,000 msg/s, acks=all, linger.ms=0:
#      100 B and 1 KiB to one partition, 1 KiB spread over 64 partitions, each
#      with the broker's CPU (utime + stime) per acknowledged message
# and prints a table, the ratio produce MB/s / fio MB/s, and the broker's
# peak RSS (VmHWM). Then (unless BENCH_SKIP_CLUSTER=1) the replicated run,
# bench/replicated.py: 1 node acks=1, 3 nodes RF3 acks=1 and acks=all at the
# same fixed rate, so single-node and replicated figures come from one run.
#
# Environment (all optional):
#   BUILD_DIR          build tree with both binaries (default build/release)
#   HOLDFAST_BIN       broker binary (default $BUILD_DIR/src/cli/holdfast)
#   HOLDFAST_BENCH_BIN bench binary (default $BUILD_DIR/bench/holdfast_bench)
#   BENCH_DIR          where the temp data dir goes (default /tmp); fio runs there too
#   BENCH_SECONDS      upper bound per throughput run (default 30)
#   BENCH_MESSAGES_1K / BENCH_MESSAGES_100B   message counts (default 1000000 / 3000000)
#   BENCH_LATENCY_SECONDS  duration of the fixed-rate run (default 15)
#   BENCH_RATE             fixed rate in msg/s (default 5000)
#   BENCH_WINDOW           messages in flight for the windowed run (default 1000)
#   BENCH_SKIP_FIO=1       skip fio
#   BENCH_SKIP_CLUSTER=1   skip the replicated run
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/release}
HOLDFAST_BIN=${HOLDFAST_BIN:-$BUILD_DIR/src/cli/holdfast}
HOLDFAST_BENCH_BIN=${HOLDFAST_BENCH_BIN:-$BUILD_DIR/bench/holdfast_bench}
BENCH_SECONDS=${BENCH_SECONDS:-30}
BENCH_MESSAGES_1K=${BENCH_MESSAGES_1K:-1000000}
BENCH_MESSAGES_100B=${BENCH_MESSAGES_100B:-3000000}
BENCH_LATENCY_SECONDS=${BENCH_LATENCY_SECONDS:-15}
BENCH_RATE=${BENCH_RATE:-5000}
PYTHON=${PYTHON:-python3}

for binary in "$HOLDFAST_BIN" "$HOLDFAST_BENCH_BIN"; do
  [[ -x "$binary" ]] || { echo "bench: $binary not found; build it first (cmake --build --preset release)" >&2; exit 1; }
done

WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/holdfast-bench.XXXXXX")
BROKER_PID=""
cleanup() {
  if [[ -n "$BROKER_PID" ]] && kill -0 "$BROKER_PID" 2>/dev/null; then
    kill -TERM "$BROKER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$BROKER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BROKERS="127.0.0.1:$PORT"
RESULTS="$WORK/results.jsonl"
: > "$RESULTS"

echo "bench: machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(. /etc/os-release; echo "$PRETTY_NAME")" >&2
echo "bench: work dir $WORK ($(df -T "$WORK" | awk 'NR==2 {print $2 " on " $1}'))" >&2

# 1. The disk's ceiling: sequential 64 KiB writes, fdatasync after each.
FIO_MBPS=""
if [[ "${BENCH_SKIP_FIO:-0}" != 1 ]] && command -v fio >/dev/null; then
  mkdir -p "$WORK/fio"
  fio --name=seq --rw=write --bs=64k --size=256m --fdatasync=1 --directory="$WORK/fio" \
      --output-format=json > "$WORK/fio.json"
  FIO_MBPS=$("$PYTHON" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j["jobs"][0]["write"]["bw_bytes"]/1e6)' "$WORK/fio.json")
  rm -rf "$WORK/fio"
  echo "bench: fio sequential 64 KiB + fdatasync: $FIO_MBPS MB/s" >&2
fi

# 2. The broker, durable by default (flush.policy=always: fsync before ack).
mkdir -p "$WORK/data"
"$HOLDFAST_BIN" serve --data-dir "$WORK/data" --listen "$BROKERS" --advertise "$BROKERS" \
    --set flush.policy=always > "$WORK/broker.log" 2>&1 &
BROKER_PID=$!
for _ in $(seq 1 200); do
  grep -q "listening on" "$WORK/broker.log" 2>/dev/null && break
  kill -0 "$BROKER_PID" 2>/dev/null || { cat "$WORK/broker.log" >&2; echo "bench: broker exited" >&2; exit 1; }
  sleep 0.1
done
grep -q "listening on" "$WORK/broker.log" || { cat "$WORK/broker.log" >&2; echo "bench: broker not ready in 20 s" >&2; exit 1; }
echo "bench: broker pid $BROKER_PID on $BROKERS" >&2

bench() { "$HOLDFAST_BENCH_BIN" "$@" --brokers "$BROKERS" >> "$RESULTS"; }
bench produce --topic bench-1k --size 1024 --count "$BENCH_MESSAGES_1K" --max-seconds "$BENCH_SECONDS" --acks all --linger-ms 5
bench produce --topic bench-100b --size 100 --count "$BENCH_MESSAGES_100B" --max-seconds "$BENCH_SECONDS" --acks all --linger-ms 5
bench consume --topic bench-1k --max-seconds "$BENCH_SECONDS"
bench produce --topic bench-window --size 100 --count "$BENCH_MESSAGES_100B" --max-seconds "$BENCH_SECONDS" --acks all --linger-ms 0 --window "${BENCH_WINDOW:-1000}"

# Broker CPU (utime + stime, clock ticks) around each fixed-rate run, added to
# its result as broker_cpu_s; the table divides it by the messages acknowledged.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$BROKER_PID/stat"; }
latency() {
  local before after
  before=$(cpu_ticks)
  "$HOLDFAST_BENCH_BIN" latency "$@" --brokers "$BROKERS" > "$WORK/latency.json"
  after=$(cpu_ticks)
  "$PYTHON" -c 'import json, sys
r = json.load(open(sys.argv[1]))
r["broker_cpu_s"] = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4])
print(json.dumps(r))' "$WORK/latency.json" "$before" "$after" "$(getconf CLK_TCK)" >> "$RESULTS"
}
# Created explicitly: an auto-created topic gets num.partitions (4), and the
# one-partition runs must be one partition.
"$HOLDFAST_BIN" topic create bench-latency --partitions 1 --brokers "$BROKERS" >&2
"$HOLDFAST_BIN" topic create bench-latency-1k --partitions 1 --brokers "$BROKERS" >&2
"$HOLDFAST_BIN" topic create bench-latency-64 --partitions 64 --brokers "$BROKERS" >&2
latency --topic bench-latency --rate "$BENCH_RATE" --seconds "$BENCH_LATENCY_SECONDS" --size 100 --acks all --linger-ms 0
latency --topic bench-latency-1k --rate "$BENCH_RATE" --seconds "$BENCH_LATENCY_SECONDS" --size 1024 --acks all --linger-ms 0
latency --topic bench-latency-64 --rate "$BENCH_RATE" --seconds "$BENCH_LATENCY_SECONDS" --size 1024 --acks all --linger-ms 0

PEAK_RSS_KB=$(awk '/VmHWM/ {print $2}' "/proc/$BROKER_PID/status")
DISK_USED=$(du -sh "$WORK/data" | cut -f1)

"$PYTHON" - "$RESULTS" "${FIO_MBPS:-0}" "$PEAK_RSS_KB" "$DISK_USED" <<'PY'
import json, sys
results = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
fio = float(sys.argv[2])
rss_mib = int(sys.argv[3]) / 1024
rows = []
def ratio(mbps):
    return f"{mbps / fio:.2f}" if fio else "-"
for r in results:
    if r["run"] == "produce":
        window = f", {r['window']:,} in flight" if r.get("window") else ""
        rows.append((f"produce {r['message_bytes']} B, acks={r['acks']}, linger {r['linger_ms']} ms{window}",
                     f"{r['messages_per_s']:,.0f} msg/s", f"{r['mb_per_s']:.1f} MB/s",
                     f"{ratio(r['mb_per_s'])} of fio" + (f"; {r['failed']} FAILED" if r["failed"] else "")))
    elif r["run"] == "consume":
        rows.append(("consume (1 KiB topic)", f"{r['messages_per_s']:,.0f} msg/s",
                     f"{r['mb_per_s']:.1f} MB/s", "" if r["complete"] else "INCOMPLETE"))
    elif r["run"] == "latency":
        cpu = ""
        if "broker_cpu_s" in r and r["messages"]:
            cpu = f", broker CPU {r['broker_cpu_s'] * 1e6 / r['messages']:.0f} us/msg"
        rows.append((f"ack latency @ {r['target_rate']:,.0f} msg/s ({r['achieved_rate']:,.0f} sent), "
                     f"{r['message_bytes']} B to {r['topic']}, acks={r['acks']}",
                     f"p50 {r['p50_ms']:.2f} ms", f"p99 {r['p99_ms']:.2f} ms",
                     f"p99.9 {r['p999_ms']:.2f} ms, max {r['max_ms']:.1f} ms{cpu}" + (f"; {r['failed']} FAILED" if r["failed"] else "")))
rows.append(("fio seq 64 KiB write + fdatasync", "", f"{fio:.1f} MB/s" if fio else "skipped", "disk ceiling"))
rows.append(("broker peak RSS (VmHWM)", "", f"{rss_mib:.0f} MiB", f"data on disk {sys.argv[4]}"))
widths = [max(len(row[i]) for row in rows) for i in range(4)]
print()
for row in rows:
    print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
PY

# The replicated run beside the single-node figures above (issue 9). The
# single broker is stopped first so it does not share the cores.
if [[ "${BENCH_SKIP_CLUSTER:-0}" != 1 ]]; then
  kill -TERM "$BROKER_PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$BROKER_PID" 2>/dev/null || break; sleep 0.1; done
  echo
  BUILD_DIR="$BUILD_DIR" HOLDFAST_BIN="$HOLDFAST_BIN" HOLDFAST_BENCH_BIN="$HOLDFAST_BENCH_BIN" \
    BENCH_RATE="$BENCH_RATE" "$PYTHON" bench/replicated.py
fi
