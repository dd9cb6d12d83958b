"""Liveness when the controller is cut off (issue 9; the stall the random-fault
soak counted as `stalled`): the node that is both the Raft leader (the
controller) and a partition's leader is cut off from the other two by the
netsplit proxies, while the client still reaches every node. The other two
elect a new controller, fence the cut-off node after broker.session.timeout.ms
and move the partition's leadership. The cut-off node cannot learn any of it.

An idempotent acks=all confluent-kafka producer that bootstrapped from the
cut-off node (librdkafka then keeps its one connection there: sparse
connections, and it asks for Metadata over a connection it has) must resume
acknowledging within a bound derived from the session timeout and the client's
metadata refresh, not wait for the heal. That needs the cut-off broker to stop
claiming leadership: once its heartbeats have gone unanswered for the session
timeout it considers itself fenced, answers produce with
NOT_LEADER_OR_FOLLOWER and no longer names itself leader in Metadata (before
the fix it kept answering with its stale image and the producer made no
progress until the heal). After healing: it rejoins, lost 0, one history.
"""
import pytest

from conftest import wait_until
from faultkit import (BackgroundProducer, assert_checker_catches_doctoring, assert_history,
                      assert_replicas_identical, leader_of, replica_bytes, stop_all, wait_full_isr,
                      wait_new_leader, wait_registered)
from netsplit import proxied_cluster
import test_replication as rep

SESSION_MS = 3000
SETTINGS = {"replica.lag.time.max.ms": 3000, "broker.session.timeout.ms": SESSION_MS}
PARTITIONS = 3  # leaders round-robin: one partition is led by the controller
# Acknowledgements resume within: the cut-off node fences itself one session
# after its last answered heartbeat while the majority elects a controller
# (sub-second with pre-vote) and fences it after one session of its own;
# then librdkafka refreshes Metadata (retry.backoff.ms 100 ms, doubling while
# the leader is unknown, at most ~1 s apart), connects to the new leader and
# retries. Generous slack for 2 shared cores: 2 sessions + 14 s.
PROGRESS_BOUND_S = 2 * SESSION_MS / 1000 + 14


def names_itself_leader(cluster, topic, part, node):
    try:
        return leader_of(cluster, topic, part, via=node) == node.node_id
    except Exception:  # noqa: BLE001  (no Metadata answer: a KafkaException)
        return False


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


def test_a_producer_on_a_cut_off_controller_and_leader_moves_to_the_new_leader(netsplit_cluster):
    cluster, net = netsplit_cluster(SETTINGS)
    wait_registered(cluster)
    topic = "cut-off-controller"
    rep.create_topic(cluster, topic, partitions=PARTITIONS)
    wait_full_isr(cluster, topic, partitions=PARTITIONS)
    controller = rep.metadata(cluster.bootstrap()).controller_id
    part = next(p for p in range(PARTITIONS) if leader_of(cluster, topic, p) == controller)
    cut = cluster.node(controller)
    majority = [n for n in cluster.nodes if n is not cut]

    producer = BackgroundProducer(cut.bootstrap, topic, "c", partition=part,
                                  extra={"socket.timeout.ms": 5000}).start()
    producer.wait_acked(300, 60, cluster)

    net.isolate(controller)
    try:
        new = wait_new_leader(cluster, topic, controller, via=majority[0], partition=part)
        # The real check: acknowledgements resume while the node is still cut off.
        producer.wait_acked(200, PROGRESS_BOUND_S, cluster)
        # The cut-off node no longer names itself leader (it answers no
        # Metadata at all: it cannot know who leads).
        assert not names_itself_leader(cluster, topic, part, cut)
        assert leader_of(cluster, topic, part, via=majority[0]) == new
    finally:
        net.heal()

    # Healed: the node learns the new leader, catches up, rejoins every ISR.
    wait_until(lambda: leader_of(cluster, topic, part, via=cut) == new, 60,
               message=lambda: f"node {controller} learning that {new} leads\n{cluster.logs()}")
    wait_full_isr(cluster, topic, partitions=PARTITIONS, timeout=90)
    producer.wait_acked(200, 60, cluster)
    acked, errors = producer.stop()
    # Only partition `part` was written: its history and its replicas.
    consumed = rep.consume_all(cluster.bootstrap(), topic, PARTITIONS)
    counts = assert_history(acked, consumed)
    stop_all(cluster)
    stored = replica_bytes(cluster, topic, part)
    assert_replicas_identical(stored)
    assert_checker_catches_doctoring(acked, consumed, stored)
    print(f"[cut-off-controller] acked {len(acked)}, delivery errors {len(errors)}, {topic}-{part}"
          f" leader {controller} -> {new}; {net.dropped_bytes} bytes black-holed; {counts}")
