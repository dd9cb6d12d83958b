"""KIP-890 part 1 across brokers (issue 10 in a cluster): a transactional
batch that would open a transaction in a partition is appended only if the
transaction coordinator has that partition in the producer's ongoing
transaction, also when the coordinator (the leader of the id's
__transaction_state partition) is another broker than the partition's
leader. The leader then asks the coordinator's broker with AddPartitionsToTxn
v4 `verify_only`.

Played with raw requests (tests/e2e/test_read_committed.py's): InitProducerId,
AddPartitionsToTxn and EndTxn to the coordinator, Produce to a partition
whose leader is another broker. Each refusal is paired with its control:
the same batch taken once the partition was added.
"""
import pathlib
import struct
import sys

from confluent_kafka import Producer

from conftest import metadata, wait_full_isr, wait_until
from test_groups import offsets_partition
from test_replication import create_topic

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests/e2e"))
from test_read_committed import (  # noqa: E402  (tests/e2e/test_read_committed.py)
    INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, NO_ERROR, Raw, s16, txn_batch)

TOPIC = "kip890"
PARTITIONS = 3
TXN_ID = "kip890-remote"


def txn_coordinator(cluster):
    """The leader of TXN_ID's __transaction_state partition (-1: none yet)."""
    md = metadata(cluster.bootstrap())
    topic = md.topics.get("__transaction_state")
    if topic is None or not topic.partitions:
        return -1
    return topic.partitions[offsets_partition(TXN_ID, len(topic.partitions))].leader


def latest(raw, partition):
    return raw.list_offsets_latest(TOPIC, partition, isolation=0)


def test_a_partition_leader_asks_a_remote_coordinator_before_a_transaction_opens(cluster):
    create_topic(cluster, TOPIC, partitions=PARTITIONS)
    wait_full_isr(cluster, TOPIC, partitions=PARTITIONS)
    # A real client registers the id first (FindCoordinator creates
    # __transaction_state; InitProducerId gives epoch 0); the raw producer
    # below then takes the id over with the next epoch.
    producer = Producer({"bootstrap.servers": cluster.bootstrap(), "transactional.id": TXN_ID})
    producer.init_transactions(60)
    del producer
    coordinator = wait_until(lambda: (lambda c: c if c >= 0 else None)(txn_coordinator(cluster)),
                             60, message="a transaction coordinator")
    md = metadata(cluster.bootstrap())
    remote = [p for p, state in md.topics[TOPIC].partitions.items()
              if state.leader not in (-1, coordinator)]
    assert len(remote) >= 2, f"partitions led by another broker than {coordinator}: {remote}"
    p_in, p_out = remote[0], remote[1]
    leader_of = {p: md.topics[TOPIC].partitions[p].leader for p in (p_in, p_out)}

    to_coordinator = Raw(cluster.node(coordinator).bootstrap)
    leaders = {p: Raw(cluster.node(leader_of[p]).bootstrap) for p in (p_in, p_out)}
    try:
        pid, epoch = to_coordinator.init_producer_id(TXN_ID)
        errors = to_coordinator.add_partitions_to_txn(TXN_ID, pid, epoch, TOPIC, [p_in])
        assert errors == {(TOPIC, p_in): NO_ERROR}
        sequence = {p_in: 0, p_out: 0}

        def send(p, values, expect=NO_ERROR, with_epoch=None):
            batch = txn_batch(pid, epoch if with_epoch is None else with_epoch, sequence[p], values)
            error, _ = leaders[p].produce(TOPIC, p, batch, TXN_ID)
            assert error == expect, f"produce to {TOPIC}-{p} answered {error}, expected {expect}"
            if error == NO_ERROR:
                sequence[p] += len(values)

        # Not in the transaction: refused by the remote coordinator's answer,
        # nothing appended. The added partition takes the same kind of batch.
        start_out = latest(leaders[p_out], p_out)
        send(p_out, ["not added"], expect=INVALID_TXN_STATE)
        assert latest(leaders[p_out], p_out) == start_out, "nothing appended"
        start_in = latest(leaders[p_in], p_in)
        send(p_in, ["added"])
        assert latest(leaders[p_in], p_in) == start_in + 1

        # Another epoch than the transaction's: refused.
        send(p_out, ["wrong epoch"], expect=INVALID_PRODUCER_EPOCH, with_epoch=epoch + 1)

        # Added now (the control for the first refusal): taken.
        errors = to_coordinator.add_partitions_to_txn(TXN_ID, pid, epoch, TOPIC, [p_out])
        assert errors == {(TOPIC, p_out): NO_ERROR}
        send(p_out, ["added late"])
        assert latest(leaders[p_out], p_out) == start_out + 1

        # Abort (EndTxn); once its markers are in, a late batch of the ended
        # transaction cannot open a new one in a partition.
        before = {p: latest(leaders[p], p) for p in (p_in, p_out)}
        r = to_coordinator.call(26, 0, s16(TXN_ID) + struct.pack(">qhb", pid, epoch, 0))
        r.take(">i")  # throttle
        assert r.take(">h") == NO_ERROR
        for p in (p_in, p_out):
            # The marker is one more offset, and it releases read_committed.
            wait_until(lambda: leaders[p].list_offsets_latest(TOPIC, p, isolation=1)
                       == latest(leaders[p], p) == before[p] + 1,
                       30, message=lambda: f"the abort marker in {TOPIC}-{p}\n{cluster.logs()}")
        end_in = latest(leaders[p_in], p_in)
        send(p_in, ["late"], expect=INVALID_TXN_STATE)
        assert latest(leaders[p_in], p_in) == end_in, "nothing appended"
    finally:
        to_coordinator.close()
        for raw in leaders.values():
            raw.close()
