"""Random-fault soak of a 3-node cluster (issue 9, `make soak`): a seeded
runner that, round after round, injects ONE fault chosen at random on a node
chosen at random by role, under load, and counts per fault kind.

Faults (FAULTS): kill -9 and restart; SIGSTOP past the session timeout (until
the others fence it) and SIGCONT; network partition (netsplit.py: the node
cut off from the other two, clients still reach it) and heal; power loss
(`serve --fault-injection`, SIGUSR1: unsynced writes dropped) and restart.
Roles: the leader of the test partition, a follower of it, or the controller
(the Raft leader; it may also lead the partition).

Load in every round: an idempotent acks=all confluent-kafka producer on the
partition `soak-0` (its own value prefix per round) and one `holdfast verify`
run on a fresh 3-partition topic (idempotent acks=all producer, a consumer
group of two processes committing after each batch, drain, verify's checker).

Checked per round, once the fault is healed and the ISR is full again:
faultkit's checker on what the round's producer acknowledged (read from the
round's first offset), verify's report, and every replica of the round's
partitions byte-identical (waited for: the nodes keep running). Counted per
fault kind: rounds, lost, duplicates, inconsistent (two values at an offset,
or a value at another offset than acknowledged), replicas identical, and
verify's lost / inconsistent / log duplicates / unseen by the group.

Seed, rounds and time bound come from the environment (SoakSettings).
"""
import json
import os
import random
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from conftest import wait_until
from faultkit import (BackgroundProducer, history_counts, leader_of, replicas_differ,
                      wait_full_isr)
from workloads import VerifyLoop, verify_problems
import test_replication as rep

FAULTS = ["kill", "pause", "netsplit", "power-loss"]
ROLES = ["leader", "follower", "controller"]
TOPIC = "soak"
VERIFY_PARTITIONS = 3
SETTINGS = {"replica.lag.time.max.ms": 3000, "flush.policy": "always"}
STALL_WAIT_S = 30  # see Soak.inject


class SoakSettings:
    """HOLDFAST_CLUSTER_SOAK_SEED (default: from the clock, printed),
    HOLDFAST_CLUSTER_SOAK_ROUNDS (default `rounds`), HOLDFAST_CLUSTER_SOAK_SECONDS
    (default `seconds`: no round starts after that), HOLDFAST_CLUSTER_SOAK_RESULTS
    (a file the per-kind table is appended to), HOLDFAST_CLUSTER_SOAK_FAULTS
    (comma-separated subset of FAULTS; default all)."""

    def __init__(self, rounds, seconds):
        env = os.environ
        self.seed = int(env.get("HOLDFAST_CLUSTER_SOAK_SEED") or time.time_ns() % 1_000_000_007)
        self.rounds = int(env.get("HOLDFAST_CLUSTER_SOAK_ROUNDS", rounds))
        self.seconds = float(env.get("HOLDFAST_CLUSTER_SOAK_SECONDS", seconds))
        self.results = env.get("HOLDFAST_CLUSTER_SOAK_RESULTS")
        self.faults = [f for f in env.get("HOLDFAST_CLUSTER_SOAK_FAULTS", "").split(",") if f] \
            or list(FAULTS)
        assert set(self.faults) <= set(FAULTS), f"unknown faults in {self.faults}"


def consume_from(bootstrap, topic, partition, start, timeout_s=60):
    """[(partition, offset, value)] from `start` up to the high watermark at
    the time of the call (bounded in time)."""
    end = high_watermark(bootstrap, topic, partition)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"soak-{time.time_ns()}",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, partition, start)])
    out, position = [], start
    deadline = time.monotonic() + timeout_s
    try:
        while position < end and time.monotonic() < deadline:
            for msg in consumer.consume(500, 1.0):
                if msg.error() is None:
                    out.append((msg.partition(), msg.offset(), msg.value().decode()))
                    position = msg.offset() + 1
    finally:
        consumer.close()
    assert position >= end, f"read {topic}-{partition} to {position}, high watermark {end}"
    return out


def high_watermark(bootstrap, topic, partition):
    """The partition's high watermark, asked until a node answers (one that
    has not applied the topic yet answers UNKNOWN_PARTITION)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"soak-{time.time_ns()}"})
    try:
        return wait_until(lambda: (consumer.get_watermark_offsets(
            TopicPartition(topic, partition), timeout=10)[1],), 60,
            message=f"the high watermark of {topic}-{partition}")[0]
    finally:
        consumer.close()


def registered_brokers(node):
    return set(rep.metadata(node.bootstrap).brokers)


class Soak:
    """Runs the rounds on `cluster` (FaultInjectedNode nodes behind the
    Netsplit `net`); `counts[kind]` collects the per-kind figures."""

    def __init__(self, cluster, net, work_dir, settings, log=print):
        self.cluster, self.net, self.work_dir = cluster, net, work_dir
        self.settings, self.log = settings, log
        self.rng = random.Random(settings.seed)
        self.counts = {k: {"rounds": 0, "stalled": 0, "lost": 0, "duplicates": 0, "inconsistent": 0,
                           "replicas_identical": 0, "verify_lost": 0, "verify_inconsistent": 0,
                           "verify_log_duplicates": 0, "verify_unseen": 0}
                       for k in FAULTS}
        self.problems = []       # (round, kind, role, node, what)

    # ---- faults -------------------------------------------------------------------------------

    def _wait_fenced(self, victim):
        """Until a node other than `victim` no longer lists it as a live broker."""
        others = [n for n in self.cluster.nodes if n is not victim]
        wait_until(lambda: any(victim.node_id not in registered_brokers(n) for n in others), 60,
                   message=lambda: f"node {victim.node_id} fenced\n{self.cluster.logs()}")

    def _progress(self, producer, more, timeout):
        """Whether the producer got `more` acknowledgements within `timeout` s."""
        try:
            producer.wait_acked(more, timeout, self.cluster)
            return True
        except pytest.fail.Exception:
            return False

    def inject(self, kind, victim, producer):
        """One fault on `victim`, held until the rest of the cluster has
        reacted, then healed. Returns whether the producer progressed while
        the fault lasted. A killed or power-lost node must be failed over
        (no progress within 90 s fails the round). A paused or cut-off node
        is held until another node has fenced it, then for up to
        STALL_WAIT_S for the producer to progress: librdkafka may keep
        asking the cut-off node, which still claims to lead in its stale
        Metadata, and then makes no progress until the heal (counted as
        `stalled`, a liveness note, not a safety failure)."""
        if kind == "kill":
            victim.kill()
            producer.wait_acked(100, 90, self.cluster)
            victim.start()
        elif kind == "power-loss":
            victim.power_loss()
            code = victim.wait_exit()
            assert code == 137, f"power loss: node {victim.node_id} exited {code}"
            producer.wait_acked(100, 90, self.cluster)
            victim.start()
        elif kind == "pause":
            victim.pause()
            try:
                self._wait_fenced(victim)
                return self._progress(producer, 100, STALL_WAIT_S)
            finally:
                victim.resume()
        elif kind == "netsplit":
            self.net.isolate(victim.node_id)
            try:
                self._wait_fenced(victim)
                return self._progress(producer, 100, STALL_WAIT_S)
            finally:
                self.net.heal()
        else:
            raise ValueError(kind)
        return True

    def pick_victim(self, role):
        leader = leader_of(self.cluster, TOPIC)
        if role == "leader":
            return leader
        if role == "controller":
            return rep.metadata(self.cluster.bootstrap()).controller_id
        return self.rng.choice([n.node_id for n in self.cluster.nodes if n.node_id != leader])

    # ---- one round ----------------------------------------------------------------------------

    def replicas_identical(self, topics):
        """Every replica of each (topic, partition) byte-identical, waited
        for (bounded) while the nodes run: followers may still be fetching."""
        def same():
            return all(not replicas_differ({n.node_id: rep.partition_bytes(n, t, p)
                                            for n in self.cluster.nodes}) for t, p in topics)
        try:
            wait_until(same, 60, interval=0.5, message="replicas identical")
            return True
        except pytest.fail.Exception:  # counted, not raised
            return False

    def round(self, index):
        kind, role = self.rng.choice(self.settings.faults), self.rng.choice(ROLES)
        start = high_watermark(self.cluster.bootstrap(), TOPIC, 0)
        verify_topic = f"soak-verify-{index}"
        rep.create_topic(self.cluster, verify_topic, partitions=VERIFY_PARTITIONS)
        wait_full_isr(self.cluster, verify_topic, partitions=VERIFY_PARTITIONS)
        producer = BackgroundProducer(self.cluster.bootstrap(), TOPIC, f"r{index}",
                                      extra={"socket.timeout.ms": 5000}).start()
        verify = VerifyLoop(self.cluster, verify_topic, self.work_dir, run_seconds=12,
                            max_runs=1).start()
        victim_id = self.pick_victim(role)
        victim = self.cluster.node(victim_id)
        began = time.monotonic()
        producer.wait_acked(200, 60, self.cluster)
        progressed = self.inject(kind, victim, producer)
        wait_full_isr(self.cluster, TOPIC, timeout=120)
        wait_full_isr(self.cluster, verify_topic, partitions=VERIFY_PARTITIONS, timeout=120)
        producer.wait_acked(100, 90, self.cluster)
        acked, _ = producer.stop()
        reports = verify.stop()
        consumed = consume_from(self.cluster.bootstrap(), TOPIC, 0, start)
        history = history_counts(acked, consumed)
        identical = self.replicas_identical(
            [(TOPIC, 0)] + [(verify_topic, p) for p in range(VERIFY_PARTITIONS)])
        report = reports[0] if reports else {}
        c = self.counts[kind]
        c["rounds"] += 1
        c["stalled"] += int(not progressed)
        c["lost"] += history["lost"]
        c["duplicates"] += history["duplicates"]
        c["inconsistent"] += history["inconsistent"] + history["moved"]
        c["replicas_identical"] += int(identical)
        c["verify_lost"] += int(report.get("lost") or 0)
        c["verify_inconsistent"] += int(report.get("inconsistent_offsets") or 0)
        c["verify_log_duplicates"] += int(report.get("log_duplicated") or 0)
        c["verify_unseen"] += int(report.get("unseen_by_group") or 0)
        wrong = {k: history[k] for k in ("lost", "duplicates", "moved", "inconsistent")
                 if history[k]}
        if history["lost"]:
            wrong["lost_examples"] = history["lost_examples"]
        if not identical:
            wrong["replicas"] = "differ"
        if not reports:
            wrong["verify"] = "no report"
        else:
            wrong.update({f"verify_{k}": v for k, v in verify_problems(report).items()})
        if wrong:
            self.problems.append((index, kind, role, victim_id, wrong))
        self.log(f"[soak] round {index}: {kind} of the {role} (node {victim_id}),"
                 f" {time.monotonic() - began:.0f} s; acked {len(acked)},"
                 f" verify acked {report.get('acknowledged')}"
                 f"{'' if progressed else ', producer stalled until the heal'}; {wrong or 'ok'}")

    # ---- the run --------------------------------------------------------------------------------

    def run(self):
        """Rounds until settings.rounds or settings.seconds; returns the
        number of rounds done. A round that gets stuck (a wait times out)
        ends the run: its exception propagates after the table is printed."""
        wait_full_isr(self.cluster, TOPIC)
        started = time.monotonic()
        done = 0
        try:
            while done < self.settings.rounds and time.monotonic() - started < self.settings.seconds:
                self.round(done)
                done += 1
        finally:
            self.log(self.table(done, time.monotonic() - started))
        return done

    def table(self, done, seconds):
        lines = [f"[soak] seed {self.settings.seed}: {done} rounds in {seconds:.0f} s"
                 f" (HOLDFAST_CLUSTER_SOAK_SEED={self.settings.seed} repeats the choices)"]
        for kind, c in self.counts.items():
            lines.append(f"[soak] {kind:>10}: " + " ".join(f"{k}={v}" for k, v in c.items()))
        for p in self.problems:
            lines.append(f"[soak] PROBLEM round {p[0]}: {p[1]} of the {p[2]} (node {p[3]}):"
                         f" {json.dumps(p[4], default=str)}")
        text = "\n".join(lines)
        if self.settings.results:
            with open(self.settings.results, "a") as out:
                out.write(text + "\n")
        return text
