#!/usr/bin/env bash
# Restart after kill -9 (issue 13): writes RESTART_BENCH_GB of 1 KiB messages
# into ONE partition with the real broker (flush.policy=always, acks=all),
# kill -9s it right after the last acknowledgement, then RESTART_BENCH_RUNS
# times: starts the broker on that data dir, measures the time from exec to
# the first Metadata response served on its port, and kill -9s it again.
# Prints per run: the time to Metadata, and what the broker's own start-up
# line says it scanned (bytes walked with CRC checks at recovery, bytes of
# batch headers walked). Figures only, no pass/fail.
#
# Each restart runs on the data the previous kill -9 left, with the page
# cache warm (a process crash, not a power loss). The machine is shared:
# take the median and run before/after builds side by side.
#
# Environment (all optional):
#   BUILD_DIR            build tree (default build/release)
#   HOLDFAST_BIN         broker binary (default $BUILD_DIR/src/cli/holdfast)
#   HOLDFAST_BENCH_BIN   producer (default $BUILD_DIR/bench/holdfast_bench)
#   BENCH_DIR            where the data dir goes (default /tmp)
#   RESTART_BENCH_GB     data to write, GB (decimal; default 3; e.g. 0.2 for a quick run)
#   RESTART_BENCH_RUNS   restarts to time (default 3)
#   RESTART_BENCH_DATA   reuse this data dir (skip the writing; it is modified by the restarts)
#   RESTART_BENCH_RESULTS  append the summary as one JSON line to this file (bench/run.sh)
set -euo pipefail

cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build/release}
HOLDFAST_BIN=${HOLDFAST_BIN:-$BUILD_DIR/src/cli/holdfast}
HOLDFAST_BENCH_BIN=${HOLDFAST_BENCH_BIN:-$BUILD_DIR/bench/holdfast_bench}
RESTART_BENCH_GB=${RESTART_BENCH_GB:-3}
RESTART_BENCH_RUNS=${RESTART_BENCH_RUNS:-3}
PYTHON=${PYTHON:-python3}

[[ -x "$HOLDFAST_BIN" ]] || { echo "restart-bench: $HOLDFAST_BIN not found; build it first" >&2; exit 1; }

WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/holdfast-restart.XXXXXX")
BROKER_PID=""
cleanup() {
  if [[ -n "$BROKER_PID" ]]; then kill -KILL "$BROKER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

PORT=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BROKERS="127.0.0.1:$PORT"
DATA=${RESTART_BENCH_DATA:-$WORK/data}
SERVE=("$HOLDFAST_BIN" serve --data-dir "$DATA" --listen "$BROKERS" --advertise "$BROKERS"
       --set flush.policy=always --set num.partitions=1)

echo "restart-bench: machine: $(nproc) cores, $(. /etc/os-release; echo "$PRETTY_NAME"); data in $DATA ($(df -T "$(dirname "$DATA")" | awk 'NR==2 {print $2}'))" >&2

if [[ -z "${RESTART_BENCH_DATA:-}" ]]; then
  [[ -x "$HOLDFAST_BENCH_BIN" ]] || { echo "restart-bench: $HOLDFAST_BENCH_BIN not found" >&2; exit 1; }
  mkdir -p "$DATA"
  "${SERVE[@]}" > "$WORK/write.log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 1 300); do
    grep -q "listening on" "$WORK/write.log" 2>/dev/null && break
    kill -0 "$BROKER_PID" 2>/dev/null || { cat "$WORK/write.log" >&2; exit 1; }
    sleep 0.1
  done
  COUNT=$("$PYTHON" -c "print(int(float('$RESTART_BENCH_GB') * 1e9 / 1024))")
  echo "restart-bench: writing $COUNT messages of 1 KiB to one partition" >&2
  "$HOLDFAST_BENCH_BIN" produce --topic restart --size 1024 --count "$COUNT" --max-seconds 600 \
      --acks all --linger-ms 5 --brokers "$BROKERS" >&2
  kill -KILL "$BROKER_PID"
  wait "$BROKER_PID" 2>/dev/null || true
  BROKER_PID=""
  echo "restart-bench: killed (-9) after the last acknowledgement; $(du -sh "$DATA/restart-0" | cut -f1) in the partition" >&2
fi

# Times exec -> first Metadata response, RESTART_BENCH_RUNS times.
PARTITION_BYTES=$(du -sb "$DATA/restart-0" 2>/dev/null | cut -f1 || echo 0)
"$PYTHON" - "$PORT" "$RESTART_BENCH_RUNS" "$WORK" "${RESTART_BENCH_RESULTS:-}" "${PARTITION_BYTES:-0}" "${SERVE[@]}" <<'PY'
import json, os, re, signal, socket, statistics, struct, subprocess, sys, time

port, runs, work, results, partition_bytes = (int(sys.argv[1]), int(sys.argv[2]), sys.argv[3],
                                              sys.argv[4], int(sys.argv[5]))
serve = sys.argv[6:]
# Metadata v1, all topics (null array), correlation id 7, client id "restart-bench".
client = b"restart-bench"
body = struct.pack(">hhih", 3, 1, 7, len(client)) + client + struct.pack(">i", -1)
request = struct.pack(">i", len(body)) + body

def metadata_served():
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(request)
            head = b""
            while len(head) < 8:
                chunk = s.recv(8 - len(head))
                if not chunk:
                    return False
                head += chunk
            return struct.unpack(">i", head[4:8])[0] == 7
    except OSError:
        return False

times = []
for run in range(runs):
    log_path = os.path.join(work, f"restart-{run}.log")
    with open(log_path, "w") as log:
        t0 = time.monotonic()
        broker = subprocess.Popen(serve, stdout=log, stderr=subprocess.STDOUT)
        deadline = t0 + 300
        while not metadata_served():
            if broker.poll() is not None or time.monotonic() > deadline:
                broker.kill()
                sys.exit(f"restart-bench: broker did not serve Metadata (see {log_path}):\n" +
                         open(log_path).read()[-3000:])
            time.sleep(0.002)
        elapsed = time.monotonic() - t0
        broker.send_signal(signal.SIGKILL)
        broker.wait()
    times.append(elapsed)
    loaded = [l.strip() for l in open(log_path) if re.search(r"loaded \d+ partitions from", l)]
    data_line = next((l for l in loaded if "__consumer_offsets" not in l and "group coordinator" not in l), "")
    print(f"run {run + 1}: exec -> Metadata served in {elapsed * 1000:.0f} ms; {data_line}")
print(f"restart after kill -9: median {statistics.median(times) * 1000:.0f} ms over {runs} runs "
      f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})")
if results:
    with open(results, "a") as out:
        out.write(json.dumps({"run": "restart", "system": "holdfast", "runs": runs,
                              "partition_bytes": partition_bytes,
                              "median_ms": statistics.median(times) * 1000,
                              "min_ms": min(times) * 1000, "max_ms": max(times) * 1000,
                              "scanned": data_line}) + "\n")
PY
