"""Leader kill loop (issue 9 test 1): SIGKILL the current leader of the test
partition, wait for the election, restart it, wait for it to rejoin the ISR,
and repeat (5 rounds; HOLDFAST_CLUSTER_KILL_ROUNDS for more, see
`make soak-cluster`), then kill the controller once. Throughout, three
workloads run:

- a confluent-kafka idempotent acks=all producer (acknowledgements with offsets);
- a kafkajs idempotent acks=all producer (acks -1) on the same partition; a
  missing node or kafkajs fails the test;
- `holdfast verify` back to back against the cluster on a 3-partition topic
  (so every kill takes some partition's leader, and sometimes its group's
  coordinator): its idempotent acks=all producer, a consumer group of two
  processes committing after each batch, a final drain and its own checker.

Checked: verify's checker on every verify run (lost 0, duplicates in the log
0, inconsistent offsets 0, corrupted and unexpected 0, every acknowledged
message processed by the group); faultkit's checker on both other producers
(lost 0, duplicates 0, each acknowledgement at its offset, no offset with two
values; verify's checker takes only verify's own messages, so it cannot
judge them); and every replica of every partition byte-identical. Negative
controls: both checkers' verdicts on doctored copies of the results.
"""
import os

from faultkit import (BackgroundProducer, assert_replicas_identical, check_history_and_replicas,
                      leader_of, replica_bytes, wait_full_isr, wait_new_leader, wait_registered)
from conftest import wait_until
from workloads import (KafkajsProducer, VerifyLoop, assert_verify_catches_doctoring,
                       assert_verify_reports, verify_totals)
import test_replication as rep

SETTINGS = {"replica.lag.time.max.ms": 3000}
ROUNDS = int(os.environ.get("HOLDFAST_CLUSTER_KILL_ROUNDS", "5"))
VERIFY_PARTITIONS = 3


def test_leader_kill_loop_with_confluent_kafka_kafkajs_and_verify_loses_nothing(
        cluster_factory, tmp_path):
    cluster = cluster_factory(settings=SETTINGS)
    wait_registered(cluster)
    topic, verify_topic = "kill-loop", "kill-loop-verify"
    rep.create_topic(cluster, topic)
    rep.create_topic(cluster, verify_topic, partitions=VERIFY_PARTITIONS)
    wait_full_isr(cluster, topic)
    wait_full_isr(cluster, verify_topic, partitions=VERIFY_PARTITIONS)

    producer = BackgroundProducer(cluster.bootstrap(), topic, "c",
                                  extra={"socket.timeout.ms": 5000}).start()
    kafkajs = KafkajsProducer(cluster.bootstrap(), topic, tmp_path, "j")
    verify = VerifyLoop(cluster, verify_topic, tmp_path).start()
    producer.wait_acked(300, 60, cluster)
    kafkajs.wait_acked(100, 60, cluster)

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
        kafkajs.wait_acked(50, 90, cluster)

    # And once the controller (the Raft leader), whichever node that is.
    controller = rep.metadata(cluster.bootstrap()).controller_id
    cluster.node(controller).kill()
    survivors = [n for n in cluster.nodes if n.node_id != controller]
    wait_until(lambda: rep.metadata(survivors[0].bootstrap).controller_id not in (-1, controller),
               60, message=lambda: f"a new controller after killing {controller}\n{cluster.logs()}")
    producer.wait_acked(200, 60, cluster)
    cluster.node(controller).start()
    wait_full_isr(cluster, topic, timeout=90)
    wait_full_isr(cluster, verify_topic, partitions=VERIFY_PARTITIONS, timeout=90)
    producer.wait_acked(200, 60, cluster)
    kafkajs.wait_acked(50, 90, cluster)

    acked, errors = producer.stop()
    js_acked = kafkajs.stop()
    reports = verify.stop()
    assert_verify_reports(reports)
    assert_verify_catches_doctoring(reports[-1])
    assert not set(acked) & set(js_acked)
    counts, _ = check_history_and_replicas(cluster, topic, {**acked, **js_acked})
    for p in range(VERIFY_PARTITIONS):  # the nodes are stopped now
        assert_replicas_identical(replica_bytes(cluster, verify_topic, p))
    print(f"[kill-loop] {ROUNDS} rounds, leaders killed {leaders}, then controller {controller};"
          f" confluent-kafka acked {len(acked)} ({len(errors)} delivery errors), kafkajs acked"
          f" {len(js_acked)} ({kafkajs.failed} failed); {counts}; holdfast verify"
          f" {len(reports)} runs: {verify_totals(reports)}")
