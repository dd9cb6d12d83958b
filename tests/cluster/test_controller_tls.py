"""Mutual TLS for the Raft traffic between controllers
(listener.security.protocol.map=...,CONTROLLER:SSL; docs/security.md,
src/metadata/raft_tls_transport.h).

Three nodes with CONTROLLER:SSL form the quorum, register and carry 200
acks=all messages. A plain TCP peer sending bytes like raft's own TCP
handshake, a TLS peer without a certificate and one with a certificate from
another CA are each closed (and logged once, naming the peer), and the quorum
keeps working. On the wire: every Raft link runs through a recording proxy
(netsplit.py's link proxies), and a topic named with a unique marker never
shows up in what they recorded; the same cluster with CONTROLLER:PLAINTEXT
shows the marker (the negative control, run every time). Start-up refuses
CONTROLLER:SASL_SSL and a CONTROLLER:SSL node without ssl.ca.location,
naming the setting.
"""
import socket
import ssl
import struct
import subprocess
import threading
import uuid

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Node, free_ports, holdfast_binary, wait_registered, wait_until
from netsplit import proxied_cluster
from secure_kit import Pki
from test_interbroker_security import consume_all, create_topic, produce

PROTOCOL_MAP = "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    pki = Pki(tmp_path_factory.mktemp("pki"))
    pki.nodes = {i: pki.make_cert(f"controller-{i}", f"/O=Holdfast/CN=controller-{i}")
                 for i in (1, 2, 3)}
    pki.rogue = pki.make_cert("rogue", "/CN=rogue", ca="rogue-ca")
    return pki


def tls_settings(pki, node_id):
    cert, key = pki.nodes[node_id]
    return {"listener.security.protocol.map": PROTOCOL_MAP, "ssl.certificate.location": cert,
            "ssl.key.location": key, "ssl.ca.location": pki.ca}


def raft_tls_node(pki, node_id):
    return {"secret_settings": tls_settings(pki, node_id)}


def raft_handshake_like_bytes():
    """What raft's own TCP transport sends first (protocol 1, server id 9,
    address length, address), then a RequestVote-like message preamble."""
    address = b"127.0.0.1:9".ljust(16, b"\0")
    return (struct.pack("<QQQ", 1, 9, len(address)) + address
            + struct.pack("<QQ", 2, 40) + bytes(40))


def closed_by_peer(sock, timeout=15):
    """Reads until the peer closes (True) or `timeout` seconds pass (False)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
        return True
    except (ConnectionResetError, ssl.SSLError):
        return True
    except socket.timeout:
        return False


def tls_probe_refused(port, context):
    """A TLS peer: True when the controller ends the connection, during the
    handshake or (TLS 1.3 checks the client certificate after the client's
    side of the handshake) on the first read after it."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=15)
    try:
        tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
    except (ssl.SSLError, ConnectionError):
        raw.close()
        return True
    with tls:
        try:
            tls.sendall(b"HFRAFT\0\1" + struct.pack(">QH", 9, 11) + b"127.0.0.1:9")
        except (ssl.SSLError, ConnectionError):
            return True
        return closed_by_peer(tls)


def client_context(pki, cert=None):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(pki.ca)
    context.check_hostname = False  # the probe is refused either way; this keeps it about us
    context.verify_mode = ssl.CERT_NONE
    if cert:
        context.load_cert_chain(*cert)
    return context


def logs_text(cluster):
    return "\n".join(n.log_path.read_text(errors="replace") for n in cluster.nodes)


def test_controllers_over_mutual_tls_serve_and_close_untrusted_peers(cluster_factory, pki):
    cluster = cluster_factory(node_options=lambda i: raft_tls_node(pki, i))
    wait_registered(cluster)
    assert "Raft traffic over mutual TLS" in logs_text(cluster), cluster.logs()

    topic = "raft-tls-" + uuid.uuid4().hex[:8]
    create_topic(cluster, topic, min_isr=2)
    producer_config = {"bootstrap.servers": cluster.bootstrap(), "acks": "all",
                       "enable.idempotence": True, "message.timeout.ms": 60000}
    from confluent_kafka import Producer
    acked, errors = produce(Producer(producer_config), topic, [f"m-{i}" for i in range(200)])
    assert errors == [] and len(acked) == 200
    assert set(acked) <= set(consume_all(cluster, topic, set(acked)))

    port = cluster.node(1).raft_port
    # (a) plain TCP with raft's own handshake bytes
    with socket.create_connection(("127.0.0.1", port), timeout=15) as plain:
        plain.sendall(raft_handshake_like_bytes())
        assert closed_by_peer(plain), "a plain TCP peer was kept open"
    # (b) TLS without a client certificate; (c) one from another CA
    assert tls_probe_refused(port, client_context(pki)), "a peer without a certificate"
    assert tls_probe_refused(port, client_context(pki, pki.rogue)), "a peer from another CA"
    # Control for the probes: a certificate from the cluster's CA is kept open.
    trusted = client_context(pki, pki.nodes[2])
    with socket.create_connection(("127.0.0.1", port), timeout=15) as raw:
        with trusted.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"HFRAFT\0\1" + struct.pack(">QH", 9, 11) + b"127.0.0.1:9")
            assert not closed_by_peer(tls, timeout=2), "a trusted peer was closed"

    node1_log = cluster.node(1).log_path.read_text(errors="replace")
    refusals = [line for line in node1_log.splitlines()
                if "closed a Raft connection from 127.0.0.1:" in line]
    # One warning per peer host per 30 s: the first probe's; the others counted.
    assert len(refusals) == 1, refusals
    assert "TLS handshake" in refusals[0], refusals

    # The quorum still works: a new topic is created and replicated.
    second = topic + "-after"
    create_topic(cluster, second, min_isr=2)
    acked, errors = produce(Producer(producer_config), second, ["after-probes"])
    assert errors == [] and acked == ["after-probes"]


@pytest.mark.parametrize("protocol", ["SSL", "PLAINTEXT"])
def test_raft_bytes_on_the_wire_are_not_clear_text(tmp_path, pki, protocol):
    """Every Raft link runs through a recording proxy; a topic whose name is
    a unique marker is created (its TopicCreated record is a Raft entry sent
    by the leader to both followers). With SSL the marker never crosses a
    link; with PLAINTEXT (the negative control) it does."""
    recorded = bytearray()
    lock = threading.Lock()

    def tap(data):
        with lock:
            recorded.extend(data)

    cert, key = pki.nodes[1]  # one certificate for all: the proxies are 127.0.0.1 too
    settings = {"listener.security.protocol.map": f"PLAINTEXT:PLAINTEXT,CONTROLLER:{protocol}",
                "ssl.certificate.location": cert, "ssl.key.location": key,
                "ssl.ca.location": pki.ca}
    cluster, net = proxied_cluster(tmp_path, settings, raft_tap=tap)
    try:
        wait_registered(cluster)
        marker = "marker" + uuid.uuid4().hex
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap()})
        admin.create_topics([NewTopic(marker, 1, 3)], operation_timeout=30)[marker].result(60)
        # Every node has applied the record (so its bytes went over the links).
        for n in cluster.nodes:
            wait_until(lambda: marker in AdminClient(
                {"bootstrap.servers": n.bootstrap}).list_topics(timeout=5).topics, 30,
                message=f"topic {marker} on node {n.node_id}")
        with lock:
            seen = bytes(recorded)
        assert len(seen) > 1000, f"only {len(seen)} bytes crossed the Raft links"
        if protocol == "SSL":
            assert marker.encode() not in seen
        else:
            assert marker.encode() in seen, "negative control: PLAINTEXT should show the marker"
    finally:
        for n in cluster.nodes:
            n.stop()
        net.close()


@pytest.mark.parametrize("settings, named", [
    ({"listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_SSL"},
     "listener.security.protocol.map: CONTROLLER:SASL_SSL"),
    ({"listener.security.protocol.map": PROTOCOL_MAP}, "ssl.certificate.location"),
    ("no-ca", "ssl.ca.location"),
])
def test_a_controller_with_an_unusable_raft_protocol_does_not_start(tmp_path, pki, settings,
                                                                      named):
    if settings == "no-ca":
        settings = tls_settings(pki, 1)
        del settings["ssl.ca.location"]
    client_port, raft_port, other, another = free_ports(4)
    node = Node(holdfast_binary(), 1, tmp_path / "node-1", client_port, raft_port,
                f"1@127.0.0.1:{raft_port},2@127.0.0.1:{other},3@127.0.0.1:{another}", settings)
    node.data_dir.mkdir(parents=True)
    run = subprocess.run(node.command(), capture_output=True, text=True, timeout=30)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    assert named in output, output
