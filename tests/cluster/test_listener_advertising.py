"""Per-listener advertising in a cluster (issue 11, docs/security.md): every
node has an SSL listener for clients (EXTERNAL, the first in listeners) and
a PLAINTEXT one (INTERNAL) that inter.broker.listener.name gives the
brokers. Each node registers both endpoints; clients are told the brokers'
endpoints of the listener they came through, and brokers reach each other
on INTERNAL.

What this shows:
- Metadata through EXTERNAL names every broker's EXTERNAL port, through
  INTERNAL every broker's INTERNAL port (the ports differ per node and per
  listener, so a wrong answer shows).
- Replication runs over INTERNAL: a topic with min.insync.replicas=3 reaches
  a full ISR and 200 acks=all messages produced by an SSL client through
  EXTERNAL are acknowledged; an SSL consumer group reads them all back
  (FindCoordinator through EXTERNAL) and a PLAINTEXT client on INTERNAL
  reads the same.
- The log says which listener the brokers use.
- A broker without EXTERNAL (node 3 restarted with INTERNAL only) is not
  shown to EXTERNAL clients, and its partitions are LISTENER_NOT_FOUND (72)
  with no leader there, as in Kafka; INTERNAL clients still see it lead.

Negative control (run by hand, see the issue note): with client_brokers
ignoring the request's listener, the Metadata assertions fail and the SSL
clients never get past bootstrap.
"""
import socket
import ssl
import struct
import uuid

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
import pytest

from conftest import Node, metadata, partition_state, wait_registered, wait_until
from loopback_ports import free_ports
from secure_kit import Pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    pki = Pki(tmp_path_factory.mktemp("pki"))
    pki.brokers = {i: pki.make_cert(f"broker-{i}", f"/O=Holdfast/CN=broker-{i}") for i in (1, 2, 3)}
    return pki


class TwoListenerNode(Node):
    """EXTERNAL (SSL, first) on `external_port`; INTERNAL (PLAINTEXT, the
    inter-broker listener) on the node's client port, which the helpers
    bootstrap from."""

    external_port = 0

    def command(self):
        cmd = super().command()
        at = cmd.index(f"listeners={self.listener}://127.0.0.1:{self.client_port},"
                       f"CONTROLLER://127.0.0.1:{self.raft_port}")
        external = f"EXTERNAL://127.0.0.1:{self.external_port}," if self.external_port else ""
        cmd[at] = (f"listeners={external}INTERNAL://127.0.0.1:{self.client_port},"
                   f"CONTROLLER://127.0.0.1:{self.raft_port}")
        return cmd


def metadata_v7(port, ca, topic):
    """Metadata v7 for `topic` over TLS to 127.0.0.1:`port`: brokers
    {id: (host, port)} and partitions {index: (error_code, leader)}."""
    client_id = b"advertising-test"
    name = topic.encode()
    frame = (struct.pack(">hhih", 3, 7, 5, len(client_id)) + client_id
             + struct.pack(">ih", 1, len(name)) + name + b"\x00")
    context = ssl.create_default_context(cafile=str(ca))
    with context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=15),
                             server_hostname="127.0.0.1") as s:
        s.sendall(struct.pack(">i", len(frame)) + frame)
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
            chunk = s.recv(65536)
            assert chunk, "connection closed before the Metadata answer"
            data += chunk
    at = 4 + 4 + 4  # size, correlation id, throttle_time_ms

    def take(fmt):
        nonlocal at
        values = struct.unpack_from(fmt, data, at)
        at += struct.calcsize(fmt)
        return values if len(values) > 1 else values[0]

    def string():
        nonlocal at
        length = take(">h")
        if length < 0:
            return None
        text = data[at:at + length].decode()
        at += length
        return text

    brokers = {}
    for _ in range(take(">i")):
        node = take(">i")
        host = string()
        brokers[node] = (host, take(">i"))
        string()  # rack
    string()  # cluster id
    take(">i")  # controller id
    partitions = {}
    for _ in range(take(">i")):
        take(">h")  # topic error
        string()  # name
        take(">b")  # is_internal
        for _ in range(take(">i")):
            error, index, leader, _epoch = take(">hiii")
            for _ in range(3):  # replicas, isr, offline replicas
                count = take(">i")
                at += 4 * count
            partitions[index] = (error, leader)
    return {"brokers": brokers, "partitions": partitions}


def ssl_client(pki):
    return {"security.protocol": "SSL", "ssl.ca.location": pki.ca}


def test_clients_are_told_their_listener_and_brokers_replicate_on_the_internal_one(
        cluster_factory, pki):
    external = free_ports(3)

    def node_options(i):
        cert, key = pki.brokers[i]
        return {"secret_settings": {
            "ssl.certificate.location": cert, "ssl.key.location": key, "ssl.ca.location": pki.ca,
            "listener.security.protocol.map":
                "EXTERNAL:SSL,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "INTERNAL"}}

    class Nodes(TwoListenerNode):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.external_port = external[self.node_id - 1]

    cluster = cluster_factory(node_class=Nodes, node_options=node_options)
    wait_registered(cluster)  # through INTERNAL (PLAINTEXT)
    internal_of = {n.node_id: n.client_port for n in cluster.nodes}
    external_of = {n.node_id: n.external_port for n in cluster.nodes}
    ext_bootstrap = ",".join(f"127.0.0.1:{p}" for p in external)

    for n in cluster.nodes:
        via_internal = metadata(n.bootstrap).brokers
        assert {i: (b.host, b.port) for i, b in via_internal.items()} == \
            {i: ("127.0.0.1", p) for i, p in internal_of.items()}
        via_external = metadata(f"127.0.0.1:{n.external_port}", config=ssl_client(pki)).brokers
        assert {i: (b.host, b.port) for i, b in via_external.items()} == \
            {i: ("127.0.0.1", p) for i, p in external_of.items()}

    topic = "two-listeners-" + uuid.uuid4().hex[:8]
    admin = AdminClient({"bootstrap.servers": ext_bootstrap, **ssl_client(pki)})
    admin.create_topics([NewTopic(topic, 1, 3, config={"min.insync.replicas": "3"})],
                        operation_timeout=30)[topic].result(60)
    wait_until(lambda: partition_state(cluster, topic, 0)["isr"] == [1, 2, 3], 60,
               message=lambda: f"full ISR of {topic}-0\n{cluster.logs()}")

    producer = Producer({"bootstrap.servers": ext_bootstrap, **ssl_client(pki), "acks": "all",
                         "enable.idempotence": True})
    acked, errors = [], []
    for i in range(200):
        producer.produce(topic, value=f"v-{i}".encode(), partition=0,
                         on_delivery=lambda err, msg: (errors if err else acked).append(
                             err if err else msg.value().decode()))
        producer.poll(0)
    assert producer.flush(90) == 0
    assert errors == [] and len(acked) == 200

    def read_all(config, group):
        consumer = Consumer({**config, "group.id": group, "enable.auto.commit": False,
                             "auto.offset.reset": "earliest"})
        seen = []
        try:
            consumer.subscribe([topic])

            def all_back():
                msg = consumer.poll(1.0)
                if msg is not None and not msg.error():
                    seen.append(msg.value().decode())
                return set(acked) <= set(seen)

            wait_until(all_back, 90, interval=0,
                       message=lambda: f"{len(set(acked) - set(seen))} messages to come back")
            consumer.commit(asynchronous=False)
            committed = consumer.committed([TopicPartition(topic, 0)], timeout=20)
            assert committed[0].offset == 200
        finally:
            consumer.close()
        return seen

    # A group through EXTERNAL: FindCoordinator must name an EXTERNAL port.
    read_all({"bootstrap.servers": ext_bootstrap, **ssl_client(pki)}, "g-ext-" + topic)
    read_all({"bootstrap.servers": cluster.bootstrap()}, "g-int-" + topic)

    text = "\n".join(n.log_path.read_text(errors="replace") for n in cluster.nodes)
    assert "brokers reach each other on listener INTERNAL (PLAINTEXT)" in text

    # Node 3 without EXTERNAL: EXTERNAL clients cannot be sent to it.
    node3 = cluster.node(3)
    node3.stop()
    node3.external_port = 0
    node3.start()

    def reregistered():
        # Its new registration (no EXTERNAL endpoint) in force and unfenced.
        via_external = metadata(f"127.0.0.1:{external[0]}", config=ssl_client(pki)).brokers
        return set(via_external) == {1, 2} and set(metadata(cluster.bootstrap()).brokers) == {1, 2, 3}

    wait_until(reregistered, 60, message=lambda: f"node 3 registered again\n{cluster.logs()}")
    spread = "spread-" + uuid.uuid4().hex[:8]
    internal_admin = AdminClient({"bootstrap.servers": cluster.bootstrap()})
    internal_admin.create_topics([NewTopic(spread, 6, 1)], operation_timeout=30)[spread].result(60)

    def leaders_via_internal():
        parts = metadata(cluster.node(1).bootstrap).topics[spread].partitions
        return {p: parts[p].leader for p in parts}

    wait_until(lambda: len(leaders_via_internal()) == 6 and
               all(leader > 0 for leader in leaders_via_internal().values()), 60,
               message=lambda: f"leaders of {spread}: {leaders_via_internal()}")
    leaders = leaders_via_internal()
    assert 3 in leaders.values(), f"placement gave node 3 no partition of 6: {leaders}"
    external_md = metadata(f"127.0.0.1:{external[0]}", config=ssl_client(pki))
    assert set(external_md.brokers) == {1, 2}
    # librdkafka asks Metadata v4: LEADER_NOT_AVAILABLE there (v6+ has 72).
    for p, leader in leaders.items():
        seen = external_md.topics[spread].partitions[p]
        if leader == 3:
            assert seen.leader == -1 and seen.error is not None and seen.error.code() == 5, \
                (p, seen.leader, seen.error)
        else:
            assert seen.leader == leader and seen.error is None, (p, seen.leader, seen.error)
    # Metadata v7 over a raw TLS connection: LISTENER_NOT_FOUND (72).
    raw = metadata_v7(external[0], pki.ca, spread)
    assert set(raw["brokers"]) == {1, 2}
    for p, leader in leaders.items():
        expected = (72, -1) if leader == 3 else (0, leader)
        assert raw["partitions"][p] == expected, (p, raw["partitions"][p], expected)
