"""`holdfast cluster status` on a single node (issue 9): it still works, shows
the broker's rack, and says the Raft columns are unavailable and why (a single
node has no metadata quorum: DescribeQuorum answers UNSUPPORTED_VERSION)."""
import copy
import json

from conftest import cli_binary
from support import run


def status(bootstrap, fmt):
    return run([str(cli_binary()), "cluster", "status", "--bootstrap-server", bootstrap,
                "--format", fmt], check=False, timeout=60)


def single_node_problems(s):
    """What is wrong with `s` for one alive broker with rack r9 and no quorum."""
    problems = []
    if len(s["brokers"]) != 1:
        problems.append(f"brokers {s['brokers']}")
    for b in s["brokers"]:
        if b["status"] != "alive" or b["rack"] != "r9":
            problems.append(f"broker {b}")
        if any(b[k] is not None for k in ("raft_role", "applied_index", "lag")):
            problems.append(f"Raft columns filled without a quorum: {b}")
    if s["raft"].get("available") or "not a cluster" not in s["raft"].get("reason", ""):
        problems.append(f"raft {s['raft']}")
    return problems


def test_single_node_status_says_raft_is_unavailable(broker_factory):
    broker = broker_factory(settings={"broker.rack": "r9"})
    result = status(broker.bootstrap, "json")
    assert result.returncode == 0, result.stderr
    s = json.loads(result.stdout)
    assert single_node_problems(s) == []
    assert s["racks_available"] is True
    assert s["controller"] == s["brokers"][0]["id"]

    # Negative controls: the checker rejects doctored copies.
    for change in (lambda d: d["raft"].update(available=True),
                   lambda d: d["brokers"][0].update(raft_role="leader"),
                   lambda d: d["brokers"][0].update(rack=None)):
        bad = copy.deepcopy(s)
        change(bad)
        assert single_node_problems(bad)

    text = status(broker.bootstrap, "text")
    assert text.returncode == 0, text.stderr
    assert "metadata quorum: unavailable" in text.stdout
    assert "not a cluster" in text.stdout
    assert "r9" in text.stdout
