"""An acks=all produce that cannot be replicated is answered REQUEST_TIMED_OUT
at the request's own timeout_ms (Kafka's DelayedProduce), instead of hanging
until the client gives up on the socket. The batch stays in the leader's log
(it was never acknowledged) and reaches every replica once the follower is
back. Sent with kafka-python's protocol classes so the broker's answer, not a
client-side timeout, is what the test sees.
"""
import signal
import time

from kafka.client_async import KafkaClient
from kafka.protocol.produce import ProduceRequest
from kafka.record.memory_records import MemoryRecordsBuilder

from conftest import wait_full_isr, wait_registered, wait_until
from test_replication import consume_all, create_topic, partition_state

# Long enough that the stopped follower stays in the ISR for the whole test
# (neither its lag nor its missed heartbeats take it out): the timeout, not an
# ISR shrink, is what must end the wait.
SETTINGS = {"replica.lag.time.max.ms": 60000, "broker.session.timeout.ms": 60000}
BROKER_TIMEOUT_MS = 1500
CLIENT_TIMEOUT_MS = 30000


def connect_raw(bootstrap, node_id):
    """A kafka-python client with a ready connection to `node_id`."""
    client = KafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=CLIENT_TIMEOUT_MS,
                         api_version=(2, 5))

    def connected():
        if client.ready(node_id):
            return True
        client.poll(timeout_ms=100)
        return False

    wait_until(connected, 20, message=f"a connection to node {node_id}")
    return client


def produce_raw(bootstrap, node_id, topic, value, timeout_ms, client=None):
    """One ProduceRequest v3 (acks=-1) to `node_id`, over `client` if given
    (connect_raw; closed here), else a new connection; returns (error_code,
    base_offset) from the broker's answer."""
    try:
        if client is None:
            client = connect_raw(bootstrap, node_id)
        builder = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20)
        builder.append(timestamp=int(time.time() * 1000), key=None, value=value.encode())
        builder.close()
        request = ProduceRequest[3](transactional_id=None, required_acks=-1, timeout=timeout_ms,
                                    topics=[(topic, [(0, builder.buffer())])])
        future = client.send(node_id, request)
        deadline = time.monotonic() + CLIENT_TIMEOUT_MS / 1000 + 5
        while not future.is_done and time.monotonic() < deadline:
            client.poll(timeout_ms=200, future=future)
        assert future.is_done, "no answer from the broker"
        assert future.succeeded(), f"request failed on the client: {future.exception!r}"
        (_, partitions), = future.value.topics
        (_, error_code, base_offset, *_), = partitions
        return error_code, base_offset
    finally:
        if client is not None:
            client.close()


def test_acks_all_that_cannot_replicate_is_answered_request_timed_out(cluster_factory):
    cluster = cluster_factory(settings=SETTINGS)
    wait_registered(cluster)
    topic = "produce-timeout"
    create_topic(cluster, topic)
    wait_full_isr(cluster, topic, timeout=30)
    leader_id = partition_state(cluster, topic, 0)["leader"]
    leader = cluster.node(leader_id)

    # Control: with every replica running, the same request is acknowledged.
    error, offset = produce_raw(leader.bootstrap, leader_id, topic, "replicated", BROKER_TIMEOUT_MS)
    assert (error, offset) == (0, 0), (error, offset)

    follower = next(n for n in cluster.nodes if n.node_id != leader_id)
    follower.process.send_signal(signal.SIGSTOP)
    try:
        error, offset = produce_raw(leader.bootstrap, leader_id, topic, "stalled",
                                    BROKER_TIMEOUT_MS)
        assert error == 7, f"expected REQUEST_TIMED_OUT (7), got error {error} offset {offset}"
        assert offset == -1
        assert partition_state(cluster, topic, 0, via=leader)["isr"] == [1, 2, 3]
    finally:
        follower.process.send_signal(signal.SIGCONT)

    # The unacknowledged batch was written; once the follower fetches again it
    # is committed like any other and every replica has both records.
    wait_until(lambda: len(consume_all(cluster.bootstrap(), topic, 1)) == 2, 60,
               message=lambda: f"both records committed\n{cluster.logs()}")
    consumed = consume_all(cluster.bootstrap(), topic, 1)
    assert [c[2] for c in consumed] == ["replicated", "stalled"], consumed
