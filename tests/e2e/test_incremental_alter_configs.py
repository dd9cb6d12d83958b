"""IncrementalAlterConfigs (API 44) from a real client: @platformatic/kafka
(Node, pure JavaScript, pinned in js-platformatic/package-lock.json and
installed with `npm ci` on first use), whose Admin.incrementalAlterConfigs
sends API 44 v1. The Debian clients cannot: confluent-kafka-python 1.7.0 has
no incremental_alter_configs, librdkafka 2.0.2 no IncrementalAlterConfigs,
kafka-python 2.0.2 and kafkajs 2.2.4 only send AlterConfigs (33).

The client talks to the broker through a recording proxy (the broker
advertises the proxy's port), so the test checks on the wire that API 44 is
what was sent, and never AlterConfigs.
"""
import json
import pathlib
import shutil
import socket
import struct
import threading

import pytest
from confluent_kafka.admin import ConfigResource, NewTopic

from support import ck_admin, run

JS_DIR = pathlib.Path(__file__).resolve().parent / "js-platformatic"
TOPIC = 2
SET, DELETE, APPEND, SUBTRACT = 0, 1, 2, 3

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


class RecordingProxy:
    """Relays 127.0.0.1:<port> to the broker and records (api_key, api_version)
    of every request frame the clients send."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.requests = []
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._stop = threading.Event()
        self._sockets = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            upstream.settimeout(None)
            client.settimeout(None)
            self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source, sink, record):
        pending = b""
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if record:
                    pending += data
                    while len(pending) >= 8:
                        size = struct.unpack(">i", pending[:4])[0]
                        if len(pending) < 4 + size:
                            break
                        key, version = struct.unpack(">hh", pending[4:8])
                        with self._lock:
                            self.requests.append((key, version))
                        pending = pending[4 + size:]
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def seen(self):
        with self._lock:
            return list(self.requests)

    def close(self):
        self._stop.set()
        self._listener.close()
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass
        self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def platformatic():
    if not (JS_DIR / "node_modules" / "@platformatic" / "kafka").exists():
        run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(JS_DIR)], timeout=300)

    def call(command, timeout=60):
        result = run(["node", str(JS_DIR / "admin.js"), json.dumps(command)], timeout=timeout,
                     check=False)
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        assert lines, f"driver printed nothing (exit {result.returncode}): {result.stderr[-2000:]}"
        return json.loads(lines[-1])

    return call


@pytest.fixture
def proxied(broker_factory):
    """A broker that advertises a recording proxy in front of it."""
    broker = broker_factory(start=False)
    proxy = None
    original = broker.command

    def command():
        cmd = original()
        cmd[cmd.index("--advertise") + 1] = f"127.0.0.1:{proxy.port}"
        return cmd

    proxy = RecordingProxy(broker.port)
    broker.command = command
    broker.start()
    yield broker, proxy
    proxy.close()


def describe(bootstrap, topic):
    admin = ck_admin(bootstrap)
    resource = ConfigResource("topic", topic)
    configs = admin.describe_configs([resource], request_timeout=15)[resource].result(timeout=20)
    return {name: entry.value for name, entry in configs.items()}


def alter(platformatic, proxy, topic, configs, validate_only=False):
    return platformatic({
        "action": "incrementalAlterConfigs", "brokers": [f"127.0.0.1:{proxy.port}"],
        "validateOnly": validate_only,
        "resources": [{"resourceType": TOPIC, "resourceName": topic,
                       "configs": [{"name": n, "configOperation": op, "value": v}
                                   for n, op, v in configs]}]})


def test_incremental_alter_configs_from_platformatic(platformatic, proxied, topic_name):
    broker, proxy = proxied
    admin = ck_admin(broker.bootstrap)
    futures = admin.create_topics([NewTopic(topic_name, num_partitions=1, replication_factor=1,
                                            config={"retention.ms": "3600000"})],
                                  request_timeout=15)
    futures[topic_name].result(timeout=20)

    out = alter(platformatic, proxy, topic_name, [("max.message.bytes", SET, "2000000"),
                                                  ("cleanup.policy", APPEND, "compact")])
    assert out == {"ok": True}, out
    configs = describe(broker.bootstrap, topic_name)
    assert configs["retention.ms"] == "3600000"  # not named, so kept: incremental
    assert configs["max.message.bytes"] == "2000000"
    assert configs["cleanup.policy"] == "delete,compact"

    out = alter(platformatic, proxy, topic_name, [("retention.ms", DELETE, None),
                                                  ("cleanup.policy", SUBTRACT, "delete")])
    assert out == {"ok": True}, out
    configs = describe(broker.bootstrap, topic_name)
    assert configs["retention.ms"] == "604800000"  # back to the broker default
    assert configs["cleanup.policy"] == "compact"

    # validate_only changes nothing; an invalid value is refused.
    assert alter(platformatic, proxy, topic_name, [("retention.ms", SET, "1")],
                 validate_only=True) == {"ok": True}
    assert describe(broker.bootstrap, topic_name)["retention.ms"] == "604800000"
    refused = alter(platformatic, proxy, topic_name, [("retention.ms", SET, "soon")])
    assert "error" in refused, refused

    # The internal offsets topic keeps its compaction and retention.
    before = describe(broker.bootstrap, "__consumer_offsets")
    for change in ([("cleanup.policy", SET, "delete")], [("retention.ms", SET, "1000")],
                   [("cleanup.policy", DELETE, None)]):
        refused = alter(platformatic, proxy, "__consumer_offsets", change)
        assert "error" in refused, (change, refused)
    assert describe(broker.bootstrap, "__consumer_offsets") == before
    assert before["cleanup.policy"] == "compact"

    seen = proxy.seen()
    assert (44, 1) in seen, seen
    assert all(key != 33 for key, _ in seen), seen
