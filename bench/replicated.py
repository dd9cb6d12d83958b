#!/usr/bin/env python3
"""Replicated benchmark (`make bench-cluster`, issue 9): one run measures side
by side
  1. a single node,          acks=1
  2. 3 nodes, topic RF=3,    acks=1
  3. 3 nodes, topic RF=3,    acks=all, min.insync.replicas=2
all with flush.policy=always, 1 KiB messages, linger.ms=5: produce throughput
(msg/s, MB/s), ack latency p50/p99/p99.9 at a fixed rate, and broker CPU
seconds per MB produced (all brokers together, throughput run only). Every
configuration runs BENCH_RUNS times (default 3) on a fresh data directory
and the table shows the medians. A program that prints figures, not a test.

All processes run on this machine on 127.0.0.1: three brokers, their Raft
traffic and the client share its cores, so the replicated figures are a
floor, not what three machines would give.

Environment (all optional): BUILD_DIR, HOLDFAST_BIN, HOLDFAST_BENCH_BIN,
BENCH_DIR (default /tmp), BENCH_RUNS (3), BENCH_MESSAGES (200000),
BENCH_SECONDS (20, bound per throughput run), BENCH_RATE (2000 msg/s),
BENCH_LATENCY_SECONDS (10), BENCH_CONFIGS (comma list of single-acks1,
rf3-acks1, rf3-acksall).
"""
import json
import os
import pathlib
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUILD_DIR = pathlib.Path(os.environ.get("BUILD_DIR", ROOT / "build/release"))
HOLDFAST = pathlib.Path(os.environ.get("HOLDFAST_BIN", BUILD_DIR / "src/cli/holdfast"))
BENCH = pathlib.Path(os.environ.get("HOLDFAST_BENCH_BIN", BUILD_DIR / "bench/holdfast_bench"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "200000"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
RATE = int(os.environ.get("BENCH_RATE", "2000"))
LATENCY_SECONDS = int(os.environ.get("BENCH_LATENCY_SECONDS", "10"))
SIZE = 1024
CONFIGS = {
    "single-acks1": ("1 node, acks=1", 1, "1"),
    "rf3-acks1": ("3 nodes RF3, acks=1", 3, "1"),
    "rf3-acksall": ("3 nodes RF3, acks=all, min.insync=2", 3, "all"),
}
READY_S = 30
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(message):
    print(f"bench-cluster: {message}", file=sys.stderr, flush=True)


def free_ports(count):
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Brokers:
    """1 or 3 `holdfast serve` processes on a fresh directory."""

    def __init__(self, size, work):
        self.size, self.work, self.procs = size, work, []
        ports = free_ports(2 * size)
        self.client_ports = ports[0::2]
        voters = ",".join(f"{i + 1}@127.0.0.1:{ports[2 * i + 1]}" for i in range(size))
        for i in range(size):
            cmd = [str(HOLDFAST), "serve", "--data-dir", str(work / f"node-{i + 1}"),
                   "--set", "flush.policy=always"]
            if size == 1:
                cmd += ["--listen", f"127.0.0.1:{ports[0]}", "--advertise", f"127.0.0.1:{ports[0]}"]
            else:
                cmd += ["--node-id", str(i + 1),
                        "--set", f"listeners=PLAINTEXT://127.0.0.1:{ports[2 * i]},"
                                 f"CONTROLLER://127.0.0.1:{ports[2 * i + 1]}",
                        "--set", f"controller.quorum.voters={voters}",
                        "--set", "holdfast.cluster.experimental=true"]
            log_file = open(work / f"node-{i + 1}.log", "w")
            self.procs.append(subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                                               stdin=subprocess.DEVNULL))
        deadline = time.monotonic() + READY_S
        for i in range(size):
            path = work / f"node-{i + 1}.log"
            while "listening on" not in path.read_text(errors="replace"):
                if self.procs[i].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"node {i + 1} did not start:\n{path.read_text()[-2000:]}")
                time.sleep(0.1)

    @property
    def bootstrap(self):
        return ",".join(f"127.0.0.1:{p}" for p in self.client_ports)

    def cpu_seconds(self):
        total = 0
        for p in self.procs:
            fields = pathlib.Path(f"/proc/{p.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        return total / CLK_TCK

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)


def create_topic(brokers, name, rf):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": brokers.bootstrap})
    config = {"min.insync.replicas": "2"} if rf == 3 else {}
    deadline = time.monotonic() + 60
    while True:
        try:
            admin.create_topics([NewTopic(name, 1, rf, config=config)], operation_timeout=30,
                                request_timeout=15)[name].result(60)
            break
        except Exception as e:  # brokers still registering
            if time.monotonic() > deadline:
                raise RuntimeError(f"creating {name}: {e}")
            time.sleep(0.5)
    while True:  # every replica in the ISR before measuring
        md = admin.list_topics(name, timeout=10).topics[name].partitions[0]
        if md.leader >= 0 and len(md.isrs) == rf:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name}: ISR {md.isrs}, leader {md.leader}")
        time.sleep(0.2)


def bench(brokers, *args):
    out = subprocess.run([str(BENCH), *args, "--brokers", brokers.bootstrap], check=True,
                         capture_output=True, text=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def one_run(key, run):
    label, size, acks = CONFIGS[key]
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"holdfast-bench-{key}-",
                                         dir=os.environ.get("BENCH_DIR", "/tmp")))
    brokers = Brokers(size, work)
    try:
        create_topic(brokers, "bench-tput", size)
        create_topic(brokers, "bench-latency", size)
        cpu_before = brokers.cpu_seconds()
        tput = bench(brokers, "produce", "--topic", "bench-tput", "--size", str(SIZE),
                     "--count", str(MESSAGES), "--max-seconds", str(SECONDS), "--acks", acks,
                     "--linger-ms", "5")
        cpu = brokers.cpu_seconds() - cpu_before
        latency = bench(brokers, "latency", "--topic", "bench-latency", "--rate", str(RATE),
                        "--seconds", str(LATENCY_SECONDS), "--size", str(SIZE), "--acks", acks)
    finally:
        brokers.stop()
        shutil.rmtree(work, ignore_errors=True)
    mb = tput["messages"] * SIZE / 1e6
    result = {"config": key, "run": run, "msg_per_s": tput["messages_per_s"],
              "mb_per_s": tput["mb_per_s"], "failed": tput["failed"] + latency["failed"],
              "cpu_s_per_mb": cpu / mb if mb else float("nan"),
              "p50_ms": latency["p50_ms"], "p99_ms": latency["p99_ms"],
              "p999_ms": latency["p999_ms"], "achieved_rate": latency["achieved_rate"]}
    log(f"{label} run {run + 1}: {result['msg_per_s']:,.0f} msg/s, p50 {result['p50_ms']:.2f} ms,"
        f" p99 {result['p99_ms']:.2f} ms, {result['cpu_s_per_mb']:.3f} CPU s/MB")
    return result


def main():
    for binary in (HOLDFAST, BENCH):
        if not binary.exists():
            sys.exit(f"bench-cluster: {binary} not found; build it first "
                     "(cmake --build --preset release --target holdfast holdfast_bench)")
    keys = [k for k in os.environ.get("BENCH_CONFIGS", ",".join(CONFIGS)).split(",") if k]
    load = os.getloadavg()
    log(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} at start;"
        f" {RUNS} runs per configuration, rate {RATE} msg/s")
    results = []
    # Interleaved (run 1 of each, then run 2 ...) so a burst of other load on
    # a shared machine does not land on one configuration only.
    for run in range(RUNS):
        for key in keys:
            results.append(one_run(key, run))
    rows = [("configuration (1 KiB, linger 5 ms, flush.policy=always)", "msg/s", "MB/s",
             f"p50 ms @{RATE}/s", "p99 ms", "p99.9 ms", "sent/s", "CPU s/MB", "failed")]
    for key in keys:
        mine = [r for r in results if r["config"] == key]
        med = lambda field: statistics.median(r[field] for r in mine)
        rows.append((CONFIGS[key][0], f"{med('msg_per_s'):,.0f}", f"{med('mb_per_s'):.1f}",
                     f"{med('p50_ms'):.2f}", f"{med('p99_ms'):.2f}", f"{med('p999_ms'):.2f}",
                     f"{med('achieved_rate'):,.0f}", f"{med('cpu_s_per_mb'):.3f}", str(sum(r["failed"] for r in mine))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print(f"\nmedians of {RUNS} runs; {os.cpu_count()} cores, load average"
          f" {load[0]:.2f} -> {os.getloadavg()[0]:.2f}")
    for row in rows:
        print("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip())
    with open(os.environ.get("BENCH_RESULTS", os.devnull), "a") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
