"""Topic config compression.type with Kafka's values: a topic per value, an
idempotent confluent-kafka producer sending uncompressed batches; the batches
fetched (raw Fetch v4, parsed here) carry the topic's codec in their
attributes with the producer's id and sequence kept, and confluent-kafka,
kafka-python, kcat and sarama all read the messages back identical.
"""
import socket
import struct

import pytest
from confluent_kafka.admin import NewTopic
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from support import assert_roundtrip, ck_admin, ck_consume_all, ck_produce, make_messages
from test_kafka_python import kp_consume_all
from test_kcat import kcat_consume
from test_sarama import run as sarama_run, sarama_client  # noqa: F401 (fixture)

CODEC_OF = {"uncompressed": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
VALUES = ["producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"]


def raw_fetch_batches(bootstrap, topic, partition=0):
    """(attributes, producer id, base sequence, record count) of every batch
    of the partition from offset 0, from one Fetch v4 written by hand."""
    host, port = bootstrap.rsplit(":", 1)
    name = topic.encode()
    client_id = b"raw-fetch"
    body = struct.pack(">iiiib", -1, 0, 1, 8 << 20, 0)  # replica, wait, min, max, isolation
    body += struct.pack(">ih", 1, len(name)) + name
    body += struct.pack(">iiqi", 1, partition, 0, 8 << 20)
    header = struct.pack(">hhih", 1, 4, 7, len(client_id)) + client_id
    frame = header + body
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", recv_exact(s, 4))[0]
        data = recv_exact(s, size)
    pos = 4 + 4  # correlation id, throttle time
    (topics,) = struct.unpack_from(">i", data, pos)
    pos += 4
    assert topics == 1
    (name_len,) = struct.unpack_from(">h", data, pos)
    pos += 2 + name_len
    (partitions,) = struct.unpack_from(">i", data, pos)
    pos += 4
    assert partitions == 1
    _, error, _hw, _lso = struct.unpack_from(">ihqq", data, pos)
    pos += 4 + 2 + 8 + 8
    assert error == 0, f"fetch error {error}"
    (aborted,) = struct.unpack_from(">i", data, pos)
    pos += 4 + max(aborted, 0) * 16
    (records_len,) = struct.unpack_from(">i", data, pos)
    pos += 4
    records = data[pos:pos + records_len]
    batches = []
    at = 0
    while at + 61 <= len(records):
        _base, length = struct.unpack_from(">qi", records, at)
        if at + 12 + length > len(records):
            break  # a partial batch at the end
        attributes = struct.unpack_from(">h", records, at + 21)[0]
        producer_id = struct.unpack_from(">q", records, at + 43)[0]
        base_sequence, count = struct.unpack_from(">ii", records, at + 53)
        batches.append((attributes, producer_id, base_sequence, count))
        at += 12 + length
    return batches


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        chunk = s.recv(n - len(out))
        assert chunk, "connection closed"
        out += chunk
    return out


def test_compression_type_recompresses_and_every_client_reads_it(broker, topic_name,
                                                                  sarama_client):  # noqa: F811
    bootstrap = broker.bootstrap
    admin = ck_admin(bootstrap)
    topics = {value: f"{topic_name}-{value}" for value in VALUES}
    futures = admin.create_topics([NewTopic(t, 1, 1, config={"compression.type": v})
                                   for v, t in topics.items()])
    for f in futures.values():
        f.result(15)
    # An unknown codec is refused with INVALID_CONFIG, as Kafka does.
    bad = admin.create_topics([NewTopic(f"{topic_name}-bad", 1, 1,
                                        config={"compression.type": "brotli"})])
    with pytest.raises(Exception, match="(?i)invalid"):
        bad[f"{topic_name}-bad"].result(15)

    for value, topic in topics.items():
        sent = ck_produce(bootstrap, topic, make_messages(120, tag=value), partition=0,
                          compression="none", **{"enable.idempotence": True, "linger.ms": 20})
        batches = raw_fetch_batches(bootstrap, topic)
        assert batches and sum(b[3] for b in batches) == 120, f"{value}: {batches}"
        want = 0 if value == "producer" else CODEC_OF[value]
        assert {b[0] & 0x07 for b in batches} == {want}, f"{value}: attributes {batches}"
        assert all(b[1] >= 0 for b in batches), f"{value}: producer id lost: {batches}"
        sequences = [b[2] for b in batches]
        assert sequences[0] == 0 and sequences == sorted(sequences), f"{value}: {sequences}"

        assert_roundtrip(sent, ck_consume_all(bootstrap, topic))
        assert_roundtrip(sent, kp_consume_all(bootstrap, topic))
        kcat = kcat_consume(bootstrap, topic, "-o", "beginning")
        assert [(m["key"], m["value"]) for m in kcat] == [(m["key"], m["value"]) for m in sent]
        sarama = sarama_run(sarama_client, "consume", "-brokers", bootstrap, "-topic", topic)
        assert [(m["key"], m["value"], m["offset"]) for m in sarama] == \
            [(m["key"], m["value"], m["offset"]) for m in sent], value

    # Changing the config applies to the next batches.
    kadmin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        kadmin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topics["producer"],
                                             configs={"compression.type": "lz4"})])
    finally:
        kadmin.close()
    ck_produce(bootstrap, topics["producer"], make_messages(5, tag="after"), partition=0)
    assert raw_fetch_batches(bootstrap, topics["producer"])[-1][0] & 0x07 == CODEC_OF["lz4"]

