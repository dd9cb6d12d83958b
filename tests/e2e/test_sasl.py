"""SASL (issue 11) on a SASL_PLAINTEXT listener: a user created offline with
`holdfast user create --data-dir` before the broker's first start; produce,
consume, a consumer group and an admin call with SCRAM-SHA-512 and PLAIN from
confluent-kafka, kafka-python, kcat and kafkajs; the negatives (wrong password,
unknown user, unknown mechanism, a request before authentication) each next to
the good path that shows it could fail, and the broker keeps serving a good
client throughout. A missing client fails the test, it never skips.
"""
import json
import socket
import struct
import subprocess
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker, cli_binary, free_loopback_port, holdfast_binary
from support import JS_DIR, poll_values, require_kafkajs, require_tool, run

USER, PASSWORD = "alice", "correct horse battery staple"
MECHANISMS = ["SCRAM-SHA-512", "PLAIN"]


class SaslBroker(Broker):
    """A broker whose only client listener is SASL_PLAINTEXT."""

    def command(self):
        cmd = super().command()
        cmd[cmd.index("--listen") + 1] = f"SASL_PLAINTEXT://127.0.0.1:{self.port}"
        return cmd


def user_cli(*args, input=None, check=True):
    return subprocess.run([str(cli_binary()), "user", *args], input=input, capture_output=True,
                          text=True, timeout=60, check=check)


def stop_cleanly(broker):
    alive = broker.alive()
    code, clean = broker.stop()
    print(broker.log_tail(30))
    assert alive and clean and code == 0, "the SASL broker died or did not stop cleanly"


@pytest.fixture
def sasl_broker(tmp_path):
    data_dir = tmp_path / "data"
    password_file = tmp_path / "alice.password"
    password_file.write_text(PASSWORD + "\n")
    created = user_cli("create", USER, "--data-dir", str(data_dir), "--mechanism", "SCRAM-SHA-512",
                       "--mechanism", "SCRAM-SHA-256", "--password-file", str(password_file))
    assert "SCRAM-SHA-512 credential set" in created.stdout
    broker = SaslBroker(holdfast_binary(), data_dir, free_loopback_port(),
                        {"sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
                         "num.partitions": 2},
                        log_path=tmp_path / "broker.log")
    broker.start()
    yield broker
    stop_cleanly(broker)


def ck_conf(broker, mechanism, user=USER, password=PASSWORD, **extra):
    conf = {"bootstrap.servers": broker.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": mechanism, "sasl.username": user, "sasl.password": password}
    conf.update(extra)
    return conf


def ck_roundtrip(broker, mechanism, topic, count=20):
    admin = AdminClient(ck_conf(broker, mechanism))
    for future in admin.create_topics([NewTopic(topic, num_partitions=2)]).values():
        future.result(timeout=20)
    producer = Producer(ck_conf(broker, mechanism, **{"message.timeout.ms": 15000}))
    for i in range(count):
        producer.produce(topic, key=b"k", value=f"{mechanism}-{i}".encode())
    assert producer.flush(20) == 0
    if count == 0:
        return  # only the topic was wanted
    consumer = Consumer(ck_conf(broker, mechanism, **{"group.id": f"g-{topic}",
                                                      "auto.offset.reset": "earliest"}))
    consumer.subscribe([topic])
    got = poll_values(consumer, count)
    assert sorted(got) == sorted(f"{mechanism}-{i}" for i in range(count))


def ck_auth_fails(broker, mechanism, user, password):
    """True if a confluent-kafka admin call fails to authenticate: librdkafka
    reports _AUTHENTICATION through error_cb (seen at once, instead of
    waiting out a metadata timeout), or the call fails as before."""
    errors = []
    admin = AdminClient(ck_conf(broker, mechanism, user, password, error_cb=errors.append))
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=0.5)
            return False
        except KafkaException as e:
            if "auth" in str(e).lower():
                return True
        admin.poll(0)
        if any(e.code() == KafkaError._AUTHENTICATION for e in errors):
            return True
    return True  # no metadata within 6 s: not authenticated either


def ck_end_offset(broker, topic, partition=0):
    consumer = Consumer(ck_conf(broker, "SCRAM-SHA-512", **{"group.id": "watermarks"}))
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
    finally:
        consumer.close()


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_confluent_kafka(sasl_broker, mechanism):
    ck_roundtrip(sasl_broker, mechanism, f"ck-{mechanism.lower()}-{uuid.uuid4().hex[:6]}")


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kafka_python(sasl_broker, mechanism):
    from kafka import KafkaConsumer, KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic as KpNewTopic
    conf = dict(bootstrap_servers=sasl_broker.bootstrap, security_protocol="SASL_PLAINTEXT",
                sasl_mechanism=mechanism, sasl_plain_username=USER, sasl_plain_password=PASSWORD)
    topic = f"kp-{mechanism.lower()}-{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(**conf)
    admin.create_topics([KpNewTopic(topic, num_partitions=1, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(**conf)
    for i in range(10):
        producer.send(topic, f"kp-{i}".encode()).get(timeout=20)
    producer.close()
    consumer = KafkaConsumer(topic, group_id=f"g-{topic}", auto_offset_reset="earliest",
                             consumer_timeout_ms=20000, **conf)
    got = []
    for msg in consumer:
        got.append(msg.value.decode())
        if len(got) == 10:
            break
    consumer.close()
    assert got == [f"kp-{i}" for i in range(10)]


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_kcat(sasl_broker, mechanism):
    require_tool("kcat", "kcat")
    auth = ["-X", "security.protocol=SASL_PLAINTEXT", "-X", f"sasl.mechanisms={mechanism}",
            "-X", f"sasl.username={USER}", "-X", f"sasl.password={PASSWORD}"]
    topic = f"kcat-{mechanism.lower()}-{uuid.uuid4().hex[:6]}"
    lines = "\n".join(f"kcat-{i}" for i in range(10)) + "\n"
    run(["kcat", "-b", sasl_broker.bootstrap, *auth, "-P", "-t", topic, "-p", "0"], input=lines)
    metadata = run(["kcat", "-b", sasl_broker.bootstrap, *auth, "-L", "-J", "-t", topic])
    assert json.loads(metadata.stdout)["topics"][0]["topic"] == topic
    consumed = run(["kcat", "-b", sasl_broker.bootstrap, *auth, "-C", "-t", topic, "-o",
                    "beginning", "-e", "-q"], timeout=40)
    assert consumed.stdout.split() == [f"kcat-{i}" for i in range(10)]
    group = run(["timeout", "40", "kcat", "-b", sasl_broker.bootstrap, *auth, "-G",
                 f"g-{topic}", topic, "-c", "10", "-q", "-X", "auto.offset.reset=earliest"],
                timeout=50)
    assert sorted(group.stdout.split()) == sorted(f"kcat-{i}" for i in range(10))


@pytest.mark.parametrize("mechanism", ["scram-sha-512", "plain"])
def test_kafkajs(sasl_broker, mechanism):
    require_kafkajs()
    sasl = {"mechanism": mechanism, "username": USER, "password": PASSWORD}
    topic = f"js-{mechanism}-{uuid.uuid4().hex[:6]}"

    def call(command):
        command.update(brokers=[sasl_broker.bootstrap], sasl=sasl, deadlineMs=60000)
        result = run(["node", str(JS_DIR / "client.js"), json.dumps(command)], timeout=90,
                     check=False)
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        assert lines, f"kafkajs printed nothing: {result.stderr[-2000:]}"
        out = json.loads(lines[-1])
        assert "error" not in out, f"kafkajs {command['action']}: {out}\n{result.stderr[-2000:]}"
        return out

    call({"action": "admin", "calls": [{"method": "createTopics",
                                        "args": [{"topics": [{"topic": topic, "numPartitions": 1}]}]}]})
    call({"action": "produce", "topic": topic, "acks": -1, "compression": "none",
          "batches": [[{"key": "k", "value": f"js-{i}", "headers": {}} for i in range(10)]]})
    out = call({"action": "consume", "topic": topic, "groupId": f"g-{topic}", "count": 10})
    assert sorted(m["value"] for m in out["messages"]) == sorted(f"js-{i}" for i in range(10))


def test_wrong_password_unknown_user_and_mechanism_fail_while_good_clients_work(sasl_broker):
    topic = f"neg-{uuid.uuid4().hex[:6]}"
    ck_roundtrip(sasl_broker, "SCRAM-SHA-512", topic, count=5)  # the good path works
    for mechanism in ["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]:
        assert not ck_auth_fails(sasl_broker, mechanism, USER, PASSWORD), mechanism
        assert ck_auth_fails(sasl_broker, mechanism, USER, "wrong password"), mechanism
        assert ck_auth_fails(sasl_broker, mechanism, "mallory", PASSWORD), mechanism
    log = sasl_broker.log_path.read_text()
    assert "SASL authentication failed" in log and "user 'mallory'" in log
    assert "wrong password" in log
    assert PASSWORD not in log and "wrong password'" not in log  # never the secret
    # Unknown mechanism: the handshake answers UNSUPPORTED_SASL_MECHANISM with the list.
    with connect(sasl_broker) as s:
        error, mechanisms = sasl_handshake(s, "GSSAPI")
        assert error == 33
        assert mechanisms == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
        assert recv_frame(s) is None  # then the connection closes
    with connect(sasl_broker) as s:
        assert sasl_handshake(s, "PLAIN") == (0, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
    # The broker kept serving the good client throughout.
    assert ck_end_offset(sasl_broker, topic, 0) + ck_end_offset(sasl_broker, topic, 1) == 5


# ---- raw protocol: requests before authentication, SaslHandshake v0 ----------------------------

def connect(broker):
    host, port = broker.bootstrap.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    return s


def kstring(text):
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def request(s, api_key, version, body, correlation=1):
    header = struct.pack(">hhi", api_key, version, correlation) + kstring("sasl-e2e")
    frame = header + body
    s.sendall(struct.pack(">i", len(frame)) + frame)


def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def recv_frame(s):
    """The next frame's body, or None if the broker closed the connection."""
    try:
        size = recv_exact(s, 4)
        if size is None:
            return None
        return recv_exact(s, struct.unpack(">i", size)[0])
    except ConnectionResetError:
        return None


def sasl_handshake(s, mechanism, version=1):
    request(s, 17, version, kstring(mechanism))
    body = recv_frame(s)
    assert body is not None, "connection closed instead of a SaslHandshake response"
    error, count = struct.unpack(">hi", body[4:10])
    pos, mechanisms = 10, []
    for _ in range(count):
        (length,) = struct.unpack(">h", body[pos:pos + 2])
        mechanisms.append(body[pos + 2:pos + 2 + length].decode())
        pos += 2 + length
    return error, mechanisms


def plain_token(user, password):
    return b"\0" + user.encode() + b"\0" + password.encode()


def produce_request_body(topic):
    from kafka.record.memory_records import MemoryRecordsBuilder
    builder = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20)
    builder.append(timestamp=int(time.time() * 1000), key=b"raw", value=b"raw produce", headers=[])
    builder.close()
    records = builder.buffer()
    # Produce v3: transactional_id, acks, timeout, [topic, [partition, records]]
    return (struct.pack(">hhi", -1, -1, 10000) + struct.pack(">i", 1) + kstring(topic) +
            struct.pack(">ii", 1, 0) + struct.pack(">i", len(records)) + bytes(records))


def test_produce_before_authentication_closes_the_connection_and_appends_nothing(sasl_broker):
    topic = f"raw-{uuid.uuid4().hex[:6]}"
    ck_roundtrip(sasl_broker, "PLAIN", topic, count=0)  # creates the topic (2 partitions)
    assert ck_end_offset(sasl_broker, topic) == 0
    with connect(sasl_broker) as s:
        request(s, 0, 3, produce_request_body(topic))
        assert recv_frame(s) is None, "a Produce before authentication was answered"
    assert ck_end_offset(sasl_broker, topic) == 0
    assert "Produce before SASL authentication completed" in sasl_broker.log_path.read_text()
    # The same Produce after a SaslHandshake v1 + SaslAuthenticate exchange is appended.
    with connect(sasl_broker) as s:
        assert sasl_handshake(s, "PLAIN")[0] == 0
        token = plain_token(USER, PASSWORD)
        request(s, 36, 0, struct.pack(">i", len(token)) + token, correlation=2)
        body = recv_frame(s)
        assert body is not None and struct.unpack(">h", body[4:6])[0] == 0
        request(s, 0, 3, produce_request_body(topic), correlation=3)
        body = recv_frame(s)
        assert body is not None and struct.unpack(">i", body[:4])[0] == 3
    assert ck_end_offset(sasl_broker, topic) == 1


def test_sasl_handshake_v0_raw_tokens(sasl_broker):
    # Wrong password over v0: no answer, the connection closes.
    with connect(sasl_broker) as s:
        assert sasl_handshake(s, "PLAIN", version=0)[0] == 0
        token = plain_token(USER, "nope")
        s.sendall(struct.pack(">i", len(token)) + token)
        assert recv_frame(s) is None
    # The right one: an empty token back, then requests are served.
    with connect(sasl_broker) as s:
        assert sasl_handshake(s, "PLAIN", version=0)[0] == 0
        token = plain_token(USER, PASSWORD)
        s.sendall(struct.pack(">i", len(token)) + token)
        assert recv_frame(s) == b""
        request(s, 18, 0, b"", correlation=9)  # ApiVersions v0
        body = recv_frame(s)
        assert body is not None and struct.unpack(">ih", body[:6]) == (9, 0)


def test_user_cli_round_trip(sasl_broker, tmp_path):
    listed = None
    sasl_broker.stop()
    # Refused while a broker holds the directory, then allowed once it is stopped.
    listed = user_cli("list", "--data-dir", str(sasl_broker.data_dir)).stdout
    assert f"{USER}\tSCRAM-SHA-512\t8192" in listed and f"{USER}\tSCRAM-SHA-256" in listed
    user_cli("create", "bob", "--data-dir", str(sasl_broker.data_dir), input="bobs secret\n")
    user_cli("delete", USER, "--data-dir", str(sasl_broker.data_dir), "--mechanism", "SCRAM-SHA-256")
    listed = user_cli("list", "--data-dir", str(sasl_broker.data_dir)).stdout
    assert "bob\tSCRAM-SHA-512" in listed and f"{USER}\tSCRAM-SHA-256" not in listed
    sasl_broker.start()
    busy = user_cli("list", "--data-dir", str(sasl_broker.data_dir), check=False)
    assert busy.returncode != 0 and "stop the broker" in busy.stderr
    assert not ck_auth_fails(sasl_broker, "SCRAM-SHA-512", "bob", "bobs secret")
    assert ck_auth_fails(sasl_broker, "SCRAM-SHA-256", USER, PASSWORD)  # deleted
    assert not ck_auth_fails(sasl_broker, "SCRAM-SHA-512", USER, PASSWORD)
    no_password = user_cli("create", "carol", "--data-dir", str(tmp_path / "other"), input="\n",
                           check=False)
    assert no_password.returncode != 0 and "no default password" in no_password.stderr


# ---- SASL principals and ACLs together ----------------------------------------------------------

ADMIN, ADMIN_PASSWORD = "admin", "admin secret 1"
BOB, BOB_PASSWORD = "bob", "bobs secret 2"


@pytest.fixture
def sasl_acl_broker(tmp_path):
    """SASL_PLAINTEXT with the authoriser on: alice, bob and admin (a super user)
    created offline; no ACL yet, so nobody but admin may do anything."""
    data_dir = tmp_path / "data"
    for user, password in [(USER, PASSWORD), (ADMIN, ADMIN_PASSWORD), (BOB, BOB_PASSWORD)]:
        user_cli("create", user, "--data-dir", str(data_dir), input=password + "\n")
    broker = SaslBroker(holdfast_binary(), data_dir, free_loopback_port(),
                        {"sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512", "authorizer.enabled": "true",
                         "super.users": f"User:{ADMIN}", "num.partitions": 1},
                        log_path=tmp_path / "broker.log")
    broker.start()
    yield broker
    stop_cleanly(broker)


def kp_conf(broker, user, password):
    return dict(bootstrap_servers=broker.bootstrap, security_protocol="SASL_PLAINTEXT",
                sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=user,
                sasl_plain_password=password, request_timeout_ms=15000)


def ck_produce_errors(broker, user, password, topic, count=5):
    """Produces `count` messages as `user`; returns the delivery errors' codes."""
    producer = Producer(ck_conf(broker, "SCRAM-SHA-512", user, password,
                                **{"message.timeout.ms": 10000, "retries": 0}))
    errors = []
    for i in range(count):
        producer.produce(topic, value=f"{user}-{i}".encode(),
                         on_delivery=lambda err, msg: errors.append(err.code()) if err else None)
    producer.flush(20)
    return errors


def test_acls_apply_to_the_sasl_principal(sasl_acl_broker, tmp_path):
    """The principal SASL authenticates is the one ACLs check. The admin (a
    super user) grants alice Write through `holdfast acl add --command-config`
    with a Kafka tools' properties file (JAAS line and all); alice produces
    (the control), bob, with no ACL, is refused and appends nothing."""
    from confluent_kafka import KafkaError
    from kafka.admin import KafkaAdminClient, NewTopic as KpNewTopic
    topic = f"orders-{uuid.uuid4().hex[:6]}"
    admin = KafkaAdminClient(**kp_conf(sasl_acl_broker, ADMIN, ADMIN_PASSWORD))
    try:
        admin.create_topics([KpNewTopic(topic, num_partitions=1, replication_factor=1)])
    finally:
        admin.close()
    properties = tmp_path / "admin.properties"
    properties.write_text(
        "# as for kafka-acls.sh --command-config\n"
        "security.protocol=SASL_PLAINTEXT\n"
        "sasl.mechanism=SCRAM-SHA-512\n"
        "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{ADMIN}" password="{ADMIN_PASSWORD}";\n')

    def acl_add(config):
        return subprocess.run(
            [str(cli_binary()), "acl", "add", "--allow-principal", f"User:{USER}",
             "--operation", "Write", "--operation", "Describe", "--topic", topic,
             "--brokers", sasl_acl_broker.bootstrap, "--timeout-ms", "8000", *config],
            capture_output=True, text=True, timeout=60)

    # Without the properties the CLI cannot authenticate: it fails, adding nothing.
    assert acl_add([]).returncode != 0
    assert ck_produce_errors(sasl_acl_broker, USER, PASSWORD, topic, count=1) == [
        KafkaError.TOPIC_AUTHORIZATION_FAILED]
    added = acl_add(["--command-config", str(properties)])
    assert added.returncode == 0, added.stderr

    # alice, granted Write, produces (the control); bob, with no ACL, is refused
    # and nothing of his is appended.
    assert ck_produce_errors(sasl_acl_broker, USER, PASSWORD, topic) == []
    bob_errors = ck_produce_errors(sasl_acl_broker, BOB, BOB_PASSWORD, topic)
    assert bob_errors and set(bob_errors) == {KafkaError.TOPIC_AUTHORIZATION_FAILED}, bob_errors
    consumer = Consumer(ck_conf(sasl_acl_broker, "SCRAM-SHA-512", ADMIN, ADMIN_PASSWORD,
                                **{"group.id": "watermarks"}))
    try:
        assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1] == 5
    finally:
        consumer.close()
    log = sasl_acl_broker.log_path.read_text()
    assert BOB_PASSWORD not in log and PASSWORD not in log


def describe_scram_error(broker, user, password):
    """DescribeUserScramCredentials v0 (all users) as `user`, authenticated with
    PLAIN over a raw socket (kafka-python 2.0 has no flexible-version types);
    returns the response's top-level error code."""
    with connect(broker) as s:
        assert sasl_handshake(s, "PLAIN")[0] == 0
        token = plain_token(user, password)
        request(s, 36, 0, struct.pack(">i", len(token)) + token, correlation=2)
        body = recv_frame(s)
        assert body is not None and struct.unpack(">h", body[4:6])[0] == 0, "authentication"
        # Request header v2 (client id, then no tagged fields); body: users = null
        # (compact array length 0) and no tagged fields.
        header = struct.pack(">hhi", 50, 0, 3) + kstring("sasl-e2e") + b"\0"
        frame = header + b"\0\0"
        s.sendall(struct.pack(">i", len(frame)) + frame)
        body = recv_frame(s)
        assert body is not None, "the connection closed instead of answering"
        # Response header v1: correlation id, tagged fields; then throttle, error_code.
        correlation, = struct.unpack(">i", body[:4])
        assert correlation == 3 and body[4] == 0
        return struct.unpack(">h", body[9:11])[0]


def test_scram_credential_apis_need_cluster_rights(sasl_acl_broker):
    """DescribeUserScramCredentials needs Describe on the Cluster: refused for
    bob (no ACL), allowed for the super user (the control)."""
    assert describe_scram_error(sasl_acl_broker, BOB, BOB_PASSWORD) == 31  # CLUSTER_AUTHORIZATION_FAILED
    assert describe_scram_error(sasl_acl_broker, ADMIN, ADMIN_PASSWORD) == 0


def test_a_cluster_node_with_a_sasl_listener_needs_inter_broker_credentials(tmp_path):
    """In a cluster the brokers authenticate to each other on the (first)
    SASL listener, so a node without sasl.mechanism.inter.broker.protocol
    refuses to start, naming it. The same node with a PLAINTEXT listener
    starts (the control). tests/cluster/test_interbroker_security.py runs
    SASL clusters."""
    ports = [free_loopback_port() for _ in range(3)]
    voters = f"1@127.0.0.1:{ports[1]},2@127.0.0.1:{ports[2]}"

    def serve(protocol, data_dir):
        return subprocess.Popen(
            [str(holdfast_binary()), "serve", "--data-dir", str(data_dir), "--node-id", "1",
             "--set", f"listeners={protocol}://127.0.0.1:{ports[0]},CONTROLLER://127.0.0.1:{ports[1]}",
             "--set", f"controller.quorum.voters={voters}",
             "--set", "holdfast.cluster.experimental=true"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    refused = serve("SASL_PLAINTEXT", tmp_path / "sasl")
    out, _ = refused.communicate(timeout=30)
    assert refused.returncode != 0, out
    assert "sasl.mechanism.inter.broker.protocol is not set" in out, out

    control = serve("PLAINTEXT", tmp_path / "plain")
    watchdog = threading.Timer(30, control.kill)  # bounds the reads below
    watchdog.start()
    try:
        lines = []
        for line in control.stdout:
            lines.append(line)
            if "listening on" in line:
                break
        assert control.poll() is None, "".join(lines)
        assert any("listening on" in line for line in lines), "".join(lines)
    finally:
        watchdog.cancel()
        control.kill()
        control.wait(10)
