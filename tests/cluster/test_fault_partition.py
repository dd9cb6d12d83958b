"""Network partition (reliability.md scenario 3, issue 9 test 3): the leader
of a partition is cut off from the other two nodes (Raft and inter-broker
Kafka traffic black-holed by the proxies of netsplit.py) while its process
lives and clients still reach it. With min.insync.replicas=2 it cannot
acknowledge acks=all (no follower fetches from it, and it cannot reach the
controller to shrink the ISR); the majority fences it, elects a new leader
and keeps serving an idempotent acks=all producer. After healing: lost 0,
duplicates 0, each acknowledged value at its acknowledged offset, one history
(replicas byte-identical).

Negative control: an acks=1 write to the cut-off leader is acknowledged (it
is the leader's own durable append) and then truncated away when it rejoins:
the checker must count it lost.
"""
import os

import pytest

from faultkit import (BackgroundProducer, check_history_and_replicas, history_counts, leader_of,
                      wait_full_isr, wait_new_leader, wait_registered)
from conftest import wait_until
from netsplit import proxied_cluster
import test_replication as rep

SETTINGS = {"replica.lag.time.max.ms": 3000}
# `make soak-cluster` repeats the scenario.
REPEAT = int(os.environ.get("HOLDFAST_CLUSTER_FAULT_REPEAT", "1"))


@pytest.fixture
def netsplit_cluster(tmp_path):
    made = []

    def make(settings):
        cluster, net = proxied_cluster(tmp_path, settings)
        made.append((cluster, net))
        return cluster, net

    yield make
    for cluster, net in made:
        for n in cluster.nodes:
            n.stop()
        net.close()


class OneShot:
    """A kafka-python producer (no retries) bootstrapped from `node` alone and
    warmed up (metadata and connection) before the cut, so that send() after
    it reaches the cut-off leader at once: within the session timeout, after
    which the cut-off node fences itself and stops leading."""

    def __init__(self, node, topic, partition, acks):
        from kafka import KafkaProducer
        self.producer = KafkaProducer(bootstrap_servers=node.bootstrap, acks=acks, retries=0,
                                      request_timeout_ms=10000, api_version=(2, 5),
                                      max_block_ms=10000)
        self.topic, self.partition = topic, partition
        self.producer.send(topic, f"one-shot-warm-up-{acks}".encode(),
                           partition=partition).get(timeout=30)

    def send(self, value):
        """(offset, None) if acknowledged, else (None, the error)."""
        try:
            return self.producer.send(self.topic, value.encode(),
                                      partition=self.partition).get(timeout=30).offset, None
        except Exception as e:  # the broker's answer or the request timeout
            return None, e
        finally:
            self.producer.close(5)


PARTITIONS = 3  # leaders round-robin: one partition is led by the controller


@pytest.mark.parametrize("attempt", range(REPEAT))
@pytest.mark.parametrize("whom", ["leader-only", "leader-and-controller"])
def test_a_cut_off_leader_acknowledges_nothing_and_the_majority_serves(netsplit_cluster, whom,
                                                                        attempt):
    cluster, net = netsplit_cluster(SETTINGS)
    wait_registered(cluster)
    topic = "netsplit"
    rep.create_topic(cluster, topic, partitions=PARTITIONS)
    wait_full_isr(cluster, topic, partitions=PARTITIONS)
    controller = rep.metadata(cluster.bootstrap()).controller_id
    leaders = {p: leader_of(cluster, topic, p) for p in range(PARTITIONS)}
    # The partition whose leader is cut off: one led by the controller, or not.
    part = next(p for p, l in leaders.items() if (l == controller) == (whom != "leader-only"))

    producer = BackgroundProducer(cluster.bootstrap(), topic, "n",
                                  extra={"socket.timeout.ms": 5000}).start()
    producer.wait_acked(500, 60, cluster)

    old = leaders[part]
    cut = cluster.node(old)
    majority = [n for n in cluster.nodes if n.node_id != old]
    ack_one = OneShot(cut, topic, part, 1)
    ack_all = OneShot(cut, topic, part, "all")
    net.isolate(old)
    try:
        # Clients still reach the cut-off leader, which still believes it
        # leads until its session runs out (then it fences itself).
        one_offset, one_error = ack_one.send("acks-1-to-the-cut-off-leader")
        all_offset, all_error = ack_all.send("acks-all-to-the-cut-off-leader")
        new = wait_new_leader(cluster, topic, old, via=majority[0], partition=part)
        producer.wait_acked(500, 60, cluster)
        # It cannot learn of the election; fenced after its session, it
        # names no leader, and once cut off for a session it answers no
        # Metadata at all (closes the connection).
        try:
            seen = leader_of(cluster, topic, part, via=cut)
        except Exception:  # noqa: BLE001  (no answer: a KafkaException)
            seen = None
        assert seen in (old, -1, None), "the cut-off node learnt of the election"
    finally:
        net.heal()
    assert all_error is not None, (
        f"the cut-off leader {old} acknowledged acks=all at offset {all_offset}\n{cluster.logs()}")
    assert one_error is None, f"acks=1 to the cut-off leader failed: {one_error!r}"

    wait_until(lambda: leader_of(cluster, topic, part, via=cut) == new, 60,
               message=lambda: f"node {old} learning that {new} leads\n{cluster.logs()}")
    wait_full_isr(cluster, topic, partitions=PARTITIONS)
    producer.wait_acked(200, 60, cluster)
    acked, errors = producer.stop()

    counts, consumed = check_history_and_replicas(cluster, topic, acked, PARTITIONS)
    values = {v for _, _, v in consumed}
    assert "acks-all-to-the-cut-off-leader" not in values or all_offset is None
    # Negative control: the acks=1 write was acknowledged and is gone.
    control = history_counts(dict(acked, **{"acks-1-to-the-cut-off-leader": (part, one_offset)}),
                             consumed)
    assert control["lost"] == 1, f"acks=1 to the cut-off leader not lost: {control}"
    print(f"[netsplit] {whom}: acked {len(acked)}, delivery errors {len(errors)}, {topic}-{part}"
          f" leader {old} -> {new} (controller was {controller}), acks=all to the cut-off leader:"
          f" {all_error!r}; acks=1: acked at {one_offset}, then lost;"
          f" {net.dropped_bytes} bytes black-holed; {counts}")
