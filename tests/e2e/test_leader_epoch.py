"""Leader epochs end to end: OffsetForLeaderEpoch (API 23) and the epochs
stamped on batches, against a real `holdfast serve`.

No client installed here sends OffsetForLeaderEpoch on a single node:
librdkafka (confluent-kafka, kcat) 2.0.2 predates its KIP-320 support (2.1.0),
and kafka-python 2.0.2 and kafkajs never send it. So the requests are built by
hand (classic v3 and flexible v4 framing, as librdkafka 2.1+ and Java clients
send them), while real clients produce the data, consume it through a group
with manual commits and resume from the committed offsets, checking that
Metadata v9 with leader epochs changes nothing for them.
"""
import socket
import struct

from confluent_kafka import TopicPartition
from confluent_kafka.admin import NewTopic

from support import ck_admin, ck_consumer, ck_produce, make_messages

API_KEY = 23
NO_ERROR = 0
UNKNOWN_TOPIC_OR_PARTITION = 3
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75
IO_TIMEOUT_S = 10


def create_topic(bootstrap, topic, partitions=1):
    admin = ck_admin(bootstrap)  # kept alive until the future resolves
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=10)


def uvarint(n):
    assert 0 <= n < 0x80, "small values only"
    return bytes([n])


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def uvarint(self):
        b = self.data[self.pos]
        assert b < 0x80, "small values only"
        self.pos += 1
        return b

    def string(self, compact):
        n = self.uvarint() - 1 if compact else self.take(">h")
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def array_len(self, compact):
        return self.uvarint() - 1 if compact else self.take(">i")


def offset_for_leader_epoch(bootstrap, version, topic, partitions):
    """Sends one OffsetForLeaderEpoch request; `partitions` is a list of
    (partition, current_leader_epoch, leader_epoch). Returns
    [(error, partition, leader_epoch, end_offset)] in response order."""
    compact = version >= 4
    client_id = b"e2e-raw"
    header = struct.pack(">hhih", API_KEY, version, 7, len(client_id)) + client_id
    if compact:
        header += uvarint(0)  # request header v2: tagged fields
    body = struct.pack(">i", -1)  # replica_id: a consumer
    body += uvarint(2) if compact else struct.pack(">i", 1)
    name = topic.encode()
    body += (uvarint(len(name) + 1) if compact else struct.pack(">h", len(name))) + name
    body += uvarint(len(partitions) + 1) if compact else struct.pack(">i", len(partitions))
    for partition, current, epoch in partitions:
        body += struct.pack(">iii", partition, current, epoch)
        if compact:
            body += uvarint(0)
    if compact:
        body += uvarint(0) + uvarint(0)  # topic and request tagged fields
    frame = header + body
    host, port = bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=IO_TIMEOUT_S) as s:
        s.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", recv_exactly(s, 4))[0]
        r = Reader(recv_exactly(s, size))
    assert r.take(">i") == 7  # correlation id
    if compact:
        assert r.uvarint() == 0  # response header v1: tagged fields
    r.take(">i")  # throttle_time_ms (v2+)
    out = []
    assert r.array_len(compact) == 1
    assert r.string(compact) == topic
    for _ in range(r.array_len(compact)):
        error, partition, epoch, end = r.take(">h"), r.take(">i"), r.take(">i"), r.take(">q")
        if compact:
            assert r.uvarint() == 0
        out.append((error, partition, epoch, end))
    return out


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "connection closed by the broker"
        data += chunk
    return data


def test_offset_for_leader_epoch_v3_and_v4_answer_from_the_epoch_cache(bootstrap, topic_name):
    create_topic(bootstrap, topic_name, partitions=2)
    ck_produce(bootstrap, topic_name, make_messages(40), partition=0)
    ck_produce(bootstrap, topic_name, make_messages(7), partition=1)
    for version in (3, 4):
        answers = offset_for_leader_epoch(bootstrap, version, topic_name, [
            (0, -1, 0),   # epoch 0 is the latest: it ends at the log end
            (1, 0, 0),    # current_leader_epoch 0 = the partition's: checked and fine
            (0, 1, 0),    # current_leader_epoch newer than the broker's
            (1, -1, 5),   # an epoch above the latest: undefined
            (9, -1, 0),   # no such partition
        ])
        assert answers == [
            (NO_ERROR, 0, 0, 40),
            (NO_ERROR, 1, 0, 7),
            (UNKNOWN_LEADER_EPOCH, 0, -1, -1),
            (NO_ERROR, 1, -1, -1),
            (UNKNOWN_TOPIC_OR_PARTITION, 9, -1, -1),
        ], f"version {version}"


def test_real_consumers_commit_and_resume_with_leader_epochs_advertised(bootstrap, topic_name):
    """librdkafka reads Metadata (leader epoch 0 per partition) and the
    batches' epochs; a group member commits, a new member resumes from the
    commit, and every message arrives exactly once across the two."""
    create_topic(bootstrap, topic_name, partitions=1)
    produced = ck_produce(bootstrap, topic_name, make_messages(60), partition=0)
    group = f"g-{topic_name}"

    def consume(count):
        consumer = ck_consumer(bootstrap, **{"group.id": group, "auto.offset.reset": "earliest",
                                             "enable.partition.eof": False})
        consumer.subscribe([topic_name])
        got = []
        try:
            for _ in range(200):  # bounded: 200 polls of at most 0.5 s
                if len(got) >= count:
                    break
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                assert msg.error() is None, msg.error()
                got.append((msg.offset(), msg.value().decode()))
                if len(got) == count:
                    consumer.commit(message=msg, asynchronous=False)
            committed = consumer.committed([TopicPartition(topic_name, 0)], timeout=10)
        finally:
            consumer.close()
        return got, committed[0].offset

    first, committed = consume(25)
    assert committed == 25
    second, committed = consume(35)
    assert committed == 60
    values = [v for _, v in first + second]
    assert [o for o, _ in first + second] == list(range(60))
    assert values == [m["value"] for m in produced]
    # The log end for epoch 0 is where the consumer stands: no truncation.
    assert offset_for_leader_epoch(bootstrap, 4, topic_name, [(0, 0, 0)]) == [
        (NO_ERROR, 0, 0, 60)]


def test_leader_epoch_checkpoint_survives_a_crash(broker, topic_name):
    """The partition directory holds leader-epoch-checkpoint in Kafka's text
    format; after SIGKILL and restart (recovery) the answers are unchanged."""
    bootstrap = broker.bootstrap
    create_topic(bootstrap, topic_name, partitions=1)
    ck_produce(bootstrap, topic_name, make_messages(12), partition=0)
    checkpoint = broker.data_dir / f"{topic_name}-0" / "leader-epoch-checkpoint"
    assert checkpoint.read_text() == "0\n1\n0 0\n"
    broker.restart()  # SIGKILL, then start on the same directory
    bootstrap = broker.bootstrap
    assert checkpoint.read_text() == "0\n1\n0 0\n"
    assert offset_for_leader_epoch(bootstrap, 4, topic_name, [(0, -1, 0)]) == [
        (NO_ERROR, 0, 0, 12)]
