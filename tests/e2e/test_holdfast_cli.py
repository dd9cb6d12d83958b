"""Our own client commands (`holdfast topic|produce|consume`) against holdfast serve."""
import subprocess
import time

import pytest

from conftest import cli_binary, wait_until
from support import (ACKS, CODECS, assert_roundtrip, ck_consume_all, ck_produce,
                     ck_topic_partitions, json_lines, make_messages, run, wait_for_messages)


def holdfast(bootstrap, *args, input=None, check=True, timeout=60):
    return run([str(cli_binary()), *args, "--brokers", bootstrap], input=input, check=check,
               timeout=timeout)


def cli_produce(bootstrap, topic, messages, *args):
    lines = "".join(f"{m['key']}|{m['value']}\n" for m in messages)
    result = holdfast(bootstrap, "produce", topic, "--key-separator", "|", "-H", "origin=cli",
                      "-H", "trace=1", *args, input=lines)
    assert f"{len(messages)} delivered" in result.stderr, result.stderr
    return [dict(m, headers=[("origin", "cli"), ("trace", "1")]) for m in messages]


def cli_consume_json(bootstrap, topic, *args):
    out = holdfast(bootstrap, "consume", topic, "--exit-at-end", "--format", "json", *args).stdout
    return [dict(m, headers=[(h["key"], h["value"]) for h in m["headers"]]) for m in json_lines(out)]


def with_partitions(sent, consumed):
    """Attaches to each sent message the partition its key was read from."""
    partition_of = {}
    for m in consumed:
        partition_of.setdefault(m["key"], set()).add(m["partition"])
    assert all(len(p) == 1 for p in partition_of.values()), "one key went to two partitions"
    return [dict(m, partition=next(iter(partition_of[m["key"]]))) for m in sent]


@pytest.mark.parametrize("compression", CODECS)
@pytest.mark.parametrize("acks", ACKS)
def test_produce_consume_roundtrip(bootstrap, topic_name, acks, compression):
    sent = cli_produce(bootstrap, topic_name, make_messages(200, keys=8, with_headers=False),
                       "--acks", acks, "--compression", compression)
    if acks == "0":  # no response: wait until the broker has appended them all
        wait_for_messages(bootstrap, topic_name, len(sent))
    consumed = cli_consume_json(bootstrap, topic_name)
    produced = with_partitions(sent, consumed)
    assert_roundtrip(produced, consumed)
    assert_roundtrip(produced, ck_consume_all(bootstrap, topic_name))
    assert all(m["topic"] == topic_name and m["timestamp"] > 0 for m in consumed)


def test_text_format_prints_values_in_partition_order(bootstrap, topic_name):
    values = [f"line {i}" for i in range(50)]
    holdfast(bootstrap, "produce", topic_name, "--partition", "2", input="\n".join(values) + "\n")
    out = holdfast(bootstrap, "consume", topic_name, "--partition", "2", "--exit-at-end").stdout
    assert out.splitlines() == values
    out = holdfast(bootstrap, "consume", topic_name, "--count", "5").stdout
    assert out.splitlines() == values[:5]


def test_lines_without_separator_have_null_keys(bootstrap, topic_name):
    holdfast(bootstrap, "produce", topic_name, "-K", "=", "-p", "0", input="a=1\nno-key\n=empty\n")
    consumed = cli_consume_json(bootstrap, topic_name)
    assert [(m["key"], m["value"]) for m in consumed] == [("a", "1"), (None, "no-key"), ("", "empty")]


def test_consume_from_offset_inside_a_batch_and_from_end(bootstrap, topic_name):
    messages = [{"key": "k", "value": f"v{i}"} for i in range(10)]
    produced = ck_produce(bootstrap, topic_name, messages, partition=0, **{"linger.ms": 200})
    assert [m["offset"] for m in produced] == list(range(10))
    consumed = cli_consume_json(bootstrap, topic_name, "--from", "6")
    assert [(m["offset"], m["value"]) for m in consumed] == [(i, f"v{i}") for i in range(6, 10)]
    assert cli_consume_json(bootstrap, topic_name, "--from", "end") == []


def test_consume_from_timestamp(bootstrap, topic_name):
    base = int(time.time() * 1000) - 60_000
    messages = [{"key": None, "value": f"ts-{i}", "timestamp": base + 1000 * i} for i in range(10)]
    ck_produce(bootstrap, topic_name, messages, partition=1)
    consumed = cli_consume_json(bootstrap, topic_name, "--from", f"@{base + 7500}")
    assert [m["value"] for m in consumed] == ["ts-8", "ts-9"]
    assert [m["timestamp"] for m in consumed] == [base + 8000, base + 9000]
    assert cli_consume_json(bootstrap, topic_name, "--from", f"@{base + 20_000}") == []


def test_consume_waits_for_new_messages(bootstrap, topic_name):
    ck_produce(bootstrap, topic_name, [{"key": None, "value": "old"}], partition=0)
    group = f"g-{topic_name}"
    # In a group with an explicit start offset (1, after "old"), so the message
    # produced below is read wherever the consumer is when it arrives; the
    # group's membership is the condition that the consumer is up and waiting.
    consumer = subprocess.Popen([str(cli_binary()), "consume", topic_name, "--brokers", bootstrap,
                                 "--group", group, "--from", "1", "--count", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def assigned():
            assert consumer.poll() is None, "consumer exited before a message arrived"
            r = holdfast(bootstrap, "group", "describe", group, "--format", "json", check=False)
            if r.returncode != 0:
                return False
            [d] = json_lines(r.stdout)
            return d["state"] == "Stable" and any(m["assignment"] for m in d["member_details"])
        wait_until(assigned, 30, message="the consumer to join its group and be assigned")
        ck_produce(bootstrap, topic_name, [{"key": None, "value": "new"}], partition=0)
        out, err = consumer.communicate(timeout=15)
        assert consumer.returncode == 0, err
        assert out.splitlines() == ["new"]
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait(5)


def test_topic_create_list_describe_delete(bootstrap, topic_name):
    out = holdfast(bootstrap, "topic", "create", topic_name, "--partitions", "3", "-r", "1",
                   "-c", "retention.ms=3600000", "-c", "cleanup.policy=delete").stdout
    assert topic_name in out
    assert ck_topic_partitions(bootstrap, topic_name) == [0, 1, 2]

    again = holdfast(bootstrap, "topic", "create", topic_name, "--partitions", "3", check=False)
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        f"holdfast: topic create '{topic_name}': topic '{topic_name}' already exists"], again.stderr

    [listed] = [t for t in json_lines(holdfast(bootstrap, "topic", "list", "--format", "json").stdout)[0]
                if t["name"] == topic_name]
    assert listed == {"name": topic_name, "partitions": 3, "replication_factor": 1}
    assert topic_name in holdfast(bootstrap, "topic", "list").stdout

    ck_produce(bootstrap, topic_name, make_messages(7), partition=1)
    [described] = json_lines(holdfast(bootstrap, "topic", "describe", topic_name,
                                      "--format", "json").stdout)
    assert described["name"] == topic_name
    assert [p["partition"] for p in described["partitions"]] == [0, 1, 2]
    for p in described["partitions"]:
        assert p["leader"] == 1 and p["replicas"] == [1] and p["isr"] == [1]
        assert p["log_start_offset"] == 0
        assert p["high_watermark"] == (7 if p["partition"] == 1 else 0)
    assert described["configs"]["retention.ms"] == "3600000"
    text = holdfast(bootstrap, "topic", "describe", topic_name).stdout
    assert "retention.ms=3600000" in text and "HIGH-WATERMARK" in text

    out = holdfast(bootstrap, "topic", "delete", topic_name).stdout
    assert topic_name in out
    wait_until(lambda: ck_topic_partitions(bootstrap, topic_name) is None, 10,
               message=f"{topic_name} to disappear")
    missing = holdfast(bootstrap, "topic", "delete", topic_name, check=False)
    assert missing.returncode != 0 and topic_name in missing.stderr


def test_topic_create_uses_broker_default_partitions(bootstrap, topic_name):
    holdfast(bootstrap, "topic", "create", topic_name)
    assert ck_topic_partitions(bootstrap, topic_name) == [0, 1, 2, 3]


def test_produce_to_unknown_topic_auto_creates_four_partitions(bootstrap, topic_name):
    holdfast(bootstrap, "produce", topic_name, input="a\nb\n")
    assert ck_topic_partitions(bootstrap, topic_name) == [0, 1, 2, 3]


def test_produce_failure_exits_non_zero_with_a_count(bootstrap, topic_name):
    ck_produce(bootstrap, topic_name, make_messages(1))
    # A line larger than the client's message.max.bytes (1 MB) fails; the others are delivered.
    result = holdfast(bootstrap, "produce", topic_name, input="x\n" + "y" * 2_000_000 + "\nz\n",
                      check=False)
    assert result.returncode == 1
    assert "1 of 3 messages" in result.stderr, result.stderr


def test_consume_missing_topic_fails(bootstrap, topic_name):
    result = holdfast(bootstrap, "consume", topic_name, "--exit-at-end", check=False)
    assert result.returncode != 0
    assert "does not exist" in result.stderr
    assert ck_topic_partitions(bootstrap, topic_name) is None  # and it did not create it


def test_invalid_arguments_exit_2(bootstrap, topic_name):
    for args in (["consume", topic_name, "--from", "yesterday"],
                 ["produce", topic_name, "--acks", "2"],
                 ["produce", topic_name, "--compression", "brotli"],
                 ["produce", topic_name, "-H", "novalue"],
                 ["topic", "create", topic_name, "-c", "novalue"]):
        result = holdfast(bootstrap, *args, input="", check=False)
        assert result.returncode == 2, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_unreachable_broker_fails_clearly():
    result = run([str(cli_binary()), "topic", "list", "--brokers", "127.0.0.1:1",
                  "--timeout-ms", "2000"], check=False, timeout=30)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "holdfast: cannot connect to 127.0.0.1:1 (Connection refused); "
        "is the broker running and is --brokers right?"]
