"""What the transaction fault tests share (tests/faults/test_txn_power_loss.py,
tests/cluster/test_fault_txn_coordinator.py): txn_producer.py run as a child
with its JSON lines collected, and the check that read_committed shows whole
transactions only."""
import collections
import json
import pathlib
import subprocess
import threading

PRODUCER = pathlib.Path(__file__).resolve().parent / "txn_producer.py"


def whole_transactions_problems(values, acknowledged, per_txn):
    """values: messages "t<n>-<k>" read with read_committed; acknowledged: the
    transaction numbers whose commit returned. Empty when every transaction is
    whole or absent and every acknowledged one is whole."""
    counts = collections.Counter(v.split("-")[0] for v in values)
    problems = [f"{txn}: {n} of {per_txn} messages visible (half a transaction)"
                for txn, n in sorted(counts.items()) if n != per_txn]
    problems += [f"t{n:05d}: acknowledged, {counts.get(f't{n:05d}', 0)} messages visible"
                 for n in sorted(acknowledged) if counts.get(f"t{n:05d}", 0) != per_txn]
    return problems


class ProducerRun:
    """txn_producer.py as a child process; its events collected as they come."""

    def __init__(self, bootstrap, topic, transactional_id, first, count, per_txn, partitions,
                 deadline_s):
        self.events = []
        self.process = subprocess.Popen(
            ["/usr/bin/python3", str(PRODUCER), "--bootstrap", bootstrap, "--topic", topic,
             "--transactional-id", transactional_id, "--first", str(first), "--count", str(count),
             "--per-txn", str(per_txn), "--partitions", str(partitions),
             "--deadline", str(deadline_s)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.process.stdout:
            if line.strip():
                self.events.append(json.loads(line))

    def numbers(self, kind):
        """The transaction numbers of the events of `kind` ("begin", "committed")."""
        return {e[kind] for e in list(self.events) if kind in e}

    def finish(self, timeout=180):
        """Waits (bounded; killed past it) and returns the exit code."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.reader.join(10)
        return self.process.returncode
