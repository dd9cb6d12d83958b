"""Broker-only nodes (issue 9): 3 voters and node 4 with process.roles=broker.
Node 4 joins the metadata quorum as a non-voting (standby) Raft member, holds
the same image, hosts replicas and leads partitions, serves acks=all
produce and consume, rejoins after kill -9 without being added again, and
never counts toward the quorum.
"""
from confluent_kafka.admin import AdminClient, NewTopic
import pytest

from conftest import metadata, wait_until
from standby_kit import add_broker_only_node, membership_changes, wait_for_brokers
from test_replication import consume_all, produce

SETTINGS = {"replica.lag.time.max.ms": 3000}


@pytest.fixture
def standby_cluster(cluster_factory, tmp_path):
    c = cluster_factory(3, SETTINGS)
    wait_for_brokers(c, {1, 2, 3})
    add_broker_only_node(c, tmp_path, 4)
    wait_for_brokers(c, {1, 2, 3, 4})
    return c


def create(bootstrap, name, partitions, rf):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(name, partitions, rf)], operation_timeout=30)[name].result(60)


def partitions_on(node, topic):
    md = metadata(node.bootstrap)
    return md.topics[topic].partitions if topic in md.topics else {}


def test_node_4_holds_the_same_metadata_and_hosts_replicas(standby_cluster):
    c = standby_cluster
    node4 = c.node(4)
    assert membership_changes(c, 4) == 1, "node 4 was added once, as a standby"
    create(c.node(1).bootstrap, "spread", 4, 3)
    wait_until(lambda: len(partitions_on(node4, "spread")) == 4, 30,
               message=lambda: "'spread' in node 4's Metadata\n" + c.logs())
    seen = {i: sorted(p.replicas) for i, p in partitions_on(node4, "spread").items()}
    voter_view = {i: sorted(p.replicas) for i, p in partitions_on(c.node(1), "spread").items()}
    assert seen == voter_view
    assert any(4 in replicas for replicas in seen.values()), seen
    # It leads some of them (leaders round-robin over four brokers).
    leaders = {p.leader for p in partitions_on(node4, "spread").values()}
    assert 4 in leaders, leaders


def test_acks_all_produce_and_consume_through_node_4(standby_cluster):
    c = standby_cluster
    node4 = c.node(4)
    create(node4.bootstrap, "via-4", 4, 3)
    wait_until(lambda: all(p.leader >= 0 and len(p.isrs) == 3
                           for p in partitions_on(node4, "via-4").values())
               and len(partitions_on(node4, "via-4")) == 4, 30,
               message=lambda: "'via-4' fully in sync\n" + c.logs())
    values = [f"m-{i}" for i in range(300)]
    acked, errors = produce(node4.bootstrap, "via-4", values)
    assert not errors, errors[:3]
    assert set(acked) == set(values)
    read = consume_all(node4.bootstrap, "via-4", 4)
    assert sorted(v for _, _, v in read) == sorted(values)


def test_killed_node_4_rejoins_without_being_added_again(standby_cluster):
    c = standby_cluster
    node4 = c.node(4)
    create(c.node(1).bootstrap, "before", 4, 3)
    wait_until(lambda: len(partitions_on(node4, "before")) == 4, 30, message="'before' on node 4")
    hosted = [i for i, p in partitions_on(node4, "before").items() if 4 in p.replicas]
    assert hosted
    acked, errors = produce(c.bootstrap(), "before", [f"a-{i}" for i in range(100)])
    assert not errors and len(acked) == 100
    node4.kill()
    # Fenced, out of the ISRs; metadata changes go on without it.
    wait_until(lambda: all(4 not in p.isrs for p in partitions_on(c.node(1), "before").values()),
               60, message=lambda: "node 4 out of the ISRs\n" + c.logs())
    create(c.node(2).bootstrap, "while-down", 2, 3)
    acked2, errors2 = produce(c.bootstrap(c.nodes[:3]), "before", [f"b-{i}" for i in range(100)])
    assert not errors2 and len(acked2) == 100

    node4.start()
    wait_for_brokers(c, {1, 2, 3, 4})
    wait_until(lambda: len(partitions_on(node4, "while-down")) == 2, 30,
               message=lambda: "node 4 caught up with 'while-down'\n" + c.logs())
    wait_until(lambda: all(4 in partitions_on(c.node(1), "before")[i].isrs for i in hosted), 60,
               message=lambda: "node 4 back in the ISRs\n" + c.logs())
    # It came back from its own Raft log: nobody added or assigned it again.
    assert membership_changes(c, 4) == 1
    read = consume_all(node4.bootstrap, "before", 4)
    assert sorted(v for _, _, v in read) == sorted(list(acked) + list(acked2))


def test_node_4_never_counts_toward_the_metadata_quorum(standby_cluster):
    c = standby_cluster
    node4 = c.node(4)
    wait_until(lambda: metadata(node4.bootstrap).controller_id in (1, 2, 3), 30,
               message="node 4 knows the controller")
    # Two of three voters gone: one voter and node 4 live, which is no majority.
    survivor = c.node(3)
    for n in (c.node(1), c.node(2)):
        n.kill()
    wait_until(lambda: metadata(node4.bootstrap).controller_id == -1
               and metadata(survivor.bootstrap).controller_id == -1, 30,
               message=lambda: "no controller on nodes 3 and 4\n" + c.logs())
    assert node4.alive() and survivor.alive()
    admin = AdminClient({"bootstrap.servers": node4.bootstrap})
    future = admin.create_topics([NewTopic("no-quorum", 1, 1)], request_timeout=5,
                                 operation_timeout=5)["no-quorum"]
    with pytest.raises(Exception):
        future.result(20)
    del future, admin  # nothing left to retry the request once the quorum is back
    # Node 4 may no longer answer Metadata by now (a broker cut off from the
    # controller past its session timeout fences itself and closes Metadata
    # connections), so whether the topic was created is asked once the
    # quorum is back: the refused request must not have been committed.
    for n in (c.node(1), c.node(2)):
        n.start()
    wait_until(lambda: metadata(node4.bootstrap).controller_id in (1, 2, 3), 60,
               message=lambda: "node 4 knows the controller again\n" + c.logs())
    assert "no-quorum" not in metadata(node4.bootstrap).topics
