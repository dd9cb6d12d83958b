"""An offset commit that cannot be replicated is answered REQUEST_TIMED_OUT
after offsets.commit.timeout.ms (Kafka's setting and answer), instead of
hanging until the client's socket timeout. The commit stays in the
coordinator's log and takes effect once the follower is back. Sent with
kafka-python's protocol classes so the broker's answer, not a client-side
timeout, is what the test sees.
"""
import signal
import time

from kafka.client_async import KafkaClient
from kafka.protocol.commit import GroupCoordinatorRequest, OffsetCommitRequest, OffsetFetchRequest

from conftest import metadata, wait_until
from test_produce_timeout import SETTINGS as STALL_SETTINGS
from test_replication import create_topic, partition_state

COMMIT_TIMEOUT_MS = 1500
CLIENT_TIMEOUT_MS = 30000
GROUP = "commit-timeout"
# One __consumer_offsets partition, so the group's partition is 0.
SETTINGS = dict(STALL_SETTINGS, **{"offsets.topic.num.partitions": 1,
                                   "offsets.commit.timeout.ms": COMMIT_TIMEOUT_MS})


def send(bootstrap, node_id, request):
    client = KafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=CLIENT_TIMEOUT_MS,
                         api_version=(2, 5))
    try:
        def connected():
            if client.ready(node_id):
                return True
            client.poll(timeout_ms=100)
            return False

        wait_until(connected, 20, message=f"a connection to node {node_id}")
        future = client.send(node_id, request)
        deadline = time.monotonic() + CLIENT_TIMEOUT_MS / 1000 + 5
        while not future.is_done and time.monotonic() < deadline:
            client.poll(timeout_ms=200, future=future)
        assert future.is_done, "no answer from the broker"
        assert future.succeeded(), f"request failed on the client: {future.exception!r}"
        return future.value
    finally:
        client.close()


def commit(node, topic, offset):
    """A simple (generation -1) commit of `offset` for partition 0; returns its error code."""
    request = OffsetCommitRequest[2](consumer_group=GROUP, consumer_group_generation_id=-1,
                                     consumer_id="", retention_time=-1,
                                     topics=[(topic, [(0, offset, "")])])
    (_, ((_, error),)), = send(node.bootstrap, node.node_id, request).topics
    return error


def committed(node, topic):
    response = send(node.bootstrap, node.node_id,
                    OffsetFetchRequest[2](consumer_group=GROUP, topics=[(topic, [0])]))
    (_, ((_, offset, _, error),)), = response.topics
    assert error == 0 and response.error_code == 0, (error, response.error_code)
    return offset


def test_a_commit_that_cannot_replicate_is_answered_request_timed_out(cluster_factory):
    cluster = cluster_factory(settings=SETTINGS)
    for n in cluster.nodes:
        wait_until(lambda: set(metadata(n.bootstrap).brokers) == {1, 2, 3}, 60,
                   message=lambda: f"all 3 brokers registered\n{cluster.logs()}")
    topic = "commit-timeout"
    create_topic(cluster, topic)
    # FindCoordinator creates __consumer_offsets (RF 3); wait until the
    # group's coordinator answers and its partition is fully replicated
    # before stalling one of its followers.
    found = {}

    def coordinator_ready():
        node = cluster.nodes[0]
        answer = send(node.bootstrap, node.node_id, GroupCoordinatorRequest[0](consumer_group=GROUP))
        if answer.error_code != 0:
            return False
        found["id"] = answer.coordinator_id
        md = metadata(node.bootstrap).topics.get("__consumer_offsets")
        return md is not None and md.partitions[0].leader == answer.coordinator_id and \
            sorted(md.partitions[0].isrs) == [1, 2, 3]

    wait_until(coordinator_ready, 60,
               message=lambda: f"a coordinator with a full ISR\n{cluster.logs()}")
    coordinator = cluster.node(found["id"])

    # Control: with every replica running, a commit is acknowledged.
    assert commit(coordinator, topic, 5) == 0
    assert committed(coordinator, topic) == 5

    follower = next(n for n in cluster.nodes if n.node_id != coordinator.node_id)
    follower.process.send_signal(signal.SIGSTOP)
    try:
        error = commit(coordinator, topic, 9)
        assert error == 7, f"expected REQUEST_TIMED_OUT (7), got {error}"
        isr = partition_state(cluster, "__consumer_offsets", 0, via=coordinator)["isr"]
        assert isr == [1, 2, 3], f"the timeout, not an ISR shrink, must end the wait: {isr}"
    finally:
        follower.process.send_signal(signal.SIGCONT)

    # The unacknowledged commit was written; it takes effect once replicated.
    wait_until(lambda: committed(coordinator, topic) == 9, 60,
               message=lambda: f"the timed-out commit replicated\n{cluster.logs()}")
