"""Fixtures that run `holdfast serve` as a child process for end-to-end tests.

The binary comes from $HOLDFAST_BIN (default build/release/src/cli/holdfast,
relative to the repository root). Every broker listens on a free loopback port
with a fresh data directory; tests may pass extra settings as `--set k=v`.
"""
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from loopback_ports import free_ports  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 20.0  # bound on start-up, until the "listening on" line
STOP_TIMEOUT_S = 15.0  # bound on a clean shutdown after SIGTERM
LISTENING = re.compile(r"listening on (\S+:\d+)")


def holdfast_binary():
    path = pathlib.Path(os.environ.get("HOLDFAST_BIN", "build/release/src/cli/holdfast"))
    if not path.is_absolute():
        path = REPO_ROOT / path
    return path


def cli_binary():
    """The `holdfast` used for client commands: $HOLDFAST_CLI_BIN, else the
    broker's binary (they are the same program)."""
    path = pathlib.Path(os.environ.get("HOLDFAST_CLI_BIN", str(holdfast_binary())))
    return path if path.is_absolute() else REPO_ROOT / path


def free_loopback_port():
    return free_ports(1)[0]


class Broker:
    """One `holdfast serve` process; can be killed and restarted on the same
    data directory and port."""

    def __init__(self, binary, data_dir, port, settings=(), log_path=None):
        self.binary = pathlib.Path(binary)
        self.data_dir = pathlib.Path(data_dir)
        self.port = port
        self.settings = dict(settings)
        self.log_path = pathlib.Path(log_path or self.data_dir.parent / f"broker-{port}.log")
        self.process = None
        self.bootstrap = None
        self.exit_codes = []  # exit code of every finished run, in order
        self._reader = None
        self._finished = True  # no run in progress

    def command(self):
        cmd = [str(self.binary), "serve",
               "--data-dir", str(self.data_dir),
               "--listen", f"127.0.0.1:{self.port}",
               "--advertise", f"127.0.0.1:{self.port}",
               "--node-id", "1"]
        for key, value in self.settings.items():
            cmd += ["--set", f"{key}={value}"]
        return cmd

    def start(self, timeout=READY_TIMEOUT_S):
        assert self.process is None or self.process.poll() is not None, "broker already running"
        if not self.binary.exists():
            pytest.fail(f"holdfast binary not found at {self.binary} (set HOLDFAST_BIN)")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        ready = threading.Event()
        found = {}
        log = open(self.log_path, "a", buffering=1)
        log.write(f"==== start: {' '.join(self.command())}\n")
        self.process = subprocess.Popen(self.command(), stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                        text=True, errors="replace")
        process = self.process
        self._finished = False

        def pump():
            with log:
                for line in process.stdout:
                    log.write(line)
                    match = LISTENING.search(line)
                    if match and not ready.is_set():
                        found["address"] = match.group(1)
                        ready.set()
                ready.set()  # the process closed its output: stop waiting

        self._reader = threading.Thread(target=pump, daemon=True)
        self._reader.start()
        ready.wait(timeout)
        if "address" not in found:
            alive = process.poll() is None
            if alive:
                process.kill()
            self._finish(5)
            pytest.fail(f"broker did not print 'listening on' within {timeout} s "
                        f"(process {'hung' if alive else 'exited with ' + str(process.returncode)})"
                        f"\n{self.log_tail()}")
        self.bootstrap = found["address"]
        return self.bootstrap

    def _finish(self, timeout):
        code = self.process.wait(timeout)
        if self._reader:
            self._reader.join(5)
        if not self._finished:
            self.exit_codes.append(code)
            self._finished = True
        return code

    def kill(self):
        """SIGKILL, like a crash or power loss of the process."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        return self._finish(10)

    def stop(self, timeout=STOP_TIMEOUT_S):
        """SIGTERM, then SIGKILL after `timeout`. Returns (exit code, clean):
        clean means it exited by itself after SIGTERM; exit code None means
        nothing was running (never started, or killed on purpose)."""
        if self.process is None or self._finished:
            return None, True
        if self.process.poll() is not None:
            return self._finish(1), False  # it had died on its own
        self.process.send_signal(signal.SIGTERM)
        try:
            return self._finish(timeout), True
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self._finish(10), False

    def restart(self):
        self.kill()
        return self.start()

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines=40):
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return "(no broker log)"
        return "---- broker log (last lines) ----\n" + "\n".join(text[-lines:])


@pytest.fixture
def broker_factory(tmp_path):
    """Starts brokers: broker_factory(settings={...}, port=None, data_dir=None).
    On teardown each still-running broker gets SIGTERM and must exit 0."""
    brokers = []

    def make(settings=None, port=None, data_dir=None, start=True):
        index = len(brokers)
        broker = Broker(holdfast_binary(), data_dir or tmp_path / f"data-{index}",
                        port or free_loopback_port(), settings or {},
                        log_path=tmp_path / f"broker-{index}.log")
        brokers.append(broker)
        if start:
            broker.start()
        return broker

    yield make

    failures = []
    for broker in brokers:
        was_alive = broker.alive()
        code, clean = broker.stop()
        print(broker.log_tail(20))
        if code is None:
            continue  # nothing running: never started, or stopped/killed by the test
        if not was_alive:
            failures.append(f"broker on port {broker.port} died during the test (exit code {code})")
        elif not clean or code != 0:
            failures.append(f"broker on port {broker.port} did not shut down cleanly on SIGTERM "
                            f"(exit code {code}, {'in time' if clean else 'needed SIGKILL'})")
    if failures:
        pytest.fail("; ".join(failures), pytrace=False)


@pytest.fixture
def broker(broker_factory):
    """A running broker with default settings."""
    return broker_factory()


@pytest.fixture
def bootstrap(broker):
    """The bootstrap address host:port of a running default broker."""
    return broker.bootstrap


@pytest.fixture
def topic_name(request):
    """A topic name unique to this test."""
    base = re.sub(r"[^A-Za-z0-9._-]", "-", request.node.name)[:60]
    return f"{base}-{uuid.uuid4().hex[:8]}"


def wait_until(condition, timeout, interval=0.1, message="condition"):
    """Polls `condition` until it returns a truthy value (returned) or `timeout`
    seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {message} (last: {last!r})")
