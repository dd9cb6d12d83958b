"""kcat 1.7 (librdkafka 2.0.2) against holdfast serve: produce (-P), consume
(-C), metadata (-L) and offsets by timestamp (-Q, -o s@ts). Without kcat these
tests fail, they do not skip: `make test` installs it."""
import time

import pytest

from support import (ACKS, CODECS, assert_roundtrip, ck_consume_all, ck_produce,
                     ck_topic_partitions, json_lines, make_messages, require_tool, run,
                     wait_for_messages)


@pytest.fixture(autouse=True)
def kcat_installed():
    require_tool("kcat", "kcat")


def kcat_produce(bootstrap, topic, messages, acks="all", compression="none", partition=None):
    """Produces key:value lines with the same headers on every message (kcat's -H)."""
    lines = "".join(f"{m['key']}:{m['value']}\n" for m in messages)
    cmd = ["kcat", "-b", bootstrap, "-P", "-t", topic, "-K", ":", "-z", compression,
           "-X", f"acks={acks}", "-X", "message.timeout.ms=15000", "-H", "origin=kcat",
           "-H", "trace=1"]
    if partition is not None:
        cmd += ["-p", str(partition)]
    run(cmd, input=lines, timeout=60)
    return [dict(m, headers=[("origin", "kcat"), ("trace", "1")]) for m in messages]


def kcat_consume(bootstrap, topic, *args, timeout=20):
    """kcat -C -e -J: every message up to the end of each partition, as dicts."""
    out = run(["kcat", "-b", bootstrap, "-C", "-t", topic, "-e", "-J", "-q", *args],
              timeout=timeout).stdout
    messages = []
    for m in json_lines(out):
        flat = m.get("headers") or []
        messages.append({"partition": m["partition"], "offset": m["offset"], "key": m["key"],
                         "value": m["payload"], "timestamp": m["ts"],
                         "headers": list(zip(flat[0::2], flat[1::2]))})
    return messages


@pytest.mark.parametrize("compression", CODECS)
@pytest.mark.parametrize("acks", ACKS)
def test_produce_consume_roundtrip(bootstrap, topic_name, acks, compression):
    sent = kcat_produce(bootstrap, topic_name, make_messages(200, keys=8, with_headers=False),
                        acks=acks, compression=compression)
    if acks == "0":  # no response: wait until the broker has appended them all
        wait_for_messages(bootstrap, topic_name, len(sent))
    consumed = kcat_consume(bootstrap, topic_name, "-o", "beginning")
    # kcat does not report partitions; the reference consumer's view of which
    # partition each key went to is checked against kcat's.
    reference = ck_consume_all(bootstrap, topic_name)
    partition_of = {}
    for m in reference:
        partition_of.setdefault(m["key"], set()).add(m["partition"])
    assert all(len(p) == 1 for p in partition_of.values()), "one key went to two partitions"
    produced = [dict(m, partition=next(iter(partition_of[m["key"]]))) for m in sent]
    assert_roundtrip(produced, consumed)
    assert_roundtrip(produced, reference)


def test_produce_to_unknown_topic_auto_creates_four_partitions(bootstrap, topic_name):
    assert ck_topic_partitions(bootstrap, topic_name) is None
    kcat_produce(bootstrap, topic_name, make_messages(10, with_headers=False))
    assert ck_topic_partitions(bootstrap, topic_name) == [0, 1, 2, 3]
    assert len(kcat_consume(bootstrap, topic_name)) == 10


def test_metadata_listing(broker, topic_name):
    kcat_produce(broker.bootstrap, topic_name, make_messages(4, with_headers=False))
    [metadata] = json_lines(run(["kcat", "-b", broker.bootstrap, "-L", "-J"], timeout=30).stdout)
    assert metadata["brokers"] == [{"id": 1, "name": broker.bootstrap}]
    assert metadata["controllerid"] == 1
    [topic] = [t for t in metadata["topics"] if t["topic"] == topic_name]
    assert [p["partition"] for p in topic["partitions"]] == [0, 1, 2, 3]
    for p in topic["partitions"]:
        assert p["leader"] == 1
        assert p["replicas"] == [{"id": 1}] and p["isrs"] == [{"id": 1}]


def test_query_offsets_by_timestamp(bootstrap, topic_name):
    base = int(time.time() * 1000) - 60_000
    messages = [{"key": None, "value": f"ts-{i}", "timestamp": base + 1000 * i} for i in range(10)]
    ck_produce(bootstrap, topic_name, messages, partition=0)
    def query(ts):
        out = run(["kcat", "-b", bootstrap, "-Q", "-t", f"{topic_name}:0:{ts}"], timeout=30).stdout
        [line] = [line for line in out.splitlines() if line.strip()]
        assert line.startswith(f"{topic_name} [0] offset "), out
        return int(line.rsplit(" ", 1)[1])

    assert query(base) == 0
    assert query(base + 6500) == 7
    assert query(base + 9000) == 9
    assert query(base + 9001) == -1  # no message at or after it
    # Consuming from a timestamp (-o s@ts) starts at the first message at or after it.
    consumed = kcat_consume(bootstrap, topic_name, "-p", "0", "-o", f"s@{base + 6500}")
    assert [m["value"] for m in consumed] == ["ts-7", "ts-8", "ts-9"]
    assert [m["timestamp"] for m in consumed] == [base + 7000, base + 8000, base + 9000]


def test_consume_from_offset_inside_a_batch(bootstrap, topic_name):
    messages = [{"key": "k", "value": f"v{i}"} for i in range(10)]
    produced = ck_produce(bootstrap, topic_name, messages, partition=0, **{"linger.ms": 200})
    assert [m["offset"] for m in produced] == list(range(10))
    consumed = kcat_consume(bootstrap, topic_name, "-p", "0", "-o", "3")
    assert [(m["offset"], m["value"]) for m in consumed] == [(i, f"v{i}") for i in range(3, 10)]
    # -o -N: the last N messages.
    consumed = kcat_consume(bootstrap, topic_name, "-p", "0", "-o", "-2")
    assert [m["value"] for m in consumed] == ["v8", "v9"]


def test_produce_to_missing_partition_fails(bootstrap, topic_name):
    ck_produce(bootstrap, topic_name, make_messages(1))  # auto-created with 4 partitions
    result = run(["kcat", "-b", bootstrap, "-P", "-t", topic_name, "-p", "7",
                  "-X", "message.timeout.ms=5000"], input="lost\n", timeout=30, check=False)
    assert result.returncode != 0
