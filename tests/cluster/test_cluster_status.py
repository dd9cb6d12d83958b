"""`holdfast cluster status` and the metadata quorum (issue 9): racks from
DescribeCluster, and from DescribeQuorum (asked of the active controller)
each broker's Raft role, the metadata record index it has applied and its lag
behind the commit index.

The checker (`quorum_problems`) is run on doctored copies of a good status
too (two leaders, a live broker behind, a wrong rack, no commit index), which
it must reject.
"""
import copy
import json
import socket
import struct
import subprocess

from confluent_kafka.admin import AdminClient, NewTopic

from conftest import (SESSION_TIMEOUT_MS, Node, holdfast_binary, metadata, wait_registered,
                      wait_until)


def rack_of(node_id):
    return f"rack-{node_id}"


class RackedNode(Node):
    """A node started with broker.rack=rack-<id>."""

    def command(self):
        return super().command() + ["--set", f"broker.rack={rack_of(self.node_id)}"]


def advertised_versions(node):
    """ApiVersions v0 asked of `node` over a raw socket: {api_key: (min, max)}."""
    client_id = b"status-test"
    body = struct.pack(">hhih", 18, 0, 1, len(client_id)) + client_id
    with socket.create_connection(("127.0.0.1", node.client_port), timeout=10) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
            chunk = sock.recv(65536)
            assert chunk, "connection closed before the ApiVersions answer"
            data += chunk
    _size, _correlation, error, count = struct.unpack(">iihi", data[:14])
    assert error == 0
    entries = [struct.unpack(">hhh", data[14 + 6 * i:20 + 6 * i]) for i in range(count)]
    return {key: (low, high) for key, low, high in entries}


def cluster_status(bootstrap, fmt="json"):
    return subprocess.run(
        [str(holdfast_binary()), "cluster", "status", "--bootstrap-server", bootstrap,
         "--format", fmt, "--timeout-ms", "10000"],
        capture_output=True, text=True, timeout=60)


def status_json(bootstrap):
    result = cluster_status(bootstrap)
    assert result.returncode in (0, 3), result.stderr
    return json.loads(result.stdout)


def quorum_problems(status, alive, down=()):
    """What is wrong with `status` for a cluster of nodes 1..3 where `alive`
    run (each registered, unfenced and caught up with the commit index) and
    `down` are killed. An empty list: nothing."""
    problems = []
    brokers = {b["id"]: b for b in status["brokers"]}
    if set(brokers) != {1, 2, 3}:
        problems.append(f"brokers {sorted(brokers)}, expected 1..3")
    raft = status.get("raft", {})
    if not raft.get("available"):
        return problems + [f"raft unavailable: {raft.get('reason')}"]
    commit = raft["commit_index"]
    if not commit or commit <= 0:
        problems.append(f"commit index {commit}")
    leaders = [i for i, b in brokers.items() if b["raft_role"] == "leader"]
    if len(leaders) != 1:
        problems.append(f"Raft leaders {leaders}, expected exactly one")
    elif not (leaders[0] == status["controller"] == raft["leader"]):
        problems.append(f"leader {leaders[0]}, controller {status['controller']}, "
                        f"raft leader {raft['leader']}: not one node")
    for i, b in brokers.items():
        if b["raft_role"] not in ("leader", "voter"):
            problems.append(f"broker {i}: role {b['raft_role']} (all three are voters)")
    for i in alive:
        b = brokers.get(i, {})
        if b.get("status") != "alive":
            problems.append(f"broker {i}: {b.get('status')}, expected alive")
        if b.get("rack") != rack_of(i):
            problems.append(f"broker {i}: rack {b.get('rack')!r}, expected {rack_of(i)!r}")
        if b.get("applied_index") != commit or b.get("lag") != 0:
            problems.append(f"broker {i}: applied {b.get('applied_index')}, lag {b.get('lag')}, "
                            f"commit index {commit}")
    for i in down:
        b = brokers.get(i, {})
        if b.get("status") != "fenced-or-down":
            problems.append(f"broker {i}: {b.get('status')}, expected fenced-or-down")
        if b.get("applied_index") is None or b["applied_index"] >= commit or not b.get("lag"):
            problems.append(f"broker {i}: applied {b.get('applied_index')}, lag {b.get('lag')}, "
                            f"commit index {commit}: a dead broker cannot be caught up")
    return problems


def settled(bootstrap, alive, down=()):
    """The status once `quorum_problems` finds nothing (else None)."""
    status = status_json(bootstrap)
    return status if not quorum_problems(status, alive, down) else None


def test_cluster_status_shows_racks_raft_roles_and_applied_indexes(cluster_factory):
    cluster = cluster_factory(node_class=RackedNode)
    wait_registered(cluster)
    everyone = [1, 2, 3]
    last = {}

    def all_caught_up():
        last["status"] = status_json(cluster.bootstrap())
        return last["status"] if not quorum_problems(last["status"], everyone) else None

    status = wait_until(all_caught_up, 60, message=lambda: "every broker caught up: "
                        + "; ".join(quorum_problems(last["status"], everyone))
                        + "\n" + cluster.logs())
    controller = status["controller"]
    assert status["raft"]["term"] >= 1
    # Every cluster node advertises DescribeQuorum v0-1 (a single node does not).
    for node in cluster.nodes:
        assert advertised_versions(node).get(55) == (0, 1), node.node_id

    # Negative controls: the checker rejects doctored copies of this status.
    def doctored(change):
        bad = copy.deepcopy(status)
        change(bad)
        return quorum_problems(bad, everyone)

    follower = next(i for i in everyone if i != controller)
    assert doctored(lambda s: next(b for b in s["brokers"] if b["id"] == follower)
                    .update(raft_role="leader"))  # two leaders
    assert doctored(lambda s: next(b for b in s["brokers"] if b["id"] == follower)
                    .update(applied_index=s["raft"]["commit_index"] - 1, lag=1))
    assert doctored(lambda s: next(b for b in s["brokers"] if b["id"] == follower)
                    .update(rack="rack-9"))
    assert doctored(lambda s: s["raft"].update(commit_index=0))
    assert doctored(lambda s: s["raft"].update(available=False, reason="doctored"))

    # The text form has the same columns and the quorum line.
    text = cluster_status(cluster.bootstrap(), "text")
    assert text.returncode == 0, text.stderr
    assert "RACK" in text.stdout and "RAFT" in text.stdout and "LAG" in text.stdout
    assert rack_of(follower) in text.stdout
    assert f"metadata quorum: leader {controller}, term " in text.stdout

    # kill -9 a broker that is not the controller: fenced or down, and its
    # applied index stops while the commit index moves on.
    victim = cluster.node(follower)
    victim.kill()
    alive = [i for i in everyone if i != follower]
    watcher = cluster.node(controller)

    def fenced():
        last["status"] = status_json(watcher.bootstrap)
        return last["status"] if not quorum_problems(last["status"], alive, [follower]) else None

    status = wait_until(fenced, SESSION_TIMEOUT_MS / 1000 + 30,
                        message=lambda: "the victim fenced, the others caught up: "
                        + "; ".join(quorum_problems(last["status"], alive, [follower]))
                        + "\n" + cluster.logs())
    stopped_at = next(b for b in status["brokers"] if b["id"] == follower)["applied_index"]
    commit_then = status["raft"]["commit_index"]
    admin = AdminClient({"bootstrap.servers": watcher.bootstrap})
    admin.create_topics([NewTopic("after-the-kill", 1, 2)])["after-the-kill"].result(30)

    def moved_on():
        last["status"] = status_json(watcher.bootstrap)
        s = last["status"]
        return s if (s["raft"].get("commit_index", -1) > commit_then
                     and not quorum_problems(s, alive, [follower])) else None

    status = wait_until(moved_on, 30, message=lambda: "the commit index moving on: "
                        + json.dumps(last["status"]))
    victim_row = next(b for b in status["brokers"] if b["id"] == follower)
    assert victim_row["applied_index"] == stopped_at
    assert victim_row["lag"] == status["raft"]["commit_index"] - stopped_at > 0

    # Restarted: it catches up and is alive again.
    victim.start()
    wait_until(lambda: settled(watcher.bootstrap, everyone), 60,
               message=lambda: "the victim caught up after its restart: "
               + "; ".join(quorum_problems(status_json(watcher.bootstrap), everyone))
               + "\n" + cluster.logs())
