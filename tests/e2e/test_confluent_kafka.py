"""confluent-kafka (librdkafka 2.0.2) against holdfast serve."""
import json
import threading
import time

import pytest
from confluent_kafka import (OFFSET_BEGINNING, OFFSET_END, KafkaError, KafkaException,
                             TopicPartition)
from confluent_kafka.admin import ConfigResource, NewPartitions, NewTopic

from conftest import wait_until
from support import (ACKS, CODECS, assert_roundtrip, ck_admin, ck_consume_all, ck_consumer,
                     ck_produce, ck_producer, ck_topic_partitions, make_messages,
                     wait_for_messages)


@pytest.mark.parametrize("compression", CODECS)
@pytest.mark.parametrize("acks", ACKS)
def test_produce_consume_roundtrip(bootstrap, topic_name, acks, compression):
    messages = make_messages(300, keys=8, tag=f"{acks}-{compression}")
    produced = ck_produce(bootstrap, topic_name, messages, acks=acks, compression=compression)
    if acks == "0":  # no response: wait until the broker has appended them all
        wait_for_messages(bootstrap, topic_name, len(messages))
    consumed = ck_consume_all(bootstrap, topic_name)
    assert_roundtrip(produced, consumed)


def test_single_partition_order_across_many_batches(bootstrap, topic_name):
    # Small batches (batch.num.messages) so the partition holds many batches.
    messages = make_messages(2000, keys=1, tag="order")
    produced = ck_produce(bootstrap, topic_name, messages, partition=0,
                          **{"batch.num.messages": 37, "linger.ms": 1})
    consumed = ck_consume_all(bootstrap, topic_name, partitions=[0])
    assert_roundtrip(produced, consumed)
    assert [m["value"] for m in consumed] == [m["value"] for m in messages]


def test_produce_to_unknown_topic_auto_creates_four_partitions(bootstrap, topic_name):
    assert ck_topic_partitions(bootstrap, topic_name) is None
    produced = ck_produce(bootstrap, topic_name, make_messages(40, keys=20))
    assert ck_topic_partitions(bootstrap, topic_name) == [0, 1, 2, 3]
    assert {m["partition"] for m in produced} <= {0, 1, 2, 3}
    assert_roundtrip(produced, ck_consume_all(bootstrap, topic_name))


def test_admin_create_describe_alter_partitions_delete(bootstrap, topic_name):
    admin = ck_admin(bootstrap)
    futures = admin.create_topics([NewTopic(topic_name, num_partitions=3, replication_factor=1,
                                            config={"retention.ms": "3600000",
                                                    "cleanup.policy": "delete"})],
                                  operation_timeout=10, request_timeout=15)
    futures[topic_name].result(timeout=20)
    assert ck_topic_partitions(bootstrap, topic_name) == [0, 1, 2]

    # Creating it again is an error, and says so.
    again = admin.create_topics([NewTopic(topic_name, num_partitions=3, replication_factor=1)],
                                request_timeout=15)
    with pytest.raises(KafkaException) as excinfo:
        again[topic_name].result(timeout=20)
    assert excinfo.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    resource = ConfigResource("topic", topic_name)
    configs = admin.describe_configs([resource], request_timeout=15)[resource].result(timeout=20)
    assert configs["retention.ms"].value == "3600000"
    assert configs["cleanup.policy"].value == "delete"

    # AlterConfigs (non-incremental: the set given replaces the dynamic configs).
    resource = ConfigResource("topic", topic_name,
                              set_config={"retention.ms": "7200000", "cleanup.policy": "delete"})
    admin.alter_configs([resource], request_timeout=15)[resource].result(timeout=20)
    resource = ConfigResource("topic", topic_name)
    configs = admin.describe_configs([resource], request_timeout=15)[resource].result(timeout=20)
    assert configs["retention.ms"].value == "7200000"

    futures = admin.create_partitions([NewPartitions(topic_name, 6)], request_timeout=15)
    futures[topic_name].result(timeout=20)
    assert ck_topic_partitions(bootstrap, topic_name) == [0, 1, 2, 3, 4, 5]
    # The new partitions take messages.
    produced = ck_produce(bootstrap, topic_name, make_messages(30), partition=5)
    assert {m["partition"] for m in produced} == {5}

    futures = admin.delete_topics([topic_name], operation_timeout=10, request_timeout=15)
    futures[topic_name].result(timeout=20)
    wait_until(lambda: ck_topic_partitions(bootstrap, topic_name) is None, 10,
               message=f"{topic_name} to disappear from metadata")


def test_admin_create_topic_with_invalid_partition_count_fails(bootstrap, topic_name):
    admin = ck_admin(bootstrap)
    futures = admin.create_topics([NewTopic(topic_name, num_partitions=0, replication_factor=1)],
                                  request_timeout=15)
    with pytest.raises(KafkaException) as excinfo:
        futures[topic_name].result(timeout=20)
    assert excinfo.value.args[0].code() == KafkaError.INVALID_PARTITIONS
    assert ck_topic_partitions(bootstrap, topic_name) is None


def produce_with_timestamps(bootstrap, topic, partition, base, count, one_batch):
    """Messages i = 0..count-1 with timestamp base + 1000 * i, either all in
    one batch or each in its own batch."""
    messages = [{"key": None, "value": f"ts-{i}", "timestamp": base + 1000 * i}
                for i in range(count)]
    if one_batch:
        return ck_produce(bootstrap, topic, messages, partition=partition, **{"linger.ms": 200})
    produced = []
    for m in messages:
        produced += ck_produce(bootstrap, topic, [m], partition=partition)
    return produced


@pytest.mark.parametrize("one_batch", [False, True], ids=["batch-per-message", "single-batch"])
def test_offsets_for_times(bootstrap, topic_name, one_batch):
    base = int(time.time() * 1000) - 60_000
    produced = produce_with_timestamps(bootstrap, topic_name, 0, base, 10, one_batch)
    assert [m["offset"] for m in produced] == list(range(10))
    consumer = ck_consumer(bootstrap)
    try:
        def lookup(ts):
            [tp] = consumer.offsets_for_times([TopicPartition(topic_name, 0, ts)], timeout=10)
            assert tp.error is None, tp.error
            return tp.offset

        assert lookup(base - 5000) == 0          # before everything: the first message
        assert lookup(base) == 0                 # exact timestamp of the first
        assert lookup(base + 3000) == 3          # exact timestamp
        assert lookup(base + 3500) == 4          # between: the first one at or after
        assert lookup(base + 9000) == 9          # the last one
        assert lookup(base + 9001) == -1         # after everything: no such offset (-1)
    finally:
        consumer.close()
    # Reading from the looked-up offset gives the messages from there on.
    consumed = ck_consume_all(bootstrap, topic_name, partitions=[0], start={0: 4})
    assert [m["value"] for m in consumed] == [f"ts-{i}" for i in range(4, 10)]
    assert [m["timestamp"] for m in consumed] == [base + 1000 * i for i in range(4, 10)]


def test_consume_from_offset_inside_a_batch(bootstrap, topic_name):
    messages = [{"key": "k", "value": f"v{i}"} for i in range(10)]
    produced = ck_produce(bootstrap, topic_name, messages, partition=0, **{"linger.ms": 200})
    assert [m["offset"] for m in produced] == list(range(10))
    for start in (1, 5, 9):
        consumed = ck_consume_all(bootstrap, topic_name, partitions=[0], start={0: start})
        assert [m["offset"] for m in consumed] == list(range(start, 10))
        assert [m["value"] for m in consumed] == [f"v{i}" for i in range(start, 10)]


def test_watermarks_and_out_of_range(bootstrap, topic_name):
    ck_produce(bootstrap, topic_name, make_messages(25), partition=1)
    consumer = ck_consumer(bootstrap)
    try:
        assert consumer.get_watermark_offsets(TopicPartition(topic_name, 1), timeout=10) == (0, 25)
        assert consumer.get_watermark_offsets(TopicPartition(topic_name, 0), timeout=10) == (0, 0)
        # An offset past the high watermark is out of range: with
        # auto.offset.reset=error the consumer reports it.
        consumer.assign([TopicPartition(topic_name, 1, 1000)])
        deadline = time.monotonic() + 15
        error = None
        while time.monotonic() < deadline and error is None:
            msg = consumer.poll(0.2)
            if msg is not None and msg.error() and msg.error().code() != KafkaError._PARTITION_EOF:
                error = msg.error()
            assert msg is None or msg.error(), "got a message from an out-of-range offset"
        assert error is not None and error.code() == KafkaError._AUTO_OFFSET_RESET, error
    finally:
        consumer.close()


def fetch_requests_sent(stats):
    return sum(b.get("req", {}).get("Fetch", 0) for b in stats.get("brokers", {}).values())


def test_long_poll_fetch_waits_and_wakes_on_produce(bootstrap, topic_name):
    ck_produce(bootstrap, topic_name, [{"key": None, "value": "first"}], partition=0)
    stats = {}
    consumer = ck_consumer(bootstrap, **{
        "fetch.wait.max.ms": 10000, "fetch.min.bytes": 1,
        "statistics.interval.ms": 100,
        "stats_cb": lambda s: stats.update(json.loads(s))})
    producer = ck_producer(bootstrap, acks="all", **{"linger.ms": 0})
    try:
        consumer.assign([TopicPartition(topic_name, 0, OFFSET_END)])
        # Settle at the end: the offset is resolved and a fetch is waiting.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            msg = consumer.poll(0.1)
            assert msg is None or msg.error(), "unexpected message before producing"
        before = fetch_requests_sent(stats)
        idle_until = time.monotonic() + 3
        while time.monotonic() < idle_until:
            consumer.poll(0.1)
        idle_fetches = fetch_requests_sent(stats) - before
        # With fetch.wait.max.ms=10000 the broker holds an empty fetch; it must
        # not answer at once and have the client spin.
        assert idle_fetches <= 3, f"{idle_fetches} Fetch requests in 3 s idle: no long-poll"

        sent_at = time.monotonic()
        producer.produce(topic_name, value=b"wake-up", partition=0)
        producer.flush(10)
        received_at = None
        while time.monotonic() < sent_at + 12:
            msg = consumer.poll(0.05)
            if msg is not None and not msg.error():
                assert msg.value() == b"wake-up"
                received_at = time.monotonic()
                break
        assert received_at is not None, "message produced later never arrived"
        latency = received_at - sent_at
        assert latency < 2.0, f"waiting fetch took {latency:.2f} s to deliver (fetch.wait.max.ms=10 s)"
    finally:
        consumer.close()


def test_acks_all_producer_many_partitions_concurrently(bootstrap, topic_name):
    # Several producers at once on one topic: every acknowledged message is
    # readable, each producer's messages in order within a partition.
    results = {}

    def run(index):
        messages = make_messages(400, keys=16, tag=f"p{index}")
        results[index] = ck_produce(bootstrap, topic_name, messages, acks="all",
                                    compression="lz4" if index % 2 else "none")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [0, 1, 2, 3]
    consumed = ck_consume_all(bootstrap, topic_name)
    assert len(consumed) == 1600
    by_offset = {(m["partition"], m["offset"]): m for m in consumed}
    for produced in results.values():
        last = {}
        for m in produced:
            got = by_offset.get((m["partition"], m["offset"]))
            assert got is not None and got["value"] == m["value"], m
            assert m["offset"] > last.get(m["partition"], -1)
            last[m["partition"]] = m["offset"]
