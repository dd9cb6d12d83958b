#!/usr/bin/env python3
"""Renders acknowledgement-latency percentile curves to a PNG (bench/run.sh).

    plot_latency.py OUT.png --title TEXT LABEL=FILE [LABEL=FILE ...]

Each FILE holds one run's latencies in microseconds, one per line (what
`holdfast_bench latency --latencies-out` and `redis_bench latency
--latencies-out` write). One curve per run: latency (log scale) against the
percentile from 50 to 99.99, on a "nines" axis (-log10(1 - p)) so that 99,
99.9 and 99.99 are evenly spaced. Needs matplotlib (Debian python3-matplotlib).
"""
import argparse
import math
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TICKS = [50, 90, 99, 99.9, 99.99]


def nines(p):
    return -math.log10(1 - p / 100)


def load(path):
    with open(path) as f:
        values = sorted(float(line) for line in f if line.strip())
    if not values:
        sys.exit(f"plot_latency: {path} has no latencies")
    return values


def curve(values):
    """(x, latency in ms) for 400 percentiles evenly spaced on the nines axis."""
    lo, hi = nines(50), nines(99.99)
    xs, ys = [], []
    for step in range(401):
        x = lo + (hi - lo) * step / 400
        p = 1 - 10 ** -x
        rank = min(len(values) - 1, int(p * (len(values) - 1) + 0.5))
        xs.append(x)
        ys.append(values[rank] / 1000)
    return xs, ys


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--title", default="Acknowledgement latency")
    parser.add_argument("runs", nargs="+", metavar="LABEL=FILE")
    args = parser.parse_args()

    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=110)
    for run in args.runs:
        label, _, path = run.partition("=")
        values = load(path)
        xs, ys = curve(values)
        ax.plot(xs, ys, label=f"{label} (n={len(values):,}, max {values[-1] / 1000:.1f} ms)",
                linewidth=1.6, linestyle="--" if label.lower().startswith("redis") else "-")
    ax.set_yscale("log")
    ax.set_xticks([nines(p) for p in TICKS])
    ax.set_xticklabels([f"p{p:g}" for p in TICKS])
    ax.set_xlim(nines(50), nines(99.99))
    ax.set_xlabel("percentile")
    ax.set_ylabel("latency, ms (log scale)")
    label = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    ax.yaxis.set_major_formatter(label)
    ax.yaxis.set_minor_locator(matplotlib.ticker.LogLocator(base=10, subs=(2, 5)))
    ax.yaxis.set_minor_formatter(label)
    ax.grid(True, which="major", alpha=0.5)
    ax.grid(True, which="minor", axis="y", alpha=0.15)
    ax.set_title(args.title, fontsize=9)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"plot_latency: wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
