"""Group coordinator failover with three members (issue 9 test 6): three
members of one group consume a 3-partition topic concurrently, each
committing synchronously after every batch it processed; the leader of the
group's __consumer_offsets partition (the coordinator) is killed with
SIGKILL mid-way. The group moves to the new coordinator and carries on from
its committed offsets.

Checked (group_history_counts, which counts so the negative controls can
run on doctored copies):
- lost 0: every acknowledged message was processed by some member;
- the group's committed offsets, sampled from the coordinator (OffsetFetch)
  all along and returned by every acknowledged commit, never go backwards,
  and none is below a commit acknowledged earlier;
- duplicates only from the uncommitted window: when a message is processed
  again, no member that processed it before had an acknowledged commit past
  it (a committed message is never redelivered).
Negative controls: a skipped message, a committed offset moved back, and a
committed message redelivered must each be caught.
"""
import threading
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

from conftest import wait_until
from test_groups import coordinator_of, group_consumer
from test_replication import create_topic, produce
import faultkit

TOPIC = "work-3"
GROUP = "three-members"
PARTITIONS = 3
MESSAGES = 3000
MEMBERS = 3
BATCH = 10
PAUSE_S = 0.05        # per batch: the members take ~15 s for the whole topic
MAX_SECONDS = 240     # bound on every member loop


class Member:
    """One group member on its own thread: consume up to BATCH, record what
    it processed, commit synchronously, record the acknowledged commit."""

    def __init__(self, index, bootstrap, log):
        self.index, self.bootstrap, self.log = index, bootstrap, log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.commit_errors = []
        self.error = None

    def _run(self):
        consumer = group_consumer(self.bootstrap, GROUP)
        try:
            consumer.subscribe([TOPIC])
            start = time.monotonic()
            dirty = False
            while not self._stop.is_set() and time.monotonic() - start < MAX_SECONDS:
                fresh = [m for m in consumer.consume(BATCH, 0.5) if m.error() is None]
                for m in fresh:
                    self.log.read(self.index, m.partition(), m.offset(), m.value().decode())
                dirty = dirty or bool(fresh)
                if dirty:
                    asked = self.log.mark()
                    try:
                        done = consumer.commit(asynchronous=False)
                    except KafkaException as e:  # NOT_COORDINATOR etc. while it moves
                        self.commit_errors.append(str(e))
                        continue
                    dirty = False
                    self.log.committed(self.index, [(tp.partition, tp.offset) for tp in done or []
                                                    if tp.error is None and tp.offset >= 0],
                                       asked)
                if fresh:
                    time.sleep(PAUSE_S)
        except BaseException as e:  # reported by stop()
            self.error = e
        finally:
            consumer.close()

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(60)
        assert not self._thread.is_alive(), f"member {self.index} did not stop"
        if self.error:
            raise self.error


class GroupLog:
    """The group's history in the order it was logged: reads (member,
    partition, offset, value), acknowledged commits and samples of the
    committed offsets taken from the coordinator with OffsetFetch. A commit
    or sample is logged when its answer arrived, with the log position at
    which it was asked (`mark()`): ("commit", member, partition, offset,
    asked) and ("sample", None, partition, offset, asked)."""

    def __init__(self):
        self._lock = threading.Lock()
        self.events = []

    def mark(self):
        with self._lock:
            return len(self.events)

    def read(self, member, partition, offset, value):
        with self._lock:
            self.events.append(("read", member, partition, offset, value))

    def committed(self, member, positions, asked):
        with self._lock:
            self.events += [("commit", member, p, o, asked) for p, o in positions]

    def sampled(self, positions, asked):
        with self._lock:
            self.events += [("sample", None, p, o, asked) for p, o in positions]

    def snapshot(self):
        with self._lock:
            return list(self.events)

    def reads(self):
        return [e for e in self.snapshot() if e[0] == "read"]

    def commits(self):
        return [e for e in self.snapshot() if e[0] == "commit"]


def group_history_counts(acked, events):
    """lost: acknowledged (partition, offset) never read. backwards: a
    committed offset (an acknowledged commit or a sample) below one that was
    answered before it was asked for (real-time order: operations that
    overlap are not compared). redelivered: a read of a position that a
    member which had read it before had already covered with an acknowledged
    commit (a duplicate outside the uncommitted window). duplicates: every
    repeated read; with redelivered 0 each of them was a re-read of a
    position no earlier reader had an acknowledged commit past (the
    uncommitted window: e.g. a member whose commit failed while the
    coordinator moved reads its batch again from the committed offset)."""
    ops = {}                     # partition -> [(answered at, asked at, offset, event)]
    for at, e in enumerate(events):
        if e[0] != "read":
            ops.setdefault(e[2], []).append((at, e[4], e[3], e))
    backwards, backwards_examples = 0, []
    for p, items in ops.items():
        items.sort()
        best, best_event, i = -1, None, 0
        for _, asked, o, e in sorted(items, key=lambda x: x[1]):
            while i < len(items) and items[i][0] < asked:  # answered before e was asked
                if items[i][2] > best:
                    best, best_event = items[i][2], items[i][3]
                i += 1
            if o < best:
                backwards += 1
                backwards_examples.append((best_event[:4], e[:4]))
    member_commit = {}           # (member, partition) -> highest acknowledged commit
    first_reads = {}             # (partition, offset) -> [member, ...] that read it
    redelivered, duplicates = 0, 0
    for kind, member, p, o, _ in events:
        if kind == "commit":
            member_commit[(member, p)] = max(member_commit.get((member, p), -1), o)
        elif kind == "read":
            readers = first_reads.setdefault((p, o), [])
            if readers:
                duplicates += 1
                if any(member_commit.get((r, p), -1) > o for r in readers):
                    redelivered += 1
            readers.append(member)
    seen = set(first_reads)
    lost = [at for at in acked.values() if at not in seen]
    return {"lost": len(lost), "backwards": backwards, "redelivered": redelivered,
            "duplicates": duplicates, "lost_examples": lost[:5],
            "backwards_examples": backwards_examples[:5]}


def test_three_members_resume_from_committed_offsets_after_killing_the_coordinator(cluster, tmp_path):
    create_topic(cluster, TOPIC, partitions=PARTITIONS)
    faultkit.wait_full_isr(cluster, TOPIC, partitions=PARTITIONS)
    acked = {}
    for part in range(PARTITIONS):  # the sticky partitioner could leave a partition empty
        done, errors = produce(cluster.bootstrap(), TOPIC,
                               [f"g-{part}-{i}" for i in range(MESSAGES // PARTITIONS)],
                               partition=part)
        assert not errors and len(done) == MESSAGES // PARTITIONS
        acked.update(done)
    ends = {p: 1 + max(o for q, o in acked.values() if q == p) for p in range(PARTITIONS)}

    log = GroupLog()
    members = [Member(i, cluster.bootstrap(), log).start() for i in range(MEMBERS)]
    observer = Consumer({"bootstrap.servers": cluster.bootstrap(), "group.id": GROUP,
                         "enable.auto.commit": False, "socket.timeout.ms": 5000})
    tps = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
    sampling = threading.Event()

    def sample_loop():
        deadline = time.monotonic() + MAX_SECONDS
        while not sampling.is_set() and time.monotonic() < deadline:
            try:
                asked = log.mark()
                got = observer.committed(tps, timeout=5)
                log.sampled([(tp.partition, tp.offset) for tp in got
                             if tp.error is None and tp.offset >= 0], asked)
            except KafkaException:  # the coordinator is moving
                pass
            sampling.wait(0.2)

    sampler = threading.Thread(target=sample_loop, daemon=True)
    try:
        # All three members have processed and committed before the kill.
        wait_until(lambda: {e[1] for e in log.commits()} == set(range(MEMBERS))
                   and len(log.reads()) >= MESSAGES // 4, 90,
                   message=lambda: f"three members committing (reads {len(log.reads())},"
                   f" committers {sorted({e[1] for e in log.commits()})})\n{cluster.logs()}")
        sampler.start()
        coordinator = coordinator_of(cluster, GROUP)
        assert coordinator in (1, 2, 3), coordinator
        commits_before = len(log.commits())
        cluster.node(coordinator).kill()
        survivors = [n for n in cluster.nodes if n.node_id != coordinator]
        wait_until(lambda: coordinator_of(cluster, GROUP, via=survivors[0]) not in (-1, coordinator),
                   30, message=lambda: f"a new coordinator after killing {coordinator}\n{cluster.logs()}")
        wait_until(lambda: len(log.commits()) > commits_before, 90,
                   message=lambda: f"a commit acknowledged by the new coordinator\n{cluster.logs()}")
        # The group finishes the topic and commits its ends.
        wait_until(lambda: all(max((e[3] for e in log.commits() if e[2] == p), default=-1)
                               >= ends[p] for p in range(PARTITIONS)), 120,
                   message=lambda: f"the group committing every partition's end {ends}"
                   f"\n{cluster.logs()}")
    finally:
        sampling.set()
        for m in members:
            m.stop()
        if sampler.is_alive():
            sampler.join(30)
        observer.close()

    events = log.snapshot()
    (tmp_path / "group-events.txt").write_text("\n".join(map(repr, events)))
    counts = group_history_counts(acked, events)
    assert counts["lost"] == 0, counts
    assert counts["backwards"] == 0, counts
    assert counts["redelivered"] == 0, counts  # duplicates only from the uncommitted window
    assert any(e[0] == "sample" for e in events), "no committed offsets sampled"

    # Negative controls: the checker catches a doctored history.
    reads = [i for i, e in enumerate(events) if e[0] == "read" and (e[2], e[3]) in
             set(acked.values())]
    skipped = [e for e in events if not (e[0] == "read" and (e[2], e[3]) == events[reads[0]][2:4])]
    assert group_history_counts(acked, skipped)["lost"] == 1
    read_i, commit_i = next((i, j) for i, r in enumerate(events) if r[0] == "read"
                            for j in range(i + 1, len(events))
                            if events[j][0] == "commit" and events[j][1:3] == r[1:3]
                            and events[j][3] > r[3])
    _, member, p, o, value = events[read_i]
    moved_back = events + [("sample", None, p, events[commit_i][3] - 1, len(events))]
    assert group_history_counts(acked, moved_back)["backwards"] >= 1
    redelivered = events + [("read", (member + 1) % MEMBERS, p, o, value)]
    assert group_history_counts(acked, redelivered)["redelivered"] == 1
    print(f"[group-coordinator] killed coordinator {coordinator}; {counts};"
          f" commit errors {sum(len(m.commit_errors) for m in members)}")
