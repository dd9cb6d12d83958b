"""Leader kill loop (issue 9 test 1): SIGKILL the current leader of the test
partition, wait for the election, restart it, wait for it to rejoin the ISR,
and repeat (5 rounds; HOLDFAST_CLUSTER_KILL_ROUNDS for more, see
`make soak-cluster`), then kill the controller once, while two idempotent acks=all producers run: a
confluent-kafka producer (acknowledgements with offsets) and kcat
(`-X acks=all -X enable.idempotence=true`, batches of lines; a batch counts
as acknowledged only when kcat exits 0 with no delivery error). A missing
kcat fails the test.

Checked: lost 0 (every acknowledged value of both producers read back),
duplicates 0, each confluent-kafka acknowledgement at its offset, no offset
with two values, and every replica byte-identical; the checker is also run
on doctored copies of the result, which it must reject.
"""
import os
import shutil
import subprocess
import threading
import time

from faultkit import (BackgroundProducer, assert_checker_catches_doctoring, assert_history,
                      assert_replicas_identical, history_counts, leader_of, replica_bytes,
                      stop_all, wait_full_isr, wait_new_leader, wait_registered)
from conftest import wait_until
import test_replication as rep

SETTINGS = {"replica.lag.time.max.ms": 3000}
ROUNDS = int(os.environ.get("HOLDFAST_CLUSTER_KILL_ROUNDS", "5"))
KCAT_BATCH = 100
KCAT_MAX_BATCHES = 10_000
KCAT_MAX_SECONDS = 60 * 60


class KcatProducer:
    """kcat -P in batches of KCAT_BATCH unique lines, one process per batch,
    until stop() (bounded in batches and time)."""

    def __init__(self, cluster, topic, prefix="k"):
        self.binary = shutil.which("kcat") or shutil.which("kafkacat")
        assert self.binary, "kcat not installed (apt-get install kcat): the kill loop needs it"
        self.cluster, self.topic, self.prefix = cluster, topic, prefix
        self.acked, self.failed_batches, self.batches = [], 0, 0
        self.last_failure = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        start = time.monotonic()
        while (not self._stop.is_set() and self.batches < KCAT_MAX_BATCHES
               and time.monotonic() - start < KCAT_MAX_SECONDS):
            values = [f"{self.prefix}-{self.batches}-{i}" for i in range(KCAT_BATCH)]
            self.batches += 1
            live = self.cluster.live_nodes() or self.cluster.nodes
            cmd = [self.binary, "-P", "-b", self.cluster.bootstrap(live), "-t", self.topic,
                   "-X", "acks=all", "-X", "enable.idempotence=true",
                   "-X", "message.timeout.ms=30000", "-X", "socket.timeout.ms=5000"]
            try:
                run = subprocess.run(cmd, input="\n".join(values) + "\n", text=True,
                                     capture_output=True, timeout=60)
                ok = run.returncode == 0 and "Delivery failed" not in run.stderr \
                    and "ERROR" not in run.stderr
                failure = run.stderr[-300:]
            except subprocess.TimeoutExpired:
                ok, failure = False, "kcat did not finish within 60 s"
            self._stop.wait(0.2)  # pacing: kcat alone would take a core
            if ok:
                self.acked.extend(values)
            else:
                self.failed_batches += 1
                self.last_failure = failure

    def start(self):
        self._thread.start()
        return self

    def acked_count(self):
        return len(self.acked)

    def stop(self):
        self._stop.set()
        self._thread.join(90)
        assert not self._thread.is_alive(), "kcat producer did not finish"
        return list(self.acked)


def test_leader_kill_loop_with_confluent_kafka_and_kcat_loses_nothing(cluster_factory):
    cluster = cluster_factory(settings=SETTINGS)
    wait_registered(cluster)
    topic = "kill-loop"
    rep.create_topic(cluster, topic)
    wait_full_isr(cluster, topic)

    producer = BackgroundProducer(cluster.bootstrap(), topic, "c",
                                  extra={"socket.timeout.ms": 5000}).start()
    kcat = KcatProducer(cluster, topic).start()
    producer.wait_acked(300, 60, cluster)
    wait_until(lambda: kcat.acked_count() >= KCAT_BATCH, 60,
               message=lambda: f"a first kcat batch ({kcat.last_failure})\n{cluster.logs()}")

    leaders = []
    for round_ in range(ROUNDS):
        old = leader_of(cluster, topic)
        leaders.append(old)
        victim = cluster.node(old)
        victim.kill()
        survivors = [n for n in cluster.nodes if n.node_id != old]
        wait_new_leader(cluster, topic, old, via=survivors[0], timeout=60)
        producer.wait_acked(200, 60, cluster)
        victim.start()
        wait_full_isr(cluster, topic, timeout=90)
        kcat_before = kcat.acked_count()
        wait_until(lambda: kcat.acked_count() > kcat_before, 90,
                   message=lambda: f"kcat progress in round {round_} ({kcat.last_failure})"
                   f"\n{cluster.logs()}")

    # And once the controller (the Raft leader), whichever node that is.
    controller = rep.metadata(cluster.bootstrap()).controller_id
    cluster.node(controller).kill()
    survivors = [n for n in cluster.nodes if n.node_id != controller]
    wait_until(lambda: rep.metadata(survivors[0].bootstrap).controller_id not in (-1, controller),
               60, message=lambda: f"a new controller after killing {controller}\n{cluster.logs()}")
    producer.wait_acked(200, 60, cluster)
    cluster.node(controller).start()
    wait_full_isr(cluster, topic, timeout=90)
    producer.wait_acked(200, 60, cluster)

    acked, errors = producer.stop()
    kcat_acked = kcat.stop()
    consumed = rep.consume_all(cluster.bootstrap(), topic, 1)
    counts = assert_history(acked, consumed)
    read = {v for _, _, v in consumed}
    kcat_lost = [v for v in kcat_acked if v not in read]
    assert not kcat_lost, f"lost {len(kcat_lost)} kcat-acknowledged messages, e.g. {kcat_lost[:5]}"
    # Negative control for the kcat side: a value it never sent is "lost".
    assert history_counts({"k-never-sent": (0, 0)}, consumed)["lost"] == 1

    stop_all(cluster)
    stored = replica_bytes(cluster, topic)
    assert_replicas_identical(stored)
    assert_checker_catches_doctoring(acked, consumed, stored)
    print(f"[kill-loop] {ROUNDS} rounds, leaders killed {leaders}, then controller {controller};"
          f" confluent-kafka acked"
          f" {len(acked)} ({len(errors)} delivery errors), kcat acked {len(kcat_acked)} in"
          f" {kcat.batches - kcat.failed_batches}/{kcat.batches} batches; {counts}")
