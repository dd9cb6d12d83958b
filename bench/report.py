#!/usr/bin/env python3
"""Prints bench/run.sh's results as Markdown tables (paste-able into docs/benchmarks.md).

    report.py RESULTS.jsonl [--machine TEXT] [--rate 5000]

RESULTS holds one JSON object per line: fio's figures, each holdfast_bench /
redis_bench run (with server_cpu_s, the server's utime + stime during it), the
peak RSS of each server and the restart bench's summary. Prints throughput,
latency, disk/process, Holdfast ÷ Redis ratios, and issue 13's targets beside
what was measured (figures, not assertions).
"""
import argparse
import json
import re


def table(header, rows):
    """Markdown: the first and a "notes" column left-aligned, figures right-aligned."""
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 or name in ("notes", "") else "---:"
                         for i, name in enumerate(header)) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print()


def cpu_us(r):
    if "server_cpu_s" not in r or not r.get("messages"):
        return None
    return r["server_cpu_s"] * 1e6 / r["messages"]


def switches_per_msg(r):
    if "server_ctx_switches" not in r or not r.get("messages"):
        return None
    return r["server_ctx_switches"] / r["messages"]


def scanned(line):
    """The broker's start-up line, from "loaded N partitions" on, without the data dir."""
    at = line.find("loaded ")
    line = line[at:] if at >= 0 else line
    return re.sub(r" from \S+", "", line)


def fmt(value, spec, unit=""):
    return "-" if value is None else f"{value:{spec}}{unit}"


def size_name(n):
    return "1 KiB" if n == 1024 else f"{n} B"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    parser.add_argument("--machine", default="")
    parser.add_argument("--rate", type=float, default=5000)
    args = parser.parse_args()
    results = [json.loads(line) for line in open(args.results) if line.strip()]

    def find(run, system=None, **match):
        match.setdefault("pair", None)  # the interleaved rounds only when asked for
        for r in results:
            if r["run"] == run and (system is None or r.get("system") == system) and all(
                    r.get(k) == v for k, v in match.items()):
                return r
        return None

    fio = find("fio")
    fio_mbps = fio["mb_per_s"] if fio else None
    print()
    if args.machine:
        print(f"Machine: {args.machine}")
        print()

    # Throughput.
    rows = []
    for r in results:
        if r["run"] not in ("produce", "consume"):
            continue
        system = "Holdfast" if r.get("system", "holdfast") == "holdfast" else "Redis Streams"
        notes = []
        if r["run"] == "consume":
            what = f"consume ({r['topic']})"
            if not r.get("complete", True):
                notes.append("INCOMPLETE")
        elif r.get("system") == "redis":
            what = (f"XADD {size_name(r['message_bytes'])}, pipelined, {r['window']:,} in flight "
                    f"over {r['connections']} connections")
            if r.get("aof_rewrites"):
                notes.append(f"{r['aof_rewrites']} AOF rewrite(s) during the run")
        else:
            window = f"{r['window']:,} in flight" if r.get("window") else "unwindowed"
            what = (f"produce {size_name(r['message_bytes'])}, acks={r['acks']}, "
                    f"linger.ms={r['linger_ms']}, {window}")
            if fio_mbps:
                notes.append(f"{r['mb_per_s'] / fio_mbps:.2f} × fio")
        if r.get("failed"):
            notes.append(f"{r['failed']} FAILED ({r.get('first_error', '')})")
        rows.append([what, system, f"{r['messages_per_s']:,.0f}", f"{r['mb_per_s']:.1f}",
                     fmt(cpu_us(r), ".1f"), "; ".join(notes)])
    if rows:
        print("Throughput (server CPU = the server's utime + stime during the run ÷ messages):")
        print()
        table(["run", "system", "msg/s", "MB/s", "server CPU µs/msg", "notes"], rows)

    # Latency.
    rows = []
    for r in results:
        if r["run"] != "latency" or r.get("pair"):
            continue
        redis = r.get("system") == "redis"
        system = "Redis Streams" if redis else "Holdfast"
        what = (f"XADD {size_name(r['message_bytes'])}, appendfsync always" if redis else
                f"{size_name(r['message_bytes'])} to {r['topic']}, acks={r['acks']}, "
                + ("one-thread client (kafka_raw_bench)" if r.get("client") == "raw" else
                   "linger.ms=0" + "".join(f", {p}" for p in r.get("client_properties", []))))
        notes = []
        if r.get("failed"):
            notes.append(f"{r['failed']} FAILED")
        if r.get("aof_rewrites"):
            notes.append(f"{r['aof_rewrites']} AOF rewrite(s) during the run")
        rows.append([what, system, f"{r['achieved_rate']:,.0f}", f"{r['p50_ms']:.3f}",
                     f"{r['p99_ms']:.2f}", f"{r['p999_ms']:.2f}", f"{r['max_ms']:.1f}",
                     fmt(cpu_us(r), ".1f"), fmt(switches_per_msg(r), ".2f"), "; ".join(notes)])
    if rows:
        print(f"Acknowledgement latency at a fixed {args.rate:,.0f} msg/s (ms; from the send to "
              "the acknowledgement / reply):")
        print()
        table(["run", "system", "sent msg/s", "p50", "p99", "p99.9", "max", "server CPU µs/msg",
               "server context switches / msg", "notes"], rows)

    # The broker's side of the same runs (bench/broker_hist.py).
    rows = []
    for r in results:
        if r["run"] != "latency" or r.get("system") == "redis" or "broker_ack_count" not in r:
            continue
        what = f"{size_name(r['message_bytes'])} to {r['topic']}" + (
            f", one-thread client, round {r.get('pair', '-')}" if r.get("client") == "raw" else
            "".join(f", {p}" for p in r.get("client_properties", [])))
        b50, b99, f50 = r.get("broker_ack_p50_ms"), r.get("broker_ack_p99_ms"), r.get("broker_fsync_p50_ms")
        n = r.get("messages") or 0
        rows.append([what, f"{r['p50_ms']:.3f}", fmt(b50, ".3f"),
                     fmt(None if b50 is None else r["p50_ms"] - b50, ".3f"),
                     f"{r['p99_ms']:.2f}", fmt(b99, ".2f"), fmt(f50, ".3f"),
                     fmt(r.get("broker_fsync_p99_ms"), ".2f"),
                     fmt(r["broker_ack_count"] / n if n else None, ".2f"),
                     fmt(r.get("broker_fsync_count", 0) / n if n else None, ".2f")])
    if rows:
        print("The broker's side of the Holdfast latency runs (its /metrics histograms; broker "
              "p50 and p99 are interpolated within the buckets, so good to a bucket's width: "
              "0.25–0.5 ms, 0.5–1 ms, ...). Client − broker is the time outside the broker's "
              "request handling: the client library's threads, loopback, and the broker's "
              "wake-ups to read the request and write the response:")
        print()
        table(["run", "client p50", "broker p50", "client − broker p50", "client p99",
               "broker p99", "fsync p50", "fsync p99", "Produce requests / msg", "fsyncs / msg"],
              rows)

    # The same client design on both sides, interleaved rounds.
    raw = {r["pair"]: r for r in results if r["run"] == "latency" and r.get("pair")
           and r.get("client") == "raw"}
    red = {r["pair"]: r for r in results if r["run"] == "latency" and r.get("pair")
           and r.get("system") == "redis"}
    pair_medians = None
    if raw:
        rows = []
        keys = ("p50_ms", "p99_ms", "p999_ms")

        def cells(h, r):
            out = []
            for key in keys:
                out += [f"{h[key]:.3f}" if h else "-", f"{r[key]:.3f}" if r else "-"]
            out += [fmt(cpu_us(h) if h else None, ".1f"), fmt(cpu_us(r) if r else None, ".1f"),
                    fmt(switches_per_msg(h) if h else None, ".2f"),
                    fmt(switches_per_msg(r) if r else None, ".2f")]
            return out

        for n in sorted(raw):
            rows.append([str(n)] + cells(raw[n], red.get(n)))

        def median(values):
            values = sorted(v for v in values if v is not None)
            if not values:
                return None
            mid = len(values) // 2
            return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2

        def med(runs):
            if not runs:
                return None
            m = {key: median([x[key] for x in runs]) for key in keys}
            m["messages"] = 1
            m["server_cpu_s"] = median([cpu_us(x) for x in runs]) / 1e6
            m["server_ctx_switches"] = median([switches_per_msg(x) for x in runs])
            return m
        pair_medians = (med(list(raw.values())), med(list(red.values())))
        rows.append(["median"] + cells(*pair_medians))
        print(f"The same client design on both sides, {len(raw)} interleaved rounds of 100 B at "
              f"{args.rate:,.0f} msg/s (kafka_raw_bench to Holdfast, redis_bench to Redis: one "
              "thread, TCP_NODELAY, one request per message; ms, server CPU µs and context "
              "switches per message):")
        print()
        table(["round", "Holdfast p50", "Redis p50", "Holdfast p99", "Redis p99",
               "Holdfast p99.9", "Redis p99.9", "Holdfast CPU", "Redis CPU",
               "Holdfast switches", "Redis switches"], rows)

    # Disk and processes.
    rows = []
    if fio:
        rows.append(["fio sequential 64 KiB write + fdatasync", f"{fio['mb_per_s']:.1f} MB/s",
                     "the disk's fsync'd ceiling in this run"])
        rows.append(["fio 4 KiB write + fdatasync, sync latency",
                     f"p50 {fio['sync_p50_ms']:.3f} / p99 {fio['sync_p99_ms']:.2f} / "
                     f"p99.9 {fio['sync_p999_ms']:.2f} ms", "one fdatasync on this disk now"])
    for r in results:
        if r["run"] == "rss":
            name = "Holdfast broker" if r["system"] == "holdfast" else "redis-server"
            rows.append([f"{name} peak RSS (VmHWM)", f"{r['peak_rss_kb'] / 1024:.0f} MiB",
                         f"data on disk at the end: {r['data']}"])
    restart = find("restart")
    if restart:
        rows.append([f"restart after kill -9, {restart['partition_bytes'] / 1e9:.2f} GB in one "
                     "partition: exec → Metadata served",
                     f"{restart['median_ms']:.0f} ms",
                     f"median of {restart['runs']} (min {restart['min_ms']:.0f}, max "
                     f"{restart['max_ms']:.0f}); {scanned(restart['scanned'])}"])
    if rows:
        table(["measure", "value", "notes"], rows)

    # Holdfast ÷ Redis.
    rows = []
    for size in (100, 1024):
        h = find("latency", "holdfast", message_bytes=size, topic=(
            "bench-latency" if size == 100 else "bench-latency-1k"))
        r = find("latency", "redis", message_bytes=size)
        if h and r:
            for key, name in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
                rows.append([f"ack {name} at {args.rate:,.0f}/s, {size_name(size)} (lower is better)",
                             f"{h[key]:.3f} ms", f"{r[key]:.3f} ms", f"{h[key] / r[key]:.2f}"])
            hc, rc = cpu_us(h), cpu_us(r)
            if hc and rc:
                rows.append([f"server CPU per message at {args.rate:,.0f}/s, {size_name(size)} "
                             "(lower is better)", f"{hc:.1f} µs", f"{rc:.1f} µs", f"{hc / rc:.2f}"])
    # The same client design on both sides: one thread, TCP_NODELAY, one
    # request per message (kafka_raw_bench against redis_bench), medians of
    # the interleaved rounds.
    h, r = pair_medians if pair_medians else (None, None)
    if h and r:
        for key, name in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
            rows.append([f"ack {name} at {args.rate:,.0f}/s, 100 B, one-thread clients, "
                         "median of the rounds (lower is better)",
                         f"{h[key]:.3f} ms", f"{r[key]:.3f} ms", f"{h[key] / r[key]:.2f}"])
        hc, rc = cpu_us(h), cpu_us(r)
        if hc and rc:
            rows.append(["server CPU per message, those rounds (lower is better)",
                         f"{hc:.1f} µs", f"{rc:.1f} µs", f"{hc / rc:.2f}"])
    for size in (1024, 100):
        r = find("produce", "redis", message_bytes=size)
        if not r:
            continue
        for window, name in ((0, "unwindowed"), (None, "windowed")):
            h = next((x for x in results if x["run"] == "produce" and x.get("system") == "holdfast"
                      and x["message_bytes"] == size
                      and ((x.get("window") or 0) == 0) == (window == 0)), None)
            if h:
                rows.append([f"throughput {size_name(size)}: Holdfast {name} vs Redis pipelined "
                             "(higher is better)", f"{h['messages_per_s']:,.0f} msg/s",
                             f"{r['messages_per_s']:,.0f} msg/s",
                             f"{h['messages_per_s'] / r['messages_per_s']:.2f}"])
                hc, rc = cpu_us(h), cpu_us(r)
                if hc and rc:
                    rows.append([f"server CPU per message, that run, {size_name(size)} "
                                 "(lower is better)", f"{hc:.1f} µs", f"{rc:.1f} µs",
                                 f"{hc / rc:.2f}"])
    if rows:
        print("Holdfast ÷ Redis (same run, same filesystem):")
        print()
        table(["measure", "Holdfast", "Redis", "Holdfast ÷ Redis"], rows)

    # Issue 13's targets beside the measurement.
    rows = []

    def verdict(ok):
        return "met" if ok else "**not met**"

    for topic, name in (("bench-latency", "100 B, 1 partition"), ("bench-latency-1k", "1 KiB, 1 partition"),
                        ("bench-latency-64", "1 KiB, 64 partitions")):
        h = find("latency", "holdfast", topic=topic)
        if h:
            ok = h["p50_ms"] <= 0.25 and h["p99_ms"] <= 1 and h["p999_ms"] <= 3
            rows.append([f"ack p50 ≤ 0.25 / p99 ≤ 1 / p99.9 ≤ 3 ms, {name}",
                         f"{h['p50_ms']:.3f} / {h['p99_ms']:.2f} / {h['p999_ms']:.2f} ms", verdict(ok)])
            r = find("latency", "redis", message_bytes=h["message_bytes"])
            if r and cpu_us(h) and cpu_us(r):
                rows.append([f"broker CPU per message ≤ Redis's, {name}",
                             f"{cpu_us(h):.1f} vs {cpu_us(r):.1f} µs", verdict(cpu_us(h) <= cpu_us(r))])
    w = find("produce", "holdfast", message_bytes=100, linger_ms=0)
    if w and w.get("window"):
        rows.append(["windowed 100 B ≥ 500,000 msg/s", f"{w['messages_per_s']:,.0f} msg/s",
                     verdict(w["messages_per_s"] >= 500_000)])
    u = find("produce", "holdfast", message_bytes=1024, window=0)
    if u and fio_mbps:
        rows.append(["unwindowed 1 KiB ≥ 80 % of fio 64 KiB + fdatasync",
                     f"{u['mb_per_s'] / fio_mbps * 100:.0f} %", verdict(u["mb_per_s"] >= 0.8 * fio_mbps)])
    c = find("consume", "holdfast")
    if c:
        rows.append(["consume ≥ 500,000 msg/s", f"{c['messages_per_s']:,.0f} msg/s",
                     verdict(c["messages_per_s"] >= 500_000)])
    if restart:
        rows.append([f"restart after kill -9 ({restart['partition_bytes'] / 1e9:.1f} GB) ≤ 1 s",
                     f"{restart['median_ms']:.0f} ms", verdict(restart["median_ms"] <= 1000)])
    if rows:
        print("Issue 13's targets (this run; figures, not assertions):")
        print()
        table(["target", "measured", ""], rows)


if __name__ == "__main__":
    main()
