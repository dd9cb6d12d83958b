"""sarama (Go; Debian's golang-github-shopify-sarama-dev) against Holdfast.
sarama implements the Kafka protocol independently of librdkafka, so it
catches what librdkafka tolerates. The driver (go/sarama_client/main.go) is
built here with Debian's Go, offline, in GOPATH mode against
/usr/share/gocode; a missing Go or sarama is a failure, not a skip.

Covers: sync and async producers with acks=all and every codec sarama
supports, read back by sarama's consumer and by confluent-kafka; a
ConsumerGroup that commits and resumes from its commit after a broker
restart; ClusterAdmin creating, listing, describing (topics, configs,
cluster, groups) and deleting.
"""
import json
import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import REPO_ROOT
from support import ck_consume_all

HERE = pathlib.Path(__file__).resolve().parent
DRIVER_SOURCE = HERE / "go" / "sarama_client"
GOPATH = "/usr/share/gocode"
SARAMA = pathlib.Path(GOPATH) / "src/github.com/Shopify/sarama"
# sarama 1.22 sends zstd batches in Produce v3; Kafka (and Holdfast) accept zstd
# only from Produce v7 (UNSUPPORTED_COMPRESSION_TYPE), so zstd is not among
# its producer codecs here. Its consumer reads zstd (test_compression_type.py).
SARAMA_CODECS = ["none", "gzip", "snappy", "lz4"]
SETTINGS = {"group.initial.rebalance.delay.ms": "200", "offsets.topic.num.partitions": "10",
            "num.partitions": "3"}


@pytest.fixture(scope="module")
def sarama_client():
    """Builds the driver once per run (Go's build cache under build/ keeps
    later builds quick)."""
    go = shutil.which("go")
    if go is None:
        pytest.fail("Go not found: install golang-go (scripts/install-deps.sh)")
    if not SARAMA.is_dir():
        pytest.fail(f"sarama not found at {SARAMA}: install golang-github-shopify-sarama-dev "
                    "(scripts/install-deps.sh)")
    out_dir = REPO_ROOT / "build" / "e2e-go"
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = out_dir / "sarama_client"
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOFLAGS="",
               GOCACHE=str(out_dir / "cache"), CGO_ENABLED="1")
    build = subprocess.run([go, "build", "-o", str(binary), "."], cwd=DRIVER_SOURCE, env=env,
                           capture_output=True, text=True, timeout=540)
    assert build.returncode == 0, f"go build failed:\n{build.stderr[-3000:]}"
    return binary


def run(binary, *args, timeout=90):
    proc = subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"sarama_client {' '.join(args)} failed:\n{proc.stderr[-3000:]}"
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def by_partition(records):
    out = {}
    for r in records:
        out.setdefault(r["partition"], []).append(r)
    for rs in out.values():
        rs.sort(key=lambda r: r["offset"])
    return out


def assert_same(sent, got, what):
    assert len(got) == len(sent), f"{what}: sent {len(sent)}, read {len(got)}"
    sent_p, got_p = by_partition(sent), by_partition(got)
    assert sorted(sent_p) == sorted(got_p), f"{what}: partitions differ"
    for p, rs in sent_p.items():
        assert [r["offset"] for r in got_p[p]] == [r["offset"] for r in rs], \
            f"{what}: partition {p} offsets differ"
        for s, g in zip(rs, got_p[p]):
            assert (g["key"], g["value"]) == (s["key"], s["value"]), f"{what}: {g} != {s}"
            if "headers" in g and g["headers"] is not None:
                assert dict(g["headers"]) == s["headers"], f"{what}: headers {g} != {s}"


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_sarama_producers_every_codec_acks_all(sarama_client, broker_factory, topic_name, mode):
    broker = broker_factory(settings=SETTINGS)
    for codec in SARAMA_CODECS:
        topic = f"{topic_name}-{codec}"
        sent = run(sarama_client, "produce", "-brokers", broker.bootstrap, "-topic", topic,
                   "-count", "60", "-codec", codec, "-mode", mode)
        assert len(sent) == 60
        assert len({r["partition"] for r in sent}) > 1, "the hash partitioner used one partition"
        got = run(sarama_client, "consume", "-brokers", broker.bootstrap, "-topic", topic)
        assert_same(sent, got, f"{mode}/{codec} read by sarama")
        ck = ck_consume_all(broker.bootstrap, topic)
        for m in ck:
            m["headers"] = dict(m["headers"])
        assert_same(sent, ck, f"{mode}/{codec} read by confluent-kafka")


def test_sarama_consumer_group_commits_and_resumes_after_restart(sarama_client, broker_factory,
                                                                  topic_name):
    broker = broker_factory(settings=SETTINGS)
    sent = run(sarama_client, "produce", "-brokers", broker.bootstrap, "-topic", topic_name,
               "-count", "90", "-codec", "lz4", "-mode", "sync")
    group = f"{topic_name}-group"
    first = run(sarama_client, "group", "-brokers", broker.bootstrap, "-topic", topic_name,
                "-group", group, "-count", "40")
    assert len(first) == 40
    # What the group committed, seen by another client (ClusterAdmin's OffsetFetch).
    described = run(sarama_client, "admin", "-brokers", broker.bootstrap,
                    "-topic", f"{topic_name}-admin", "-group", group,
                    "-group-topic", topic_name, "-group-partitions", "3")
    groups = [d for d in described if d.get("op") == "groups"][0]
    assert groups["listed"] == "consumer" and groups["state"] == "Empty", groups
    expected = {}
    for r in first:
        key = f"{topic_name}/{r['partition']}"
        expected[key] = max(expected.get(key, 0), r["offset"] + 1)
    committed = {k: v for k, v in groups["committed"].items() if v >= 0}
    assert committed == expected, f"committed {committed}, consumed up to {expected}"

    broker.restart()
    second = run(sarama_client, "group", "-brokers", broker.bootstrap, "-topic", topic_name,
                 "-group", group, "-count", "50")
    # Resumed exactly where the commit was: together the two runs read every
    # message once.
    assert_same(sent, first + second, "group before + after restart")


def test_sarama_cluster_admin(sarama_client, broker_factory, topic_name):
    broker = broker_factory(settings=SETTINGS)
    out = {r["op"]: r for r in run(sarama_client, "admin", "-brokers", broker.bootstrap,
                                   "-topic", topic_name, "-partitions", "4")}
    assert "already exists" in out["create_again"]["error"], out["create_again"]
    assert out["list"]["listed"] and out["list"]["partitions"] == 4
    assert out["describe"]["error"] == 0 and out["describe"]["partitions"] == [0, 1, 2, 3]
    assert out["configs"]["configs"]["retention.ms"] == "3600000"
    assert out["configs"]["configs"]["cleanup.policy"] == "compact"
    assert out["cluster"]["brokers"] == 1  # (sarama 1.22 reads no controller id here)
    assert "deleted" in out
