"""Transactions on the partition side, end to end: transactional batches,
commit/abort markers written with WriteTxnMarkers (API 27), the last stable
offset, and Fetch with isolation_level=read_committed, against a real
`holdfast serve`.

The test plays the transactional producer and the end of each transaction
with raw requests (InitProducerId and AddPartitionsToTxn with a transactional
id, as the KIP-890 check needs; Produce v3 with transactional batches built by
kafka-python's record builder; then WriteTxnMarkers v0/v1 as the coordinator
sends it, instead of EndTxn, to test the receiver directly), and real
consumers read: confluent-kafka (librdkafka) with isolation.level
read_committed and read_uncommitted, and kcat with read_committed.
"""
import socket
import struct
import time

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition
from confluent_kafka.admin import NewTopic
from kafka.record.default_records import DefaultRecordBatchBuilder

from support import ck_admin, ck_consumer, require_tool, run

IO_TIMEOUT_S = 10
NO_ERROR = 0
INVALID_PRODUCER_EPOCH = 47
UNKNOWN_TOPIC_OR_PARTITION = 3
INVALID_TXN_STATE = 48
INVALID_PRODUCER_ID_MAPPING = 49
PRODUCER_FENCED = 90


def create_topic(bootstrap, topic, partitions):
    admin = ck_admin(bootstrap)
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=10)


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "connection closed by the broker"
        data += chunk
    return data


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value

    def uvarint(self):
        shift = value = 0
        while True:
            b = self.data[self.pos]
            self.pos += 1
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return value
            shift += 7

    def string(self, compact=False):
        n = self.uvarint() - 1 if compact else self.take(">h")
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def array_len(self, compact=False):
        return self.uvarint() - 1 if compact else self.take(">i")


def s16(text):
    b = text.encode()
    return struct.pack(">h", len(b)) + b


def compact_str(text):
    b = text.encode()
    return bytes([len(b) + 1]) + b


class Raw:
    """One connection; requests with classic (or, for flexible, v2) headers."""

    def __init__(self, bootstrap):
        host, port = bootstrap.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=IO_TIMEOUT_S)
        self.correlation = 0

    def close(self):
        self.sock.close()

    def call(self, api_key, version, body, flexible=False):
        self.correlation += 1
        header = struct.pack(">hhi", api_key, version, self.correlation) + s16("e2e-txn")
        if flexible:
            header += b"\x00"
        frame = header + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", recv_exactly(self.sock, 4))[0]
        r = Reader(recv_exactly(self.sock, size))
        assert r.take(">i") == self.correlation
        if flexible:
            assert r.uvarint() == 0
        return r

    def init_producer_id(self, transactional_id):
        r = self.call(22, 0, s16(transactional_id) + struct.pack(">i", 60000))
        r.take(">i")  # throttle
        assert r.take(">h") == NO_ERROR
        return r.take(">q"), r.take(">h")

    def add_partitions_to_txn(self, transactional_id, pid, epoch, topic, partitions):
        body = s16(transactional_id) + struct.pack(">qh", pid, epoch)
        body += struct.pack(">i", 1) + s16(topic) + struct.pack(">i", len(partitions))
        body += b"".join(struct.pack(">i", p) for p in partitions)
        r = self.call(24, 0, body)
        r.take(">i")  # throttle
        errors = {}
        for _ in range(r.array_len()):
            name = r.string()
            for _ in range(r.array_len()):
                partition, error = r.take(">i"), r.take(">h")
                errors[(name, partition)] = error
        return errors

    def verify_partitions_in_txn(self, transactional_id, pid, epoch, topic, partitions,
                                 verify_only=True):
        """AddPartitionsToTxn v4 (flexible), what a partition leader sends the
        coordinator (KIP-890). Returns (top-level error, {(topic, partition): error})."""
        def uvarint(n):
            return bytes([n]) if n < 0x80 else bytes([(n & 0x7F) | 0x80, n >> 7])
        body = uvarint(2) + compact_str(transactional_id) + struct.pack(">qhb", pid, epoch,
                                                                         int(verify_only))
        body += uvarint(2) + compact_str(topic) + uvarint(len(partitions) + 1)
        body += b"".join(struct.pack(">i", p) for p in partitions)
        body += b"\x00" + b"\x00" + b"\x00"  # topic, transaction, body tagged fields
        r = self.call(24, 4, body, flexible=True)
        r.take(">i")  # throttle
        top = r.take(">h")
        errors = {}
        for _ in range(r.array_len(compact=True)):
            r.string(compact=True)  # transactional id
            for _ in range(r.array_len(compact=True)):
                name = r.string(compact=True)
                for _ in range(r.array_len(compact=True)):
                    partition, error = r.take(">i"), r.take(">h")
                    assert r.uvarint() == 0
                    errors[(name, partition)] = error
                assert r.uvarint() == 0
            assert r.uvarint() == 0
        return top, errors

    def produce(self, topic, partition, batch, transactional_id=None):
        tid = s16(transactional_id) if transactional_id is not None else struct.pack(">h", -1)
        body = tid + struct.pack(">hi", -1, 10000)  # acks=all
        body += struct.pack(">i", 1) + s16(topic)
        body += struct.pack(">i", 1) + struct.pack(">i", partition)
        body += struct.pack(">i", len(batch)) + batch
        r = self.call(0, 3, body)
        assert r.array_len() == 1 and r.string() == topic
        assert r.array_len() == 1
        assert r.take(">i") == partition
        error, base = r.take(">h"), r.take(">q")
        return error, base

    def write_txn_markers(self, markers, version=0):
        """markers: [(producer_id, epoch, commit, {topic: [partitions]}, coordinator_epoch)].
        Returns {(producer_id, topic, partition): error}."""
        flexible = version >= 1
        arr = (lambda n: bytes([n + 1])) if flexible else (lambda n: struct.pack(">i", n))
        name = compact_str if flexible else s16
        tags = b"\x00" if flexible else b""
        body = arr(len(markers))
        for pid, epoch, commit, topics, coordinator_epoch in markers:
            body += struct.pack(">qhb", pid, epoch, 1 if commit else 0) + arr(len(topics))
            for topic, partitions in topics.items():
                body += name(topic) + arr(len(partitions))
                body += b"".join(struct.pack(">i", p) for p in partitions) + tags
            body += struct.pack(">i", coordinator_epoch) + tags
        body += tags
        r = self.call(27, version, body, flexible=flexible)
        out = {}
        for _ in range(r.array_len(flexible)):
            pid = r.take(">q")
            for _ in range(r.array_len(flexible)):
                topic = r.string(flexible)
                for _ in range(r.array_len(flexible)):
                    partition, error = r.take(">i"), r.take(">h")
                    if flexible:
                        assert r.uvarint() == 0
                    out[(pid, topic, partition)] = error
                if flexible:
                    assert r.uvarint() == 0
            if flexible:
                assert r.uvarint() == 0
        return out

    def list_offsets_latest(self, topic, partition, isolation):
        body = struct.pack(">ib", -1, isolation) + struct.pack(">i", 1) + s16(topic)
        body += struct.pack(">i", 1) + struct.pack(">iq", partition, -1)
        r = self.call(2, 2, body)
        r.take(">i")  # throttle
        assert r.array_len() == 1 and r.string() == topic and r.array_len() == 1
        assert r.take(">i") == partition
        assert r.take(">h") == NO_ERROR
        r.take(">q")  # timestamp
        return r.take(">q")


def txn_batch(pid, epoch, sequence, values):
    builder = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=True,
                                        producer_id=pid, producer_epoch=epoch,
                                        base_sequence=sequence, batch_size=1 << 20)
    for i, value in enumerate(values):
        builder.append(i, timestamp=None, key=None, value=value.encode(), headers=[])
    return bytes(builder.build())


class Txn:
    """One transactional producer against two partitions. Its partitions are
    added to the coordinator's transaction (AddPartitionsToTxn) before the
    first send, as clients do; the markers are written by the test."""

    def __init__(self, raw, topic, partitions=(0, 1)):
        self.raw, self.topic = raw, topic
        self.tid = f"raw-{topic}"
        self.pid, self.epoch = raw.init_producer_id(self.tid)
        self.sequence = {}
        errors = raw.add_partitions_to_txn(self.tid, self.pid, self.epoch, topic, list(partitions))
        assert set(errors.values()) == {NO_ERROR}, errors

    def send(self, partition, values, expect=NO_ERROR):
        seq = self.sequence.get(partition, 0)
        error, base = self.raw.produce(self.topic, partition,
                                       txn_batch(self.pid, self.epoch, seq, values), self.tid)
        assert error == expect, f"transactional produce answered {error}, expected {expect}"
        if error == NO_ERROR:
            self.sequence[partition] = seq + len(values)
        return base

    def end(self, commit, partitions, version=0):
        errors = self.raw.write_txn_markers(
            [(self.pid, self.epoch, commit, {self.topic: partitions}, 0)], version=version)
        assert errors == {(self.pid, self.topic, p): NO_ERROR for p in partitions}, errors


def consume(bootstrap, topic, isolation, timeout=30):
    """Both partitions from the beginning until librdkafka reports their end
    (for read_committed: the last stable offset). Values by partition."""
    consumer = ck_consumer(bootstrap, **{"isolation.level": isolation})
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in (0, 1)])
        values = {}
        pending = {0, 1}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                    continue
                raise AssertionError(f"consume error: {msg.error()}")
            values.setdefault(msg.partition(), []).append(msg.value().decode())
        assert not pending, f"partitions {sorted(pending)} not read to their end"
        return values
    finally:
        consumer.close()


def kcat_committed(bootstrap, topic):
    require_tool("kcat", "kcat")
    out = {}
    for p in (0, 1):
        res = run(["kcat", "-b", bootstrap, "-C", "-t", topic, "-p", str(p), "-o", "beginning",
                   "-e", "-q", "-f", "%s\\n", "-X", "isolation.level=read_committed"], timeout=30)
        out[p] = [line for line in res.stdout.splitlines() if line]
    return out


def test_read_committed_sees_only_committed_transactions(bootstrap, topic_name):
    create_topic(bootstrap, topic_name, partitions=2)
    raw = Raw(bootstrap)
    try:
        txn = Txn(raw, topic_name)
        # Transaction 1, committed (markers with WriteTxnMarkers v0).
        txn.send(0, ["c1-p0-a", "c1-p0-b"])
        txn.send(1, ["c1-p1-a"])
        txn.send(0, ["c1-p0-c"])
        txn.end(commit=True, partitions=[0, 1], version=0)
        # Transaction 2, aborted (v1, flexible).
        txn.send(0, ["a2-p0-a"])
        txn.send(1, ["a2-p1-a", "a2-p1-b"])
        txn.end(commit=False, partitions=[0, 1], version=1)
        # Transaction 3, left open on partition 0: it holds read_committed back.
        open_first = txn.send(0, ["o3-p0-a"])
        txn.send(0, ["o3-p0-b"])

        committed = {0: ["c1-p0-a", "c1-p0-b", "c1-p0-c"], 1: ["c1-p1-a"]}
        assert raw.list_offsets_latest(topic_name, 0, isolation=1) == open_first
        assert raw.list_offsets_latest(topic_name, 0, isolation=0) == open_first + 2
        assert consume(bootstrap, topic_name, "read_committed") == committed
        assert kcat_committed(bootstrap, topic_name) == committed
        assert consume(bootstrap, topic_name, "read_uncommitted") == {
            0: ["c1-p0-a", "c1-p0-b", "c1-p0-c", "a2-p0-a", "o3-p0-a", "o3-p0-b"],
            1: ["c1-p1-a", "a2-p1-a", "a2-p1-b"]}

        # Its commit releases it.
        txn.end(commit=True, partitions=[0])
        assert raw.list_offsets_latest(topic_name, 0, isolation=1) == open_first + 3
        committed[0] += ["o3-p0-a", "o3-p0-b"]
        assert consume(bootstrap, topic_name, "read_committed") == committed
        assert kcat_committed(bootstrap, topic_name) == committed
    finally:
        raw.close()


def test_write_txn_markers_refuses_a_stale_epoch_and_unknown_partitions(bootstrap, topic_name):
    create_topic(bootstrap, topic_name, partitions=1)
    raw = Raw(bootstrap)
    try:
        txn = Txn(raw, topic_name, partitions=[0])
        txn.send(0, ["x"])
        errors = raw.write_txn_markers([
            (txn.pid, txn.epoch - 1 if txn.epoch > 0 else -1, True, {topic_name: [0, 7]}, 0),
            (txn.pid, txn.epoch, False, {"no-such-topic": [0]}, 0),
        ])
        assert errors == {
            (txn.pid, topic_name, 0): INVALID_PRODUCER_EPOCH,
            (txn.pid, topic_name, 7): UNKNOWN_TOPIC_OR_PARTITION,
            (txn.pid, "no-such-topic", 0): UNKNOWN_TOPIC_OR_PARTITION,
        }
        assert raw.list_offsets_latest(topic_name, 0, isolation=1) == 0, "still open"
    finally:
        raw.close()


def test_a_transactional_batch_for_a_partition_not_in_the_transaction_is_refused(bootstrap,
                                                                                 topic_name):
    # KIP-890 part 1: the partition leader asks the coordinator before a
    # transactional batch opens a transaction in the partition.
    create_topic(bootstrap, topic_name, partitions=3)
    raw = Raw(bootstrap)
    try:
        txn = Txn(raw, topic_name)  # partitions 0 and 1 are in the transaction, 2 is not
        txn.send(2, ["late"], expect=INVALID_TXN_STATE)
        assert raw.list_offsets_latest(topic_name, 2, isolation=0) == 0, "nothing appended"
        # Without the request's transactional_id the batch cannot be checked.
        error, _ = raw.produce(topic_name, 2, txn_batch(txn.pid, txn.epoch, 0, ["x"]))
        assert error != NO_ERROR
        assert raw.list_offsets_latest(topic_name, 2, isolation=0) == 0
        # The control: added, the same batch is taken.
        errors = raw.add_partitions_to_txn(txn.tid, txn.pid, txn.epoch, topic_name, [2])
        assert errors == {(topic_name, 2): NO_ERROR}
        txn.send(2, ["late"])
        assert raw.list_offsets_latest(topic_name, 2, isolation=0) == 1
        # An epoch that is not the transaction's is refused by the coordinator's check.
        error, _ = raw.produce(topic_name, 0, txn_batch(txn.pid, txn.epoch + 1, 0, ["y"]), txn.tid)
        assert error == INVALID_PRODUCER_EPOCH
        # After EndTxn (abort) and its markers, a late batch of the ended
        # transaction cannot open a new one in a partition.
        txn.send(0, ["in-txn"])
        r = raw.call(26, 0, s16(txn.tid) + struct.pack(">qhb", txn.pid, txn.epoch, 0))
        r.take(">i")  # throttle
        assert r.take(">h") == NO_ERROR
        end = raw.list_offsets_latest(topic_name, 0, isolation=0)
        deadline = time.monotonic() + 30
        while raw.list_offsets_latest(topic_name, 0, isolation=1) != end or end < 2:
            assert time.monotonic() < deadline, "the abort marker never landed"
            end = raw.list_offsets_latest(topic_name, 0, isolation=0)
        txn.send(0, ["late"], expect=INVALID_TXN_STATE)
        assert raw.list_offsets_latest(topic_name, 0, isolation=0) == end, "nothing appended"
    finally:
        raw.close()


def test_the_coordinator_answers_a_partition_leaders_verify_only_question(bootstrap, topic_name):
    # KIP-890's broker-to-broker question (AddPartitionsToTxn v4 verify_only),
    # asked here directly: NONE for a partition in the ongoing transaction,
    # INVALID_TXN_STATE for one that is not, and the question adds nothing.
    # tests/cluster/test_kip890_remote.py has partition leaders ask it.
    create_topic(bootstrap, topic_name, partitions=3)
    raw = Raw(bootstrap)
    try:
        txn = Txn(raw, topic_name)  # partitions 0 and 1 are in the transaction, 2 is not
        top, errors = raw.verify_partitions_in_txn(txn.tid, txn.pid, txn.epoch, topic_name,
                                                   [0, 2])
        assert top == NO_ERROR
        assert errors == {(topic_name, 0): NO_ERROR, (topic_name, 2): INVALID_TXN_STATE}
        txn.send(2, ["late"], expect=INVALID_TXN_STATE)  # still not in it
        top, errors = raw.verify_partitions_in_txn(txn.tid, txn.pid, txn.epoch + 1, topic_name,
                                                   [0])
        assert errors == {(topic_name, 0): PRODUCER_FENCED}
        top, errors = raw.verify_partitions_in_txn(txn.tid, txn.pid + 1, txn.epoch, topic_name,
                                                   [0])
        assert errors == {(topic_name, 0): INVALID_PRODUCER_ID_MAPPING}
        # Without verify_only the partitions are added (the control).
        top, errors = raw.verify_partitions_in_txn(txn.tid, txn.pid, txn.epoch, topic_name, [2],
                                                   verify_only=False)
        assert (top, errors) == (NO_ERROR, {(topic_name, 2): NO_ERROR})
        txn.send(2, ["now in it"])
    finally:
        raw.close()
