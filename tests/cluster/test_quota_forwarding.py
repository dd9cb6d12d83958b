"""Client quotas in a cluster (issue 11): AlterClientQuotas sent to a broker
that is not the controller is forwarded to it, and every broker then
describes the same quotas from its own copy of the metadata.

`holdfast quota` sends its requests to the first address of --brokers, so
pointing it at one node at a time decides who receives them.
"""
import json
import subprocess

from conftest import holdfast_binary, metadata, wait_until


def quota(node, *args):
    result = subprocess.run([str(holdfast_binary()), "quota", *args, "--brokers", node.bootstrap],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def listed(node):
    return json.loads(quota(node, "list", "--format", "json"))


def test_a_quota_change_sent_to_a_non_controller_reaches_every_broker(cluster):
    controller = metadata(cluster.bootstrap()).controller_id
    others = [n for n in cluster.nodes if n.node_id != controller]
    assert len(others) == 2, f"controller {controller}"

    quota(others[0], "set", "--client-id", "app", "--producer-byte-rate", "1048576")
    quota(others[1], "set", "--default", "user", "--consumer-byte-rate", "65536")
    want = sorted([
        {"entity": {"client-id": "app"}, "quotas": {"producer_byte_rate": 1048576.0}},
        {"entity": {"user": None}, "quotas": {"consumer_byte_rate": 65536.0}},
    ], key=json.dumps)
    for n in cluster.nodes:
        wait_until(lambda: sorted(listed(n), key=json.dumps) == want, 30,
                   message=lambda: f"node {n.node_id} to list {want}, it lists {listed(n)}")

    # A delete through the other non-controller reaches everyone too.
    quota(others[1], "delete", "--client-id", "app")
    for n in cluster.nodes:
        wait_until(lambda: listed(n) == [want[1]], 30,
                   message=lambda: f"node {n.node_id} to list only the default user, it lists {listed(n)}")
