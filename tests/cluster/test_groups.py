"""Consumer groups on a 3-node cluster (issue 9, scenario 6): the group
coordinator is the leader of the group's __consumer_offsets partition; a
commit is acknowledged only once it is on every in-sync replica, so killing
that leader (kill -9) loses no acknowledged commit, and the group resumes from
its committed offsets on the new coordinator: every acknowledged message is
consumed (lost 0) and the only duplicates are what was consumed after the last
acknowledged commit.
"""
import time

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from conftest import metadata, wait_full_isr, wait_registered, wait_until
from test_replication import create_topic, produce

OFFSETS_TOPIC = "__consumer_offsets"
PARTITIONS = 3
MESSAGES = 3000


def java_string_hash(s):
    h = 0
    for ch in s:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    return h - (1 << 32) if h & 0x80000000 else h


def offsets_partition(group, partitions):
    """The __consumer_offsets partition of `group` (Kafka's hash, as Holdfast's
    coordinator::partition_for_group)."""
    h = java_string_hash(group)
    return (0 if h == -(1 << 31) else abs(h)) % partitions


def coordinator_of(cluster, group, via=None):
    md = metadata(via.bootstrap if via else cluster.bootstrap())
    topic = md.topics.get(OFFSETS_TOPIC)
    if topic is None or not topic.partitions:
        return -1
    return topic.partitions[offsets_partition(group, len(topic.partitions))].leader


def group_consumer(bootstrap, group):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "enable.auto.commit": False, "auto.offset.reset": "earliest",
                     "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000,
                     "socket.timeout.ms": 5000})


class Tracker:
    """What a consumer read and which of its commits were acknowledged."""

    def __init__(self):
        self.consumed = []          # (partition, offset)
        self.acked_commit = {}      # partition -> offset of the latest acknowledged commit
        self.commit_errors = []
        self.dirty = False          # consumed past the latest acknowledged commit

    def poll_and_commit(self, consumer, count_wanted, timeout_s):
        """Consumes up to `count_wanted` messages, committing (synchronously)
        after every poll; bounded by `timeout_s`."""
        got = 0
        deadline = time.monotonic() + timeout_s
        while got < count_wanted and time.monotonic() < deadline:
            msgs = consumer.consume(50, 1.0)
            fresh = [m for m in msgs if m.error() is None]
            for m in fresh:
                self.consumed.append((m.partition(), m.offset()))
            got += len(fresh)
            self.dirty = self.dirty or bool(fresh)
            if not self.dirty:
                continue
            try:
                done = consumer.commit(asynchronous=False)
            except KafkaException as e:  # NOT_COORDINATOR etc. while it moves
                self.commit_errors.append(str(e))
                continue
            self.dirty = False
            for tp in done or []:
                if tp.error is None and tp.offset >= 0:
                    self.acked_commit[tp.partition] = max(self.acked_commit.get(tp.partition, 0),
                                                          tp.offset)
        return got


def restart_all(cluster):
    """Stops every node (SIGTERM) and starts them again on their data."""
    for n in cluster.nodes:
        n.stop()
    for n in cluster.nodes:
        n.start()
    wait_registered(cluster)


@pytest.mark.parametrize("restarted", [False, True], ids=["fresh", "restarted"])
def test_group_resumes_from_acknowledged_commits_after_killing_its_coordinator(cluster, restarted):
    topic = "work"
    group = "billing"
    create_topic(cluster, topic, partitions=PARTITIONS)
    wait_full_isr(cluster, topic, partitions=PARTITIONS, timeout=30)
    acked, errors = produce(cluster.bootstrap(), topic, [f"m-{i}" for i in range(MESSAGES)])
    assert not errors and len(acked) == MESSAGES
    if restarted:
        # __consumer_offsets exists (FindCoordinator creates it on first use)
        # and every node opens its replicas of it at start-up.
        probe = group_consumer(cluster.bootstrap(), "probe")
        probe.subscribe([topic])
        wait_until(lambda: probe.consume(1, 0.5) is not None and coordinator_of(cluster, group) > 0,
                   60, message=lambda: f"{OFFSETS_TOPIC} created\n{cluster.logs()}")
        probe.close()
        restart_all(cluster)
        wait_full_isr(cluster, topic, partitions=PARTITIONS)
    ends = {p: 0 for p in range(PARTITIONS)}
    for p, o in acked.values():
        ends[p] = max(ends[p], o + 1)

    first = Tracker()
    a = group_consumer(cluster.bootstrap(), group)
    a.subscribe([topic])
    try:
        first.poll_and_commit(a, MESSAGES // 3, 90)
        assert first.acked_commit, f"no commit acknowledged before the kill\n{cluster.logs()}"
        before_kill = dict(first.acked_commit)

        coordinator = coordinator_of(cluster, group)
        assert coordinator in (1, 2, 3), coordinator
        cluster.node(coordinator).kill()
        survivors = [n for n in cluster.nodes if n.node_id != coordinator]
        wait_until(lambda: coordinator_of(cluster, group, via=survivors[0]) not in (-1, coordinator),
                   30, message=lambda: f"a new coordinator after killing {coordinator}\n{cluster.logs()}")

        # The same member carries on against the new coordinator: its commits
        # are acknowledged again once the partition is loaded there.
        second = Tracker()
        second.acked_commit = dict(first.acked_commit)
        wait_until(lambda: second.poll_and_commit(a, 100, 5) >= 0 and
                   any(second.acked_commit.get(p, 0) > before_kill.get(p, 0)
                       for p in range(PARTITIONS)), 90,
                   message=lambda: f"a commit acknowledged by the new coordinator "
                                   f"(errors {second.commit_errors[-3:]})\n{cluster.logs()}")
        consumed_by_a = first.consumed + second.consumed
        last_acked = second.acked_commit
    finally:
        a.close()

    # A new member of the group starts where the acknowledged commits say.
    b = group_consumer(cluster.bootstrap(survivors), group)
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        committed = wait_until(lambda: b.committed(tps, timeout=10), 60,
                               message="the group's committed offsets")
        committed = {tp.partition: tp.offset for tp in committed}
        for p, offset in last_acked.items():
            assert committed[p] >= offset, \
                f"{topic}-{p}: commit of {offset} was acknowledged, the group has {committed[p]}"
        b.subscribe([topic])
        consumed_by_b = []
        position = {}
        deadline = time.monotonic() + 90
        while any(position.get(p, committed[p] if committed[p] >= 0 else 0) < ends[p]
                  for p in range(PARTITIONS)) and time.monotonic() < deadline:
            for m in b.consume(200, 1.0):
                if m.error() is None:
                    consumed_by_b.append((m.partition(), m.offset()))
                    position[m.partition()] = m.offset() + 1
    finally:
        b.close()

    # B resumed exactly at the committed offsets (nothing re-read below them).
    for p in range(PARTITIONS):
        first_of_b = min((o for q, o in consumed_by_b if q == p), default=None)
        if committed[p] >= 0 and first_of_b is not None:
            assert first_of_b == committed[p], f"{topic}-{p}: resumed at {first_of_b}, committed {committed[p]}"

    # Lost 0: every acknowledged message was consumed by the group.
    seen = set(consumed_by_a) | set(consumed_by_b)
    lost = [(p, o) for p, o in acked.values() if (p, o) not in seen]
    assert not lost, f"lost {len(lost)} acknowledged messages, e.g. {lost[:5]}"
    # Duplicates only from the uncommitted window: what A read at or past the
    # last commit acknowledged before the kill. A whose session times out
    # while the coordinator moves (librdkafka: "Consumer group session timed
    # out") rejoins and re-reads from the commit the new coordinator has, at or
    # past that one; B re-reads at or past the group's final commit. Nothing
    # below an acknowledged commit may come twice.
    window = sum(1 for p, o in consumed_by_a if o >= before_kill.get(p, 0))
    duplicates = len(consumed_by_a) + len(consumed_by_b) - len(seen)
    assert duplicates <= window, f"{duplicates} duplicates, uncommitted window {window}"


def test_kafka_python_group_keeps_its_acknowledged_commits_across_a_coordinator_kill(cluster):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTopicPartition
    from kafka.errors import KafkaError

    topic = "work-kp"
    group = "kp-group"
    create_topic(cluster, topic, partitions=PARTITIONS)
    acked, errors = produce(cluster.bootstrap(), topic, [f"k-{i}" for i in range(MESSAGES)])
    assert not errors and len(acked) == MESSAGES

    def consumer(bootstrap):
        return KafkaConsumer(topic, bootstrap_servers=bootstrap.split(","), group_id=group,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             session_timeout_ms=6000, heartbeat_interval_ms=1000,
                             request_timeout_ms=15000, api_version=(2, 5))

    consumed = []
    acked_commit = {}

    def poll_and_commit(c, wanted, timeout_s):
        got = 0
        pending = {}
        deadline = time.monotonic() + timeout_s
        while got < wanted and time.monotonic() < deadline:
            for tp, records in c.poll(timeout_ms=1000, max_records=50).items():
                for r in records:
                    consumed.append((tp.partition, r.offset))
                    pending[tp.partition] = r.offset + 1
                    got += 1
            if not pending:
                continue
            try:
                c.commit()  # synchronous: the positions of every assigned partition
            except KafkaError:
                continue
            for p, o in pending.items():
                acked_commit[p] = max(acked_commit.get(p, 0), o)
            pending = {}
        return got

    a = consumer(cluster.bootstrap())
    try:
        poll_and_commit(a, MESSAGES // 3, 90)
        assert acked_commit, f"no commit acknowledged before the kill\n{cluster.logs()}"
        before_kill = dict(acked_commit)
        coordinator = coordinator_of(cluster, group)
        cluster.node(coordinator).kill()
        survivors = [n for n in cluster.nodes if n.node_id != coordinator]
        wait_until(lambda: poll_and_commit(a, 100, 5) >= 0 and
                   any(acked_commit.get(p, 0) > before_kill.get(p, 0) for p in range(PARTITIONS)),
                   90, message=lambda: f"a commit acknowledged by the new coordinator\n{cluster.logs()}")
    finally:
        a.close(autocommit=False)

    b = consumer(cluster.bootstrap(survivors))
    try:
        committed = {}
        for p in range(PARTITIONS):
            committed[p] = wait_until(lambda: b.committed(KTopicPartition(topic, p)) is not None
                                      or p not in acked_commit, 60,
                                      message=f"committed offset of {topic}-{p}") and \
                b.committed(KTopicPartition(topic, p))
        for p, offset in acked_commit.items():
            assert committed[p] is not None and committed[p] >= offset, \
                f"{topic}-{p}: commit of {offset} was acknowledged, the group has {committed[p]}"
        ends = {p: 0 for p in range(PARTITIONS)}
        for p, o in acked.values():
            ends[p] = max(ends[p], o + 1)
        seen_b = set()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            for tp, records in b.poll(timeout_ms=1000, max_records=500).items():
                for r in records:
                    seen_b.add((tp.partition, r.offset))
            if all(any(q == p and o == ends[p] - 1 for q, o in seen_b) or
                   (committed.get(p) or 0) >= ends[p] for p in range(PARTITIONS)):
                break
    finally:
        b.close(autocommit=False)
    seen = set(consumed) | seen_b
    lost = [(p, o) for p, o in acked.values() if (p, o) not in seen]
    assert not lost, f"lost {len(lost)} acknowledged messages, e.g. {lost[:5]}"
