"""Crash test: no acknowledged message is lost when the broker is killed.

A confluent-kafka producer with acks=all sends messages with unique, increasing
ids while the broker is killed with SIGKILL at random moments and restarted on
the same data directory and port, several times. Every delivery report is
recorded. Afterwards every partition is read from the beginning, and:
  - every acknowledged message is in the log, at the offset its delivery
    report gave;
  - in each partition, the offsets of acknowledged messages increase with
    send order.
Messages whose delivery failed may or may not be present (at-least-once).

Reproduce a run with HOLDFAST_CRASH_SEED=<seed printed on failure>.
"""
import os
import random
import threading
import time

import pytest
from confluent_kafka import Producer

from support import ck_consume_all, ck_produce, ck_topic_partitions

KILLS = int(os.environ.get("HOLDFAST_CRASH_KILLS", "5"))
MAX_MESSAGES = 40_000
RATE_PER_S = 1500  # produce pace, so that sending spans the kill/restart cycles
PRODUCE_BUDGET_S = 35.0  # stop sending after this, whatever happens
KEYS = 32  # spreads the messages over all 4 partitions

pytestmark = pytest.mark.crash


def test_acknowledged_messages_survive_kill_9(broker_factory, topic_name):
    seed = int(os.environ.get("HOLDFAST_CRASH_SEED", str(time.time_ns() % 2**32)))
    rng = random.Random(seed)
    print(f"crash test seed {seed} ({KILLS} kills)")
    broker = broker_factory(settings={"log.segment.bytes": str(64 * 1024)})
    bootstrap = broker.bootstrap
    ck_produce(bootstrap, topic_name, [{"key": "warm-up", "value": "warm-up"}])  # auto-create
    assert ck_topic_partitions(bootstrap, topic_name) == [0, 1, 2, 3]

    producer = Producer({
        "bootstrap.servers": bootstrap,
        "acks": "all",
        # One request in flight per connection, so a retried batch cannot
        # overtake a later one: acknowledged order is send order.
        "max.in.flight.requests.per.connection": 1,
        "linger.ms": 2,
        "message.timeout.ms": 20000,
        "retry.backoff.ms": 100,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
    })
    acked = {}  # id -> (partition, offset)
    failed = {}  # id -> error
    lock = threading.Lock()

    def report(message_id):
        def on_delivery(err, msg):
            with lock:
                if err is None:
                    acked[message_id] = (msg.partition(), msg.offset())
                else:
                    failed[message_id] = str(err)
        return on_delivery

    killer_errors = []
    kills_done = []

    def killer():
        try:
            for _ in range(KILLS):
                time.sleep(rng.uniform(0.5, 3.0))
                broker.kill()
                kills_done.append(time.monotonic())
                time.sleep(rng.uniform(0.0, 0.5))
                broker.start()
        except BaseException as error:  # pytest.fail raises a BaseException
            killer_errors.append(error)

    killer_thread = threading.Thread(target=killer, daemon=True)
    started = time.monotonic()
    killer_thread.start()
    sent = 0
    while sent < MAX_MESSAGES and time.monotonic() - started < PRODUCE_BUDGET_S:
        if not killer_thread.is_alive() and sent > 0 and len(kills_done) == KILLS:
            # Keep sending a little after the last restart, then stop.
            if time.monotonic() - kills_done[-1] > 2.0:
                break
        target = min(MAX_MESSAGES, int((time.monotonic() - started) * RATE_PER_S))
        while sent < target:
            try:
                producer.produce(topic_name, key=str(sent % KEYS), value=str(sent),
                                 on_delivery=report(sent))
                sent += 1
            except BufferError:
                break
        producer.poll(0.01)
    killer_thread.join(60)
    assert not killer_thread.is_alive(), "kill/restart cycles did not finish"
    if killer_errors:
        raise killer_errors[0]
    remaining = producer.flush(30)
    elapsed = time.monotonic() - started
    print(f"sent {sent}, acknowledged {len(acked)}, failed {len(failed)}, "
          f"unresolved {remaining}, {len(kills_done)} kills in {elapsed:.1f} s")
    assert remaining == 0, f"{remaining} messages without a delivery report after flush"
    assert len(acked) + len(failed) == sent
    assert len(acked) >= sent // 10, "too few acknowledgements for the test to mean anything"

    # Every partition, from the beginning, up to its high watermark.
    log = {}
    for m in ck_consume_all(bootstrap, topic_name, timeout=60):
        log[(m["partition"], m["offset"])] = m["value"]

    lost = [(i, where) for i, where in sorted(acked.items()) if log.get(where) != str(i)]
    assert not lost, (f"seed {seed}: {len(lost)} acknowledged messages are not at their "
                      f"acknowledged offset, first: id {lost[0][0]} at (partition, offset) "
                      f"{lost[0][1]} holds {log.get(lost[0][1])!r}")
    last_offset = {}
    for message_id in sorted(acked):
        partition, offset = acked[message_id]
        assert offset > last_offset.get(partition, -1), (
            f"seed {seed}: partition {partition}: message {message_id} acknowledged at offset "
            f"{offset}, not after the earlier-sent message at {last_offset[partition]}")
        last_offset[partition] = offset
    # Each acknowledged id is in the log at least once; ids that failed may be too.
    present = set(log.values())
    assert all(str(i) in present for i in acked)
