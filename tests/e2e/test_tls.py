"""TLS (issue 11): SSL, SASL_SSL and mTLS listeners with real clients
(confluent-kafka, kafka-python, kcat, kafkajs) and the `holdfast` CLI.

Certificates are made here with the `openssl` CLI: a CA, a server certificate
for 127.0.0.1 / localhost, client certificates for mTLS, an expired client
certificate (signed by the trusted CA with a not-after before its not-before:
`openssl x509 -days -1`), and a CA the broker does not trust with a client
certificate of its own. Every negative is followed by a good client that the
broker still serves. A missing client fails the test, it never skips.
"""
import json
import socket
import ssl
import struct
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker, cli_binary, free_loopback_port, holdfast_binary, wait_until
from support import JS_DIR, metric, poll_values, require_kafkajs, require_tool, run

USER, PASSWORD = "alice", "correct horse battery staple"
ALICE_DN = "CN=alice,OU=eng,O=Acme"
BOB_DN = "CN=bob,O=Acme"
ADMIN_DN = "CN=admin,O=Acme"
CLIENTS = ["confluent-kafka", "kafka-python", "kcat", "kafkajs"]


# ---- certificates -------------------------------------------------------------------------------

def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


class Pki:
    def __init__(self, root):
        self.root = root
        self.ca = self.make_ca("ca", "/CN=Holdfast test CA")
        self.rogue_ca = self.make_ca("rogue-ca", "/CN=Somebody else's CA")
        self.server = self.make_cert("server", "/CN=localhost", "ca",
                                     san="subjectAltName=IP:127.0.0.1,DNS:localhost")
        self.alice = self.make_cert("alice", "/O=Acme/OU=eng/CN=alice", "ca")
        self.bob = self.make_cert("bob", "/O=Acme/CN=bob", "ca")
        self.admin = self.make_cert("admin", "/O=Acme/CN=admin", "ca")
        self.expired = self.make_cert("expired", "/O=Acme/OU=eng/CN=alice", "ca", days=-1)
        self.rogue = self.make_cert("rogue", "/O=Acme/OU=eng/CN=alice", "rogue-ca")

    def make_ca(self, name, subject):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.pem", "-subj", subject, "-days", "30",
                cwd=self.root)
        return self.root / f"{name}.pem"

    def make_cert(self, name, subject, ca, days=30, san=None):
        """(certificate, key, both in one file) paths."""
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=self.root)
        extra = []
        if san:
            (self.root / f"{name}.ext").write_text(san + "\n")
            extra = ["-extfile", f"{name}.ext"]
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", str(days), *extra, cwd=self.root)
        both = self.root / f"{name}-keystore.pem"
        both.write_text((self.root / f"{name}.key").read_text() +
                        (self.root / f"{name}.pem").read_text())
        return self.root / f"{name}.pem", self.root / f"{name}.key", both


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    require_tool("openssl", "openssl")
    return Pki(tmp_path_factory.mktemp("pki"))


# ---- brokers ------------------------------------------------------------------------------------

class TlsBroker(Broker):
    """A broker whose only client listener has `protocol`."""

    protocol = "SSL"

    def command(self):
        cmd = super().command()
        cmd[cmd.index("--listen") + 1] = f"{self.protocol}://127.0.0.1:{self.port}"
        return cmd


def user_cli(*args, input=None):
    return subprocess.run([str(cli_binary()), "user", *args], input=input, capture_output=True,
                          text=True, timeout=60, check=True)


def start_tls_broker(root, pki, protocol, settings=None, users=()):
    data_dir = root / "data"
    for user, password in users:
        user_cli("create", user, "--data-dir", str(data_dir), "--mechanism", "SCRAM-SHA-512",
                 input=password + "\n")
    admin = f"127.0.0.1:{free_loopback_port()}"
    base = {"ssl.certificate.location": pki.server[0], "ssl.key.location": pki.server[1],
            "num.partitions": 1, "admin.listener": admin}
    base.update(settings or {})
    broker = TlsBroker(holdfast_binary(), data_dir, free_loopback_port(), base,
                       log_path=root / "broker.log")
    broker.protocol = protocol
    broker.admin = admin
    broker.start()
    return broker


def stop_cleanly(broker):
    alive = broker.alive()
    code, clean = broker.stop()
    print(broker.log_tail(30))
    assert alive and clean and code == 0, "the TLS broker died or did not stop cleanly"


@pytest.fixture(scope="module")
def ssl_broker(tmp_path_factory, pki):
    broker = start_tls_broker(tmp_path_factory.mktemp("ssl"), pki, "SSL")
    yield broker
    stop_cleanly(broker)


@pytest.fixture(scope="module")
def sasl_ssl_broker(tmp_path_factory, pki):
    broker = start_tls_broker(tmp_path_factory.mktemp("sasl-ssl"), pki, "SASL_SSL",
                              {"sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512"},
                              users=[(USER, PASSWORD)])
    yield broker
    stop_cleanly(broker)


@pytest.fixture(scope="module")
def mtls_broker(tmp_path_factory, pki):
    """ssl.client.auth=required with the authoriser on; the admin certificate's
    principal is a super user, nobody else has any ACL yet."""
    broker = start_tls_broker(tmp_path_factory.mktemp("mtls"), pki, "SSL",
                              {"ssl.client.auth": "required", "ssl.ca.location": pki.ca,
                               "authorizer.enabled": "true", "super.users": f"User:{ADMIN_DN}"})
    yield broker
    stop_cleanly(broker)


# ---- client configurations ----------------------------------------------------------------------

class Identity:
    """How a client connects: the protocol, the CA it trusts, an optional
    client certificate, optional SCRAM credentials."""

    def __init__(self, protocol, ca, cert=None, user=None, password=None):
        self.protocol, self.ca, self.cert = protocol, ca, cert
        self.user, self.password = user, password

    def librdkafka(self):
        conf = {"security.protocol": self.protocol, "ssl.ca.location": str(self.ca)}
        if self.cert:
            conf.update({"ssl.certificate.location": str(self.cert[0]),
                         "ssl.key.location": str(self.cert[1])})
        if self.user:
            conf.update({"sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": self.user,
                         "sasl.password": self.password})
        return conf

    def kcat_args(self):
        return [arg for k, v in self.librdkafka().items() for arg in ("-X", f"{k}={v}")]

    def kafka_python(self):
        conf = dict(security_protocol=self.protocol, ssl_cafile=str(self.ca),
                    ssl_check_hostname=True)
        if self.cert:
            conf.update(ssl_certfile=str(self.cert[0]), ssl_keyfile=str(self.cert[1]))
        if self.user:
            conf.update(sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=self.user,
                        sasl_plain_password=self.password)
        return conf

    def kafkajs(self):
        command = {"ssl": {"ca": str(self.ca)}}
        if self.cert:
            command["ssl"].update(cert=str(self.cert[0]), key=str(self.cert[1]))
        if self.user:
            command["sasl"] = {"mechanism": "scram-sha-512", "username": self.user,
                               "password": self.password}
        return command


def ck(broker, identity, **extra):
    conf = {"bootstrap.servers": broker.bootstrap, **identity.librdkafka()}
    conf.update(extra)
    return conf


def ck_create_topic(broker, identity, topic, partitions=1):
    admin = AdminClient(ck(broker, identity))
    for future in admin.create_topics([NewTopic(topic, num_partitions=partitions)]).values():
        future.result(timeout=20)


def ck_works(broker, identity):
    """True if a confluent-kafka client gets Metadata through `identity`."""
    admin = AdminClient(ck(broker, identity))
    try:
        admin.list_topics(timeout=6)
        return True
    except KafkaException:
        return False


def ck_end_offset(broker, identity, topic):
    consumer = Consumer(ck(broker, identity, **{"group.id": "watermarks"}))
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        consumer.close()


def ck_produce_errors(broker, identity, topic, values):
    producer = Producer(ck(broker, identity, **{"message.timeout.ms": 15000, "retries": 0}))
    errors = []
    for value in values:
        producer.produce(topic, value=value.encode(),
                         on_delivery=lambda err, msg: errors.append(err.code()) if err else None)
    assert producer.flush(30) == 0
    return errors


def roundtrip(client, broker, identity, topic, count=10, group=True):
    """Produces `count` messages with `client` and reads them back (through a
    consumer group when `group`); asserts what came back."""
    values = [f"{client}-{i}" for i in range(count)]
    if client == "confluent-kafka":
        assert ck_produce_errors(broker, identity, topic, values) == []
        consumer = Consumer(ck(broker, identity, **{"group.id": f"g-{topic}",
                                                    "auto.offset.reset": "earliest"}))
        consumer.subscribe([topic])
        got = poll_values(consumer, count)
    elif client == "kafka-python":
        from kafka import KafkaConsumer, KafkaProducer
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap, **identity.kafka_python())
        for value in values:
            producer.send(topic, value.encode()).get(timeout=20)
        producer.close()
        consumer = KafkaConsumer(topic, group_id=f"g-{topic}", auto_offset_reset="earliest",
                                 consumer_timeout_ms=20000, bootstrap_servers=broker.bootstrap,
                                 **identity.kafka_python())
        got = []
        for msg in consumer:
            got.append(msg.value.decode())
            if len(got) == count:
                break
        consumer.close()
    elif client == "kcat":
        require_tool("kcat", "kcat")
        args = identity.kcat_args()
        run(["kcat", "-b", broker.bootstrap, *args, "-P", "-t", topic, "-p", "0"],
            input="\n".join(values) + "\n")
        if group:
            out = run(["timeout", "40", "kcat", "-b", broker.bootstrap, *args, "-G", f"g-{topic}",
                       topic, "-c", str(count), "-q", "-X", "auto.offset.reset=earliest"],
                      timeout=50)
        else:
            out = run(["kcat", "-b", broker.bootstrap, *args, "-C", "-t", topic, "-o",
                       "beginning", "-e", "-q"], timeout=40)
        got = out.stdout.split()
    else:
        kafkajs(broker, identity, {"action": "produce", "topic": topic, "acks": -1,
                                   "compression": "none",
                                   "batches": [[{"value": v} for v in values]]})
        out = kafkajs(broker, identity, {"action": "consume", "topic": topic,
                                         "groupId": f"g-{topic}", "count": count})
        got = [m["value"] for m in out["messages"]]
    assert sorted(got) == sorted(values), client


def kafkajs(broker, identity, command, check=True):
    require_kafkajs()
    command.update(brokers=[broker.bootstrap], deadlineMs=60000, **identity.kafkajs())
    result = run(["node", str(JS_DIR / "client.js"), json.dumps(command)], timeout=90, check=False)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, f"kafkajs printed nothing: {result.stderr[-2000:]}"
    out = json.loads(lines[-1])
    if check:
        assert "error" not in out, f"kafkajs {command['action']}: {out}\n{result.stderr[-2000:]}"
    return out


# ---- SSL ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("client", CLIENTS)
def test_ssl_produce_and_consume(ssl_broker, pki, client):
    identity = Identity("SSL", pki.ca)
    topic = f"ssl-{client}-{uuid.uuid4().hex[:6]}"
    ck_create_topic(ssl_broker, identity, topic)
    roundtrip(client, ssl_broker, identity, topic, group=False)


# ---- SASL_SSL -----------------------------------------------------------------------------------

@pytest.mark.parametrize("client", CLIENTS)
def test_sasl_ssl_scram_produce_consume_and_group(sasl_ssl_broker, pki, client):
    identity = Identity("SASL_SSL", pki.ca, user=USER, password=PASSWORD)
    topic = f"sasl-ssl-{client}-{uuid.uuid4().hex[:6]}"
    ck_create_topic(sasl_ssl_broker, identity, topic)
    roundtrip(client, sasl_ssl_broker, identity, topic, group=True)


def test_sasl_ssl_admin_creates_a_topic(sasl_ssl_broker, pki):
    from kafka.admin import KafkaAdminClient, NewTopic as KpNewTopic
    identity = Identity("SASL_SSL", pki.ca, user=USER, password=PASSWORD)
    topic = f"admin-{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(bootstrap_servers=sasl_ssl_broker.bootstrap,
                             **identity.kafka_python())
    try:
        admin.create_topics([KpNewTopic(topic, num_partitions=3, replication_factor=1)])
    finally:
        admin.close()
    metadata = AdminClient(ck(sasl_ssl_broker, identity)).list_topics(timeout=10)
    assert len(metadata.topics[topic].partitions) == 3


# ---- mTLS ---------------------------------------------------------------------------------------

def cli(*args, timeout=60):
    return subprocess.run([str(cli_binary()), *args], capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def mtls_topic(mtls_broker, pki, tmp_path_factory):
    """A topic on the mTLS broker, and ACLs that let alice's certificate write,
    read and use groups, added with `holdfast acl add --command-config` and a
    Kafka tools' properties file (PEM keystore and truststore) for the admin
    certificate; bob's certificate may only Describe the topic."""
    topic = f"mtls-{uuid.uuid4().hex[:6]}"
    admin = Identity("SSL", pki.ca, cert=pki.admin)
    ck_create_topic(mtls_broker, admin, topic)
    properties = tmp_path_factory.mktemp("mtls-cli") / "admin.properties"
    properties.write_text(
        "security.protocol=SSL\n"
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={pki.ca}\n"
        "ssl.keystore.type=PEM\n"
        f"ssl.keystore.location={pki.admin[2]}\n")
    common = ["--brokers", mtls_broker.bootstrap, "--timeout-ms", "8000"]
    without = cli("acl", "add", "--allow-principal", f"User:{ALICE_DN}", "--operation", "Write",
                  "--topic", topic, *common)
    assert without.returncode != 0  # no certificate: the handshake fails, nothing is added
    grants = [(ALICE_DN, "All", ["--topic", topic]), (ALICE_DN, "All", ["--group", "*"]),
              (BOB_DN, "Describe", ["--topic", topic])]  # bob sees the topic, may not write
    for principal, operation, resource in grants:
        added = cli("acl", "add", "--allow-principal", f"User:{principal}", "--operation",
                    operation, *resource, *common, "--command-config", str(properties))
        assert added.returncode == 0, added.stderr
    return topic


@pytest.mark.parametrize("client", CLIENTS)
def test_mtls_certificate_principal_is_allowed_by_its_acl(mtls_broker, mtls_topic, pki, client):
    alice = Identity("SSL", pki.ca, cert=pki.alice)
    before = ck_end_offset(mtls_broker, Identity("SSL", pki.ca, cert=pki.admin), mtls_topic)
    topic_values = 10
    # Each client reads from its own group; earlier clients' messages are
    # there too, so the consumer checks only its own (below) by reading all.
    values = [f"{client}-{i}" for i in range(topic_values)]
    if client == "confluent-kafka":
        assert ck_produce_errors(mtls_broker, alice, mtls_topic, values) == []
    elif client == "kafka-python":
        from kafka import KafkaProducer
        producer = KafkaProducer(bootstrap_servers=mtls_broker.bootstrap, **alice.kafka_python())
        for value in values:
            producer.send(mtls_topic, value.encode()).get(timeout=20)
        producer.close()
    elif client == "kcat":
        require_tool("kcat", "kcat")
        run(["kcat", "-b", mtls_broker.bootstrap, *alice.kcat_args(), "-P", "-t", mtls_topic,
             "-p", "0"], input="\n".join(values) + "\n")
    else:
        kafkajs(mtls_broker, alice, {"action": "produce", "topic": mtls_topic, "acks": -1,
                                     "compression": "none",
                                     "batches": [[{"value": v} for v in values]]})
    after = ck_end_offset(mtls_broker, Identity("SSL", pki.ca, cert=pki.admin), mtls_topic)
    assert after == before + topic_values
    # Alice reads everything back through a group (Read on the topic and group).
    consumer = Consumer(ck(mtls_broker, alice, **{"group.id": f"g-{client}-{uuid.uuid4().hex[:4]}",
                                                  "auto.offset.reset": "earliest"}))
    consumer.subscribe([mtls_topic])
    got = []
    deadline = time.monotonic() + 40
    while len(got) < after and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got.append(msg.value().decode())
    consumer.close()
    assert set(values) <= set(got)


@pytest.mark.parametrize("client", CLIENTS)
def test_mtls_certificate_without_acl_is_refused(mtls_broker, mtls_topic, pki, client):
    bob = Identity("SSL", pki.ca, cert=pki.bob)
    admin = Identity("SSL", pki.ca, cert=pki.admin)
    before = ck_end_offset(mtls_broker, admin, mtls_topic)
    if client == "confluent-kafka":
        errors = ck_produce_errors(mtls_broker, bob, mtls_topic, ["bob-1", "bob-2"])
        assert errors and set(errors) == {KafkaError.TOPIC_AUTHORIZATION_FAILED}, errors
    elif client == "kafka-python":
        from kafka import KafkaProducer
        from kafka.errors import TopicAuthorizationFailedError
        producer = KafkaProducer(bootstrap_servers=mtls_broker.bootstrap, retries=0,
                                 max_block_ms=15000, **bob.kafka_python())
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                producer.send(mtls_topic, b"bob").get(timeout=20)
        finally:
            producer.close(timeout=5)
    elif client == "kcat":
        require_tool("kcat", "kcat")
        out = run(["kcat", "-b", mtls_broker.bootstrap, *bob.kcat_args(), "-P", "-t", mtls_topic,
                   "-p", "0"], input="bob\n", check=False)
        assert out.returncode != 0 and "authoriz" in out.stderr.lower(), out.stderr
    else:
        out = kafkajs(mtls_broker, bob, {"action": "produce", "topic": mtls_topic, "acks": -1,
                                         "compression": "none", "batches": [[{"value": "bob"}]]},
                      check=False)
        assert "error" in out and "authoriz" in json.dumps(out).lower(), out
    assert ck_end_offset(mtls_broker, admin, mtls_topic) == before  # nothing of bob's appended
    # The good client still works (alice's certificate, with its ACL).
    assert ck_produce_errors(mtls_broker, Identity("SSL", pki.ca, cert=pki.alice), mtls_topic,
                             ["after-bob"]) == []


@pytest.mark.parametrize("case", ["no certificate", "untrusted CA", "expired"])
def test_mtls_refuses_bad_client_certificates(mtls_broker, mtls_topic, pki, case):
    cert = {"no certificate": None, "untrusted CA": pki.rogue, "expired": pki.expired}[case]
    before = metric(mtls_broker.admin, "holdfast_connections_closed_total", reason="tls_handshake")
    assert not ck_works(mtls_broker, Identity("SSL", pki.ca, cert=cert))
    from kafka import KafkaProducer
    from kafka.errors import KafkaError as KpError
    with pytest.raises((KpError, ssl.SSLError, OSError)):
        KafkaProducer(bootstrap_servers=mtls_broker.bootstrap, max_block_ms=5000,
                      **Identity("SSL", pki.ca, cert=cert).kafka_python())
    assert metric(mtls_broker.admin, "holdfast_connections_closed_total",
                  reason="tls_handshake") > before
    log = mtls_broker.log_path.read_text()
    assert "TLS handshake failed" in log
    if case == "expired":
        assert "certificate has expired" in log
    assert ck_produce_errors(mtls_broker, Identity("SSL", pki.ca, cert=pki.alice), mtls_topic,
                             [f"after-{case}"]) == []


# ---- negatives on SSL and SASL_SSL --------------------------------------------------------------

def test_plaintext_client_on_the_tls_port_is_closed(ssl_broker, pki):
    before = metric(ssl_broker.admin, "holdfast_connections_closed_total", reason="tls_handshake")
    host, port = ssl_broker.bootstrap.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=20) as s:
        # ApiVersions v0, in the clear.
        frame = struct.pack(">hhih", 18, 0, 1, 3) + b"raw"
        s.sendall(struct.pack(">i", len(frame)) + frame)
        received = b""
        while True:  # at most a TLS alert, then the close
            chunk = s.recv(4096)
            if not chunk:
                break
            received += chunk
            assert len(received) < 1024
        assert not received or received[0] == 0x15  # a TLS alert record, not a Kafka answer
    assert not ck_works(ssl_broker, Identity("PLAINTEXT", pki.ca))
    wait_until(lambda: metric(ssl_broker.admin, "holdfast_connections_closed_total",
                              reason="tls_handshake") > before, 10, message="tls_handshake count")
    assert "TLS handshake failed" in ssl_broker.log_path.read_text()
    assert ck_works(ssl_broker, Identity("SSL", pki.ca))  # the broker serves others


def test_client_that_does_not_trust_the_server_ca_fails(ssl_broker, pki):
    distrust = Identity("SSL", pki.rogue_ca)
    assert not ck_works(ssl_broker, distrust)
    out = run(["kcat", "-b", ssl_broker.bootstrap, *distrust.kcat_args(), "-L", "-m", "5"],
              check=False, timeout=30)
    assert out.returncode != 0
    assert ck_works(ssl_broker, Identity("SSL", pki.ca))


def tls_connect(broker, pki):
    host, port = broker.bootstrap.rsplit(":", 1)
    context = ssl.create_default_context(cafile=str(pki.ca))
    raw = socket.create_connection((host, int(port)), timeout=20)
    return context.wrap_socket(raw, server_hostname=host)


def kstring(text):
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def request(s, api_key, version, body, correlation=1):
    frame = struct.pack(">hhi", api_key, version, correlation) + kstring("tls-e2e") + body
    s.sendall(struct.pack(">i", len(frame)) + frame)


def recv_frame(s):
    data = b""
    while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
        chunk = s.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data[4:]


def test_pipelined_requests_over_tls_are_answered_in_order(ssl_broker, pki):
    """Many requests sent at once: their responses (written together, over
    TLS gathered into one write) come back whole and in request order."""
    count = 200
    with tls_connect(ssl_broker, pki) as s:
        s.sendall(b"".join(
            struct.pack(">i", 2 + 2 + 4 + 9) + struct.pack(">hhi", 18, 0, i) + kstring("tls-e2e")
            for i in range(count)))  # ApiVersions v0 x count
        data, correlations = b"", []
        while len(correlations) < count:
            chunk = s.recv(65536)
            assert chunk, f"closed after {len(correlations)} responses"
            data += chunk
            while len(data) >= 4 and len(data) >= 4 + struct.unpack(">i", data[:4])[0]:
                size = struct.unpack(">i", data[:4])[0]
                correlation, error = struct.unpack(">ih", data[4:10])
                assert error == 0
                correlations.append(correlation)
                data = data[4 + size:]
    assert correlations == list(range(count))


def test_wrong_scram_password_over_sasl_ssl_fails(sasl_ssl_broker, pki):
    wrong = Identity("SASL_SSL", pki.ca, user=USER, password="not-the-password-42")
    assert not ck_works(sasl_ssl_broker, wrong)
    # The error code itself, over TLS: SaslHandshake v1 + SaslAuthenticate (PLAIN).
    with tls_connect(sasl_ssl_broker, pki) as s:
        request(s, 17, 1, kstring("PLAIN"))
        body = recv_frame(s)
        assert body is not None and struct.unpack(">h", body[4:6])[0] == 0
        token = b"\0" + USER.encode() + b"\0not-the-password-42"
        request(s, 36, 0, struct.pack(">i", len(token)) + token, correlation=2)
        body = recv_frame(s)
        assert body is not None and struct.unpack(">h", body[4:6])[0] == 58  # SASL_AUTHENTICATION_FAILED
    log = sasl_ssl_broker.log_path.read_text()
    assert "SASL authentication failed" in log and "not-the-password-42" not in log
    assert ck_works(sasl_ssl_broker, Identity("SASL_SSL", pki.ca, user=USER, password=PASSWORD))


def test_silent_tcp_client_is_closed_by_connections_max_idle_ms(tmp_path, pki):
    broker = start_tls_broker(tmp_path, pki, "SSL", {"connections.max.idle.ms": 1500})
    try:
        host, port = broker.bootstrap.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=30) as s:
            assert s.recv(4096) == b""  # closed by the broker, no handshake ever started
        assert metric(broker.admin, "holdfast_connections_closed_total", reason="idle") >= 1
        assert ck_works(broker, Identity("SSL", pki.ca))
    finally:
        stop_cleanly(broker)


# ---- start-up and the CLI -----------------------------------------------------------------------

def serve(args, timeout=30):
    return subprocess.run([str(holdfast_binary()), "serve", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_startup_refuses_a_bad_certificate_or_key_naming_the_setting(tmp_path, pki):
    port = free_loopback_port()
    base = ["--set", f"listeners=SSL://127.0.0.1:{port}"]
    cases = [
        ([], "ssl.certificate.location"),
        (["--set", f"ssl.certificate.location={tmp_path / 'missing.pem'}",
          "--set", f"ssl.key.location={pki.server[1]}"], "ssl.certificate.location"),
        (["--set", f"ssl.certificate.location={pki.server[0]}",
          "--set", f"ssl.key.location={pki.alice[1]}"], "ssl.key.location"),
    ]
    for i, (extra, setting) in enumerate(cases):
        out = serve(["--data-dir", str(tmp_path / f"d{i}"), *base, *extra])
        text = out.stdout + out.stderr
        assert out.returncode != 0 and setting in text, text


def test_a_cluster_node_with_a_tls_listener_needs_a_ca(tmp_path, pki):
    """In a cluster the brokers reach each other over the (first) TLS
    listener and verify each other's certificates: without ssl.ca.location a
    node refuses to start, naming it (tests/cluster/test_interbroker_security.py
    runs the clusters that have one)."""
    ports = [free_loopback_port() for _ in range(3)]
    out = serve(["--data-dir", str(tmp_path / "d"), "--node-id", "1",
                 "--set", f"listeners=SSL://127.0.0.1:{ports[0]},CONTROLLER://127.0.0.1:{ports[1]}",
                 "--set", f"controller.quorum.voters=1@127.0.0.1:{ports[1]},2@127.0.0.1:{ports[2]}",
                 "--set", "holdfast.cluster.experimental=true",
                 "--set", f"ssl.certificate.location={pki.server[0]}",
                 "--set", f"ssl.key.location={pki.server[1]}"])
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "ssl.ca.location is not set" in text, text


def test_cli_command_config_over_sasl_ssl(sasl_ssl_broker, pki, tmp_path):
    properties = tmp_path / "client.properties"
    properties.write_text(
        "security.protocol=SASL_SSL\n"
        "ssl.truststore.type=PEM\n"
        f"ssl.truststore.location={pki.ca}\n"
        "sasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{USER}" password="{PASSWORD}";\n')
    topic = f"cli-{uuid.uuid4().hex[:6]}"
    common = ["--brokers", sasl_ssl_broker.bootstrap, "--command-config", str(properties)]
    created = cli("topic", "create", topic, "--partitions", "1", *common)
    assert created.returncode == 0, created.stderr
    produced = subprocess.run([str(cli_binary()), "produce", topic, *common], input="one\ntwo\n",
                              capture_output=True, text=True, timeout=60)
    assert produced.returncode == 0, produced.stderr
    identity = Identity("SASL_SSL", pki.ca, user=USER, password=PASSWORD)
    assert ck_end_offset(sasl_ssl_broker, identity, topic) == 2
