"""Helpers for the cluster fault scenarios (issue 9): a producer that runs in
the background while faults are injected, a history checker that counts
(instead of asserting) so a scenario can also show it detects a doctored
result, replica comparison, and nodes that can be paused or "power-lost".

The checker's model is the leader-kill test's (test_replication.py): every
acknowledged value read back once, at the offset its acknowledgement named,
no offset holding two values, and every replica's stored batches identical.
"""
import os
import signal
import subprocess
import threading
import time

from confluent_kafka import KafkaException, Producer

from conftest import Node, wait_full_isr, wait_registered, wait_until  # noqa: F401  (re-exported)
import test_replication as rep
from test_replication import history_counts  # noqa: F401  (re-exported)

# Bounds on the background producer (every load loop is bounded).
MAX_MESSAGES = 200_000
MAX_SECONDS = 300


class BackgroundProducer:
    """An idempotent acks=all confluent-kafka producer sending unique values
    `<prefix>-<n>` at about `rate` msg/s on a thread until stop(), `count`
    messages or `max_seconds`, to `partition` if given. `acked` maps value ->
    (partition, offset)."""

    def __init__(self, bootstrap, topic, prefix, rate=400, count=MAX_MESSAGES,
                 max_seconds=MAX_SECONDS, extra=None, partition=None):
        self.topic, self.prefix, self.rate = topic, prefix, rate
        self.target = {} if partition is None else {"partition": partition}
        self.count, self.max_seconds = count, max_seconds
        self.config = {"bootstrap.servers": bootstrap, "acks": "all",
                       "enable.idempotence": True, "linger.ms": 5,
                       "message.timeout.ms": 60000, "queue.buffering.max.messages": 5000}
        self.config.update(extra or {})
        self.acked, self.errors = {}, []
        self.failed = []  # (partition, value, wall time, error) of each failed delivery
        self.sent = 0
        self.unfinished = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None

    def _on_delivery(self, err, msg):
        with self._lock:
            if err is not None:
                self.errors.append(err)
                self.failed.append((msg.partition(), msg.value().decode(), time.time(), str(err)))
            else:
                self.acked[msg.value().decode()] = (msg.partition(), msg.offset())

    def _run(self):
        producer = Producer(self.config)
        start = time.monotonic()
        while (not self._stop.is_set() and self.sent < self.count
               and time.monotonic() - start < self.max_seconds):
            value = f"{self.prefix}-{self.sent}".encode()
            try:
                producer.produce(self.topic, value=value, on_delivery=self._on_delivery,
                                 **self.target)
                self.sent += 1
            except BufferError:
                producer.poll(0.1)
                continue
            except KafkaException as e:  # e.g. the idempotent producer's fatal error
                with self._lock:
                    self.errors.append(e.args[0])
                break
            producer.poll(0)
            # Pace to `rate`: sleep off any lead over the schedule.
            ahead = self.sent / self.rate - (time.monotonic() - start)
            if ahead > 0:
                producer.poll(min(ahead, 0.2))
        self.unfinished = producer.flush(75)

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def acked_count(self):
        with self._lock:
            return len(self.acked)

    def wait_acked(self, more, timeout, cluster=None):
        """Waits until `more` further messages are acknowledged."""
        target = self.acked_count() + more
        wait_until(lambda: self.acked_count() >= target, timeout,
                   message=lambda: f"{more} more acknowledgements (have {self.acked_count()},"
                   f" errors {self.errors[-3:]})" + (f"\n{cluster.logs()}" if cluster else ""))

    def stop(self):
        self._stop.set()
        self._thread.join(120)
        assert not self._thread.is_alive(), "background producer did not finish"
        assert self.unfinished == 0, f"{self.unfinished} messages never completed"
        with self._lock:
            return dict(self.acked), list(self.errors)


def assert_history(acked, consumed):
    counts = rep.check_history(acked, consumed)
    assert counts["inconsistent"] == 0, f"history: {counts}"
    return counts


def replica_bytes(cluster, topic, partition=0):
    """Every node's stored batches of the partition (stop the nodes first)."""
    return {n.node_id: rep.partition_bytes(n, topic, partition) for n in cluster.nodes}


def replicas_differ(stored):
    """Node ids whose stored batches differ from the first node's."""
    ids = sorted(stored)
    return [i for i in ids[1:] if stored[i] != stored[ids[0]]]


def assert_replicas_identical(stored):
    assert all(len(b) > 0 for b in stored.values()), {k: len(v) for k, v in stored.items()}
    differ = replicas_differ(stored)
    assert not differ, (f"replicas differ: nodes {differ} vs node {min(stored)} "
                        f"({ {k: len(v) for k, v in stored.items()} } bytes)")


def assert_checker_catches_doctoring(acked, consumed, stored):
    """Negative control: the same checks, run on doctored copies of this
    run's result, must fail — a lost acknowledged record, a record moved to
    another offset, a duplicated record, and a replica one byte off."""
    assert acked and consumed
    victim = next(c for c in consumed if c[2] in acked)
    dropped = [c for c in consumed if c is not victim]
    assert history_counts(acked, dropped)["lost"] == 1
    moved = [(c[0], c[1] + 1, c[2]) if c is victim else c for c in consumed]
    assert history_counts(acked, moved)["moved"] == 1
    assert history_counts(acked, consumed + [victim])["duplicates"] == 1
    other = next(c for c in consumed if c is not victim)
    clash = consumed + [(victim[0], victim[1], other[2] + "-other")]
    assert history_counts(acked, clash)["inconsistent"] == 1
    doctored = dict(stored)
    last = max(doctored)
    data = bytearray(doctored[last])
    data[len(data) // 2] ^= 0x01
    doctored[last] = bytes(data)
    assert replicas_differ(doctored) == [last]


def check_history_and_replicas(cluster, topic, acked, partitions=1):
    """The end of every fault scenario: reads `topic` back and checks the
    history of `acked`; stops every node and checks each partition's
    replicas byte-identical; runs the checks on doctored copies (which must
    fail). Returns (counts, consumed)."""
    consumed = rep.consume_all(cluster.bootstrap(), topic, partitions)
    counts = assert_history(acked, consumed)
    stop_all(cluster)
    for p in range(partitions):
        stored = replica_bytes(cluster, topic, p)
        assert_replicas_identical(stored)
    assert_checker_catches_doctoring(acked, consumed, stored)
    return counts, consumed


def stop_all(cluster):
    for n in cluster.nodes:
        n.stop()


class FaultNode(Node):
    """A cluster node that can also be paused (SIGSTOP/SIGCONT) and run on
    the fault-injecting file system (`serve --fault-injection`), where
    SIGUSR1 is a power loss: everything not fsynced is dropped and the
    process exits at once with 137."""

    fault_injection = False

    def command(self):
        cmd = super().command()
        if self.fault_injection:
            cmd.append("--fault-injection")
        return cmd

    def pause(self):
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.process.pid, signal.SIGCONT)

    def power_loss(self):
        assert self.fault_injection, "power loss needs --fault-injection"
        self.process.send_signal(signal.SIGUSR1)

    def wait_exit(self, timeout=20):
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        self._reader.join(5)
        return code


class FaultInjectedNode(FaultNode):
    """A FaultNode that always runs on the fault-injecting file system."""

    fault_injection = True


def leader_of(cluster, topic, partition=0, via=None):
    return rep.partition_state(cluster, topic, partition, via=via)["leader"]


def wait_new_leader(cluster, topic, old, via, timeout=30, partition=0):
    return wait_until(
        lambda: (lambda l: l if l not in (-1, old) else None)(leader_of(cluster, topic, partition,
                                                                         via=via)),
        timeout, message=lambda: f"a new leader of {topic}-{partition} after losing node {old}"
        f"\n{cluster.logs()}")
