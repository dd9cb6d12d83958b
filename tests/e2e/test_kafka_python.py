"""kafka-python 2.0.2 against holdfast serve.

Compression codecs come from Debian's python3-lz4, python3-snappy and
python3-zstandard (gzip is built in), which `make test` installs; a codec
whose module is missing fails its test with the package to install.
"""
import time

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka import codec as kafka_codec
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewPartitions, NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.protocol.api import Request, Response
from kafka.protocol.types import Array, Int16, Int32, Int64, Schema, String

from conftest import wait_until
from support import (ACKS, assert_roundtrip, ck_consume_all, ck_produce, ck_topic_partitions,
                     fail_missing, make_messages, text, wait_for_messages)

CODEC_MODULES = {
    "gzip": (lambda: True, None),
    "snappy": (kafka_codec.has_snappy, "python3-snappy"),
    "lz4": (kafka_codec.has_lz4, "python3-lz4"),
    "zstd": (kafka_codec.has_zstd, "python3-zstandard"),
}


def producer(bootstrap, **config):
    conf = dict(bootstrap_servers=bootstrap, linger_ms=5, request_timeout_ms=15000,
                max_block_ms=15000, retries=5)
    conf.update(config)
    return KafkaProducer(**conf)


def kp_produce(bootstrap, topic, messages, timeout=30, partition=None, **config):
    p = producer(bootstrap, **config)
    try:
        futures = []
        for m in messages:
            futures.append(p.send(topic, key=m["key"].encode() if m.get("key") is not None else None,
                                  value=m["value"].encode(),
                                  headers=[(k, v.encode()) for k, v in m.get("headers", [])],
                                  partition=partition))
        p.flush(timeout)
        results = []
        for m, f in zip(messages, futures):
            md = f.get(timeout=1)
            results.append(dict(m, partition=md.partition, offset=md.offset))
        return results
    finally:
        p.close(5)


def consumer(bootstrap, **config):
    conf = dict(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                auto_offset_reset="earliest", request_timeout_ms=20000, fetch_max_wait_ms=200)
    conf.update(config)
    return KafkaConsumer(**conf)


def kp_consume_all(bootstrap, topic, partitions=None, start=None, timeout=30):
    """Reads partitions of `topic` up to their current end with assign()."""
    c = consumer(bootstrap)
    try:
        if partitions is None:
            partitions = sorted(wait_until(lambda: c.partitions_for_topic(topic), 10,
                                           message=f"metadata for {topic}"))
        tps = [TopicPartition(topic, p) for p in partitions]
        c.assign(tps)
        ends = c.end_offsets(tps)
        for tp in tps:
            if start is None:
                c.seek_to_beginning(tp)
            else:
                c.seek(tp, start[tp.partition])
        messages = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(c.position(tp) >= ends[tp] for tp in tps):
                break
            for tp, records in c.poll(timeout_ms=200).items():
                for r in records:
                    messages.append({"partition": r.partition, "offset": r.offset,
                                     "key": text(r.key), "value": text(r.value),
                                     "headers": [(k, text(v)) for k, v in r.headers],
                                     "timestamp": r.timestamp})
        positions = {tp.partition: c.position(tp) for tp in tps}
        assert all(positions[tp.partition] >= ends[tp] for tp in tps), \
            f"not read to the end within {timeout} s: positions {positions}, ends {ends}"
        return messages
    finally:
        c.close()


def admin(bootstrap):
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)


@pytest.mark.parametrize("compression", [None, "gzip", "snappy", "lz4", "zstd"])
@pytest.mark.parametrize("acks", ACKS)
def test_produce_consume_roundtrip(bootstrap, topic_name, acks, compression):
    if compression is not None:
        available, package = CODEC_MODULES[compression]
        if not available():
            fail_missing(f"kafka-python's {compression} codec", f"install {package}")
    messages = make_messages(300, keys=8, tag=f"{acks}-{compression}")
    produced = kp_produce(bootstrap, topic_name, messages,
                          acks=acks if acks == "all" else int(acks), compression_type=compression)
    if acks == "0":  # no response: wait until the broker has appended them all
        wait_for_messages(bootstrap, topic_name, len(messages))
    consumed = kp_consume_all(bootstrap, topic_name)
    assert_roundtrip(produced, consumed)
    # librdkafka reads kafka-python's batches too.
    assert_roundtrip(produced, ck_consume_all(bootstrap, topic_name))


def test_reads_what_librdkafka_wrote(bootstrap, topic_name):
    produced = ck_produce(bootstrap, topic_name, make_messages(200), compression="zstd")
    assert_roundtrip(produced, kp_consume_all(bootstrap, topic_name))


def test_produce_to_unknown_topic_auto_creates_four_partitions(bootstrap, topic_name):
    assert ck_topic_partitions(bootstrap, topic_name) is None
    produced = kp_produce(bootstrap, topic_name, make_messages(40, keys=20))
    assert ck_topic_partitions(bootstrap, topic_name) == [0, 1, 2, 3]
    assert_roundtrip(produced, kp_consume_all(bootstrap, topic_name))


def config_values(describe_responses):
    """{name: value} from kafka-python's DescribeConfigs responses (one resource)."""
    [response] = describe_responses
    [resource] = response.resources
    error_code, error_message, _, _, entries = resource[:5]
    assert error_code == 0, error_message
    return {entry[0]: entry[1] for entry in entries}


def test_admin_create_list_describe_partitions_delete(bootstrap, topic_name):
    client = admin(bootstrap)
    try:
        client.create_topics([NewTopic(topic_name, num_partitions=3, replication_factor=1,
                                       topic_configs={"retention.ms": "3600000"})],
                             timeout_ms=10000)
        assert topic_name in client.list_topics()
        assert ck_topic_partitions(bootstrap, topic_name) == [0, 1, 2]
        with pytest.raises(TopicAlreadyExistsError):
            client.create_topics([NewTopic(topic_name, num_partitions=3, replication_factor=1)],
                                 timeout_ms=10000)

        configs = config_values(client.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic_name)]))
        assert configs["retention.ms"] == "3600000"

        client.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic_name,
                                             configs={"retention.ms": "5400000"})])
        configs = config_values(client.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic_name)]))
        assert configs["retention.ms"] == "5400000"

        client.create_partitions({topic_name: NewPartitions(total_count=5)}, timeout_ms=10000)
        assert ck_topic_partitions(bootstrap, topic_name) == [0, 1, 2, 3, 4]

        client.delete_topics([topic_name], timeout_ms=10000)
        wait_until(lambda: topic_name not in client.list_topics(), 10,
                   message=f"{topic_name} to disappear")
    finally:
        client.close()


def test_offsets_for_times(bootstrap, topic_name):
    base = int(time.time() * 1000) - 60_000
    messages = [{"key": None, "value": f"ts-{i}", "timestamp": base + 1000 * i} for i in range(10)]
    ck_produce(bootstrap, topic_name, messages, partition=2)
    c = consumer(bootstrap)
    try:
        tp = TopicPartition(topic_name, 2)
        found = c.offsets_for_times({tp: base + 4500})
        assert found[tp].offset == 5 and found[tp].timestamp == base + 5000
        assert c.offsets_for_times({tp: base - 1})[tp].offset == 0
        assert c.offsets_for_times({tp: base + 10_000})[tp] is None
    finally:
        c.close()


def test_consume_from_offset_inside_a_batch(bootstrap, topic_name):
    messages = [{"key": "k", "value": f"v{i}"} for i in range(10)]
    produced = ck_produce(bootstrap, topic_name, messages, partition=0, **{"linger.ms": 200})
    assert [m["offset"] for m in produced] == list(range(10))
    consumed = kp_consume_all(bootstrap, topic_name, partitions=[0], start={0: 6})
    assert [(m["offset"], m["value"]) for m in consumed] == [(i, f"v{i}") for i in range(6, 10)]


# DeleteRecords (key 21) v0; kafka-python 2.0.2 has no admin method for it,
# so the request is defined here from the Kafka schema.
class DeleteRecordsResponse_v0(Response):
    API_KEY = 21
    API_VERSION = 0
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("topics", Array(("name", String("utf-8")),
                         ("partitions", Array(("partition_index", Int32),
                                              ("low_watermark", Int64),
                                              ("error_code", Int16))))))


class DeleteRecordsRequest_v0(Request):
    API_KEY = 21
    API_VERSION = 0
    RESPONSE_TYPE = DeleteRecordsResponse_v0
    SCHEMA = Schema(
        ("topics", Array(("name", String("utf-8")),
                         ("partitions", Array(("partition_index", Int32), ("offset", Int64))))),
        ("timeout_ms", Int32))


def delete_records(bootstrap, topic, partition, before_offset):
    client = admin(bootstrap)
    try:
        [topic_metadata] = client.describe_topics([topic])
        [node_id] = [p["leader"] for p in topic_metadata["partitions"]
                     if p["partition"] == partition]
        kafka_client = client._client  # kafka-python has no public DeleteRecords
        wait_until(lambda: kafka_client.ready(node_id) or kafka_client.poll(timeout_ms=100) and False,
                   10, message="connection to the leader")
        future = kafka_client.send(node_id, DeleteRecordsRequest_v0(
            topics=[(topic, [(partition, before_offset)])], timeout_ms=10000))
        kafka_client.poll(timeout_ms=15000, future=future)
        assert future.is_done, "no DeleteRecords response within 15 s"
        assert future.succeeded(), future.exception
        [(name, [(index, low_watermark, error_code)])] = future.value.topics
        return low_watermark, error_code
    finally:
        client.close()


def test_delete_records(bootstrap, topic_name):
    produced = ck_produce(bootstrap, topic_name, make_messages(20), partition=0)
    assert [m["offset"] for m in produced] == list(range(20))
    low_watermark, error_code = delete_records(bootstrap, topic_name, 0, 7)
    assert (low_watermark, error_code) == (7, 0)
    c = consumer(bootstrap)
    try:
        tp = TopicPartition(topic_name, 0)
        assert c.beginning_offsets([tp])[tp] == 7
        assert c.end_offsets([tp])[tp] == 20
    finally:
        c.close()
    consumed = kp_consume_all(bootstrap, topic_name, partitions=[0])
    assert [m["offset"] for m in consumed] == list(range(7, 20))
    assert [m["value"] for m in consumed] == [m["value"] for m in produced[7:]]
    # Deleting beyond the high watermark is OFFSET_OUT_OF_RANGE (1).
    assert delete_records(bootstrap, topic_name, 0, 21)[1] == 1
