"""The random-fault soak runner (soak.py), run briefly: `make test` runs 2
rounds (a check that the runner works: faults injected, load checked, table
printed); `make soak` runs it for ~20 minutes (HOLDFAST_CLUSTER_SOAK_ROUNDS,
HOLDFAST_CLUSTER_SOAK_SECONDS, HOLDFAST_CLUSTER_SOAK_SEED; see soak.py).
"""
import pytest

from faultkit import FaultInjectedNode, wait_registered
from netsplit import proxied_cluster
import soak
import test_replication as rep


@pytest.fixture
def soak_cluster(tmp_path):
    cluster, net = proxied_cluster(tmp_path, soak.SETTINGS, node_class=FaultInjectedNode)
    try:
        yield cluster, net
    finally:
        for n in cluster.nodes:
            if n.alive():
                n.resume()  # a node left paused by a failed round stops cleanly
            n.stop()
        net.close()


def test_random_faults_one_at_a_time_lose_nothing(soak_cluster, tmp_path):
    cluster, net = soak_cluster
    settings = soak.SoakSettings(rounds=2, seconds=600)
    print(f"[soak] seed {settings.seed}")
    wait_registered(cluster)
    rep.create_topic(cluster, soak.TOPIC)
    runner = soak.Soak(cluster, net, tmp_path, settings)
    done = runner.run()
    assert done >= min(settings.rounds, 1)
    assert not runner.problems, (f"seed {settings.seed}: "
                                 + runner.table(done, 0).split("\n", 1)[1])
    for kind, c in runner.counts.items():
        assert c["replicas_identical"] == c["rounds"], (kind, c)
