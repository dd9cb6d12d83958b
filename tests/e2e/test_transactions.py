"""Transactions end to end with confluent-kafka's transactional producer
(librdkafka 2.x): the transaction coordinator (issue 10).

Two kinds of tests:
- coordinator tests: init_transactions, fencing, send_offsets_to_transaction,
  commit/abort answered once the PrepareCommit/PrepareAbort decision is
  durable, the state loaded again after a restart, INVALID_TRANSACTION_TIMEOUT.
  They do not need the markers to be applied.
- marker tests: what needs the partition side too (WriteTxnMarkers
  receiver, control batches, transactional produce, read_committed).
"""
import json
import socket
import struct
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from conftest import cli_binary, wait_until
from support import ck_admin, ck_consume_all, run


# ---- a minimal raw client for the two requests confluent-kafka 1.7 lacks ----

def _uvarint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


class _Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0]

    def uvarint(self):
        shift = value = 0
        while True:
            b = self.data[self.pos]
            self.pos += 1
            value |= (b & 0x7F) << shift
            if not b & 0x80:
                return value
            shift += 7

    def compact_string(self):
        n = self.uvarint() - 1
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def skip_tags(self):
        for _ in range(self.uvarint()):
            self.uvarint()
            self.pos += self.uvarint()


def _request(port, api_key, version, body, flexible_header=True, timeout=10):
    """Sends one request; returns the response body after its header, or None
    if the broker closed the connection instead of answering."""
    client_id = b"txn-test"
    header = struct.pack(">hhih", api_key, version, 7, len(client_id)) + client_id
    if flexible_header:
        header += b"\x00"
    frame = header + body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(frame)) + frame)
        size_bytes = b""
        while len(size_bytes) < 4:
            chunk = s.recv(4 - len(size_bytes))
            if not chunk:
                return None
            size_bytes += chunk
        size = struct.unpack(">i", size_bytes)[0]
        data = b""
        while len(data) < size:
            chunk = s.recv(size - len(data))
            if not chunk:
                return None
            data += chunk
    r = _Reader(data)
    assert r.take(">i") == 7
    if flexible_header:
        r.skip_tags()
    return r


def describe_transaction(port, transactional_id):
    """DescribeTransactions v0 for one id: a dict of its fields."""
    tid = transactional_id.encode()
    body = _uvarint(2) + _uvarint(len(tid) + 1) + tid + b"\x00"
    r = _request(port, 65, 0, body)
    assert r is not None, "DescribeTransactions: connection closed"
    r.take(">i")  # throttle
    assert r.uvarint() == 2
    out = {"error_code": r.take(">h"), "transactional_id": r.compact_string(),
           "state": r.compact_string(), "timeout_ms": r.take(">i"),
           "start_ms": r.take(">q"), "producer_id": r.take(">q"), "producer_epoch": r.take(">h")}
    partitions = []
    for _ in range(r.uvarint() - 1):
        topic = r.compact_string()
        for _ in range(r.uvarint() - 1):
            partitions.append((topic, r.take(">i")))
        r.skip_tags()
    out["partitions"] = partitions
    return out


# ---- helpers ----

def txn_producer(bootstrap, transactional_id, **extra):
    config = {"bootstrap.servers": bootstrap, "transactional.id": transactional_id,
              "transaction.timeout.ms": 60000, "message.timeout.ms": 30000}
    config.update(extra)
    return Producer(config)


def group_metadata(bootstrap, group):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    return consumer, consumer.consumer_group_metadata()


def create_topic(bootstrap, topic, partitions=2):
    admin = ck_admin(bootstrap)  # kept alive until the result is in
    futures = admin.create_topics([NewTopic(topic, partitions, 1)])
    futures[topic].result(30)


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# ---- coordinator tests (no marker needed) ----

def test_init_transactions_gives_a_producer_id_and_epoch_bumps(broker):
    tid = unique("txn")
    p = txn_producer(broker.bootstrap, tid)
    p.init_transactions(30)
    first = describe_transaction(broker.port, tid)
    assert first["error_code"] == 0 and first["state"] == "Empty"
    assert first["producer_id"] >= 0 and first["producer_epoch"] == 0
    assert first["timeout_ms"] == 60000
    p2 = txn_producer(broker.bootstrap, tid)
    p2.init_transactions(30)
    second = describe_transaction(broker.port, tid)
    assert second["producer_id"] == first["producer_id"]
    assert second["producer_epoch"] == 1
    assert describe_transaction(broker.port, unique("nobody"))["error_code"] == 105


def test_a_second_producer_with_the_same_id_fences_the_first(broker, topic_name):
    create_topic(broker.bootstrap, topic_name)
    tid = unique("txn")
    first = txn_producer(broker.bootstrap, tid)
    first.init_transactions(30)
    second = txn_producer(broker.bootstrap, tid)
    second.init_transactions(30)
    consumer, metadata = group_metadata(broker.bootstrap, unique("g"))
    first.begin_transaction()
    with pytest.raises(KafkaException) as raised:
        first.send_offsets_to_transaction([TopicPartition(topic_name, 0, 1)], metadata, 30)
    error = raised.value.args[0]
    assert error.fatal(), error
    assert error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED,
                            KafkaError.INVALID_PRODUCER_EPOCH), error
    # The new instance is unaffected.
    second.begin_transaction()
    second.send_offsets_to_transaction([TopicPartition(topic_name, 0, 1)], metadata, 30)
    second.abort_transaction(30)
    consumer.close()


def test_send_offsets_then_commit_answers_once_the_decision_is_durable(broker, topic_name):
    create_topic(broker.bootstrap, topic_name)
    tid = unique("txn")
    group = unique("g")
    p = txn_producer(broker.bootstrap, tid)
    p.init_transactions(30)
    consumer, metadata = group_metadata(broker.bootstrap, group)
    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition(topic_name, 0, 5),
                                   TopicPartition(topic_name, 1, 7)], metadata, 30)
    ongoing = describe_transaction(broker.port, tid)
    assert ongoing["state"] == "Ongoing"
    assert len(ongoing["partitions"]) == 1
    assert ongoing["partitions"][0][0] == "__consumer_offsets"
    # EndTxn is answered once PrepareCommit is durable, markers or not.
    p.commit_transaction(30)
    assert describe_transaction(broker.port, tid)["state"] in ("PrepareCommit", "CompleteCommit")
    consumer.close()


def test_abort_answers_once_the_decision_is_durable(broker, topic_name):
    create_topic(broker.bootstrap, topic_name)
    tid = unique("txn")
    p = txn_producer(broker.bootstrap, tid)
    p.init_transactions(30)
    consumer, metadata = group_metadata(broker.bootstrap, unique("g"))
    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition(topic_name, 0, 3)], metadata, 30)
    p.abort_transaction(30)
    assert describe_transaction(broker.port, tid)["state"] in ("PrepareAbort", "CompleteAbort")
    consumer.close()


def test_transaction_state_survives_a_restart(broker, topic_name):
    create_topic(broker.bootstrap, topic_name)
    tid = unique("txn")
    p = txn_producer(broker.bootstrap, tid)
    p.init_transactions(30)
    consumer, metadata = group_metadata(broker.bootstrap, unique("g"))
    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition(topic_name, 0, 3)], metadata, 30)
    before = describe_transaction(broker.port, tid)
    assert before["state"] == "Ongoing"
    consumer.close()
    broker.kill()  # SIGKILL: what was acknowledged is in __transaction_state
    broker.start()
    after = wait_until(lambda: (lambda d: d if d["error_code"] == 0 else None)(
        describe_transaction(broker.port, tid)), 30, message="the coordinator to load")
    for field in ("state", "producer_id", "producer_epoch", "timeout_ms", "partitions"):
        assert after[field] == before[field], field


def test_transaction_timeout_above_the_maximum_is_refused(broker_factory):
    broker = broker_factory(settings={"transaction.max.timeout.ms": "5000"})
    p = txn_producer(broker.bootstrap, unique("txn"), **{"transaction.timeout.ms": 10000,
                                                         "message.timeout.ms": 5000})
    with pytest.raises(KafkaException) as raised:
        p.init_transactions(30)
    assert raised.value.args[0].code() == KafkaError.INVALID_TRANSACTION_TIMEOUT


def test_a_timed_out_transaction_is_aborted_and_its_producer_fenced(broker_factory, topic_name):
    broker = broker_factory(settings={
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": "200"})
    create_topic(broker.bootstrap, topic_name)
    tid = unique("txn")
    p = txn_producer(broker.bootstrap, tid, **{"transaction.timeout.ms": 2000,
                                              "message.timeout.ms": 2000})
    p.init_transactions(30)
    consumer, metadata = group_metadata(broker.bootstrap, unique("g"))
    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition(topic_name, 0, 3)], metadata, 30)
    epoch = describe_transaction(broker.port, tid)["producer_epoch"]
    aborted = wait_until(lambda: (lambda d: d if d["state"] in ("PrepareAbort", "CompleteAbort")
                                  else None)(describe_transaction(broker.port, tid)),
                         30, message="the timeout abort")
    assert aborted["producer_epoch"] == epoch + 1
    with pytest.raises(KafkaException):
        p.commit_transaction(30)
    consumer.close()


def test_an_idle_transactional_id_expires_and_stays_gone_after_a_restart(broker_factory,
                                                                          topic_name):
    """transactional.id.expiration.ms: an id whose last transaction completed
    is removed (a tombstone in __transaction_state) once idle that long; one
    with a transaction open is kept (the control, same broker, same checks)."""
    broker = broker_factory(settings={
        "transactional.id.expiration.ms": "3000",
        "transaction.remove.expired.transaction.cleanup.interval.ms": "200"})
    create_topic(broker.bootstrap, topic_name)
    idle_id, open_id = unique("idle"), unique("open")
    idle = txn_producer(broker.bootstrap, idle_id)
    idle.init_transactions(30)
    idle.begin_transaction()
    idle.produce(topic_name, value=b"committed", partition=0)
    idle.commit_transaction(30)
    first_pid = describe_transaction(broker.port, idle_id)["producer_id"]
    held = txn_producer(broker.bootstrap, open_id)
    held.init_transactions(30)
    consumer, metadata = group_metadata(broker.bootstrap, unique("g"))
    held.begin_transaction()
    held.send_offsets_to_transaction([TopicPartition(topic_name, 0, 1)], metadata, 30)
    consumer.close()

    NOT_FOUND = 105  # TRANSACTIONAL_ID_NOT_FOUND
    wait_until(lambda: describe_transaction(broker.port, idle_id)["error_code"] == NOT_FOUND, 30,
               message="the idle id to expire")
    assert describe_transaction(broker.port, open_id)["state"] == "Ongoing"
    assert "expiring transactional id" in broker.log_path.read_text()

    broker.kill()  # SIGKILL: the tombstone was replicated before the id was dropped
    broker.start()
    wait_until(lambda: describe_transaction(broker.port, open_id)["error_code"] == 0, 30,
               message="the coordinator to load")
    assert describe_transaction(broker.port, idle_id)["error_code"] == NOT_FOUND
    # The id starts afresh, with a new producer id.
    again = txn_producer(broker.bootstrap, idle_id)
    again.init_transactions(30)
    assert describe_transaction(broker.port, idle_id)["producer_id"] != first_pid
    # What it committed before it expired is still there.
    values = [m["value"] for m in ck_consume_all(broker.bootstrap, topic_name, partitions=[0],
                                                 **{"isolation.level": "read_committed"})]
    assert values == ["committed"]


# ---- tests that need the markers applied (the partition side) ----

def test_commit_is_visible_to_read_committed_and_abort_never(broker, topic_name):
    create_topic(broker.bootstrap, topic_name)
    p = txn_producer(broker.bootstrap, unique("txn"))
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(10):
        p.produce(topic_name, value=f"aborted-{i}".encode(), partition=i % 2)
    # abort_transaction purges what librdkafka has not sent yet: flush first so
    # the aborted messages are in the log (and must stay invisible).
    assert p.flush(30) == 0
    p.abort_transaction(30)
    p.begin_transaction()
    for i in range(10):
        p.produce(topic_name, value=f"committed-{i}".encode(), partition=i % 2)
    p.commit_transaction(30)
    committed = ck_consume_all(broker.bootstrap, topic_name,
                               **{"isolation.level": "read_committed"})
    values = sorted(m["value"] for m in committed)
    assert values == sorted(f"committed-{i}" for i in range(10))
    everything = ck_consume_all(broker.bootstrap, topic_name,
                                **{"isolation.level": "read_uncommitted"})
    assert sum(m["value"].startswith("aborted-") for m in everything) == 10


def test_send_offsets_moves_the_group_offsets_only_on_commit(broker, topic_name):
    create_topic(broker.bootstrap, topic_name)
    group = unique("g")
    p = txn_producer(broker.bootstrap, unique("txn"))
    p.init_transactions(30)
    consumer, metadata = group_metadata(broker.bootstrap, group)
    checker = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                        "isolation.level": "read_committed"})

    def committed():
        return checker.committed([TopicPartition(topic_name, 0)], timeout=10)[0].offset

    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition(topic_name, 0, 4)], metadata, 30)
    p.abort_transaction(30)
    assert committed() < 0
    p.begin_transaction()
    p.send_offsets_to_transaction([TopicPartition(topic_name, 0, 9)], metadata, 30)
    p.commit_transaction(30)
    assert wait_until(lambda: committed() == 9, 30, message="the committed offset")
    checker.close()
    consumer.close()


# ---- holdfast txn list | describe | abort ----

def holdfast_txn(bootstrap, *args, check=True):
    return run([str(cli_binary()), "txn", *args, "--brokers", bootstrap], check=check, timeout=60)


def test_holdfast_txn_lists_describes_and_aborts_a_hanging_transaction(broker, topic_name):
    create_topic(broker.bootstrap, topic_name)
    tid = unique("cli")
    p = txn_producer(broker.bootstrap, tid)
    p.init_transactions(30)
    p.begin_transaction()
    for i in range(4):
        p.produce(topic_name, value=f"open-{i}".encode(), partition=i % 2)
    assert p.flush(30) == 0

    listed = json.loads(holdfast_txn(broker.bootstrap, "list", "--format", "json").stdout)
    mine = [t for t in listed if t["transactional_id"] == tid]
    assert len(mine) == 1 and mine[0]["state"] == "Ongoing", listed
    assert sorted(mine[0]["partitions"]) == [f"{topic_name}-0", f"{topic_name}-1"]
    described = json.loads(holdfast_txn(broker.bootstrap, "describe", tid, "--format", "json").stdout)
    assert described["state"] == "Ongoing" and described["producer_id"] == mine[0]["producer_id"]
    text = holdfast_txn(broker.bootstrap, "list").stdout
    assert tid in text and "Ongoing" in text

    # Forced abort of partition 0 (as for a transaction its coordinator lost):
    # read_committed then reads partition 0 to its end, where the open
    # transaction held it at offset 0 before.
    pid = str(mine[0]["producer_id"])
    out = holdfast_txn(broker.bootstrap, "abort", "--topic", topic_name, "--partition", "0",
                       "--producer-id", pid)
    assert "aborted" in out.stdout
    assert ck_consume_all(broker.bootstrap, topic_name, partitions=[0],
                          **{"isolation.level": "read_committed"}) == []
    # Nothing is open there any more: a second abort is refused, naming why.
    again = holdfast_txn(broker.bootstrap, "abort", "--topic", topic_name, "--partition", "0",
                         "--producer-id", pid, check=False)
    assert again.returncode == 1 and "no open transaction" in again.stderr
    # The producer's own abort still completes (a second marker is harmless).
    p.abort_transaction(30)
    assert ck_consume_all(broker.bootstrap, topic_name,
                          **{"isolation.level": "read_committed"}) == []
    missing = holdfast_txn(broker.bootstrap, "describe", unique("nobody"), check=False)
    assert missing.returncode == 1 and "TRANSACTIONAL_ID_NOT_FOUND" in missing.stderr
