"""Burrow (Debian's `burrow`, LinkedIn's lag monitor) against Holdfast. Burrow
reads `__consumer_offsets` directly and decodes Kafka's record formats, and
asks the broker for the topics' end offsets; its HTTP API must then report the
same group, committed offsets and lag as `holdfast group describe`, after a
confluent-kafka consumer commits and again after more messages arrive.

Burrow 1.2 also wants a ZooKeeper for its own locks: the test starts Debian's
`zookeeper` (standalone, loopback, free port). A missing Burrow, ZooKeeper or
Java is a failure, not a skip.
"""
import json
import pathlib
import shutil
import socket
import subprocess
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import NewTopic

from conftest import cli_binary, free_loopback_port, wait_until
from support import ck_admin, ck_produce

BURROW = "/usr/bin/Burrow"
ZOOKEEPER_JAR = "/usr/share/java/zookeeper.jar"
SETTINGS = {"group.initial.rebalance.delay.ms": "200", "offsets.topic.num.partitions": "10"}


def four_letter(port, word):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(word.encode())
            return s.recv(4096).decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture
def zookeeper(tmp_path):
    java = shutil.which("java")
    if java is None or not pathlib.Path(ZOOKEEPER_JAR).exists():
        pytest.fail("ZooKeeper not found: install zookeeper (scripts/install-deps.sh)")
    port = free_loopback_port()
    log = open(tmp_path / "zookeeper.log", "w")
    config = tmp_path / "zoo.cfg"
    config.write_text(f"tickTime=2000\ndataDir={tmp_path / 'zookeeper-data'}\n"
                      f"clientPort={port}\nclientPortAddress=127.0.0.1\n"
                      "admin.enableServer=false\n4lw.commands.whitelist=srvr\n")
    process = subprocess.Popen(
        [java, "-cp", ZOOKEEPER_JAR, "org.apache.zookeeper.server.ZooKeeperServerMain",
         str(config)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: process.poll() is not None or "Mode" in four_letter(port, "srvr"),
                   60, 0.5, "ZooKeeper to serve")
        assert process.poll() is None, f"ZooKeeper exited with {process.returncode}"
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


@pytest.fixture
def burrow_factory(tmp_path):
    if not pathlib.Path(BURROW).exists():
        pytest.fail("Burrow not found: install burrow (scripts/install-deps.sh)")
    processes = []

    def start(bootstrap, zookeeper):
        http_port = free_loopback_port()
        config_dir = tmp_path / "burrow"
        config_dir.mkdir(exist_ok=True)
        (config_dir / "burrow.toml").write_text(f"""
[general]
pidfile="{config_dir}/burrow.pid"

[logging]
filename="{config_dir}/burrow.log"
level="debug"

[zookeeper]
servers=["{zookeeper}"]
timeout=6
root-path="/burrow"

[client-profile.holdfast]
client-id="burrow-e2e"
kafka-version="2.1.0"

[cluster.holdfast]
class-name="kafka"
servers=["{bootstrap}"]
client-profile="holdfast"
topic-refresh=2
offset-refresh=1

[consumer.holdfast]
class-name="kafka"
cluster="holdfast"
servers=["{bootstrap}"]
client-profile="holdfast"
offsets-topic="__consumer_offsets"
start-latest=false

[httpserver.default]
address="127.0.0.1:{http_port}"

[storage.default]
class-name="inmemory"
workers=4
intervals=10
min-distance=1
""")
        log = open(config_dir / "stdout.log", "w")
        process = subprocess.Popen([BURROW, "--config-dir", str(config_dir)], cwd=config_dir,
                                   stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
        processes.append((process, log))
        base = f"http://127.0.0.1:{http_port}"
        wait_until(lambda: process.poll() is not None or get(base, "/burrow/admin") is not None,
                   30, 0.5, "Burrow's HTTP server")
        assert process.poll() is None, \
            f"Burrow exited with {process.returncode}: {burrow_log(config_dir)}"
        return base, config_dir

    yield start
    for process, log in processes:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


def burrow_log(config_dir, lines=30):
    text = ""
    for name in ("stdout.log", "burrow.log"):
        path = config_dir / name
        if path.exists():
            text += "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return text


def get(base, path):
    try:
        with urllib.request.urlopen(base + path, timeout=5) as response:
            body = response.read().decode()
            try:
                return json.loads(body)
            except ValueError:
                return body
    except OSError:
        return None


def holdfast_describe(bootstrap, group):
    proc = subprocess.run([str(cli_binary()), "group", "describe", group, "--format", "json",
                           "--brokers", bootstrap, "--timeout-ms", "8000"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def burrow_view(base, group):
    """{(topic, partition): (committed offset, lag)} from Burrow's consumer
    detail, or None while Burrow does not know the group yet."""
    detail = get(base, f"/v3/kafka/holdfast/consumer/{group}")
    if not isinstance(detail, dict) or detail.get("error"):
        return None
    view = {}
    for topic, partitions in (detail.get("topics") or {}).items():
        for index, partition in enumerate(partitions):
            offsets = [o for o in (partition.get("offsets") or []) if o]
            if not offsets:
                continue
            view[(topic, index)] = (offsets[-1]["offset"], partition.get("current-lag"))
    return view


def holdfast_view(bootstrap, group):
    described = holdfast_describe(bootstrap, group)
    return {(p["topic"], p["partition"]): (p["current_offset"], p["lag"])
            for p in described["partitions"] if p["current_offset"] is not None}


def consume_and_commit(bootstrap, group, topic, count):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": "burrow-e2e",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest",
                  "session.timeout.ms": 6000})
    c.subscribe([topic])
    got = 0
    deadline = time.monotonic() + 30
    try:
        while got < count and time.monotonic() < deadline:
            msg = c.poll(0.2)
            if msg is None or msg.error():
                continue
            got += 1
            if got == count:
                c.commit(message=msg, asynchronous=False)
        assert got == count, f"consumed {got} of {count}"
        c.commit(asynchronous=False)
    finally:
        c.close()


def test_burrow_reports_the_groups_offsets_and_lag(broker_factory, zookeeper, burrow_factory,
                                                   topic_name):
    broker = broker_factory(settings=SETTINGS)
    bootstrap = broker.bootstrap
    admin = ck_admin(bootstrap)  # must outlive the future
    admin.create_topics([NewTopic(topic_name, 2, 1)])[topic_name].result(15)
    ck_produce(bootstrap, topic_name,
               [{"key": f"k{i}", "value": f"v{i}", "partition": i % 2} for i in range(40)])
    group = f"{topic_name}-g"
    base, config_dir = burrow_factory(bootstrap, zookeeper)
    # Burrow drops commits for partitions whose end offset it has not fetched
    # yet: wait until it knows the topic's.
    wait_until(lambda: (get(base, f"/v3/kafka/holdfast/topic/{topic_name}") or {}).get("offsets")
               == [20, 20], 60, 0.5, "Burrow to fetch the topic's end offsets")
    consume_and_commit(bootstrap, group, topic_name, 30)

    def agree():
        burrow = burrow_view(base, group)
        if not burrow:
            return None
        ours = holdfast_view(bootstrap, group)
        return (burrow, ours) if burrow == ours else None

    try:
        burrow, ours = wait_until(agree, 60, 0.5, "Burrow to agree with holdfast group describe")
    except AssertionError as e:
        raise AssertionError(f"{e}\nBurrow: {burrow_view(base, group)}\n"
                             f"holdfast: {holdfast_view(bootstrap, group)}\n"
                             f"{burrow_log(config_dir)}") from None
    assert sum(offset for offset, _ in ours.values()) == 30
    assert sum(lag for _, lag in ours.values()) == 10
    groups = get(base, "/v3/kafka/holdfast/consumer")
    assert group in groups["consumers"], groups

    # More messages arrive: the lag grows by as many, in both views.
    ck_produce(bootstrap, topic_name,
               [{"key": f"k{i}", "value": f"more{i}", "partition": i % 2} for i in range(20)])
    try:
        burrow, ours = wait_until(
            lambda: (lambda v: v if v and sum(l for _, l in v[1].values()) == 30 else None)(agree()),
            60, 0.5, "Burrow to see the new lag")
    except AssertionError as e:
        raise AssertionError(f"{e}\nBurrow: {burrow_view(base, group)}\n"
                             f"holdfast: {holdfast_view(bootstrap, group)}") from None

    # And after the group commits again, the lag is back down in both.
    consume_and_commit(bootstrap, group, topic_name, 25)
    burrow, ours = wait_until(
        lambda: (lambda v: v if v and sum(l for _, l in v[1].values()) == 5 else None)(agree()),
        60, 0.5, "Burrow to see the new commit")
    assert sum(offset for offset, _ in ours.values()) == 55
