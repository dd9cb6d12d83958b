"""Cluster behaviour seen by real clients (issue 9): membership in Metadata,
topic creation through the controller (forwarded from other nodes),
controller failover, and fencing of a dead broker.

Partition data does not replicate yet; these tests look at metadata only.
"""
import socket
import struct

from confluent_kafka.admin import AdminClient, NewTopic

from conftest import SESSION_TIMEOUT_MS, metadata, wait_until


def create_topics_raw(bootstrap, name, partitions, replication_factor, timeout_s=30):
    """CreateTopics v0 sent to exactly this node (admin clients send it to the
    controller they find in Metadata; this one must forward). Returns the
    topic's error code."""
    host, port = bootstrap.rsplit(":", 1)
    def string(s):
        b = s.encode()
        return struct.pack(">h", len(b)) + b
    body = (struct.pack(">i", 1) + string(name) + struct.pack(">ih", partitions, replication_factor)
            + struct.pack(">i", 0) + struct.pack(">i", 0) + struct.pack(">i", 30000))
    header = struct.pack(">hhi", 19, 0, 7) + string("cluster-test")
    frame = header + body
    with socket.create_connection((host, int(port)), timeout=timeout_s) as s:
        s.sendall(struct.pack(">i", len(frame)) + frame)
        def read(n):
            data = b""
            while len(data) < n:
                chunk = s.recv(n - len(data))
                assert chunk, "connection closed"
                data += chunk
            return data
        size = struct.unpack(">i", read(4))[0]
        response = read(size)
    correlation, count = struct.unpack(">ii", response[:8])
    assert correlation == 7 and count == 1
    name_len = struct.unpack(">h", response[8:10])[0]
    assert response[10:10 + name_len].decode() == name
    return struct.unpack(">h", response[10 + name_len:12 + name_len])[0]


def controller_id(bootstrap):
    return metadata(bootstrap).controller_id


def test_every_node_reports_all_three_brokers_and_one_controller(cluster):
    controllers = set()
    for node in cluster.nodes:
        md = metadata(node.bootstrap)
        assert set(md.brokers) == {1, 2, 3}
        for broker in md.brokers.values():
            assert broker.host == "127.0.0.1"
            assert broker.port == cluster.node(broker.id).client_port
        controllers.add(md.controller_id)
    assert len(controllers) == 1 and controllers <= {1, 2, 3}


def test_create_topic_through_a_non_controller_places_three_replicas(cluster):
    controller = controller_id(cluster.nodes[0].bootstrap)
    other = next(n for n in cluster.nodes if n.node_id != controller)
    assert create_topics_raw(other.bootstrap, "placed", 6, 3) == 0
    # Answered only once the forwarding node knows the topic.
    md = metadata(other.bootstrap)
    assert "placed" in md.topics
    partitions = md.topics["placed"].partitions
    assert len(partitions) == 6
    for p in partitions.values():
        assert sorted(p.replicas) == [1, 2, 3]
        assert p.leader == p.replicas[0]
        assert sorted(p.isrs) == [1, 2, 3]
    # Leaders spread round-robin: every broker leads two of the six.
    leaders = [p.leader for p in partitions.values()]
    assert sorted(leaders) == [1, 1, 2, 2, 3, 3]
    # Every node reports the same assignment.
    for node in cluster.nodes:
        wait_until(lambda: "placed" in metadata(node.bootstrap).topics, 30,
                   message=f"'placed' on node {node.node_id}")
        seen = metadata(node.bootstrap).topics["placed"].partitions
        assert {i: p.replicas for i, p in seen.items()} == {i: p.replicas for i, p in partitions.items()}


def test_replication_factor_above_live_brokers_is_refused(cluster):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap()})
    future = admin.create_topics([NewTopic("too-many", 1, 4)])["too-many"]
    try:
        future.result(30)
        raise AssertionError("RF 4 on 3 brokers was accepted")
    except Exception as e:
        assert "INVALID_REPLICATION_FACTOR" in str(e) or "replication" in str(e).lower(), e


def test_auto_created_topic_gets_the_cluster_replication_factor(cluster):
    controller = controller_id(cluster.nodes[0].bootstrap)
    other = next(n for n in cluster.nodes if n.node_id != controller)
    from kafka import KafkaProducer
    producer = KafkaProducer(bootstrap_servers=other.bootstrap, max_block_ms=30000)
    try:
        # Metadata for an unknown topic auto-creates it (through the controller).
        assert producer.partitions_for("auto")
    finally:
        producer.close(5)
    # Each broker applies the topic's records on its own; the producer may have
    # been answered by one that already had them (metadata is eventually
    # consistent across brokers, as in Kafka).
    wait_until(lambda: "auto" in metadata(other.bootstrap).topics, 30,
               message=lambda: "topic 'auto' in the metadata\n" + cluster.logs())
    md = metadata(other.bootstrap)
    assert md.topics["auto"].partitions
    for p in md.topics["auto"].partitions.values():
        assert len(p.replicas) == 3  # default.replication.factor 3 in a cluster


def test_killing_the_controller_elects_another_that_creates_topics(cluster):
    old = controller_id(cluster.nodes[0].bootstrap)
    cluster.node(old).kill()
    survivors = cluster.live_nodes()

    def new_controller():
        ids = {controller_id(n.bootstrap) for n in survivors}
        return len(ids) == 1 and ids.pop() in {n.node_id for n in survivors}

    wait_until(new_controller, 30, message=lambda: "a new controller\n" + cluster.logs())
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap(survivors)})

    def created():
        futures = admin.create_topics([NewTopic("after-failover", 3, 2)], request_timeout=10)
        try:
            futures["after-failover"].result(15)
            return True
        except Exception as e:  # retriable while the new controller settles
            if "TOPIC_ALREADY_EXISTS" in str(e):
                return True
            raise

    # Before the dead broker's session even expires.
    wait_until(created, SESSION_TIMEOUT_MS / 1000 + 30, interval=0.5,
               message=lambda: "topic creation on the new controller\n" + cluster.logs())
    for n in survivors:
        wait_until(lambda: "after-failover" in metadata(n.bootstrap).topics, 30,
                   message=f"'after-failover' on node {n.node_id}")


def test_a_killed_broker_is_fenced_and_leaders_move_off_it(cluster):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap()})
    admin.create_topics([NewTopic("moving", 6, 3)])["moving"].result(30)
    controller = controller_id(cluster.nodes[0].bootstrap)
    victim = next(n for n in cluster.nodes if n.node_id != controller)
    before = metadata(cluster.node(controller).bootstrap).topics["moving"].partitions
    assert any(p.leader == victim.node_id for p in before.values())
    victim.kill()
    watcher = cluster.node(controller)

    def fenced_and_moved():
        md = metadata(watcher.bootstrap)
        if victim.node_id in md.brokers:
            return False
        parts = md.topics["moving"].partitions.values()
        return all(p.leader not in (victim.node_id, -1) and victim.node_id not in p.isrs
                   for p in parts)

    wait_until(fenced_and_moved, SESSION_TIMEOUT_MS / 1000 + 30,
               message=lambda: f"broker {victim.node_id} fenced and its leaders moved\n"
               + cluster.logs())
    # The replicas stay assigned: it comes back into the ISR once it returns
    # (when data replicates).
    after = metadata(watcher.bootstrap).topics["moving"].partitions
    for i, p in after.items():
        assert p.replicas == before[i].replicas
