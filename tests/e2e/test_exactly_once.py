"""Exactly-once consume-transform-produce through crashes (issue 10): a
confluent-kafka copier (eos_copier.py) copies an input topic to an output
topic in transactions, committing its input offsets inside each transaction
(send_offsets_to_transaction). It is killed at the worst moment (copies
written, offsets not committed) five times and SIGKILLed once mid-run, and the
broker is killed with SIGKILL twice. A read_committed consumer of the output
must then see every input message exactly once, in order.

The control runs the same crashes against the at-least-once copier (produce,
flush, then commit offsets): its output holds duplicates, which shows the
crashes do hit between write and commit. And in the transactional run,
read_uncommitted sees the aborted copies the crashes left, which
read_committed must hide.
"""
import pathlib
import subprocess

from confluent_kafka.admin import NewTopic

from conftest import wait_until
from support import ck_admin, ck_consume_all, ck_produce

PARTITIONS = 2
PER_PARTITION = 300
COPIER = pathlib.Path(__file__).with_name("eos_copier.py")
PYTHON = "/usr/bin/python3"


def create_topics(bootstrap, *names):
    admin = ck_admin(bootstrap)
    futures = admin.create_topics([NewTopic(n, PARTITIONS, 1) for n in names])
    for name in names:
        futures[name].result(30)


def fill_input(bootstrap, topic):
    messages = []
    for p in range(PARTITIONS):
        messages += [{"partition": p, "value": f"in-{p}-{i:04d}"} for i in range(PER_PARTITION)]
    for p in range(PARTITIONS):
        ck_produce(bootstrap, topic, [{"value": m["value"]} for m in messages if m["partition"] == p],
                   partition=p)
    return {p: [m["value"] for m in messages if m["partition"] == p] for p in range(PARTITIONS)}


def copier(bootstrap, mode, inp, out, group, crash_after=-1):
    cmd = [PYTHON, str(COPIER), "--bootstrap", bootstrap, "--input", inp, "--output", out,
           "--group", group, "--mode", mode, "--partitions", str(PARTITIONS),
           "--transactional-id", f"copier-{group}", "--batch", "20",
           "--crash-after", str(crash_after), "--deadline", "60"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process, timeout=90):
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def output_high_watermark(bootstrap, topic):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "hw-probe"})
    try:
        return sum(c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in range(PARTITIONS))
    finally:
        c.close()


def run_with_crashes(broker, mode, inp, out, group):
    """The crash schedule, the same for both modes. Returns the exit codes."""
    codes = []
    # The SIGKILL comes last: a fast copier may finish the copy before it lands.
    schedule = [("crash", 2), ("broker", None), ("crash", 0), ("crash", 3), ("crash", 1),
                ("broker", None), ("crash", 2), ("sigkill", None)]
    for kind, arg in schedule:
        if kind == "broker":
            broker.restart()
            continue
        if kind == "crash":
            code, stdout, stderr = finish(copier(broker.bootstrap, mode, inp, out, group,
                                                 crash_after=arg))
            assert code == 9, f"copier should have crashed after {arg} batches: {code} {stdout} {stderr[-2000:]}"
            codes.append(code)
            continue
        # SIGKILL at a moment the copier chooses nothing about: once the output grew.
        before = output_high_watermark(broker.bootstrap, out)
        process = copier(broker.bootstrap, mode, inp, out, group)
        grew = wait_until(lambda: process.poll() is not None or
                          output_high_watermark(broker.bootstrap, out) > before + 10, 60,
                          message="the copier's output to grow")
        assert grew
        process.kill()
        codes.append(finish(process)[0])
    # Then run to the end; a run that fails on a transient error is started again.
    for attempt in range(5):
        code, stdout, stderr = finish(copier(broker.bootstrap, mode, inp, out, group))
        codes.append(code)
        if code == 0:
            return codes
    raise AssertionError(f"the copier never finished: codes {codes}; last: {stdout} {stderr[-3000:]}")


def by_partition(messages):
    out = {p: [] for p in range(PARTITIONS)}
    for m in messages:
        out[m["partition"]].append(m["value"])
    return out


def test_transactional_copier_is_exactly_once_through_crashes(broker, topic_name):
    inp, out = topic_name + "-in", topic_name + "-out"
    create_topics(broker.bootstrap, inp, out)
    source = fill_input(broker.bootstrap, inp)
    expected = {p: ["copy:" + v for v in values] for p, values in source.items()}

    run_with_crashes(broker, "txn", inp, out, "eos-group")

    committed = by_partition(ck_consume_all(broker.bootstrap, out,
                                            **{"isolation.level": "read_committed"}))
    assert committed == expected, "read_committed must see each input message exactly once, in order"
    everything = by_partition(ck_consume_all(broker.bootstrap, out,
                                             **{"isolation.level": "read_uncommitted"}))
    aborted = sum(len(v) for v in everything.values()) - sum(len(v) for v in expected.values())
    # Five crashes after writing a batch of up to 20 copies each (plus the mid-run kill).
    assert aborted >= 5, f"the crashes left no aborted copies ({aborted}): they did not hit the window"


def test_control_the_at_least_once_copier_duplicates_through_the_same_crashes(broker, topic_name):
    inp, out = topic_name + "-in", topic_name + "-out"
    create_topics(broker.bootstrap, inp, out)
    source = fill_input(broker.bootstrap, inp)
    expected = {p: ["copy:" + v for v in values] for p, values in source.items()}

    run_with_crashes(broker, "plain", inp, out, "plain-group")

    got = by_partition(ck_consume_all(broker.bootstrap, out,
                                      **{"isolation.level": "read_committed"}))
    # Nothing lost (at least once) ...
    for p in range(PARTITIONS):
        assert set(got[p]) == set(expected[p])
    # ... and duplicates: the check above would catch them in the transactional run.
    duplicates = sum(len(got[p]) - len(set(got[p])) for p in range(PARTITIONS))
    assert duplicates >= 5, f"expected duplicates from the crashes, found {duplicates}"
    assert got != expected
