"""A 3-node Holdfast cluster of `holdfast serve` processes for cluster tests.

Each node listens on 127.0.0.1 with a free client port and a free CONTROLLER
(Raft) port, keeps its data under the test's tmp dir, and runs with
holdfast.cluster.experimental=true (cluster mode is still refused without it).
Sessions are short (broker.session.timeout.ms=3000, heartbeats every 500 ms)
so fencing tests finish quickly. The binary comes from $HOLDFAST_BIN, as for
tests/e2e.
"""
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from loopback_ports import free_ports  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 20.0   # bound on one node's start-up ("listening on")
STOP_TIMEOUT_S = 15.0    # bound on a clean shutdown after SIGTERM
SESSION_TIMEOUT_MS = 3000
HEARTBEAT_INTERVAL_MS = 500
LISTENING = re.compile(r"listening on (\S+:\d+)")


def holdfast_binary():
    path = pathlib.Path(os.environ.get("HOLDFAST_BIN", "build/release/src/cli/holdfast"))
    return path if path.is_absolute() else REPO_ROOT / path


def wait_until(condition, timeout, interval=0.1, message="condition"):
    """Polls `condition` until it returns a truthy value (returned) or
    `timeout` seconds pass (the test fails naming `message`)."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as e:  # a node may be electing or restarting
            last_error = e
        if time.monotonic() >= deadline:
            if callable(message):
                message = message()
            pytest.fail(f"timed out after {timeout} s waiting for {message}"
                        + (f" (last error: {last_error!r})" if last_error else ""))
        time.sleep(interval)


class Node:
    """One cluster member: a `holdfast serve` process that can be killed and
    started again on the same data directory and ports.

    Its client listener has the protocol `listener` (PLAINTEXT unless set;
    the listener's name is the protocol's). `secret_settings` go into a
    properties file passed with --config, so passwords stay out of the
    command line (and of the log's "==== start" line); `client_config` is
    what a confluent-kafka client adds to reach this listener
    (security.protocol, sasl.*, ssl.*)."""

    def __init__(self, binary, node_id, data_dir, client_port, raft_port, voters, settings,
                 listener="PLAINTEXT", secret_settings=None, client_config=None):
        self.binary = pathlib.Path(binary)
        self.node_id = node_id
        self.data_dir = pathlib.Path(data_dir)
        self.client_port = client_port
        self.raft_port = raft_port
        self.voters = voters
        self.settings = dict(settings)
        self.listener = listener
        self.secret_settings = dict(secret_settings or {})
        self.client_config = dict(client_config or {})
        self.bootstrap = f"127.0.0.1:{client_port}"
        self.log_path = self.data_dir.parent / f"node-{node_id}.log"
        self.secrets_path = self.data_dir.parent / f"node-{node_id}-secrets.properties"
        self.process = None
        self._reader = None

    def command(self):
        listeners = (f"{self.listener}://127.0.0.1:{self.client_port},"
                     f"CONTROLLER://127.0.0.1:{self.raft_port}")
        cmd = [str(self.binary), "serve", "--data-dir", str(self.data_dir),
               "--node-id", str(self.node_id),
               "--set", f"listeners={listeners}",
               "--set", f"controller.quorum.voters={self.voters}",
               "--set", "holdfast.cluster.experimental=true"]
        if self.secret_settings:
            self.secrets_path.write_text(
                "".join(f"{k}={v}\n" for k, v in self.secret_settings.items()))
            cmd += ["--config", str(self.secrets_path)]
        for key, value in self.settings.items():
            cmd += ["--set", f"{key}={value}"]
        return cmd

    def start(self):
        assert not self.alive(), "node already running"
        if not self.binary.exists():
            pytest.fail(f"holdfast binary not found at {self.binary} (set HOLDFAST_BIN)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ready = threading.Event()
        found = {}
        log = open(self.log_path, "a", buffering=1)
        log.write(f"==== start: {' '.join(self.command())}\n")
        process = subprocess.Popen(self.command(), stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   text=True, errors="replace")
        self.process = process

        def pump():
            with log:
                for line in process.stdout:
                    log.write(line)
                    if not ready.is_set() and LISTENING.search(line):
                        found["ok"] = True
                        ready.set()
                ready.set()

        self._reader = threading.Thread(target=pump, daemon=True)
        self._reader.start()
        ready.wait(READY_TIMEOUT_S)
        if "ok" not in found:
            if process.poll() is None:
                process.kill()
            process.wait(10)
            pytest.fail(f"node {self.node_id} did not start within {READY_TIMEOUT_S} s\n"
                        + self.log_tail())

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def kill(self):
        """SIGKILL: a crash."""
        if self.alive():
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(10)
            self._reader.join(5)

    def stop(self):
        if not self.alive():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self._reader.join(5)

    def log_tail(self, lines=40):
        try:
            return "".join(self.log_path.read_text(errors="replace").splitlines(True)[-lines:])
        except OSError:
            return "(no log)"


class Cluster:
    def __init__(self, nodes):
        self.nodes = nodes

    def node(self, node_id):
        return next(n for n in self.nodes if n.node_id == node_id)

    def live_nodes(self):
        return [n for n in self.nodes if n.alive()]

    def bootstrap(self, nodes=None):
        return ",".join(n.bootstrap for n in (nodes or self.live_nodes()))

    def client_config(self):
        """What a client adds to reach the listener (empty for PLAINTEXT)."""
        return dict(self.nodes[0].client_config)

    def logs(self):
        return "\n".join(f"---- node {n.node_id}\n{n.log_tail()}" for n in self.nodes)


def metadata(bootstrap, timeout=5.0, config=None):
    """Cluster metadata as one node answers it (confluent-kafka AdminClient;
    `config`: the listener's client settings)."""
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": 5000,
                         **(config or {})})
    return admin.list_topics(timeout=timeout)


def partition_state(cluster, topic, partition, via=None):
    """Leader, replicas and (sorted) ISR of one partition, as one node
    (`via`, else any live one) answers Metadata."""
    md = metadata(via.bootstrap if via else cluster.bootstrap(), config=cluster.client_config())
    p = md.topics[topic].partitions[partition]
    return {"leader": p.leader, "replicas": list(p.replicas), "isr": sorted(p.isrs)}


def wait_registered(cluster, timeout=60):
    """Until every node lists all three brokers (registered, unfenced)."""
    for n in cluster.nodes:
        wait_until(lambda: set(metadata(n.bootstrap, config=cluster.client_config()).brokers)
                   == {1, 2, 3}, timeout,
                   message=lambda: f"all 3 brokers in node {n.node_id}'s Metadata\n{cluster.logs()}")


def wait_full_isr(cluster, topic, partitions=1, timeout=60):
    """Until partitions 0..`partitions`-1 of `topic` have all three nodes in their ISR."""
    for p in range(partitions):
        wait_until(lambda: partition_state(cluster, topic, p)["isr"] == [1, 2, 3], timeout,
                   message=lambda: f"full ISR of {topic}-{p}\n{cluster.logs()}")


@pytest.fixture
def cluster_factory(tmp_path):
    made = []

    def make(size=3, settings=None, node_class=Node, node_options=None):
        """`node_options(node_id)`: extra Node arguments per node (listener,
        secret_settings, client_config)."""
        ports = free_ports(2 * size)
        voters = ",".join(f"{i + 1}@127.0.0.1:{ports[2 * i + 1]}" for i in range(size))
        base = {"broker.session.timeout.ms": SESSION_TIMEOUT_MS,
                "broker.heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS}
        base.update(settings or {})
        nodes = [node_class(holdfast_binary(), i + 1, tmp_path / f"node-{i + 1}", ports[2 * i],
                            ports[2 * i + 1], voters, base,
                            **(node_options(i + 1) if node_options else {}))
                 for i in range(size)]
        cluster = Cluster(nodes)
        made.append(cluster)
        for n in nodes:
            n.start()
        return cluster

    yield make
    for cluster in made:
        for n in cluster.nodes:
            n.stop()


@pytest.fixture
def cluster(cluster_factory):
    """Three nodes, each registered and unfenced as every node sees it."""
    c = cluster_factory()
    wait_registered(c)
    return c
