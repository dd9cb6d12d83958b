"""Fault-injection scenarios: `holdfast verify` runs against one broker while
the broker is SIGKILLed, paused, or loses power, and while consumers are
SIGKILLed. Every scenario must end with lost = corrupted = inconsistent = 0
(the JSON report); one scenario (flush.policy=never + power loss) must show
loss, proving the checker can fail.

Short by default (seconds each); HOLDFAST_SOAK_MINUTES=<m> runs each scenario
for about m minutes of faults. HOLDFAST_FAULTS_SEED fixes the fault timing.
"""
import os
import random
import time

import pytest

from faultlib import assert_safe, record, scenario_seconds

SEED = int(os.environ.get("HOLDFAST_FAULTS_SEED", str(int(time.time()))))
RATE = os.environ.get("HOLDFAST_FAULTS_RATE", "600")  # messages/s while producing
SETTLE_MARGIN_S = 240  # bound on verify's settle + drain after producing


@pytest.fixture
def rng(request):
    seed = SEED + sum(map(ord, request.node.name))
    print(f"[faults] {request.node.name}: seed {seed} (HOLDFAST_FAULTS_SEED={SEED})")
    return random.Random(seed)


def inject_while(run, seconds, inject, rng, gap=(0.6, 1.6), max_faults=10_000):
    """Calls inject() at random gaps while `run` is producing (the first
    `seconds`), bounded by time and by count. Returns how many faults."""
    deadline = time.monotonic() + seconds
    faults = 0
    while time.monotonic() < deadline and faults < max_faults and run.running():
        time.sleep(rng.uniform(*gap))
        if time.monotonic() >= deadline or not run.running():
            break
        inject()
        faults += 1
    return faults


def test_no_faults(fault_broker, verify, topic_suffix):
    broker = fault_broker()
    run = verify(broker.bootstrap, f"nofaults-{topic_suffix}", "--messages", "3000",
                 "--partitions", "3", "--consumers", "2", "--idempotent")
    report = run.wait(120)
    record(report, "no faults")
    assert_safe(report, run.output())
    assert report["acknowledged"] == 3000
    assert report["unseen_by_group"] == 0
    assert report["log_duplicated"] == 0
    assert report["reordered"] == 0


@pytest.mark.parametrize("mode", ["idempotent", "acks1"])
def test_broker_kill_restart_loop(fault_broker, verify, rng, topic_suffix, mode):
    broker = fault_broker()
    seconds = scenario_seconds(8)
    producer_args = ["--idempotent"] if mode == "idempotent" else ["--acks", "1"]
    run = verify(broker.bootstrap, f"kill-{mode}-{topic_suffix}", "--duration", str(seconds),
                 "--rate", RATE, "--partitions", "3", "--consumers", "2", *producer_args)
    kills = inject_while(run, seconds, broker.kill_and_restart, rng, gap=(0.8, 2.0))
    report = run.wait(seconds + SETTLE_MARGIN_S)
    report["broker_kills"] = kills
    record(report, f"broker SIGKILL+restart x{kills} ({mode})")
    assert kills >= 2
    assert_safe(report, run.output())
    assert report["unseen_by_group"] == 0
    if mode == "idempotent":
        assert report["log_duplicated"] == 0
        assert report["reordered"] == 0


def test_broker_pause_longer_than_client_timeouts(fault_broker, verify, rng, topic_suffix):
    broker = fault_broker()
    seconds = scenario_seconds(10)
    run = verify(broker.bootstrap, f"pause-{topic_suffix}", "--duration", str(seconds),
                 "--rate", RATE, "--partitions", "3", "--consumers", "2", "--idempotent")
    # 4 s stopped: longer than the clients' 3 s request and socket timeouts.
    pauses = inject_while(run, seconds, lambda: broker.pause(4.0), rng, gap=(0.8, 1.5))
    report = run.wait(seconds + SETTLE_MARGIN_S)
    record(report, f"broker SIGSTOP 4 s / SIGCONT x{pauses}")
    assert pauses >= 1
    assert_safe(report, run.output())
    assert report["unseen_by_group"] == 0
    assert report["log_duplicated"] == 0


def test_consumer_crashes(fault_broker, verify, topic_suffix):
    broker = fault_broker()
    seconds = scenario_seconds(8)
    # Consumers "process" each batch for 200 ms between recording and committing
    # it, as real ones do: kills land in that window, so redelivery is visible.
    run = verify(broker.bootstrap, f"consumers-{topic_suffix}", "--duration", str(seconds),
                 "--rate", RATE, "--partitions", "4", "--consumers", "3",
                 "--crash-consumers-every", "1.5", "--processing-ms", "200", "--idempotent")
    report = run.wait(seconds + SETTLE_MARGIN_S)
    record(report, "consumer SIGKILL every 1.5 s, 200 ms processing")
    assert_safe(report, run.output())
    assert report["consumer_kills"] >= 3
    # At-least-once: every acknowledged message was processed by some member,
    # and what a killed member processed but had not committed was processed
    # again by the next owner (redelivery), with nothing lost.
    assert report["unseen_by_group"] == 0
    assert report["group_duplicated"] > 0, f"no redelivery seen\n{run.output()}"
    assert report["lost"] == 0
    assert report["log_duplicated"] == 0


def test_power_loss_loop_flush_always(fault_broker, verify, rng, topic_suffix):
    broker = fault_broker(fault_injection=True)
    seconds = scenario_seconds(8)
    run = verify(broker.bootstrap, f"power-{topic_suffix}", "--duration", str(seconds),
                 "--rate", RATE, "--partitions", "3", "--consumers", "2", "--idempotent")
    losses = inject_while(run, seconds, broker.power_loss_and_restart, rng, gap=(0.8, 2.0))
    report = run.wait(seconds + SETTLE_MARGIN_S)
    record(report, f"power loss x{losses} (flush.policy=always)")
    assert losses >= 2
    assert_safe(report, run.output())
    assert report["unseen_by_group"] == 0
    assert report["log_duplicated"] == 0


def test_power_loss_with_flush_never_is_detected(fault_broker, verify, topic_suffix):
    """The negative control: without fsync, a power loss takes acknowledged
    messages with it, and verify must say so (lost > 0, exit status 1)."""
    broker = fault_broker(settings={"flush.policy": "never"}, fault_injection=True)
    run = verify(broker.bootstrap, f"never-{topic_suffix}", "--duration", "4",
                 "--rate", RATE, "--partitions", "2", "--consumers", "1", "--acks", "1",
                 "--idle-timeout", "4")
    time.sleep(2.5)
    assert run.running()
    broker.power_loss_and_restart()
    report = run.wait(4 + SETTLE_MARGIN_S)
    record(report, "power loss x1 (flush.policy=never, negative control)")
    assert report["lost"] > 0, f"the checker missed the loss\n{run.output()}"
    assert report["exit_code"] == 1
    assert report["valid"] is False
