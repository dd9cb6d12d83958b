#!/usr/bin/python3
"""Summarises bench/ab_settings.sh results: per phase, the median over the
pairs of each setting, and the on/off ratio, as a Markdown table.

usage: ab_report.py RESULTS.jsonl [OFF ON]   (default: the two values in run order)
"""
import json
import statistics
import sys

METRICS = {
    "latency": [("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("p999_ms", "p99.9 ms")],
    "produce": [("messages_per_s", "msg/s"), ("mb_per_s", "MB/s")],
}


def main():
    path = sys.argv[1]
    rows = [json.loads(line) for line in open(path) if line.strip()]
    values = list(dict.fromkeys(r["setting"] for r in rows))  # run order: AB_OFF first
    if len(sys.argv) > 3:
        off, on = sys.argv[2], sys.argv[3]
    elif len(values) == 2:
        off, on = values
    else:
        sys.exit(f"ab_report: expected two setting values, found {values}; name them: OFF ON")
    phases = []
    for r in rows:
        if r["phase"] not in phases:
            phases.append(r["phase"])
    pairs = sorted({r["pair"] for r in rows})
    print(f"{len(pairs)} pairs; loadavg (1/5/15 min) before each broker, in run order: "
          + "; ".join(f"{r['setting']}#{r['pair']} {r['loadavg']}"
                      for r in rows if r["phase"] == phases[0]))
    print()
    print(f"| phase | figure | {off} (median) | {on} (median) | {on}/{off} | {off} runs | {on} runs |")
    print("|---|---|---|---|---|---|---|")
    for phase in phases:
        of_phase = [r for r in rows if r["phase"] == phase]
        kind = of_phase[0]["run"]
        for key, label in METRICS[kind] + [("server_cpu_us_per_msg", "broker CPU us/msg"),
                                           ("server_ctx_switches_per_msg",
                                            "broker context switches/msg")]:
            # (Results written before the switches were recorded lack them.)
            a = [r[key] for r in of_phase if r["setting"] == off and key in r]
            b = [r[key] for r in of_phase if r["setting"] == on and key in r]
            if not a or not b:
                continue
            ma, mb = statistics.median(a), statistics.median(b)
            ratio = mb / ma if ma else float("nan")
            fmt = (lambda v: f"{v:.3f}") if key.endswith("_ms") else (
                (lambda v: f"{v:.1f}") if key in ("mb_per_s", "server_cpu_us_per_msg") else
                (lambda v: f"{v:.2f}") if key == "server_ctx_switches_per_msg" else
                (lambda v: f"{v:,.0f}"))
            print(f"| {phase} | {label} | {fmt(ma)} | {fmt(mb)} | {ratio:.2f} | "
                  f"{', '.join(fmt(v) for v in a)} | {', '.join(fmt(v) for v in b)} |")
    failed = [r for r in rows if r.get("failed")]
    if failed:
        print()
        print("failed deliveries: " + "; ".join(
            f"{r['setting']}#{r['pair']} {r['phase']}: {r['failed']}" for r in failed))


if __name__ == "__main__":
    main()
