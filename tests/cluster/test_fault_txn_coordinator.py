"""Transactions through the loss of their coordinator (issue 10 in a
cluster): a confluent-kafka transactional producer commits one transaction
after another (6 messages over 3 partitions, replication factor 3) while the
transaction coordinator, the leader of the transactional id's
__transaction_state partition, is killed with SIGKILL twice (the second
time, the broker that took over) and restarted.

The producer spends most of its time in commit_transaction (EndTxn, the
PrepareCommit record replicated, the markers, CompleteCommit), so a kill
usually lands in a commit; the test reports whether one was in flight. A
producer that gets a fatal error exits, and the next one, with the same
transactional.id, fences it: its open transaction is aborted.

Checked with a read_committed consumer once every node is back: every
transaction is whole or absent (never half), and every transaction whose
commit_transaction returned is whole. Negative control: the checker catches
doctored reads (a lost message of an acknowledged transaction, half a
transaction).
"""
import pathlib
import sys
import time

from conftest import metadata, wait_full_isr, wait_registered, wait_until
from test_groups import offsets_partition
from test_replication import create_topic

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests/e2e"))
from support import ck_consume_all  # noqa: E402  (tests/e2e/support.py)
sys.path.insert(0, str(REPO / "tests/faults"))
import txn_workload  # noqa: E402  (tests/faults/txn_workload.py)

TOPIC = "txn-out"
TXN_ID = "txn-cluster-coordinator"
PARTITIONS = 3
PER_TXN = 6
KILLS = 2


def whole_transactions_problems(values, acknowledged):
    return txn_workload.whole_transactions_problems(values, acknowledged, PER_TXN)


def test_the_checker_catches_lost_and_half_transactions():
    whole = [f"t{n:05d}-{k}" for n in (1, 2) for k in range(PER_TXN)]
    assert whole_transactions_problems(whole, {1, 2}) == []
    assert whole_transactions_problems(whole[1:], {1, 2}), "a lost message"
    assert whole_transactions_problems(whole[:PER_TXN + 2], {1}), "half a transaction"
    assert whole_transactions_problems(whole[:PER_TXN], {1, 2}), "an acknowledged one missing"


def txn_coordinator(cluster):
    """The leader of TXN_ID's __transaction_state partition (-1: none yet)."""
    md = metadata(cluster.bootstrap())
    topic = md.topics.get("__transaction_state")
    if topic is None or not topic.partitions:
        return -1
    return topic.partitions[offsets_partition(TXN_ID, len(topic.partitions))].leader


def test_killing_the_transaction_coordinator_leaves_whole_transactions(cluster_factory):
    cluster = cluster_factory()
    wait_registered(cluster)
    create_topic(cluster, TOPIC, partitions=PARTITIONS)
    wait_full_isr(cluster, TOPIC, partitions=PARTITIONS)
    every_address = cluster.bootstrap(cluster.nodes)  # the killed node's too

    acknowledged, begun, in_flight_at_kill, victims = set(), set(), [], []
    next_txn, runs, codes = 0, 0, []
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline and runs < 8:
        run = txn_workload.ProducerRun(every_address, TOPIC, TXN_ID, next_txn, 30, PER_TXN, PARTITIONS,
                                       120)
        runs += 1
        if len(victims) < KILLS:
            wait_until(lambda: run.process.poll() is not None or len(run.numbers("committed")) >= 3,
                       120, message=lambda: f"the producer to commit transactions\n{cluster.logs()}")
            coordinator = txn_coordinator(cluster)
            if run.process.poll() is None and coordinator >= 0:
                victim = cluster.node(coordinator)
                victim.kill()
                victims.append(coordinator)
                committed, started = run.numbers("committed"), run.numbers("begin")
                in_flight_at_kill.append(max(started) > max(committed | {-1}))
                wait_until(lambda: txn_coordinator(cluster) not in (-1, coordinator), 60,
                           message=lambda: f"a new transaction coordinator\n{cluster.logs()}")
                victim.start()
        codes.append(run.finish())
        acknowledged |= run.numbers("committed")
        begun |= run.numbers("begin")
        next_txn = max(begun | {next_txn - 1}) + 1
        if len(victims) >= KILLS and codes[-1] == 0:
            break
    assert len(victims) == KILLS, f"only {len(victims)} coordinators killed ({codes})"
    assert codes[-1] == 0, f"the last producer did not finish cleanly: exit codes {codes}"
    assert len(acknowledged) >= 30, f"too few transactions acknowledged: {len(acknowledged)}"

    wait_registered(cluster)
    wait_full_isr(cluster, TOPIC, partitions=PARTITIONS)
    committed = [m["value"] for m in ck_consume_all(
        cluster.bootstrap(), TOPIC, partitions=list(range(PARTITIONS)), timeout=60,
        **{"isolation.level": "read_committed"})]
    problems = whole_transactions_problems(committed, acknowledged)
    assert not problems, "\n".join(problems[:20])
    print(f"coordinators killed {victims} (a commit in flight: {in_flight_at_kill}), producer "
          f"runs {runs} exiting {codes}, acknowledged {len(acknowledged)}, begun {len(begun)}, "
          f"read_committed messages {len(committed)}")
