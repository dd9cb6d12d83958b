"""Transactions through power loss (issue 10): a confluent-kafka
transactional producer commits one transaction after another while the
broker (on the fault-injecting file system, flush.policy=always) loses power
three times. Afterwards a read_committed consumer must see every
acknowledged transaction whole and no transaction in part: for each
transaction number, either all of its messages or none, and all for every
commit_transaction that returned.

The checker's negative control: doctored reads (a message of an acknowledged
transaction missing, a transaction half there) must be caught.
"""
import collections
import json
import pathlib
import subprocess
import sys
import threading
import time

from confluent_kafka.admin import NewTopic

from faultlib import REPO_ROOT, e2e

sys.path.insert(0, str(REPO_ROOT / "tests/e2e"))
from support import ck_admin, ck_consume_all  # noqa: E402  (tests/e2e/support.py)

HERE = pathlib.Path(__file__).resolve().parent
PRODUCER = HERE / "txn_producer.py"
PER_TXN = 6
PARTITIONS = 3
POWER_LOSSES = 3


def check(values, acknowledged):
    """values: the messages read; acknowledged: the transactions whose commit
    returned. Returns the problems found (empty: whole transactions only)."""
    counts = collections.Counter(v.split("-")[0] for v in values)
    problems = []
    for txn, n in sorted(counts.items()):
        if n != PER_TXN:
            problems.append(f"{txn}: {n} of {PER_TXN} messages visible (half a transaction)")
    for n in sorted(acknowledged):
        if counts.get(f"t{n:05d}", 0) != PER_TXN:
            problems.append(f"t{n:05d}: acknowledged, {counts.get(f't{n:05d}', 0)} messages visible")
    return problems


def test_checker_catches_lost_and_half_transactions():
    whole = [f"t{n:05d}-{k}" for n in (1, 2) for k in range(PER_TXN)]
    assert check(whole, {1, 2}) == []
    assert check(whole[1:], {1, 2}), "a missing message of an acknowledged transaction"
    assert check(whole[:PER_TXN] + whole[PER_TXN:PER_TXN + 2], {1}), "half a transaction"
    assert check(whole[:PER_TXN], {1, 2}), "an acknowledged transaction missing"


class ProducerRun:
    def __init__(self, bootstrap, topic, first, count):
        self.events = []
        self.process = subprocess.Popen(
            ["/usr/bin/python3", str(PRODUCER), "--bootstrap", bootstrap, "--topic", topic,
             "--transactional-id", f"power-{topic}", "--first", str(first), "--count", str(count),
             "--per-txn", str(PER_TXN), "--partitions", str(PARTITIONS), "--deadline", "90"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            if line.strip():
                self.events.append(json.loads(line))

    def committed(self):
        return {e["committed"] for e in list(self.events) if "committed" in e}

    def begun(self):
        return {e["begin"] for e in list(self.events) if "begin" in e}

    def finish(self, timeout=120):
        self.process.wait(timeout)
        self.reader.join(10)
        return self.process.returncode


def test_power_loss_during_commits_leaves_whole_transactions(fault_broker, topic_suffix):
    broker = fault_broker(fault_injection=True)
    topic = f"txn-power-{topic_suffix}"
    admin = ck_admin(broker.bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(30)

    acknowledged, begun = set(), set()
    next_txn, losses, runs = 0, 0, 0
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and runs < 12:
        run = ProducerRun(broker.bootstrap, topic, next_txn, 30)
        runs += 1
        if losses < POWER_LOSSES:
            # Lose power once this producer has committed a few transactions
            # and is in the middle of more.
            assert e2e.wait_until(lambda: run.process.poll() is not None
                                  or len(run.committed()) >= 3, 60,
                                  message="the producer to commit transactions")
            if run.process.poll() is None:
                broker.power_loss_and_restart()
                losses += 1
        code = run.finish()
        acknowledged |= run.committed()
        begun |= run.begun()
        next_txn = max(begun | {next_txn - 1}) + 1
        if losses >= POWER_LOSSES and code == 0:
            break
    assert losses == POWER_LOSSES, f"only {losses} power losses happened"
    assert len(acknowledged) >= 10, f"too few transactions acknowledged: {len(acknowledged)}"

    committed = [m["value"] for m in ck_consume_all(broker.bootstrap, topic,
                                                     **{"isolation.level": "read_committed"})]
    problems = check(committed, acknowledged)
    assert not problems, "\n".join(problems[:20])
    # What read_uncommitted shows is reported, not asserted: whether a power
    # loss caught a transaction half written depends on timing.
    everything = [m["value"] for m in ck_consume_all(broker.bootstrap, topic,
                                                      **{"isolation.level": "read_uncommitted"})]
    print(f"power losses {losses}, producer runs {runs}, acknowledged {len(acknowledged)}, "
          f"begun {len(begun)}, read_committed {len(committed)}, read_uncommitted {len(everything)}")

