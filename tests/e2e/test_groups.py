"""Consumer groups and committed offsets with real clients: each client's group
consumer joins, gets partitions, consumes, commits and, after a broker restart,
resumes from its commit; at-least-once when a member is SIGKILLed mid-stream;
committed offsets survive a broker SIGKILL while a group consumes.

Settings keep every test bounded: group.initial.rebalance.delay.ms is low and
session timeouts are at the 6 s minimum.
"""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
from confluent_kafka import Consumer, TopicPartition
from kafka import KafkaConsumer
from kafka.structs import OffsetAndMetadata, TopicPartition as KpTopicPartition

from conftest import wait_until
from support import ck_admin, ck_produce, require_kafkajs

HERE = pathlib.Path(__file__).resolve().parent
JS_DIR = HERE / "js"
GROUP_SETTINGS = {"group.initial.rebalance.delay.ms": "200", "offsets.topic.num.partitions": "10"}


@pytest.fixture
def group_broker(broker_factory):
    return broker_factory(settings=GROUP_SETTINGS)


def create_topic(bootstrap, topic, partitions):
    from confluent_kafka.admin import NewTopic
    admin = ck_admin(bootstrap)  # must outlive the future
    futures = admin.create_topics([NewTopic(topic, partitions, 1)])
    futures[topic].result(15)


def produce_values(bootstrap, topic, values):
    messages = [{"key": f"k{i % 13}", "value": v} for i, v in enumerate(values)]
    return ck_produce(bootstrap, topic, messages, acks="all")


def committed_offsets(bootstrap, group, topic, partitions):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        got = c.committed([TopicPartition(topic, p) for p in partitions], timeout=15)
        return {tp.partition: tp.offset for tp in got}
    finally:
        c.close()


# ---- resume from the commit after a restart, one test per client ------------------------------

def ck_consume_and_commit(bootstrap, topic, group, count, strategy, timeout=40):
    """A confluent-kafka group member that processes `count` messages,
    committing each synchronously after processing it, then leaves."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                  "partition.assignment.strategy": strategy})
    assigned = []
    c.subscribe([topic], on_assign=lambda cons, parts: assigned.extend(p.partition for p in parts))
    got = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < count and time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is None or msg.error():
                continue
            got.append((msg.partition(), msg.offset(), msg.value().decode()))
            c.commit(message=msg, asynchronous=False)
    finally:
        c.close()
    assert len(got) == count, f"consumed {len(got)} of {count} within {timeout} s"
    return got, sorted(set(assigned))


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_confluent_group_resumes_from_commit_after_restart(group_broker, topic_name, strategy):
    bootstrap = group_broker.bootstrap
    create_topic(bootstrap, topic_name, 4)
    values = [f"v{i:04d}" for i in range(400)]
    produce_values(bootstrap, topic_name, values)
    group = f"g-{topic_name}"

    first, assigned = ck_consume_and_commit(bootstrap, topic_name, group, 150, strategy)
    assert assigned == [0, 1, 2, 3]  # the only member gets every partition
    group_broker.stop()
    group_broker.start()
    rest, _ = ck_consume_and_commit(bootstrap, topic_name, group, 250, strategy)
    seen = [v for _, _, v in first + rest]
    assert sorted(seen) == values, "lost or duplicated messages across the restart"
    # Each partition resumed exactly at its committed offset.
    first_end = {}
    for p, o, _ in first:
        first_end[p] = max(first_end.get(p, -1), o + 1)
    for p, o, _ in rest:
        assert o >= first_end.get(p, 0)


def test_kafka_python_group_resumes_from_commit_after_restart(group_broker, topic_name):
    bootstrap = group_broker.bootstrap
    create_topic(bootstrap, topic_name, 3)
    values = [f"kp{i:04d}" for i in range(300)]
    produce_values(bootstrap, topic_name, values)
    group = f"g-{topic_name}"

    def consume(count):
        consumer = KafkaConsumer(topic_name, bootstrap_servers=bootstrap, group_id=group,
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 session_timeout_ms=6000, heartbeat_interval_ms=500,
                                 consumer_timeout_ms=20000)
        got = []
        try:
            for msg in consumer:
                got.append((msg.partition, msg.offset, msg.value.decode()))
                tp = KpTopicPartition(msg.topic, msg.partition)
                consumer.commit({tp: OffsetAndMetadata(msg.offset + 1, "kp-meta")})
                if len(got) == count:
                    break
            assert sorted(consumer.assignment()) == [KpTopicPartition(topic_name, p) for p in range(3)]
        finally:
            consumer.close(autocommit=False)
        return got

    first = consume(120)
    assert len(first) == 120
    group_broker.stop()
    group_broker.start()
    rest = consume(180)
    assert sorted(v for _, _, v in first + rest) == values
    ends = {}
    for p, o, _ in first + rest:
        ends[p] = max(ends.get(p, 0), o + 1)
    assert committed_offsets(bootstrap, group, topic_name, range(3)) == ends


def test_kafkajs_group_resumes_from_commit_after_restart(group_broker, topic_name):
    require_kafkajs()
    bootstrap = group_broker.bootstrap
    create_topic(bootstrap, topic_name, 3)
    values = [f"js{i:04d}" for i in range(200)]
    produce_values(bootstrap, topic_name, values)
    group = f"g-{topic_name}"

    def consume(count):
        command = {"brokers": [bootstrap], "topic": topic_name, "groupId": group,
                   "count": count, "timeoutMs": 40000}
        result = subprocess.run(["node", str(JS_DIR / "group_consumer.js"), json.dumps(command)],
                                capture_output=True, text=True, timeout=90)
        lines = [l for l in result.stdout.splitlines() if l.strip()]
        assert lines, f"no output (exit {result.returncode}): {result.stderr[-2000:]}"
        out = json.loads(lines[-1])
        assert "error" not in out, f"{out}\n{result.stderr[-2000:]}"
        return out["messages"]

    first = consume(80)
    assert len(first) == 80
    group_broker.stop()
    group_broker.start()
    rest = consume(120)
    assert sorted(m["value"] for m in first + rest) == values


# ---- at-least-once under consumer failure -------------------------------------------------------

def read_events(path):
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # a line cut by SIGKILL
    return events


def start_worker(bootstrap, topic, group, out, strategy, **extra):
    cmd = [sys.executable, str(HERE / "group_worker.py"), "--bootstrap", bootstrap,
           "--topic", topic, "--group", group, "--out", str(out), "--strategy", strategy]
    for k, v in extra.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_workers(workers):
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    for w in workers:
        try:
            w.wait(20)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait(5)


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
def test_at_least_once_when_a_member_is_killed(group_broker, topic_name, tmp_path, strategy):
    bootstrap = group_broker.bootstrap
    create_topic(bootstrap, topic_name, 6)
    group = f"g-{topic_name}"
    outs = [tmp_path / f"worker-{i}.jsonl" for i in range(3)]
    workers = [start_worker(bootstrap, topic_name, group, outs[0], strategy, commit_every=10,
                            die_after=40, uncommitted=7)]
    workers += [start_worker(bootstrap, topic_name, group, outs[i], strategy, commit_every=10)
                for i in (1, 2)]
    try:
        def everyone_assigned():
            return all(any(e["ev"] == "assigned" and e["partitions"] for e in read_events(o))
                       for o in outs)
        wait_until(everyone_assigned, 40, message="three members with partitions")
        values = [f"alo-{i:05d}" for i in range(3000)]
        produced = produce_values(bootstrap, topic_name, values)
        wait_until(lambda: any(e["ev"] == "dying" for e in read_events(outs[0])), 40,
                   message="the victim to stop mid-stream")
        workers[0].kill()  # SIGKILL: no leave, no commit
        workers[0].wait(10)

        def all_processed():
            seen = {(e["p"], e["o"]) for o in outs for e in read_events(o) if e["ev"] == "msg"}
            return len(seen) >= len(produced)
        wait_until(all_processed, 60, interval=0.5, message="every message processed")
    finally:
        stop_workers(workers)

    events = [read_events(o) for o in outs]
    processed = {}
    for ev in events:
        for e in ev:
            if e["ev"] == "msg":
                processed.setdefault((e["p"], e["o"]), []).append(e["v"])
    # Zero lost.
    expected = {(m["partition"], m["offset"]): m["value"] for m in produced}
    missing = set(expected) - set(processed)
    assert not missing, f"{len(missing)} messages never processed, e.g. {sorted(missing)[:5]}"
    for key, vals in processed.items():
        assert all(v == expected[key] for v in vals)
    # The duplicates are exactly the victim's processed-but-uncommitted window.
    victim_committed = {}
    for e in events[0]:
        if e["ev"] == "commit":
            victim_committed.update({int(p): o for p, o in e["offsets"].items()})
    victim_msgs = [(e["p"], e["o"]) for e in events[0] if e["ev"] == "msg"]
    window = {(p, o) for p, o in victim_msgs if o >= victim_committed.get(p, 0)}
    duplicates = {k for k, v in processed.items() if len(v) > 1}
    assert len(window) == 7
    assert duplicates == window, (f"duplicates {sorted(duplicates)[:10]} differ from the "
                                  f"uncommitted window {sorted(window)[:10]}")
    assert all(len(processed[k]) == 2 for k in duplicates)
    # Survivors took over the victim's partitions and committed to the end.
    final = committed_offsets(bootstrap, group, topic_name, range(6))
    ends = {}
    for m in produced:
        ends[m["partition"]] = max(ends.get(m["partition"], 0), m["offset"] + 1)
    assert all(final[p] == ends.get(p, final[p]) for p in range(6)), (final, ends)


def test_committed_offsets_survive_broker_kill_while_consuming(group_broker, topic_name, tmp_path):
    bootstrap = group_broker.bootstrap
    create_topic(bootstrap, topic_name, 4)
    group = f"g-{topic_name}"
    outs = [tmp_path / f"worker-{i}.jsonl" for i in range(2)]
    workers = [start_worker(bootstrap, topic_name, group, o, "range", commit_every=5) for o in outs]
    try:
        wait_until(lambda: all(any(e["ev"] == "assigned" and e["partitions"]
                                   for e in read_events(o)) for o in outs),
                   40, message="two members with partitions")
        first = produce_values(bootstrap, topic_name, [f"a-{i:05d}" for i in range(1500)])

        def committed_count():
            return sum(1 for o in outs for e in read_events(o) if e["ev"] == "commit")
        wait_until(lambda: committed_count() >= 20, 30, message="some commits")
        commits_before = {}
        for o in outs:
            for e in read_events(o):
                if e["ev"] == "commit":
                    commits_before.update({int(p): off for p, off in e["offsets"].items()})
        group_broker.kill()  # SIGKILL while the group consumes and commits
        group_broker.start()
        # Every commit acknowledged before the crash is still there (or later).
        after = committed_offsets(bootstrap, group, topic_name, range(4))
        for p, off in commits_before.items():
            assert after[p] >= off, f"partition {p}: commit {off} lost, now {after[p]}"
        second = produce_values(bootstrap, topic_name, [f"b-{i:05d}" for i in range(1500)])
        produced = first + second

        def all_processed():
            seen = {(e["p"], e["o"]) for o in outs for e in read_events(o) if e["ev"] == "msg"}
            return len(seen) >= len(produced)
        wait_until(all_processed, 90, interval=0.5, message="every message processed")
    finally:
        stop_workers(workers)
    seen = {(e["p"], e["o"]) for o in outs for e in read_events(o) if e["ev"] == "msg"}
    assert {(m["partition"], m["offset"]) for m in produced} <= seen
    ends = {}
    for m in produced:
        ends[m["partition"]] = max(ends.get(m["partition"], 0), m["offset"] + 1)
    assert committed_offsets(bootstrap, group, topic_name, range(4)) == ends
