"""Helpers shared by the end-to-end tests: message sets, confluent-kafka
produce/consume used as the reference client, and round-trip assertions.

Every loop here is bounded in time; every address is the loopback broker's.
"""
import json
import pathlib
import shutil
import subprocess
import time
import urllib.request

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
ACKS = ["0", "1", "all"]
JS_DIR = pathlib.Path(__file__).resolve().parent / "js"


# ---- clients the suite needs: missing means a broken set-up, never a skip ---------------------

def fail_missing(what, how):
    """Fails the test: `make test` installs every client the suite uses
    (scripts/install-deps.sh, scripts/run-e2e.sh), so a missing one means the
    set-up is broken, and a skip would report a pass for tests that never ran."""
    pytest.fail(f"{what} is missing: {how}. `make test` installs it; run `make deps` "
                f"(scripts/install-deps.sh) or scripts/run-e2e.sh instead of skipping.",
                pytrace=False)


def require_tool(name, debian_package):
    """The path of executable `name`; fails the test if it is not on PATH."""
    path = shutil.which(name)
    if path is None:
        fail_missing(f"`{name}`", f"install the Debian package {debian_package}")
    return path


def require_kafkajs():
    """node plus tests/e2e/js/node_modules (kafkajs from npm, pinned by
    package-lock.json). scripts/run-e2e.sh runs `npm ci` before pytest; a
    direct pytest run does it here. Fails the test if either is missing."""
    require_tool("node", "nodejs")
    if not (JS_DIR / "node_modules" / "kafkajs").exists():
        require_tool("npm", "npm")
        result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(JS_DIR)],
                                capture_output=True, text=True, timeout=180)
        if result.returncode != 0 or not (JS_DIR / "node_modules" / "kafkajs").exists():
            fail_missing("kafkajs (tests/e2e/js/node_modules)",
                         f"`npm ci` in {JS_DIR} failed with exit {result.returncode}: "
                         f"{result.stderr[-1000:]}")


def make_messages(count, keys=8, tag="m", with_headers=True):
    """`count` messages over `keys` distinct keys, each with a unique value
    and (optionally) two headers, one of them repeating a per-message id."""
    messages = []
    for i in range(count):
        headers = [("seq", str(i)), ("origin", "e2e")] if with_headers else []
        messages.append({"key": f"key-{i % keys}", "value": f"{tag}-{i:06d}-" + "x" * (i % 50),
                         "headers": headers})
    return messages


def text(data):
    if data is None:
        return None
    return data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else str(data)


def normalize_headers(headers):
    return [(k, text(v)) for k, v in (headers or [])]


# ---- confluent-kafka (librdkafka) as the reference client -------------------------------------

def ck_producer(bootstrap, **config):
    conf = {"bootstrap.servers": bootstrap, "linger.ms": 5, "message.timeout.ms": 15000}
    conf.update(config)
    return Producer(conf)


def ck_produce(bootstrap, topic, messages, acks="all", compression="none", partition=None,
               timeout=30, **config):
    """Produces `messages` (dicts with key/value/headers, optional timestamp)
    and waits for every delivery report. Returns copies of the messages with
    'partition', 'offset' and 'error' from their delivery reports."""
    producer = ck_producer(bootstrap, acks=acks, **{"compression.codec": compression}, **config)
    results = [dict(m) for m in messages]

    def report(index):
        def on_delivery(err, msg):
            results[index]["error"] = err
            results[index]["partition"] = msg.partition()
            results[index]["offset"] = msg.offset()
        return on_delivery

    for i, m in enumerate(messages):
        kwargs = {"value": m["value"], "key": m.get("key"), "on_delivery": report(i)}
        if m.get("headers"):
            kwargs["headers"] = m["headers"]
        if m.get("timestamp") is not None:
            kwargs["timestamp"] = m["timestamp"]
        if partition is not None:
            kwargs["partition"] = partition
        elif m.get("partition") is not None:
            kwargs["partition"] = m["partition"]
        while True:
            try:
                producer.produce(topic, **kwargs)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    remaining = producer.flush(timeout)
    assert remaining == 0, f"{remaining} messages still undelivered after {timeout} s"
    errors = [r["error"] for r in results if r.get("error") is not None]
    assert not errors, f"{len(errors)} delivery failures, first: {errors[0]}"
    return results


def ck_admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def ck_topic_partitions(bootstrap, topic, timeout=10):
    """Partition ids of `topic` from an all-topics Metadata request (which does
    not auto-create), or None if the topic does not exist."""
    metadata = ck_admin(bootstrap).list_topics(timeout=timeout)
    t = metadata.topics.get(topic)
    if t is None or t.error is not None:
        return None
    return sorted(t.partitions)


def wait_for_messages(bootstrap, topic, count, timeout=10):
    """Waits until the partitions of `topic` hold `count` messages in all (sum of
    high minus low watermarks). Needed after acks=0, where no response tells
    the producer when the broker has appended. Returns the count seen."""
    consumer = ck_consumer(bootstrap)
    try:
        deadline = time.monotonic() + timeout
        total = 0
        while time.monotonic() < deadline:
            partitions = ck_topic_partitions(bootstrap, topic) or []
            total = 0
            for p in partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
                total += high - low
            if total >= count:
                break
            time.sleep(0.1)
        return total
    finally:
        consumer.close()


def ck_consumer(bootstrap, **config):
    conf = {"bootstrap.servers": bootstrap, "group.id": "e2e-assign-only",
            "enable.auto.commit": False, "enable.auto.offset.store": False,
            "enable.partition.eof": True, "auto.offset.reset": "error"}
    conf.update(config)
    return Consumer(conf)


def ck_consume_all(bootstrap, topic, partitions=None, start=OFFSET_BEGINNING, timeout=30,
                   **config):
    """Reads each partition of `topic` (or `partitions`) from `start` up to the
    high watermark it has now, with assign() (no consumer group). Returns the
    messages as dicts, in the order received."""
    if partitions is None:
        partitions = ck_topic_partitions(bootstrap, topic)
        assert partitions is not None, f"topic {topic} does not exist"
    consumer = ck_consumer(bootstrap, **config)
    try:
        ends = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = high
        consumer.assign([TopicPartition(topic, p, start if not isinstance(start, dict)
                                        else start[p]) for p in partitions])
        pending = {p for p in partitions if ends[p] > 0}
        messages = []
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    if msg.offset() >= ends.get(msg.partition(), 0):
                        pending.discard(msg.partition())
                    continue
                raise AssertionError(f"consume error: {msg.error()}")
            messages.append({"partition": msg.partition(), "offset": msg.offset(),
                             "key": text(msg.key()), "value": text(msg.value()),
                             "headers": normalize_headers(msg.headers()),
                             "timestamp": msg.timestamp()[1]})
            if msg.offset() + 1 >= ends[msg.partition()]:
                pending.discard(msg.partition())
        assert not pending, (f"partitions {sorted(pending)} not read to their end {ends} "
                             f"within {timeout} s ({len(messages)} messages read)")
        return messages
    finally:
        consumer.close()


# ---- assertions ----------------------------------------------------------------------------------

def assert_roundtrip(produced, consumed, check_headers=True, contiguous_from_zero=True):
    """The consumed messages are exactly the produced ones: same count; in each
    partition the same keys, values and headers in send order; offsets strictly
    increasing (0, 1, 2, ... on a fresh topic) and equal to the offsets the
    delivery reports gave, when they gave one."""
    assert len(consumed) == len(produced), \
        f"produced {len(produced)} messages, consumed {len(consumed)}"
    by_partition = {}
    for m in produced:
        by_partition.setdefault(m["partition"], []).append(m)
    got_by_partition = {}
    for m in consumed:
        got_by_partition.setdefault(m["partition"], []).append(m)
    assert sorted(got_by_partition) == sorted(by_partition), \
        f"partitions differ: produced to {sorted(by_partition)}, consumed from {sorted(got_by_partition)}"
    for partition, sent in by_partition.items():
        got = sorted(got_by_partition[partition], key=lambda m: m["offset"])
        offsets = [m["offset"] for m in got]
        if contiguous_from_zero:
            assert offsets == list(range(len(got))), \
                f"partition {partition}: offsets {offsets[:10]}... are not 0..{len(got) - 1}"
        else:
            assert offsets == sorted(set(offsets)), f"partition {partition}: offsets repeat"
        for position, (s, g) in enumerate(zip(sent, got)):
            where = f"partition {partition}, position {position} (offset {g['offset']})"
            assert g["value"] == s["value"], f"{where}: value {g['value']!r} != sent {s['value']!r}"
            assert g["key"] == s.get("key"), f"{where}: key {g['key']!r} != sent {s.get('key')!r}"
            if check_headers:
                assert normalize_headers(g["headers"]) == normalize_headers(s.get("headers")), \
                    f"{where}: headers {g['headers']!r} != sent {s.get('headers')!r}"
            if s.get("offset") is not None and s["offset"] >= 0:
                assert g["offset"] == s["offset"], \
                    f"{where}: delivery report said offset {s['offset']}"


# ---- subprocesses --------------------------------------------------------------------------------

def run(cmd, timeout=60, input=None, check=True):
    """Runs a command with a time bound; returns the CompletedProcess."""
    result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{cmd[0]} exited {result.returncode}\nstdout: {result.stdout[-2000:]}"
                             f"\nstderr: {result.stderr[-2000:]}")
    return result


def json_lines(output):
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def metric(admin, name, **labels):
    """One sample of a broker's /metrics at `admin` ("host:port"); 0 when absent."""
    with urllib.request.urlopen(f"http://{admin}/metrics", timeout=10) as response:
        body = response.read().decode()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in body.splitlines():
        if line.startswith(name + ("{" + want + "}" if want else " ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def poll_values(consumer, count, timeout=40):
    """Values (decoded) polled from a subscribed confluent-kafka consumer
    until `count` arrived or `timeout` s passed; commits them and closes it."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got.append(msg.value().decode())
    consumer.commit(asynchronous=False)
    consumer.close()
    return got
