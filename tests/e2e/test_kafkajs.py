"""kafkajs 2.2.4 (Node) against holdfast serve, through js/client.js.

The driver's dependencies are pinned in js/package-lock.json and installed
with `npm ci` by scripts/run-e2e.sh (or on first use); without node or kafkajs
these tests fail, they do not skip. Codecs: none, gzip (built in) and snappy
(kafkajs-snappy, pure JavaScript); lz4 and zstd would need native modules.
"""
import json
import time

import pytest

from support import (JS_DIR, assert_roundtrip, ck_consume_all, ck_produce, ck_topic_partitions,
                     make_messages, require_kafkajs, run, wait_for_messages)

TOPIC_RESOURCE = 2  # kafkajs ConfigResourceTypes.TOPIC


@pytest.fixture(scope="module")
def kafkajs():
    require_kafkajs()

    def call(command, timeout=90):
        command.setdefault("deadlineMs", int(timeout * 1000) - 5000)
        result = run(["node", str(JS_DIR / "client.js"), json.dumps(command)], timeout=timeout,
                     check=False)
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        assert lines, f"kafkajs driver printed nothing (exit {result.returncode}): {result.stderr[-2000:]}"
        out = json.loads(lines[-1])
        if "error" in out:
            raise AssertionError(f"kafkajs {command['action']} failed: {out['name']}: {out['error']}"
                                 f"\n{result.stderr[-2000:]}")
        return out

    return call


def admin_calls(kafkajs, bootstrap, *calls):
    return kafkajs({"action": "admin", "brokers": [bootstrap],
                    "calls": [{"method": m, "args": list(a)} for m, *a in calls]})["results"]


def js_messages(messages):
    return [{"key": m["key"], "value": m["value"], "headers": dict(m["headers"])} for m in messages]


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy"])
@pytest.mark.parametrize("acks", [0, 1, -1])
def test_produce_roundtrip(kafkajs, bootstrap, topic_name, acks, compression):
    messages = make_messages(200, keys=8)
    # Several sends, so the partitions hold several batches.
    batches = [js_messages(messages[i:i + 50]) for i in range(0, len(messages), 50)]
    out = kafkajs({"action": "produce", "brokers": [bootstrap], "topic": topic_name,
                   "acks": acks, "compression": compression, "batches": batches})
    assert len(out["results"]) == len(batches)
    if acks != 0:
        for batch_result in out["results"]:
            assert all(r["errorCode"] == 0 for r in batch_result), batch_result
    else:  # no response: wait until the broker has appended them all
        wait_for_messages(bootstrap, topic_name, len(messages))
    reference = ck_consume_all(bootstrap, topic_name)
    partition_of = {}
    for m in reference:
        partition_of.setdefault(m["key"], set()).add(m["partition"])
    assert all(len(p) == 1 for p in partition_of.values()), "one key went to two partitions"
    produced = [dict(m, partition=next(iter(partition_of[m["key"]]))) for m in messages]
    assert_roundtrip(produced, reference)


def test_produce_to_unknown_topic_auto_creates_four_partitions(kafkajs, bootstrap, topic_name):
    assert ck_topic_partitions(bootstrap, topic_name) is None
    kafkajs({"action": "produce", "brokers": [bootstrap], "topic": topic_name,
             "batches": [js_messages(make_messages(20, keys=20))]})
    assert ck_topic_partitions(bootstrap, topic_name) == [0, 1, 2, 3]


def test_consume_in_a_group(kafkajs, bootstrap, topic_name):
    # kafkajs can only consume as a group member: this needs the group
    # coordinator (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, OffsetFetch).
    produced = ck_produce(bootstrap, topic_name, make_messages(120, keys=6), compression="gzip")
    out = kafkajs({"action": "consume", "brokers": [bootstrap], "topic": topic_name,
                   "groupId": f"g-{topic_name}", "count": len(produced), "timeoutMs": 30000})
    consumed = [dict(m, headers=sorted(m["headers"].items())) for m in out["messages"]]
    expected = [dict(m, headers=sorted(m["headers"])) for m in produced]
    assert_roundtrip(expected, consumed)


def test_admin_create_list_describe_alter_partitions_delete(kafkajs, bootstrap, topic_name):
    topic = {"topic": topic_name, "numPartitions": 3, "replicationFactor": 1,
             "configEntries": [{"name": "retention.ms", "value": "3600000"}]}
    describe = {"resources": [{"type": TOPIC_RESOURCE, "name": topic_name}]}
    created, created_again, topics, metadata, configs = admin_calls(
        kafkajs, bootstrap,
        ("createTopics", {"topics": [topic], "waitForLeaders": True, "timeout": 10000}),
        ("createTopics", {"topics": [topic], "timeout": 10000}),
        ("listTopics",),
        ("fetchTopicMetadata", {"topics": [topic_name]}),
        ("describeConfigs", describe))
    assert created is True
    assert created_again is False  # kafkajs: false when the topic already exists
    assert topic_name in topics
    [t] = metadata["topics"]
    assert sorted(p["partitionId"] for p in t["partitions"]) == [0, 1, 2]
    [resource] = configs["resources"]
    assert resource["errorCode"] == 0
    entries = {e["configName"]: e["configValue"] for e in resource["configEntries"]}
    assert entries["retention.ms"] == "3600000"

    alter = {"validateOnly": False, "resources": [
        {"type": TOPIC_RESOURCE, "name": topic_name,
         "configEntries": [{"name": "retention.ms", "value": "7200000"}]}]}
    _, configs, _, metadata, _, topics = admin_calls(
        kafkajs, bootstrap,
        ("alterConfigs", alter),
        ("describeConfigs", describe),
        ("createPartitions", {"topicPartitions": [{"topic": topic_name, "count": 5}]}),
        ("fetchTopicMetadata", {"topics": [topic_name]}),
        ("deleteTopics", {"topics": [topic_name], "timeout": 10000}),
        ("listTopics",))
    entries = {e["configName"]: e["configValue"] for e in configs["resources"][0]["configEntries"]}
    assert entries["retention.ms"] == "7200000"
    assert sorted(p["partitionId"] for p in metadata["topics"][0]["partitions"]) == [0, 1, 2, 3, 4]
    assert topic_name not in topics


def test_fetch_offsets_by_timestamp_and_delete_records(kafkajs, bootstrap, topic_name):
    base = int(time.time() * 1000) - 60_000
    messages = [{"key": None, "value": f"ts-{i}", "timestamp": base + 1000 * i} for i in range(10)]
    ck_produce(bootstrap, topic_name, messages, partition=0)
    offsets, by_time, by_late_time = admin_calls(
        kafkajs, bootstrap,
        ("fetchTopicOffsets", topic_name),
        ("fetchTopicOffsetsByTimestamp", topic_name, base + 2500),
        ("fetchTopicOffsetsByTimestamp", topic_name, base + 60_000))
    p0 = {o["partition"]: o for o in offsets}[0]
    assert (p0["low"], p0["high"]) == ("0", "10")
    assert {o["partition"]: o["offset"] for o in by_time}[0] == "3"
    # kafkajs maps "no such offset" (-1) to the high watermark.
    assert {o["partition"]: o["offset"] for o in by_late_time}[0] == "10"

    # kafkajs' deleteTopicRecords needs the topic's metadata in its cache first.
    _, _, offsets = admin_calls(
        kafkajs, bootstrap,
        ("fetchTopicMetadata", {"topics": [topic_name]}),
        ("deleteTopicRecords", {"topic": topic_name, "partitions": [{"partition": 0, "offset": "4"}]}),
        ("fetchTopicOffsets", topic_name))
    p0 = {o["partition"]: o for o in offsets}[0]
    assert (p0["low"], p0["high"]) == ("4", "10")
    consumed = ck_consume_all(bootstrap, topic_name, partitions=[0])
    assert [m["value"] for m in consumed] == [f"ts-{i}" for i in range(4, 10)]


def test_transactions_commit_abort_and_send_offsets(kafkajs, bootstrap, topic_name):
    # kafkajs' transactional producer: InitProducerId with a transactional id,
    # AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn (issue 10).
    from confluent_kafka import Consumer, TopicPartition
    admin_calls(kafkajs, bootstrap, ("createTopics", {"topics": [{"topic": topic_name, "numPartitions": 2}]}))
    group = f"txn-offsets-{topic_name}"

    def step(tag, end, offsets=None):
        return {"messages": [{"value": f"{tag}-{i}", "partition": i % 2} for i in range(6)],
                "end": end, **({"offsets": offsets} if offsets else {})}

    out = kafkajs({"action": "transactions", "brokers": [bootstrap], "topic": topic_name,
                   "transactionalId": f"js-{topic_name}", "groupId": group,
                   "steps": [step("aborted1", "abort", [{"partition": 0, "offset": 2}]),
                             step("committed", "commit", [{"partition": 0, "offset": 5}]),
                             step("aborted2", "abort", [{"partition": 0, "offset": 9}])]})
    assert [r["end"] for r in out["results"]] == ["abort", "commit", "abort"]

    committed = sorted(m["value"] for m in ck_consume_all(bootstrap, topic_name,
                                                          **{"isolation.level": "read_committed"}))
    assert committed == sorted(f"committed-{i}" for i in range(6))
    everything = [m["value"] for m in ck_consume_all(bootstrap, topic_name,
                                                     **{"isolation.level": "read_uncommitted"})]
    assert sorted(everything) == sorted([f"{t}-{i}" for t in ("aborted1", "committed", "aborted2")
                                         for i in range(6)])
    # kafkajs' own consumer reads committed data only (readUncommitted: false).
    js = kafkajs({"action": "consume", "brokers": [bootstrap], "topic": topic_name,
                  "groupId": f"reader-{topic_name}", "count": 6, "timeoutMs": 30000})
    assert sorted(m["value"] for m in js["messages"]) == committed
    # Only the committed transaction moved the group's offset.
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        assert c.committed([TopicPartition(topic_name, 0)], timeout=10)[0].offset == 5
    finally:
        c.close()
