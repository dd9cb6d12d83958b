"""Idempotent producers end to end: exactly once per producer session.

A loopback TCP proxy sits between the clients and the broker (the broker
advertises the proxy's port, so every connection goes through it). At random
moments the proxy forwards a Produce request, waits for the broker's response,
DROPS it and closes both sides: the batch WAS written, the client never heard,
so it retries. Meanwhile the broker is killed with SIGKILL and restarted on the
same data directory, several times (producer state is then rebuilt from the
log and its snapshots).

With enable.idempotence (librdkafka) / idempotent: true (kafkajs) and five
requests in flight, the topic must afterwards hold every acknowledged message
exactly once, at its acknowledged offset, in send order per partition: zero
duplicates, zero lost. The same run without idempotence must show duplicates,
which proves the test can tell the difference (a dropped response after a
successful write guarantees a duplicate on retry).
"""
import collections
import json
import os
import random
import socket
import struct
import subprocess
import threading
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import NewTopic

from conftest import REPO_ROOT, free_loopback_port
from support import ck_admin, ck_consume_all, require_kafkajs

JS_DIR = REPO_ROOT / "tests" / "e2e" / "js"
PRODUCE_API_KEY = 0
PARTITIONS = 2
SETTINGS = {"log.segment.bytes": str(64 * 1024)}  # rolls, so producer snapshots are written


class CuttingProxy:
    """Forwards loopback TCP connections to the broker. cut_probability: the
    chance that a Produce request's response is dropped and the connection
    closed (at most max_cuts times)."""

    def __init__(self, upstream_port, rng, cut_probability, max_cuts):
        self.upstream_port = upstream_port
        self.rng = rng
        self.cut_probability = cut_probability
        self.max_cuts = max_cuts
        self.cuts = 0
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.stopped = True
        self.listener.close()

    def _accept(self):
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _decide_cut(self):
        with self.lock:
            if self.cuts < self.max_cuts and self.rng.random() < self.cut_probability:
                self.cuts += 1
                return True
            return False

    @staticmethod
    def _read_exact(sock, n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def _read_frame(self, sock):
        size = self._read_exact(sock, 4)
        return size + self._read_exact(sock, struct.unpack(">i", size)[0])

    def _serve(self, client):
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
            upstream.settimeout(None)
        except OSError:
            client.close()  # broker down: the client sees a refused/closed connection
            return
        drop = set()  # correlation ids whose responses are dropped
        drop_lock = threading.Lock()

        def shut():
            for s in (client, upstream):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

        def client_to_broker():
            try:
                while True:
                    frame = self._read_frame(client)
                    api_key, _version, correlation = struct.unpack(">hhi", frame[4:12])
                    if api_key == PRODUCE_API_KEY and self._decide_cut():
                        with drop_lock:
                            drop.add(correlation)
                    upstream.sendall(frame)
            except (OSError, ConnectionError, struct.error):
                shut()

        def broker_to_client():
            try:
                while True:
                    frame = self._read_frame(upstream)
                    (correlation,) = struct.unpack(">i", frame[4:8])
                    with drop_lock:
                        cut = correlation in drop
                    if cut:  # the broker answered: the batch was handled; the client never knows
                        shut()
                        return
                    client.sendall(frame)
            except (OSError, ConnectionError, struct.error):
                shut()

        threading.Thread(target=client_to_broker, daemon=True).start()
        broker_to_client()


def start_behind_proxy(broker_factory, rng, cut_probability, max_cuts):
    """A broker (the suite's fixture) that advertises a cutting proxy's port."""
    broker = broker_factory(settings=SETTINGS, start=False)
    proxy = CuttingProxy(broker.port, rng, cut_probability, max_cuts)
    base_command = broker.command

    def command():
        cmd = base_command()
        cmd[cmd.index("--advertise") + 1] = f"127.0.0.1:{proxy.port}"
        return cmd

    broker.command = command
    broker.start()
    return broker, proxy


def create_topic(bootstrap, topic):
    admin = ck_admin(bootstrap)  # keep the handle alive until the result is in
    futures = admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    futures[topic].result(15)


def start_killer(broker, rng, kills, first_after=1.0):
    """Kills (SIGKILL) and restarts the broker `kills` times at random moments."""
    done = []
    errors = []

    def loop():
        try:
            time.sleep(first_after)
            for _ in range(kills):
                time.sleep(rng.uniform(0.5, 2.0))
                broker.kill()
                time.sleep(rng.uniform(0.0, 0.4))
                broker.start()
                done.append(time.monotonic())
        except BaseException as error:  # pytest.fail raises BaseException
            errors.append(error)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread, done, errors


def check_log(bootstrap, topic, acked, send_index):
    """Reads the topic. Returns (duplicates, lost, out_of_order) where
    duplicates counts extra copies of any value, lost lists acknowledged
    messages not at their acknowledged offset, and out_of_order lists
    partitions whose values are not in send order."""
    log = ck_consume_all(bootstrap, topic, timeout=60)
    copies = collections.Counter(m["value"] for m in log)
    duplicates = sum(n - 1 for n in copies.values() if n > 1)
    at = {(m["partition"], m["offset"]): m["value"] for m in log}
    lost = [(v, where) for v, where in acked.items() if at.get(where) != v]
    out_of_order = []
    by_partition = collections.defaultdict(list)
    for m in sorted(log, key=lambda m: (m["partition"], m["offset"])):
        by_partition[m["partition"]].append(send_index[m["value"]])
    for partition, order in by_partition.items():
        if order != sorted(order):
            out_of_order.append(partition)
    return duplicates, lost, out_of_order, len(log)


# ---- librdkafka (confluent-kafka) ---------------------------------------------------------------

def run_librdkafka(broker_factory, topic, idempotent, kills, seed, count=6000, rate=800,
                   cut_probability=0.03, max_cuts=12):
    rng = random.Random(seed)
    broker, proxy = start_behind_proxy(broker_factory, rng, cut_probability, max_cuts)
    bootstrap = f"127.0.0.1:{proxy.port}"
    create_topic(broker.bootstrap, topic)
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": idempotent,
        "acks": "all",
        "max.in.flight.requests.per.connection": 5,
        "linger.ms": 5,
        "batch.num.messages": 50,
        "message.timeout.ms": 40000,
        "retry.backoff.ms": 50,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 300,
    })
    acked, failed = {}, {}
    lock = threading.Lock()

    def report(err, msg):
        with lock:
            value = msg.value().decode()
            if err is None:
                acked[value] = (msg.partition(), msg.offset())
            else:
                failed[value] = str(err)

    send_index = {}
    killer = start_killer(broker, rng, kills, first_after=0.5) if kills else None
    started = time.monotonic()
    sent = 0
    while sent < count and time.monotonic() - started < 25:
        target = min(count, int((time.monotonic() - started) * rate) + 1)
        while sent < target:
            value = f"c-{sent:06d}"
            try:
                producer.produce(topic, value=value, partition=sent % PARTITIONS,
                                 on_delivery=report)
            except BufferError:
                break
            send_index[value] = sent
            sent += 1
        producer.poll(0.005)
    if killer:
        killer[0].join(30)
        assert not killer[0].is_alive(), "kill/restart cycles did not finish"
        if killer[2]:
            raise killer[2][0]
    remaining = producer.flush(45)
    proxy.cut_probability = 0  # the broker advertises the proxy: read through it, uncut
    assert remaining == 0, f"{remaining} messages without a delivery report"
    duplicates, lost, out_of_order, stored = check_log(broker.bootstrap, topic, acked, send_index)
    proxy.close()
    summary = (f"librdkafka idempotent={idempotent} seed={seed}: sent {sent}, acked {len(acked)}, "
               f"failed {len(failed)}, stored {stored}, kills {len(killer[1]) if killer else 0}, "
               f"cuts {proxy.cuts}, duplicates {duplicates}, lost {len(lost)}")
    print(summary)
    return dict(sent=sent, acked=acked, failed=failed, duplicates=duplicates, lost=lost,
                out_of_order=out_of_order, cuts=proxy.cuts,
                kills=len(killer[1]) if killer else 0, summary=summary)


def test_librdkafka_idempotent_producer_exactly_once_through_kills_and_cuts(broker_factory,
                                                                          topic_name):
    seed = int(os.environ.get("HOLDFAST_IDEMPOTENCE_SEED", str(time.time_ns() % 2**32)))
    r = run_librdkafka(broker_factory, topic_name, idempotent=True, kills=3, seed=seed)
    assert r["kills"] == 3 and r["cuts"] > 0, r["summary"]
    assert not r["lost"], f"{r['summary']}; first lost: {r['lost'][0]}"
    assert r["duplicates"] == 0, r["summary"]
    assert not r["out_of_order"], f"{r['summary']}; partitions out of send order: {r['out_of_order']}"
    assert len(r["acked"]) >= r["sent"] * 0.9, r["summary"]


def test_librdkafka_without_idempotence_duplicates_on_cut_connections(broker_factory, topic_name):
    # Control: same proxy, no kills. Every cut after a successful write makes a duplicate.
    r = run_librdkafka(broker_factory, topic_name, idempotent=False, kills=0, seed=1234,
                       count=3000, cut_probability=0.05, max_cuts=5)
    assert r["cuts"] > 0, r["summary"]
    assert r["duplicates"] > 0, f"the test cannot tell the difference: {r['summary']}"
    assert not r["lost"], r["summary"]


# ---- kafkajs ------------------------------------------------------------------------------------

@pytest.fixture
def kafkajs_ready():
    require_kafkajs()


def run_kafkajs(broker_factory, topic, idempotent, kills, seed, per_partition=1500,
                cut_probability=0.05, max_cuts=10):
    rng = random.Random(seed)
    broker, proxy = start_behind_proxy(broker_factory, rng, cut_probability, max_cuts)
    create_topic(broker.bootstrap, topic)
    command = {"brokers": [f"127.0.0.1:{proxy.port}"], "topic": topic, "partitions": PARTITIONS,
               "perPartition": per_partition, "batchSize": 10, "idempotent": idempotent,
               "deadlineMs": 25000, "pauseMs": 30 if kills else 0}
    process = subprocess.Popen(["node", str(JS_DIR / "idempotent_producer.js"), json.dumps(command)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killer = start_killer(broker, rng, kills, first_after=0.5) if kills else None
    try:
        out, err = process.communicate(timeout=50)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"kafkajs producer did not finish in time\n{err[-2000:]}")
    if killer:
        killer[0].join(30)
        if killer[2]:
            raise killer[2][0]
    proxy.cut_probability = 0  # the broker advertises the proxy: read through it, uncut
    assert process.returncode == 0, f"kafkajs: {out[-1000:]}\n{err[-2000:]}"
    result = json.loads(out.strip().splitlines()[-1])
    acked = {m["value"]: (m["partition"], m["offset"]) for m in result["acked"]}
    send_index = {}
    for p in range(PARTITIONS):
        for j in range(per_partition):
            send_index[f"p{p}-{j:06d}"] = j
    duplicates, lost, out_of_order, stored = check_log(broker.bootstrap, topic, acked, send_index)
    proxy.close()
    summary = (f"kafkajs idempotent={idempotent} seed={seed}: acked {len(acked)}, failed "
               f"{result['failed']}, stored {stored}, kills {len(killer[1]) if killer else 0}, "
               f"cuts {proxy.cuts}, duplicates {duplicates}, lost {len(lost)}, "
               f"errors {result['errors'][:2]}")
    print(summary)
    return dict(acked=acked, failed=result["failed"], duplicates=duplicates, lost=lost,
                out_of_order=out_of_order, cuts=proxy.cuts,
                kills=len(killer[1]) if killer else 0, summary=summary)


def test_kafkajs_idempotent_producer_exactly_once_through_kills_and_cuts(
        kafkajs_ready, broker_factory, topic_name):
    seed = int(os.environ.get("HOLDFAST_IDEMPOTENCE_SEED", str(time.time_ns() % 2**32)))
    r = run_kafkajs(broker_factory, topic_name, idempotent=True, kills=3, seed=seed)
    assert r["kills"] == 3 and r["cuts"] > 0, r["summary"]
    assert not r["lost"], f"{r['summary']}; first lost: {r['lost'][0]}"
    assert r["duplicates"] == 0, r["summary"]
    assert not r["out_of_order"], r["summary"]
    assert len(r["acked"]) >= PARTITIONS * 1500 * 0.8, r["summary"]


def test_kafkajs_without_idempotence_duplicates_on_cut_connections(
        kafkajs_ready, broker_factory, topic_name):
    r = run_kafkajs(broker_factory, topic_name, idempotent=False, kills=0, seed=4321,
                    per_partition=600, cut_probability=0.1, max_cuts=5)
    assert r["cuts"] > 0, r["summary"]
    assert r["duplicates"] > 0, f"the test cannot tell the difference: {r['summary']}"
