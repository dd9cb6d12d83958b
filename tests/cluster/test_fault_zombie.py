"""Zombie leader (reliability.md scenario 2, issue 9 test 2): the leader of a
partition is frozen (SIGSTOP) while an idempotent acks=all producer runs; the
controller fences it after the session timeout and elects another leader; the
old leader is thawed (SIGCONT) with produce requests still in its sockets and
its belief that it leads. It must not acknowledge any of them (its followers
fetch elsewhere, and its ISR shrink is refused by the controller for a stale
partition epoch); it learns the new leader, truncates by epoch, catches up and
rejoins the ISR. Checked: lost 0, duplicates 0, each acknowledged value at
its acknowledged offset, no offset with two values, replicas byte-identical.
"""
import os

import pytest

from faultkit import (BackgroundProducer, FaultNode, check_history_and_replicas, leader_of,
                      wait_full_isr, wait_new_leader, wait_registered)
from conftest import wait_until
import test_replication as rep

SETTINGS = {"replica.lag.time.max.ms": 3000}
# `make soak-cluster` repeats the scenario.
REPEAT = int(os.environ.get("HOLDFAST_CLUSTER_FAULT_REPEAT", "1"))


class ZombieProbe:
    """A kafka-python acks=all producer (no retries) bootstrapped from the
    leader alone and connected before it is paused; send() while it is
    paused queues the request in its socket, answered after SIGCONT by a
    broker that still believes it leads."""

    def __init__(self, node, topic):
        from kafka import KafkaProducer
        self.producer = KafkaProducer(bootstrap_servers=node.bootstrap, acks="all", retries=0,
                                      request_timeout_ms=30000, api_version=(2, 5),
                                      max_block_ms=5000)
        self.producer.send(topic, b"probe-warm-up").get(timeout=20)
        self.topic = topic
        self.future = None

    def send(self, value):
        self.future = self.producer.send(self.topic, value.encode())

    def outcome(self):
        """(offset, None) if acknowledged, else (None, the error)."""
        try:
            return self.future.get(timeout=60).offset, None
        except Exception as e:  # the broker's answer or the request timeout
            return None, e
        finally:
            self.producer.close(5)


@pytest.mark.parametrize("attempt", range(REPEAT))
def test_a_paused_leader_acknowledges_nothing_after_losing_leadership(cluster_factory, attempt):
    cluster = cluster_factory(settings=SETTINGS, node_class=FaultNode)
    wait_registered(cluster)
    topic = "zombie"
    rep.create_topic(cluster, topic)
    wait_full_isr(cluster, topic)

    # A short request timeout: the producer gives up on requests in flight
    # to the frozen leader and retries them at the new one (idempotently).
    producer = BackgroundProducer(cluster.bootstrap(), topic, "z",
                                  extra={"socket.timeout.ms": 5000}).start()
    producer.wait_acked(500, 60, cluster)

    old = leader_of(cluster, topic)
    zombie = cluster.node(old)
    survivors = [n for n in cluster.nodes if n.node_id != old]
    probe = ZombieProbe(zombie, topic)
    zombie.pause()
    try:
        probe.send("probe-while-paused")
        new = wait_new_leader(cluster, topic, old, via=survivors[0])
        # The majority keeps serving while the zombie sleeps.
        producer.wait_acked(500, 60, cluster)
    finally:
        zombie.resume()

    # Thawed, the zombie reads the produce queued while it slept, as the
    # leader it believes it is; it must not acknowledge it.
    probe_offset, probe_error = probe.outcome()
    assert probe_error is not None, (
        f"the old leader {old} acknowledged a produce at offset {probe_offset} after node {new}"
        f" took over\n{cluster.logs()}")

    wait_until(lambda: leader_of(cluster, topic, via=zombie) == new, 30,
               message=lambda: f"node {old} learning that {new} leads\n{cluster.logs()}")
    wait_full_isr(cluster, topic)
    producer.wait_acked(200, 60, cluster)
    acked, errors = producer.stop()

    counts, _ = check_history_and_replicas(cluster, topic, acked)
    print(f"[zombie] acked {len(acked)}, delivery errors {len(errors)}, old leader {old} -> {new},"
          f" zombie's answer {probe_error!r},"
          f" {counts}")
