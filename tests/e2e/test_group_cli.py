"""`holdfast group list|describe|seek|delete` against holdfast serve, with a
confluent-kafka consumer as the group's member.

Every wait is bounded; the broker runs on loopback with a zero initial
rebalance delay so that a consumer joins at once.
"""
import json
import time

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic

from conftest import cli_binary, wait_until
from support import ck_admin, ck_produce, run

GROUP_SETTINGS = {"group.initial.rebalance.delay.ms": "0", "offsets.topic.num.partitions": "10"}
BASE_TS = 1_700_000_000_000  # message i of a partition has timestamp BASE_TS + 1000 * i


@pytest.fixture
def group_broker(broker_factory):
    return broker_factory(settings=GROUP_SETTINGS)


def holdfast(bootstrap, *args, check=True, timeout=60):
    return run([str(cli_binary()), *args, "--brokers", bootstrap, "--timeout-ms", "8000"],
               check=check, timeout=timeout)


def create_topic(bootstrap, topic, partitions):
    admin = ck_admin(bootstrap)  # must outlive the future
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(15)


def produce_per_partition(bootstrap, topic, counts):
    """counts[p] messages to partition p; message i has timestamp BASE_TS + 1000 * i."""
    messages = [{"key": f"k{i}", "value": f"p{p}-m{i}", "partition": p,
                 "timestamp": BASE_TS + 1000 * i}
                for p, n in enumerate(counts) for i in range(n)]
    ck_produce(bootstrap, topic, messages)


def group_consumer(bootstrap, group, topic, partitions):
    """A subscribed member of `group` that has been assigned all `partitions`
    of `topic`, and the messages it read while waiting for that. The caller
    closes it."""
    assigned = set()
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": "e2e-member",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    c.subscribe([topic], on_assign=lambda _, parts: assigned.update(p.partition for p in parts))
    read = []
    deadline = time.monotonic() + 30
    while assigned != set(partitions) and time.monotonic() < deadline:
        msg = c.poll(0.2)
        if msg is not None and not msg.error():
            read.append(msg)
    assert assigned == set(partitions), f"assigned {sorted(assigned)} within 30 s"
    return c, read


def first_offsets(bootstrap, group, topic, partitions, timeout=30):
    """Joins `group`, returns the offset of the first message read from each
    partition (where the group resumes), and leaves without committing."""
    c, read = group_consumer(bootstrap, group, topic, partitions)
    first = {}
    for msg in read:
        first.setdefault(msg.partition(), msg.offset())
    try:
        deadline = time.monotonic() + timeout
        while len(first) < len(partitions) and time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is None or msg.error():
                continue
            first.setdefault(msg.partition(), msg.offset())
    finally:
        c.close()
    wait_until_empty(bootstrap, group)
    return first


def wait_until_empty(bootstrap, group):
    """Waits until the group has no members (a closed consumer's LeaveGroup is
    not necessarily processed when close() returns)."""
    wait_until(lambda: describe_json(bootstrap, group)["state"] == "Empty", 10,
               message=f"group {group} to become Empty")


def commit(c, topic, offsets):
    c.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()],
             asynchronous=False)


def describe_json(bootstrap, group):
    return json.loads(holdfast(bootstrap, "group", "describe", group, "--format", "json").stdout)


def list_json(bootstrap):
    return json.loads(holdfast(bootstrap, "group", "list", "--format", "json").stdout)


def seek_json(bootstrap, group, to, *args):
    out = holdfast(bootstrap, "group", "seek", group, "--to", to, "--format", "json", *args).stdout
    return {(p["topic"], p["partition"]): p["new_offset"] for p in json.loads(out)["partitions"]}


def committed(bootstrap, group, topic):
    return {p["partition"]: p["current_offset"] for p in describe_json(bootstrap, group)["partitions"]
            if p["topic"] == topic}


def text_sections(output):
    """The text output of `group describe`: the summary (KEY -> value) and the
    tables, each a list of rows split on whitespace (header row first)."""
    blocks = [b.splitlines() for b in output.strip().split("\n\n")]
    summary = dict(line.split(None, 1) for line in blocks[0])
    return summary, [[line.split() for line in block] for block in blocks[1:]]


def assert_one_line_failure(result, code, *needles):
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = [l for l in result.stderr.splitlines() if l.startswith("holdfast: ")]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_list_describe_and_delete(group_broker, topic_name):
    bootstrap = group_broker.bootstrap
    group = f"g-{topic_name}"
    create_topic(bootstrap, topic_name, 3)
    produce_per_partition(bootstrap, topic_name, [10, 6, 4])

    member, read = group_consumer(bootstrap, group, topic_name, [0, 1, 2])
    try:
        got = len(read)
        deadline = time.monotonic() + 20
        while got < 20 and time.monotonic() < deadline:  # read everything ...
            msg = member.poll(0.2)
            got += msg is not None and not msg.error()
        assert got == 20
        commit(member, topic_name, {0: 4, 1: 6})  # ... but commit only part of it

        assert {"group": group, "state": "Stable", "protocol_type": "consumer"} in list_json(bootstrap)
        listed = holdfast(bootstrap, "group", "list").stdout.splitlines()
        assert listed[0].split() == ["GROUP", "STATE", "PROTOCOL-TYPE"]
        assert [group, "Stable", "consumer"] in [l.split() for l in listed[1:]]

        d = describe_json(bootstrap, group)
        member_id = d["member_details"][0]["member_id"]  # confluent-kafka 1.7 has no memberid()
        assert member_id.startswith("e2e-member-")
        assert (d["group"], d["state"], d["protocol_type"], d["balancer"], d["members"]) == \
            (group, "Stable", "consumer", "range", 1)
        assert d["coordinator"]["id"] == 1
        assert f"127.0.0.1:{d['coordinator']['port']}" == bootstrap
        assert d["total_lag"] == 6  # p0: 10 - 4; p1: 0; p2: nothing committed, not counted
        [m] = d["member_details"]
        assert (m["member_id"], m["client_id"]) == (member_id, "e2e-member")
        assert m["assignment"] == [{"topic": topic_name, "partition": p} for p in range(3)]
        rows = {p["partition"]: p for p in d["partitions"]}
        assert sorted(rows) == [0, 1, 2]
        expect = {0: (4, 10, 6), 1: (6, 6, 0), 2: (None, 4, None)}
        for p, (current, end, lag) in expect.items():
            r = rows[p]
            assert (r["current_offset"], r["log_start_offset"], r["log_end_offset"], r["lag"]) == \
                (current, 0, end, lag), r
            assert (r["member_id"], r["client_id"]) == (member_id, "e2e-member")

        summary, tables = text_sections(holdfast(bootstrap, "group", "describe", group).stdout)
        assert summary["GROUP"] == group and summary["STATE"] == "Stable"
        assert summary["BALANCER"] == "range" and summary["MEMBERS"] == "1"
        assert summary["TOTAL-LAG"] == "6"
        assert summary["COORDINATOR"] == f"1 ({bootstrap})"
        members, partitions = tables
        assert members[0] == ["MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "ASSIGNMENTS"]
        assert members[1][0] == member_id and members[1][2] == "e2e-member"
        assert members[1][4] == f"{topic_name}:0,1,2"
        assert partitions[0] == ["TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG",
                                 "CONSUMER-ID", "HOST", "CLIENT-ID"]
        by_partition = {row[1]: row for row in partitions[1:]}
        assert by_partition["0"][:6] == [topic_name, "0", "4", "10", "6", member_id]
        assert by_partition["1"][:5] == [topic_name, "1", "6", "6", "0"]
        assert by_partition["2"][:6] == [topic_name, "2", "-", "4", "-", member_id]
        assert by_partition["2"][7] == "e2e-member"

        # Refused while the member is active.
        r = holdfast(bootstrap, "group", "seek", group, "--to", "start", check=False)
        assert_one_line_failure(r, 1, f"group '{group}' has 1 active member",
                                "stop them before seeking")
        r = holdfast(bootstrap, "group", "delete", group, check=False)
        assert_one_line_failure(r, 1, "group delete", group, "active members")
        assert committed(bootstrap, group, topic_name) == {0: 4, 1: 6, 2: None}
    finally:
        member.close()

    # Without members: only the committed partitions, no consumer.
    wait_until_empty(bootstrap, group)
    d = describe_json(bootstrap, group)
    assert d["balancer"] is None  # '-' in the text is null in JSON, never ""

    def strings(value):
        if isinstance(value, dict):
            return [s for v in value.values() for s in strings(v)]
        if isinstance(value, list):
            return [s for v in value for s in strings(v)]
        return [value] if isinstance(value, str) else []
    assert "" not in strings(d), d
    summary, tables = text_sections(holdfast(bootstrap, "group", "describe", group).stdout)
    assert (summary["STATE"], summary["MEMBERS"], summary["TOTAL-LAG"]) == ("Empty", "0", "6")
    [partitions] = tables  # no member table
    assert [row[:8] for row in partitions[1:]] == [
        [topic_name, "0", "4", "10", "6", "-", "-", "-"],
        [topic_name, "1", "6", "6", "0", "-", "-", "-"]]

    out = holdfast(bootstrap, "group", "delete", group).stdout
    assert out.splitlines() == [f"deleted group {group}"]
    assert group not in [g["group"] for g in list_json(bootstrap)]
    r = holdfast(bootstrap, "group", "describe", group, check=False)
    assert_one_line_failure(r, 1, f"group '{group}' does not exist")
    r = holdfast(bootstrap, "group", "delete", group, "other-missing", check=False)
    assert_one_line_failure(r, 1, "group delete: 2 of 2 failed", group, "other-missing")


def test_seek_to_start_end_offset_and_timestamp(group_broker, topic_name):
    bootstrap = group_broker.bootstrap
    group = f"g-{topic_name}"
    other = f"{topic_name}-other"
    create_topic(bootstrap, topic_name, 2)
    create_topic(bootstrap, other, 1)
    produce_per_partition(bootstrap, topic_name, [10, 10])
    produce_per_partition(bootstrap, other, [5])
    parts = [0, 1]

    member, _ = group_consumer(bootstrap, group, topic_name, parts)
    commit(member, topic_name, {0: 2, 1: 3})
    member.close()
    wait_until_empty(bootstrap, group)

    t = topic_name
    assert seek_json(bootstrap, group, "start") == {(t, 0): 0, (t, 1): 0}
    assert committed(bootstrap, group, t) == {0: 0, 1: 0}
    assert first_offsets(bootstrap, group, t, parts) == {0: 0, 1: 0}

    assert seek_json(bootstrap, group, "end") == {(t, 0): 10, (t, 1): 10}
    d = describe_json(bootstrap, group)
    assert d["total_lag"] == 0 and committed(bootstrap, group, t) == {0: 10, 1: 10}

    # Text output: the previous and the new offsets.
    out = holdfast(bootstrap, "group", "seek", group, "--to", "5").stdout.splitlines()
    assert out[0].split() == ["TOPIC", "PARTITION", "PREVIOUS-OFFSET", "NEW-OFFSET"]
    assert [l.split() for l in out[1:3]] == [[t, "0", "10", "5"], [t, "1", "10", "5"]]
    assert out[3] == f"committed new offsets for group '{group}' (2 partitions)"
    assert describe_json(bootstrap, group)["total_lag"] == 10
    assert first_offsets(bootstrap, group, t, parts) == {0: 5, 1: 5}

    # An offset past the end is clamped to the end (as kafka-consumer-groups does).
    assert seek_json(bootstrap, group, "99") == {(t, 0): 10, (t, 1): 10}

    # By timestamp: the first message at or after it; none that late -> the end.
    assert seek_json(bootstrap, group, f"@{BASE_TS + 7000}") == {(t, 0): 7, (t, 1): 7}
    assert first_offsets(bootstrap, group, t, parts) == {0: 7, 1: 7}
    assert seek_json(bootstrap, group, f"@{BASE_TS + 6500}") == {(t, 0): 7, (t, 1): 7}
    assert seek_json(bootstrap, group, f"@{BASE_TS + 60_000}") == {(t, 0): 10, (t, 1): 10}

    # --dry-run changes nothing.
    assert seek_json(bootstrap, group, "start", "--dry-run") == {(t, 0): 0, (t, 1): 0}
    assert committed(bootstrap, group, t) == {0: 10, 1: 10}

    # --topic: a topic the group has no commits for; the others are left alone.
    assert seek_json(bootstrap, group, "2", "--topic", other) == {(other, 0): 2}
    assert committed(bootstrap, group, other) == {0: 2}
    assert committed(bootstrap, group, t) == {0: 10, 1: 10}
    assert describe_json(bootstrap, group)["total_lag"] == 3

    # Failures: one line and a non-zero exit.
    r = holdfast(bootstrap, "group", "seek", group, "--to", "sideways", check=False)
    assert_one_line_failure(r, 2, "--to 'sideways'")
    r = holdfast(bootstrap, "group", "seek", "never-used", "--to", "end", check=False)
    assert_one_line_failure(r, 1, "'never-used' has no committed offsets", "--topic")
    r = holdfast(bootstrap, "group", "seek", group, "--to", "end", "--topic", "no-such-topic",
                 check=False)
    assert_one_line_failure(r, 1, "topic 'no-such-topic' does not exist")


def test_unreachable_broker_fails_with_one_line():
    for args in (["list"], ["describe", "g"], ["seek", "g", "--to", "end"], ["delete", "g"]):
        r = run([str(cli_binary()), "group", *args, "--brokers", "127.0.0.1:1",
                 "--timeout-ms", "1500"], check=False, timeout=30)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, (args, r.stderr)
        assert lines[0].startswith("holdfast: cannot connect to 127.0.0.1:1 (Connection refused)"), \
            (args, r.stderr)
