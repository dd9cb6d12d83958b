"""A dead disk (issue 9: "a dead disk loses everything" on one node): a
broker is SIGKILLed and its whole data directory deleted, the way a failed
disk is replaced with an empty one, then started again with the same node id
and addresses.

While an idempotent acks=all producer keeps writing to a topic of 3
partitions (replication factor 3, min.insync.replicas 2), the empty broker
must register again, rebuild its Raft metadata from the other voters, fetch
every partition from its leaders and rejoin every ISR. Then one of the two
brokers that kept their data is killed too, so the rebuilt broker is one of
the only two in-sync replicas while the producer goes on. Checked at the end
(faultkit): every acknowledged message read back once at its acknowledged
offset, and every replica of every partition byte-identical, with the
negative control that the same checks fail on doctored copies.
"""
import shutil

from conftest import wait_full_isr, wait_registered
from faultkit import BackgroundProducer, check_history_and_replicas, leader_of
from test_replication import create_topic

TOPIC = "dead-disk"
PARTITIONS = 3


def test_a_broker_that_lost_its_disk_rebuilds_and_nothing_acknowledged_is_lost(cluster):
    create_topic(cluster, TOPIC, partitions=PARTITIONS)
    wait_full_isr(cluster, TOPIC, partitions=PARTITIONS)
    every_address = cluster.bootstrap(cluster.nodes)
    producer = BackgroundProducer(every_address, TOPIC, "disk", rate=300).start()
    try:
        producer.wait_acked(600, 60, cluster)

        # The leader of partition 0 loses its disk: killed, its data deleted.
        victim = cluster.node(leader_of(cluster, TOPIC, 0))
        victim.kill()
        shutil.rmtree(victim.data_dir)
        producer.wait_acked(600, 90, cluster)  # the other two carry on

        victim.start()  # the same node id and addresses, an empty directory
        wait_registered(cluster, timeout=90)
        wait_full_isr(cluster, TOPIC, partitions=PARTITIONS, timeout=120)
        producer.wait_acked(300, 90, cluster)

        # The rebuilt broker now holds up the ISR with one other broker.
        other = next(n for n in cluster.nodes if n.node_id != victim.node_id)
        other.kill()
        producer.wait_acked(600, 90, cluster)
        other.start()
        wait_registered(cluster, timeout=90)
        wait_full_isr(cluster, TOPIC, partitions=PARTITIONS, timeout=120)
    finally:
        acked, errors = producer.stop()
    assert not errors, (f"{len(errors)} deliveries failed, e.g. (partition, value, time, error) "
                        f"{producer.failed[:3]} ... {producer.failed[-2:]}")
    counts, consumed = check_history_and_replicas(cluster, TOPIC, acked, partitions=PARTITIONS)
    assert counts["lost"] == 0 and counts["moved"] == 0, counts
    print(f"broker {victim.node_id} lost its disk and rebuilt, then broker {other.node_id} was "
          f"killed: acknowledged {len(acked)}, read back {len(consumed)}, history {counts}")
