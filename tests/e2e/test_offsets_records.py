"""`__consumer_offsets` read as tools like Burrow read it: consumed with a
plain client and decoded by a decoder written here from Kafka's published
schemas (group-coordinator/src/main/resources/common/message/
OffsetCommitKey/Value.json and GroupMetadataKey/Value.json), not by Holdfast's
code. The field lists below are those files' "fields" (non-flexible versions);
the record key's leading int16 picks the schema: 0 and 1 OffsetCommitKey,
2 GroupMetadataKey (the schemas' "apiKey"); the value's leading int16 is the
value schema's version.
"""
import json
import struct
import time

from confluent_kafka import Consumer, KafkaError, TopicPartition
from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient
from kafka.structs import OffsetAndMetadata, TopicPartition as KpTopicPartition

from support import ck_admin, ck_produce

OFFSETS_TOPIC = "__consumer_offsets"
NUM_PARTITIONS = 10
SETTINGS = {"group.initial.rebalance.delay.ms": "200",
            "offsets.topic.num.partitions": str(NUM_PARTITIONS)}

OFFSET_COMMIT_KEY = json.loads("""[
  { "name": "group", "type": "string", "versions": "0" },
  { "name": "topic", "type": "string", "versions": "0" },
  { "name": "partition", "type": "int32", "versions": "0" }]""")
GROUP_METADATA_KEY = json.loads("""[
  { "name": "group", "type": "string", "versions": "0" }]""")
OFFSET_COMMIT_VALUE = json.loads("""[
  { "name": "offset", "type": "int64", "versions": "0+" },
  { "name": "leaderEpoch", "type": "int32", "versions": "3+", "default": -1 },
  { "name": "metadata", "type": "string", "versions": "0+" },
  { "name": "commitTimestamp", "type": "int64", "versions": "0+" },
  { "name": "expireTimestamp", "type": "int64", "versions": "1", "default": -1 }]""")
GROUP_METADATA_VALUE = json.loads("""[
  { "name": "protocolType", "versions": "0+", "type": "string"},
  { "name": "generation", "versions": "0+", "type": "int32" },
  { "name": "protocol", "versions": "0+", "type": "string", "nullableVersions": "0+" },
  { "name": "leader", "versions": "0+", "type": "string", "nullableVersions": "0+" },
  { "name": "currentStateTimestamp", "versions": "2+", "type": "int64", "default": -1},
  { "name": "members", "versions": "0+", "type": "[]MemberMetadata", "fields": [
    { "name": "memberId", "versions": "0+", "type": "string" },
    { "name": "groupInstanceId", "versions": "3+", "type": "string", "default": "null",
      "nullableVersions": "3+"},
    { "name": "clientId", "versions": "0+", "type": "string" },
    { "name": "clientHost", "versions": "0+", "type": "string" },
    { "name": "rebalanceTimeout", "versions": "1+", "type": "int32"},
    { "name": "sessionTimeout", "versions": "0+", "type": "int32" },
    { "name": "subscription", "versions": "0+", "type": "bytes" },
    { "name": "assignment", "versions": "0+", "type": "bytes" }]}]""")


def in_versions(spec, version):
    """Kafka's version ranges: "N", "N+", "N-M" ("none" never)."""
    if spec is None or spec == "none":
        return False
    if spec.endswith("+"):
        return version >= int(spec[:-1])
    if "-" in spec:
        low, high = spec.split("-")
        return int(low) <= version <= int(high)
    return version == int(spec)


class SchemaReader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        assert self.pos + n <= len(self.data), f"record ends at {len(self.data)}, needs {self.pos + n}"
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def int(self, fmt, size):
        return struct.unpack(">" + fmt, self.take(size))[0]

    def read(self, fields, version):
        out = {}
        for field in fields:
            if not in_versions(field["versions"], version):
                default = field.get("default")
                out[field["name"]] = None if default == "null" else default
                continue
            kind = field["type"]
            nullable = in_versions(field.get("nullableVersions"), version)
            if kind == "int16":
                value = self.int("h", 2)
            elif kind == "int32":
                value = self.int("i", 4)
            elif kind == "int64":
                value = self.int("q", 8)
            elif kind == "string":
                n = self.int("h", 2)
                assert n >= 0 or nullable, f"{field['name']}: null in a non-nullable string"
                value = None if n < 0 else self.take(n).decode("utf-8")
            elif kind == "bytes":
                n = self.int("i", 4)
                assert n >= 0 or nullable, f"{field['name']}: null bytes"
                value = None if n < 0 else self.take(n)
            elif kind.startswith("[]"):
                n = self.int("i", 4)
                assert n >= 0, f"{field['name']}: null array"
                value = [self.read(field["fields"], version) for _ in range(n)]
            else:
                raise AssertionError(f"type {kind} not in these schemas")
            out[field["name"]] = value
        return out

    def done(self):
        assert self.pos == len(self.data), f"{len(self.data) - self.pos} trailing bytes"


def decode_record(key, value):
    """(kind, key fields, value version, value fields or None for a tombstone)."""
    reader = SchemaReader(key)
    key_version = reader.int("h", 2)
    if key_version in (0, 1):
        kind, key_fields, value_fields = "offset", OFFSET_COMMIT_KEY, OFFSET_COMMIT_VALUE
    elif key_version == 2:
        kind, key_fields, value_fields = "group", GROUP_METADATA_KEY, GROUP_METADATA_VALUE
    else:
        raise AssertionError(f"key version {key_version} is neither an offset nor a group key")
    decoded_key = reader.read(key_fields, 0)
    reader.done()
    if value is None:
        return kind, decoded_key, None, None
    reader = SchemaReader(value)
    value_version = reader.int("h", 2)
    assert 0 <= value_version <= 3, f"value version {value_version}"
    decoded_value = reader.read(value_fields, value_version)
    reader.done()
    return kind, decoded_key, value_version, decoded_value


def java_string_hash(s):
    h = 0
    units = s.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = (31 * h + int.from_bytes(units[i:i + 2], "big")) & 0xFFFFFFFF
    return h - (1 << 32) if h >= 1 << 31 else h


def partition_for(group):
    h = java_string_hash(group)
    return (0 if h == -(1 << 31) else abs(h)) % NUM_PARTITIONS


def read_offsets_topic(bootstrap, timeout=30):
    """Every record of __consumer_offsets up to the high watermarks now, as
    (partition, offset, key bytes, value bytes or None)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "offsets-reader",
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "auto.offset.reset": "earliest"})
    try:
        ends = {}
        for p in range(NUM_PARTITIONS):
            low, high = consumer.get_watermark_offsets(TopicPartition(OFFSETS_TOPIC, p), timeout=10)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(OFFSETS_TOPIC, p, 0) for p in ends])
        pending = set(ends)
        records = []
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    if msg.offset() >= ends[msg.partition()]:
                        pending.discard(msg.partition())
                    continue
                raise AssertionError(f"consume error: {msg.error()}")
            if msg.offset() < ends[msg.partition()]:
                records.append((msg.partition(), msg.offset(), msg.key(), msg.value()))
            if msg.offset() + 1 >= ends[msg.partition()]:
                pending.discard(msg.partition())
        assert not pending, f"partitions {sorted(pending)} of {OFFSETS_TOPIC} not read to {ends}"
        return records
    finally:
        consumer.close()


def decode_all(bootstrap):
    """Decodes every record; returns (records decoded in log order, last value
    per key)."""
    decoded = []
    last = {}
    for partition, offset, key, value in read_offsets_topic(bootstrap):
        kind, k, version, v = decode_record(key, value)
        assert partition == partition_for(k["group"]), \
            f"group {k['group']} in partition {partition}, Kafka puts it in {partition_for(k['group'])}"
        decoded.append((kind, k, version, v))
        ident = (kind, k["group"], k.get("topic"), k.get("partition"))
        last[ident] = (version, v)
    return decoded, last


def test_offsets_topic_decodes_with_kafkas_schemas(broker_factory, topic_name):
    broker = broker_factory(settings=SETTINGS)
    bootstrap = broker.bootstrap
    from confluent_kafka.admin import NewTopic
    admin = ck_admin(bootstrap)
    admin.create_topics([NewTopic(topic_name, 3, 1)])[topic_name].result(15)
    messages = [{"key": f"k{i}", "value": f"v{i}", "partition": i % 3} for i in range(30)]
    ck_produce(bootstrap, topic_name, messages)

    # A consumer group (confluent-kafka): joins, consumes, commits, leaves.
    group = f"{topic_name}-members"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "client.id": "decoder-test-client", "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "session.timeout.ms": 6000,
                         "partition.assignment.strategy": "range"})
    consumer.subscribe([topic_name])
    seen = 0
    deadline = time.monotonic() + 30
    while seen < 30 and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is not None and not msg.error():
            seen += 1
    assert seen == 30, f"the group consumed {seen} of 30"
    consumer.commit(asynchronous=False)
    decoded, last = decode_all(bootstrap)
    consumer.close()

    for p in range(3):
        version, value = last[("offset", group, topic_name, p)]
        assert version == 3, f"offset value version {version}"
        assert value["offset"] == 10
        assert value["metadata"] == ""
        assert value["commitTimestamp"] > 1_600_000_000_000
    version, stable = last[("group", group, None, None)]
    assert version == 3
    assert stable["protocolType"] == "consumer" and stable["protocol"] == "range"
    assert stable["generation"] >= 1
    assert len(stable["members"]) == 1
    member = stable["members"][0]
    assert member["clientId"] == "decoder-test-client"
    assert member["memberId"] == stable["leader"]
    assert member["groupInstanceId"] is None
    assert member["sessionTimeout"] == 6000
    assert member["subscription"] and member["assignment"]  # the consumer protocol's bytes
    # ConsumerProtocol Assignment v0+: int16 version, int32 topic count, topic string ...
    assignment = member["assignment"]
    (topic_len,) = struct.unpack(">h", assignment[6:8])
    assert assignment[8:8 + topic_len].decode() == topic_name

    # After the member left: an empty generation (no members, no leader).
    decoded, last = decode_all(bootstrap)
    version, empty = last[("group", group, None, None)]
    assert version == 3 and empty["members"] == [] and empty["leader"] is None
    assert empty["generation"] == stable["generation"] + 1
    assert empty["currentStateTimestamp"] >= stable["currentStateTimestamp"]

    # An offsets-only group (kafka-python, with commit metadata), then deleted:
    # tombstones for its offsets and its group key.
    simple = f"{topic_name}-simple"
    kp = KafkaConsumer(bootstrap_servers=bootstrap, group_id=simple, enable_auto_commit=False,
                       api_version_auto_timeout_ms=10000)
    kp.commit({KpTopicPartition(topic_name, 1): OffsetAndMetadata(7, "checkpoint-7")})
    kp.close()
    decoded, last = decode_all(bootstrap)
    version, value = last[("offset", simple, topic_name, 1)]
    assert version in (1, 3) and value["offset"] == 7 and value["metadata"] == "checkpoint-7"

    kadmin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        results = dict(kadmin.delete_consumer_groups([simple]))
        assert results[simple].errno == 0, results
    finally:
        kadmin.close()
    decoded, last = decode_all(bootstrap)
    assert last[("offset", simple, topic_name, 1)] == (None, None), "no offset tombstone"
    assert last[("group", simple, None, None)] == (None, None), "no group tombstone"
    # The other group is untouched.
    assert last[("offset", group, topic_name, 0)][1]["offset"] == 10
