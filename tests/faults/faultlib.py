"""Helpers and fixtures for the fault-injection suite: brokers as child processes (the
e2e suite's Broker, loaded from tests/e2e/conftest.py), optionally on the
fault-injecting file system (`holdfast serve --fault-injection`, test-only),
and a runner for `holdfast verify` that returns its JSON report.

Every loop is bounded in count and time; every address is loopback.
"""
import importlib.util
import json
import os
import pathlib
import signal
import subprocess
import time
import uuid

import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]

# The e2e conftest is loaded under another name so that pytest's own
# `conftest` module (this file) is not shadowed.
_spec = importlib.util.spec_from_file_location("e2e_conftest", REPO_ROOT / "tests/e2e/conftest.py")
e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(e2e)

# Soak mode: HOLDFAST_SOAK_MINUTES=<m> makes each scenario run about m minutes
# of faults instead of a few seconds.
SOAK_MINUTES = float(os.environ.get("HOLDFAST_SOAK_MINUTES", "0") or 0)

# Broker settings for every fault scenario: groups form fast.
BASE_SETTINGS = {"group.initial.rebalance.delay.ms": "300"}


def scenario_seconds(short):
    """How long a scenario injects faults: `short` seconds, or the soak length."""
    return SOAK_MINUTES * 60 if SOAK_MINUTES > 0 else short


class FaultBroker(e2e.Broker):
    """A broker that can also run on the fault-injecting file system and be
    paused, killed and 'power-lost'."""

    def __init__(self, *args, fault_injection=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fault_injection = fault_injection
        self.power_losses = 0
        self.kills = 0
        self.pauses = 0

    def command(self):
        cmd = super().command()
        if self.fault_injection:
            cmd.append("--fault-injection")
        return cmd

    def kill_and_restart(self):
        self.kill()
        self.kills += 1
        return self.start()

    def pause(self, seconds):
        """SIGSTOP for `seconds`, then SIGCONT."""
        self.process.send_signal(signal.SIGSTOP)
        try:
            time.sleep(seconds)
        finally:
            self.process.send_signal(signal.SIGCONT)
        self.pauses += 1

    def power_loss_and_restart(self):
        """SIGUSR1: the broker drops everything it did not fsync and exits at
        once (137); then a broker starts again on the same data directory."""
        assert self.fault_injection, "power loss needs --fault-injection"
        self.process.send_signal(signal.SIGUSR1)
        code = self._finish(20)
        assert code == 137, f"power loss: broker exited with {code}, expected 137\n{self.log_tail()}"
        self.power_losses += 1
        return self.start()


@pytest.fixture
def topic_suffix():
    return uuid.uuid4().hex[:8]


@pytest.fixture
def fault_broker(tmp_path):
    """fault_broker(settings={...}, fault_injection=False) starts one broker.
    At teardown it must still be running and stop cleanly on SIGTERM."""
    brokers = []

    def make(settings=None, fault_injection=False):
        merged = dict(BASE_SETTINGS)
        merged.update(settings or {})
        index = len(brokers)
        broker = FaultBroker(e2e.holdfast_binary(), tmp_path / f"data-{index}",
                             e2e.free_loopback_port(), merged,
                             log_path=tmp_path / f"broker-{index}.log",
                             fault_injection=fault_injection)
        brokers.append(broker)
        broker.start()
        return broker

    yield make

    failures = []
    for broker in brokers:
        was_alive = broker.alive()
        code, clean = broker.stop()
        print(broker.log_tail(15))
        if code is None:
            continue
        if not was_alive:
            failures.append(f"broker on port {broker.port} died during the test (exit {code})")
        elif not clean or code != 0:
            failures.append(f"broker on port {broker.port} did not stop cleanly (exit {code})")
    if failures:
        pytest.fail("; ".join(failures), pytrace=False)


class VerifyRun:
    """`holdfast verify` running in the background; wait() returns its report."""

    def __init__(self, args, report_path, log_path):
        self.report_path = report_path
        self.log_path = log_path
        self.args = args
        self._log = open(log_path, "w")
        self._log.write("$ " + " ".join(args) + "\n")
        self._log.flush()
        self.started = time.monotonic()
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
        self.seconds = None

    def running(self):
        return self.process.poll() is None

    def wait(self, timeout):
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()  # its consumers die with it (PR_SET_PDEATHSIG)
            self.process.wait(10)
            self._log.close()
            pytest.fail(f"holdfast verify did not finish within {timeout} s\n{self.output()}")
        self._log.close()
        self.seconds = time.monotonic() - self.started
        if not self.report_path.exists():
            pytest.fail(f"holdfast verify wrote no report (exit {code})\n{self.output()}")
        report = json.loads(self.report_path.read_text())
        report["exit_code"] = code
        report["wall_s"] = round(self.seconds, 1)
        return report

    def output(self):
        return self.log_path.read_text(errors="replace")[-6000:]


@pytest.fixture
def verify(tmp_path, request):
    """verify(bootstrap, topic, *extra_args) starts `holdfast verify` in the
    background with client timeouts suited to fault injection."""
    runs = []

    def start(bootstrap, topic, *extra):
        index = len(runs)
        report = tmp_path / f"verify-{index}.json"
        args = [str(e2e.cli_binary()), "verify", "--brokers", bootstrap, "--topic", topic,
                "--report", str(report), "--no-progress",
                # Clients give up on a request after 3 s and reconnect quickly, so
                # pauses and restarts exercise retries; a message is retried for
                # up to 60 s before its delivery fails.
                "-X", "socket.timeout.ms=3000", "-X", "request.timeout.ms=3000",
                "-X", "reconnect.backoff.max.ms=500", "-X", "message.timeout.ms=60000",
                *extra]
        run = VerifyRun(args, report, tmp_path / f"verify-{index}.log")
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.running():
            run.process.kill()
            run.process.wait(10)


def record(report, scenario):
    """Prints the report's key figures (visible with -s / in the soak log)."""
    keys = ["attempted", "acknowledged", "failed", "lost", "corrupted", "inconsistent_offsets",
            "unexpected", "unseen_by_group", "group_duplicated", "log_duplicated", "reordered",
            "unacknowledged_present", "consumer_kills", "drain_complete", "wall_s"]
    figures = " ".join(f"{k}={report.get(k)}" for k in keys)
    line = f"[faults] {scenario}: {figures}"
    print(line)
    log = os.environ.get("HOLDFAST_FAULTS_RESULTS")
    if log:
        with open(log, "a") as out:
            out.write(line + "\n")


def assert_safe(report, output=""):
    """The guarantee: nothing acknowledged lost, nothing corrupted, no offset
    holding two messages, nothing that was never sent."""
    problems = {k: report[k] for k in ("lost", "corrupted", "inconsistent_offsets", "unexpected")
                if report[k] != 0}
    assert not problems, f"delivery guarantee violated: {problems}\n{json.dumps(report.get('examples'), indent=1)}\n{output}"
    assert report["exit_code"] == 0, f"verify exited {report['exit_code']}\n{output}"
    assert report["drain_complete"], f"the drain did not reach the end of the log\n{output}"
    assert report["acknowledged"] > 0, f"nothing was acknowledged: the scenario tested nothing\n{output}"
