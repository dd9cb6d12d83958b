"""Per-listener advertising (issue 11): a broker with a PLAINTEXT and an SSL
listener tells each client the address of the listener it came through, as
Kafka does, in Metadata, FindCoordinator and DescribeCluster.

The SSL listener is advertised as localhost (its certificate names it) and
the PLAINTEXT one as 127.0.0.1, and advertised.listeners lists them in the
other order than listeners, so an answer taken from the wrong listener, or
from advertised.listeners by position, shows. Before this, every client was
told the first listener's address: an SSL client was sent to the PLAINTEXT
port, where its TLS handshake failed, so nothing but the bootstrap request
worked on the second listener.

Real clients on the SSL listener (confluent-kafka, kafka-python, kcat and
kafkajs) produce and consume through a consumer group (FindCoordinator); the
PLAINTEXT listener keeps working beside it. DescribeCluster (which none of
these clients sends) is checked with a raw request on each listener.
"""
import socket
import struct
import subprocess
import uuid

import pytest
from confluent_kafka.admin import AdminClient

from conftest import Broker, free_loopback_port, holdfast_binary
from support import require_tool, run
from test_tls import (CLIENTS, Identity, ck_create_topic, pki, recv_frame, roundtrip,
                      stop_cleanly)

assert pki  # the session fixture, imported for this module's tests


class TwoListenerBroker(Broker):
    """PLAINTEXT on `port` (the first listener), SSL on `ssl_port`."""

    ssl_port = 0

    def command(self):
        cmd = super().command()
        cmd[cmd.index("--listen") + 1] = (f"PLAINTEXT://127.0.0.1:{self.port},"
                                          f"SSL://127.0.0.1:{self.ssl_port}")
        at = cmd.index("--advertise")
        del cmd[at:at + 2]  # advertised.listeners comes from the settings
        return cmd


class Via:
    """A listener's bootstrap address, for the helpers that take a broker."""

    def __init__(self, bootstrap):
        self.bootstrap = bootstrap


@pytest.fixture(scope="module")
def broker(tmp_path_factory, pki):
    root = tmp_path_factory.mktemp("two-listeners")
    plain_port, ssl_port = free_loopback_port(), free_loopback_port()
    settings = {"ssl.certificate.location": pki.server[0], "ssl.key.location": pki.server[1],
                "num.partitions": 1,
                "advertised.listeners": f"SSL://localhost:{ssl_port},"
                                        f"PLAINTEXT://127.0.0.1:{plain_port}"}
    b = TwoListenerBroker(holdfast_binary(), root / "data", plain_port, settings,
                          log_path=root / "broker.log")
    b.ssl_port = ssl_port
    b.start()
    yield b
    stop_cleanly(b)


def plain(broker):
    return Via(f"127.0.0.1:{broker.port}")


def tls(broker):
    return Via(f"localhost:{broker.ssl_port}")


PLAIN = Identity("PLAINTEXT", None)


def brokers_seen(via, identity):
    conf = {"bootstrap.servers": via.bootstrap, "socket.timeout.ms": 10000}
    if identity.protocol != "PLAINTEXT":
        conf.update(identity.librdkafka())
    md = AdminClient(conf).list_topics(timeout=15)
    return {b.id: (b.host, b.port) for b in md.brokers.values()}


def test_metadata_names_the_listener_the_client_came_through(broker, pki):
    assert brokers_seen(plain(broker), PLAIN) == {1: ("127.0.0.1", broker.port)}
    assert brokers_seen(tls(broker), Identity("SSL", pki.ca)) == {1: ("localhost", broker.ssl_port)}
    # kcat prints the brokers of its Metadata answer.
    require_tool("kcat", "kcat")
    out = run(["kcat", "-L", "-b", tls(broker).bootstrap, *Identity("SSL", pki.ca).kcat_args()],
              timeout=40).stdout
    assert f"broker 1 at localhost:{broker.ssl_port}" in out, out
    out = run(["kcat", "-L", "-b", plain(broker).bootstrap], timeout=40).stdout
    assert f"broker 1 at 127.0.0.1:{broker.port}" in out, out


@pytest.mark.parametrize("client", CLIENTS)
def test_clients_on_the_second_listener_produce_and_consume_in_a_group(broker, pki, client):
    identity = Identity("SSL", pki.ca)
    topic = f"second-{client}-{uuid.uuid4().hex[:6]}"
    ck_create_topic(tls(broker), identity, topic)
    # A group: FindCoordinator must send the client to the SSL listener too.
    roundtrip(client, tls(broker), identity, topic, group=True)


def test_the_first_listener_keeps_serving_plaintext_clients(broker):
    topic = f"first-{uuid.uuid4().hex[:6]}"
    run(["kcat", "-b", plain(broker).bootstrap, "-P", "-t", topic, "-p", "0"],
        input="a\nb\nc\n", timeout=40)
    out = run(["timeout", "40", "kcat", "-b", plain(broker).bootstrap, "-G",
               f"g-{topic}", topic, "-c", "3", "-q", "-X", "auto.offset.reset=earliest"],
              timeout=50)
    assert sorted(out.stdout.split()) == ["a", "b", "c"]


# ---- DescribeCluster (API 60, v0, flexible) over a raw connection ------------------------------

def _uvarint(data, at):
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def _compact_string(data, at):
    length, at = _uvarint(data, at)
    if length == 0:
        return None, at
    return data[at:at + length - 1].decode(), at + length - 1


def describe_cluster(sock):
    client_id = b"advertising-e2e"
    header = struct.pack(">hhih", 60, 0, 9, len(client_id)) + client_id + b"\x00"
    body = b"\x00" + b"\x00"  # include_cluster_authorized_operations=false, no tags
    frame = header + body
    sock.sendall(struct.pack(">i", len(frame)) + frame)
    data = recv_frame(sock)
    assert data is not None, "the broker closed the connection"
    assert struct.unpack(">i", data[:4])[0] == 9
    at = 4 + 1  # correlation id, header tags
    at += 4  # throttle_time_ms
    error = struct.unpack(">h", data[at:at + 2])[0]
    assert error == 0, error
    at += 2
    _, at = _compact_string(data, at)  # error_message
    _, at = _compact_string(data, at)  # cluster_id
    at += 4  # controller_id
    count, at = _uvarint(data, at)
    brokers = {}
    for _ in range(count - 1):
        node = struct.unpack(">i", data[at:at + 4])[0]
        at += 4
        host, at = _compact_string(data, at)
        port = struct.unpack(">i", data[at:at + 4])[0]
        at += 4
        _, at = _compact_string(data, at)  # rack
        _, at = _uvarint(data, at)  # tags (none)
        brokers[node] = (host, port)
    return brokers


def test_describe_cluster_names_the_listener_the_request_came_through(broker, pki):
    import ssl
    with socket.create_connection(("127.0.0.1", broker.port), timeout=20) as s:
        assert describe_cluster(s) == {1: ("127.0.0.1", broker.port)}
    context = ssl.create_default_context(cafile=str(pki.ca))
    raw = socket.create_connection(("127.0.0.1", broker.ssl_port), timeout=20)
    with context.wrap_socket(raw, server_hostname="localhost") as s:
        assert describe_cluster(s) == {1: ("localhost", broker.ssl_port)}


def test_an_advertised_listener_that_is_not_a_listener_stops_the_start(tmp_path):
    port = free_loopback_port()
    result = subprocess.run(
        [str(holdfast_binary()), "serve", "--data-dir", str(tmp_path / "data"),
         "--listen", f"PLAINTEXT://127.0.0.1:{port}",
         "--set", f"advertised.listeners=EXTERNAL://public.example:{port}"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "advertised.listeners: EXTERNAL://public.example" in output, output
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir()), \
        "the refused broker wrote to its data directory"
