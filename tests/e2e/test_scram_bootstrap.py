"""sasl.scram.bootstrap.file (issue 11, docs/security.md): the first SCRAM
users come from a file of salted credentials that `holdfast user create
--bootstrap-file` writes, with no password in it and no plain-text window.
The broker creates each credential once: a user deleted later stays deleted
across restarts with the setting still there.

Real clients: confluent-kafka authenticates with the bootstrapped user; a
user not in the file, and a wrong password, are refused (the controls that
show authentication can fail here). A bad file stops the start with an error
naming the setting.
"""
import os
import stat
import subprocess
import uuid

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Broker, cli_binary, free_loopback_port, holdfast_binary
from test_serve_startup import serve

ADMIN, ADMIN_PASSWORD = "ops-admin", "bootstrap Secret 4411"
OTHER, OTHER_PASSWORD = "mallory", "never bootstrapped 99"


class SaslBroker(Broker):
    def command(self):
        cmd = super().command()
        cmd[cmd.index("--listen") + 1] = f"SASL_PLAINTEXT://127.0.0.1:{self.port}"
        return cmd


def create_in_file(path, user, password, *extra):
    return subprocess.run([str(cli_binary()), "user", "create", user, "--bootstrap-file",
                           str(path), *extra], input=password + "\n", capture_output=True,
                          text=True, timeout=60)


def conf(broker, user, password):
    return {"bootstrap.servers": broker.bootstrap, "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": user, "sasl.password": password}


def authenticates(broker, user, password):
    admin = AdminClient(conf(broker, user, password))
    try:
        admin.list_topics(timeout=6)
        return True
    except KafkaException:
        return False


def roundtrip(broker, topic):
    admin = AdminClient(conf(broker, ADMIN, ADMIN_PASSWORD))
    admin.create_topics([NewTopic(topic, num_partitions=1)])[topic].result(timeout=20)
    producer = Producer({**conf(broker, ADMIN, ADMIN_PASSWORD), "message.timeout.ms": 15000})
    for i in range(10):
        producer.produce(topic, value=f"v{i}".encode())
    assert producer.flush(20) == 0
    consumer = Consumer({**conf(broker, ADMIN, ADMIN_PASSWORD), "group.id": "bootstrap-check",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = []
    for _ in range(100):
        msg = consumer.poll(0.3)
        if msg is not None and msg.error() is None:
            got.append(msg.value().decode())
        if len(got) == 10:
            break
    consumer.close()
    assert got == [f"v{i}" for i in range(10)]


def test_the_first_user_comes_from_the_bootstrap_file_once(tmp_path):
    users = tmp_path / "users.bootstrap"
    made = create_in_file(users, ADMIN, ADMIN_PASSWORD)
    assert made.returncode == 0, made.stderr
    assert f"credential written to {users}" in made.stdout
    text = users.read_text()
    assert ADMIN in text and ADMIN_PASSWORD not in text, "the file must hold no password"
    assert stat.S_IMODE(os.stat(users).st_mode) == 0o600

    data_dir = tmp_path / "data"
    settings = {"sasl.enabled.mechanisms": "SCRAM-SHA-512", "sasl.scram.bootstrap.file": users}
    broker = SaslBroker(holdfast_binary(), data_dir, free_loopback_port(), settings,
                        log_path=tmp_path / "broker.log")
    broker.start()
    try:
        assert authenticates(broker, ADMIN, ADMIN_PASSWORD), broker.log_tail(20)
        roundtrip(broker, f"boot-{uuid.uuid4().hex[:6]}")
        # The controls: a user who is not in the file, and a wrong password.
        assert not authenticates(broker, OTHER, OTHER_PASSWORD)
        assert not authenticates(broker, ADMIN, "not the password")
        assert "created the SCRAM-SHA-512 credential of user ops-admin" in broker.log_tail(200)
    finally:
        code, clean = broker.stop()
        assert clean and code == 0

    # Deleted offline, restarted with the setting still there: stays deleted.
    deleted = subprocess.run([str(cli_binary()), "user", "delete", ADMIN, "--data-dir",
                              str(data_dir)], capture_output=True, text=True, timeout=60)
    assert deleted.returncode == 0, deleted.stderr
    broker.start()
    try:
        assert not authenticates(broker, ADMIN, ADMIN_PASSWORD), \
            "a bootstrapped user deleted later came back at the restart"
    finally:
        code, clean = broker.stop()
        assert clean and code == 0
    assert broker.log_tail(400).count("created the SCRAM-SHA-512 credential") == 1


def test_a_bad_bootstrap_file_stops_the_start_naming_the_setting(tmp_path):
    bad = tmp_path / "users.bootstrap"
    bad.write_text('{"type": "topic_deleted", "name": "x"}\n')
    code, output = serve(tmp_path / "data", free_loopback_port(),
                         "--set", f"sasl.scram.bootstrap.file={bad}")
    assert code != 0
    assert "sasl.scram.bootstrap.file" in output and "line 1" in output, output
    missing = tmp_path / "nowhere"
    code, output = serve(tmp_path / "data2", free_loopback_port(),
                         "--set", f"sasl.scram.bootstrap.file={missing}")
    assert code != 0 and "cannot read" in output, output


def test_user_create_needs_exactly_one_destination(tmp_path):
    both = subprocess.run([str(cli_binary()), "user", "create", ADMIN, "--bootstrap-file",
                           str(tmp_path / "f"), "--data-dir", str(tmp_path / "d")],
                          input="pw\n", capture_output=True, text=True, timeout=60)
    assert both.returncode != 0 and "exactly one of --data-dir" in both.stderr
    neither = subprocess.run([str(cli_binary()), "user", "create", ADMIN], input="pw\n",
                             capture_output=True, text=True, timeout=60)
    assert neither.returncode != 0 and "exactly one of --data-dir" in neither.stderr
