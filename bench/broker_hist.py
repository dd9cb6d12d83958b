#!/usr/bin/env python3
"""The broker's own view of a bench run, from its Prometheus histograms.

    broker_hist.py snapshot URL FILE     # saves the histograms' buckets now
    broker_hist.py diff BEFORE AFTER     # prints one JSON object for the run between

`diff` reports, for the Produce requests answered between the two snapshots
(`holdfast_produce_ack_latency_seconds{acks="all"}`: from a request's arrival
to its acknowledgement being ready) and the syncs made meanwhile
(`holdfast_log_fsync_latency_seconds`): their counts and percentiles. The
percentiles are interpolated linearly inside the histogram's buckets
(docs/metrics.md: 50 µs, 100 µs, 250 µs, 500 µs, 1 ms, ...), so they are
estimates good to a bucket's width; the client's own percentiles are exact.
The difference between the two is the time outside the broker's request
handling: the client library's threads, the kernel's loopback, the broker's
wake-up to read the request and to write the response.
"""
import json
import re
import sys
import urllib.request
from collections import defaultdict

SERIES = {
    "ack": ('holdfast_produce_ack_latency_seconds_bucket', 'acks="all"'),
    "fsync": ('holdfast_log_fsync_latency_seconds_bucket', ''),
}


def parse(text):
    """{name: {le: count}} summed over label sets (several data dirs)."""
    out = {key: defaultdict(float) for key in SERIES}
    for line in text.splitlines():
        for key, (metric, must) in SERIES.items():
            if not line.startswith(metric + "{") or must not in line:
                continue
            m = re.match(r'[^{]+\{(.*)\}\s+(\S+)$', line)
            le = re.search(r'le="([^"]+)"', m.group(1)).group(1)
            out[key][float(le)] += float(m.group(2))
    return out


def quantile(buckets, q):
    """Linear interpolation inside the cumulative bucket that holds quantile q."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]]
    if total <= 0:
        return None
    want = q * total
    lower, below = 0.0, 0.0
    for le in bounds:
        if buckets[le] >= want:
            if le == float("inf"):
                return lower  # beyond the last finite bound: that bound, a lower limit
            inside = buckets[le] - below
            return lower + (le - lower) * ((want - below) / inside if inside > 0 else 1.0)
        lower, below = le, buckets[le]
    return lower


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "snapshot":
        with urllib.request.urlopen(sys.argv[2], timeout=10) as response:
            text = response.read().decode()
        with open(sys.argv[3], "w") as f:
            json.dump({k: {str(le): c for le, c in v.items()} for k, v in parse(text).items()}, f)
        return
    if len(sys.argv) == 4 and sys.argv[1] == "diff":
        before, after = (json.load(open(p)) for p in sys.argv[2:4])
        result = {}
        for key in SERIES:
            buckets = {float(le): c - before.get(key, {}).get(le, 0.0)
                       for le, c in after.get(key, {}).items()}
            if not buckets:
                continue
            result[f"broker_{key}_count"] = buckets[max(buckets)]
            for name, q in (("p50", 0.5), ("p99", 0.99)):
                value = quantile(buckets, q)
                result[f"broker_{key}_{name}_ms"] = None if value is None else value * 1e3
        print(json.dumps(result))
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
