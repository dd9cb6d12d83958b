"""Broker-only nodes (process.roles=broker) for cluster tests: a node that is
not among controller.quorum.voters joins the metadata quorum as a non-voting
(standby) Raft member on its CONTROLLER listener, registering through
holdfast.broker.bootstrap.servers. Also helpers that read the Raft lines a
node logs (membership changes, snapshot installs)."""
import re

from conftest import Node, free_ports, holdfast_binary, metadata, wait_until

SNAPSHOT_INSTALLED = re.compile(r"node (\d+) installed a snapshot from the leader")


def add_broker_only_node(cluster, tmp_path, node_id, settings=None):
    """Starts node `node_id` as a broker-only node of `cluster` (appended to
    cluster.nodes, so the fixture stops it) and returns it."""
    first = cluster.nodes[0]
    client_port, raft_port = free_ports(2)
    merged = dict(first.settings)
    merged.update({"process.roles": "broker",
                   "holdfast.broker.bootstrap.servers": cluster.bootstrap()})
    merged.update(settings or {})
    node = Node(holdfast_binary(), node_id, tmp_path / f"node-{node_id}", client_port, raft_port,
                first.voters, merged)
    cluster.nodes.append(node)
    node.start()
    return node


def wait_for_brokers(cluster, ids, timeout=60):
    """Every live node lists exactly `ids` as brokers in its Metadata."""
    for n in cluster.live_nodes():
        wait_until(lambda: set(metadata(n.bootstrap).brokers) == set(ids), timeout,
                   message=lambda: f"brokers {sorted(ids)} in node {n.node_id}'s Metadata\n"
                                   f"{cluster.logs()}")


def log_text(node):
    try:
        return node.log_path.read_text(errors="replace")
    except OSError:
        return ""


def membership_changes(cluster, node_id):
    """How many times any node's log says it added (raft_add) or assigned
    (raft_assign) `node_id` as a standby member."""
    pattern = re.compile(rf"metadata quorum: node \d+ (adds|assigns) node {node_id} at ")
    return sum(len(pattern.findall(log_text(n))) for n in cluster.nodes)


def snapshots_installed(node):
    """Snapshot installs (from the leader, after start) in the node's log,
    over all of its runs."""
    return sum(1 for m in SNAPSHOT_INSTALLED.finditer(log_text(node))
               if int(m.group(1)) == node.node_id)
