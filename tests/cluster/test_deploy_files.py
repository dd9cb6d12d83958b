"""The three-machine example files in deploy/ start a working cluster
(issue 9: docs/cluster.md, "Three machines").

Each deploy/cluster-node-N.properties is used as written except for what is
machine-specific: the address 10.0.0.N with its ports 9092 (clients) and
9093 (Raft) becomes 127.0.0.1 with free ports, log.dirs moves under the
test's tmp dir, and the admin listener gets a free port. The test refuses a
file in which any of those tokens is missing, so an edit to the files cannot
silently leave this test starting something else. Then: all three register,
a topic gets RF 3 and min.insync.replicas 2 from the files' defaults, an
acks=all producer's messages all come back, and `holdfast cluster status`
names three live brokers.
"""
import json
import subprocess

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from conftest import (REPO_ROOT, Node, free_ports, holdfast_binary, metadata, wait_full_isr,
                      wait_registered, wait_until, Cluster)

MESSAGES = 500


class DeployFileNode(Node):
    """A node started as the systemd unit starts it: `holdfast serve --config FILE`."""

    def __init__(self, node_id, data_dir, config_path, client_port, raft_port):
        super().__init__(holdfast_binary(), node_id, data_dir, client_port, raft_port, "", {})
        self.config_path = config_path

    def command(self):
        return [str(self.binary), "serve", "--config", str(self.config_path)]


def localised(text, n, ports, data_dir, admin_port):
    """deploy/cluster-node-N.properties with its machine-specific values replaced."""
    for token in [f"10.0.0.{n}:9092", "log.dirs=/var/lib/holdfast", "admin.listener=127.0.0.1:9644"] + \
            [f"{i}@10.0.0.{i}:9093" for i in (1, 2, 3)]:
        assert token in text, f"cluster-node-{n}.properties no longer contains {token!r}"
    for i in (1, 2, 3):
        client, raft = ports[i]
        text = text.replace(f"10.0.0.{i}:9092", f"127.0.0.1:{client}")
        text = text.replace(f"10.0.0.{i}:9093", f"127.0.0.1:{raft}")
    text = text.replace("log.dirs=/var/lib/holdfast", f"log.dirs={data_dir}")
    text = text.replace("admin.listener=127.0.0.1:9644", f"admin.listener=127.0.0.1:{admin_port}")
    settings = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not any("10.0.0." in line for line in settings), "an address of the example machines is left"
    return text


def test_the_deploy_files_start_a_three_node_cluster(tmp_path):
    free = free_ports(9)
    ports = {i: (free[3 * (i - 1)], free[3 * (i - 1) + 1]) for i in (1, 2, 3)}
    nodes = []
    for i in (1, 2, 3):
        text = (REPO_ROOT / "deploy" / f"cluster-node-{i}.properties").read_text()
        config = tmp_path / f"node-{i}.properties"
        config.write_text(localised(text, i, ports, tmp_path / f"node-{i}", free[3 * (i - 1) + 2]))
        nodes.append(DeployFileNode(i, tmp_path / f"node-{i}", config, *ports[i]))
    cluster = Cluster(nodes)
    try:
        for n in nodes:
            n.start()
        wait_registered(cluster)

        # The files' defaults: RF 3 and min.insync.replicas=2 for a topic that names neither.
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap()})
        admin.create_topics([NewTopic("deployed", num_partitions=2)])["deployed"].result(30)
        wait_full_isr(cluster, "deployed", partitions=2)
        for n in nodes:  # every broker has applied the topic (each answers from its own image)
            wait_until(lambda: "deployed" in metadata(n.bootstrap).topics, 30,
                       message=f"the topic in node {n.node_id}'s Metadata")
            for p in metadata(n.bootstrap).topics["deployed"].partitions.values():
                assert sorted(p.replicas) == [1, 2, 3]
        described = admin.describe_configs([ConfigResource("topic", "deployed")])
        configs = list(described.values())[0].result(30)
        assert configs["min.insync.replicas"].value == "2"

        delivered, failed = [], []
        producer = Producer({"bootstrap.servers": cluster.bootstrap(), "acks": "all",
                             "enable.idempotence": True, "message.timeout.ms": 30000})
        for k in range(MESSAGES):
            producer.produce("deployed", value=f"m-{k}".encode(),
                             on_delivery=lambda err, msg: (failed if err else delivered).append(msg))
        assert producer.flush(60) == 0
        assert not failed and len(delivered) == MESSAGES

        consumer = Consumer({"bootstrap.servers": cluster.bootstrap(), "group.id": "deploy-check",
                             "auto.offset.reset": "earliest", "enable.auto.commit": False})
        consumer.subscribe(["deployed"])
        seen = set()

        def read_all():
            msg = consumer.poll(1.0)
            if msg is not None and not msg.error():
                seen.add(msg.value().decode())
            return len(seen) == MESSAGES

        wait_until(read_all, 60, interval=0, message=lambda: f"{len(seen)} of {MESSAGES} read back")
        consumer.close()
        assert seen == {f"m-{k}" for k in range(MESSAGES)}

        status = subprocess.run(
            [str(holdfast_binary()), "cluster", "status", "--bootstrap-server", cluster.bootstrap(),
             "--format", "json", "--timeout-ms", "10000"],
            capture_output=True, text=True, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        brokers = json.loads(status.stdout)["brokers"]
        assert sorted(b["id"] for b in brokers) == [1, 2, 3]
        assert [b["status"] for b in brokers] == ["alive"] * 3, brokers
    finally:
        for n in nodes:
            n.stop()
