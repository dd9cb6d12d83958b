"""SASL sessions and re-authentication (KIP-368, `connections.max.reauth.ms`;
docs/security.md): SaslAuthenticate v1+ tells the client its session
lifetime; a client authenticates again on the same connection (kafkajs does);
a connection cannot change its principal or mechanism that way; a request
after the session ended closes the connection (librdkafka 2.0, which does not
re-authenticate, reconnects and loses nothing). The broker's
holdfast_sasl_session_events_total counts both outcomes.
"""
import json
import struct
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import cli_binary, free_loopback_port, holdfast_binary
from support import JS_DIR, metric, require_kafkajs, run
from conftest import wait_until
from test_sasl import (PASSWORD, USER, SaslBroker, connect, plain_token, recv_frame, request,
                       sasl_handshake, stop_cleanly, user_cli)

BOB, BOB_PASSWORD = "bob", "another long secret"


@pytest.fixture
def reauth_broker(tmp_path):
    made = []

    def make(reauth_ms):
        data_dir = tmp_path / f"data-{len(made)}"
        for user, password in ((USER, PASSWORD), (BOB, BOB_PASSWORD)):
            password_file = tmp_path / f"{user}.password"
            password_file.write_text(password + "\n")
            user_cli("create", user, "--data-dir", str(data_dir), "--mechanism", "SCRAM-SHA-512",
                     "--password-file", str(password_file))
        admin = f"127.0.0.1:{free_loopback_port()}"
        broker = SaslBroker(holdfast_binary(), data_dir, free_loopback_port(),
                            {"sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512",
                             "connections.max.reauth.ms": reauth_ms, "num.partitions": 1,
                             "admin.listener": admin},
                            log_path=tmp_path / f"broker-{len(made)}.log")
        broker.admin = admin
        broker.start()
        made.append(broker)
        return broker

    yield make
    for broker in made:
        stop_cleanly(broker)


def authenticate(s, user, password, correlation=2):
    """SaslAuthenticate v1 with a PLAIN token: (error, session_lifetime_ms), or None if closed."""
    token = plain_token(user, password)
    request(s, 36, 1, struct.pack(">i", len(token)) + token, correlation=correlation)
    body = recv_frame(s)
    if body is None:
        return None
    (error,) = struct.unpack(">h", body[4:6])
    pos = 6
    (length,) = struct.unpack(">h", body[pos:pos + 2])
    pos += 2 + max(length, 0)
    (length,) = struct.unpack(">i", body[pos:pos + 4])
    pos += 4 + max(length, 0)
    (lifetime,) = struct.unpack(">q", body[pos:pos + 8])
    return error, lifetime


def api_versions_answered(s, correlation=9):
    request(s, 18, 0, b"", correlation=correlation)
    return recv_frame(s) is not None


def events(broker, event):
    return metric(broker.admin, "holdfast_sasl_session_events_total", event=event)


def test_same_principal_may_reauthenticate_another_may_not(reauth_broker):
    broker = reauth_broker(600000)
    with connect(broker) as s:
        assert sasl_handshake(s, "PLAIN")[0] == 0
        assert authenticate(s, USER, PASSWORD) == (0, 600000)  # the lifetime reaches the client
        assert api_versions_answered(s)
        # Again as alice, on the same connection: accepted, and requests go on.
        assert sasl_handshake(s, "PLAIN")[0] == 0
        assert authenticate(s, USER, PASSWORD) == (0, 600000)
        assert api_versions_answered(s)
        assert events(broker, "reauthenticated") == 1
        # As bob: his password is right, but the connection is alice's, so it closes.
        assert sasl_handshake(s, "PLAIN")[0] == 0
        assert authenticate(s, BOB, BOB_PASSWORD) is None
    assert events(broker, "reauthenticated") == 1
    # The control: bob on a connection of his own is fine.
    with connect(broker) as s:
        assert sasl_handshake(s, "PLAIN")[0] == 0
        assert authenticate(s, BOB, BOB_PASSWORD) == (0, 600000)
    # Another mechanism than the connection's first: refused, and closed.
    with connect(broker) as s:
        assert sasl_handshake(s, "PLAIN")[0] == 0
        assert authenticate(s, USER, PASSWORD)[0] == 0
        error, _ = sasl_handshake(s, "SCRAM-SHA-512")
        assert error == 33  # UNSUPPORTED_SASL_MECHANISM
        assert recv_frame(s) is None
    assert "cannot change its principal" in broker.log_tail(200)


def test_a_request_after_the_session_ended_closes_the_connection(reauth_broker):
    broker = reauth_broker(1500)
    with connect(broker) as s:
        assert sasl_handshake(s, "PLAIN")[0] == 0
        assert authenticate(s, USER, PASSWORD) == (0, 1500)
        assert api_versions_answered(s, correlation=3)
        # Bounded: once 1.5 s have passed, the next request closes the connection.
        wait_until(lambda: not api_versions_answered(s), 20, interval=0.2,
                   message="the connection to close after its session ended")
    assert events(broker, "expired") == 1
    assert "its SASL session ended" in broker.log_tail(200)


def test_kafkajs_reauthenticates_on_its_connections(reauth_broker):
    require_kafkajs()
    # kafkajs authenticates again once less than 10 s of its session are left:
    # with a 12 s session, about every 2 s.
    broker = reauth_broker(12000)
    topic = f"reauth-js-{uuid.uuid4().hex[:6]}"
    command = {"action": "produce", "brokers": [broker.bootstrap], "topic": topic, "acks": -1,
               "sasl": {"mechanism": "scram-sha-512", "username": USER, "password": PASSWORD},
               "pauseMs": 1000,
               "batches": [[{"key": "k", "value": f"js-{i}", "headers": {}}] for i in range(7)]}
    result = run(["node", str(JS_DIR / "client.js"), json.dumps(command)], timeout=90, check=False)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines, f"kafkajs printed nothing: {result.stderr[-2000:]}"
    out = json.loads(lines[-1])
    assert "error" not in out, f"{out}\n{result.stderr[-2000:]}"
    offsets = sorted(int(r[0]["baseOffset"]) for r in out["results"])
    assert offsets == list(range(7))
    assert events(broker, "reauthenticated") >= 1
    assert events(broker, "expired") == 0


def test_a_client_that_does_not_reauthenticate_reconnects_and_loses_nothing(reauth_broker):
    # librdkafka 2.0 has no KIP-368: its connections are closed when a request
    # comes after the session ended; it reconnects and retries.
    broker = reauth_broker(1000)
    conf = {"bootstrap.servers": broker.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": USER, "sasl.password": PASSWORD}
    topic = f"reauth-ck-{uuid.uuid4().hex[:6]}"
    admin = AdminClient(conf)
    admin.create_topics([NewTopic(topic, num_partitions=1)])[topic].result(20)
    producer = Producer({**conf, "acks": "all", "enable.idempotence": True,
                         "message.timeout.ms": 30000})
    delivered = []
    sent = 0

    def one_more():
        nonlocal sent
        producer.produce(topic, value=f"ck-{sent}".encode(),
                         on_delivery=lambda err, msg: delivered.append(err is None))
        sent += 1
        assert producer.flush(20) == 0
        return events(broker, "expired") >= 2

    # One acknowledged message at a time until sessions expired twice (bounded).
    wait_until(one_more, 60, interval=0.3, message="two SASL sessions to expire")
    assert delivered == [True] * sent
    consumed = run([str(cli_binary()), "consume", topic, "--brokers", broker.bootstrap,
                    "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=SCRAM-SHA-512",
                    "-X", f"sasl.username={USER}", "-X", f"sasl.password={PASSWORD}",
                    "--from", "beginning", "--count", str(sent), "--format", "json"],
                   timeout=60, check=False)
    assert consumed.returncode == 0, consumed.stderr
    values = sorted(json.loads(line)["value"] for line in consumed.stdout.splitlines() if line.strip())
    assert values == sorted(f"ck-{i}" for i in range(sent))
