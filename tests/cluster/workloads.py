"""Background workloads for the cluster fault scenarios, beside faultkit's
confluent-kafka BackgroundProducer:

- KafkajsProducer: an idempotent acks=all kafkajs producer (node, kafkajs
  from tests/e2e/js/node_modules; a missing node or kafkajs fails the test).
- VerifyLoop: `holdfast verify` runs back to back against the whole cluster
  (idempotent acks=all producer, a consumer group of worker processes that
  commit after each batch, a final drain, verify's own checker), until
  stopped; every run's JSON report is kept and checked.

Every loop is bounded in count and time.
"""
import json
import os
import pathlib
import subprocess
import sys
import threading

import pytest

from conftest import holdfast_binary, wait_until

HERE = pathlib.Path(__file__).resolve().parent
E2E_DIR = HERE.parent / "e2e"
JS_PRODUCER = HERE / "js" / "background_producer.js"


def require_kafkajs():
    """node and kafkajs (npm ci in tests/e2e/js if needed), as tests/e2e does:
    missing is a failed test, never a skip."""
    sys.path.insert(0, str(E2E_DIR))
    try:
        import support  # tests/e2e/support.py
    finally:
        sys.path.remove(str(E2E_DIR))
    support.require_kafkajs()
    return support.JS_DIR / "node_modules"


class KafkajsProducer:
    """kafkajs, idempotent, acks=all (-1), one partition, batches of
    `batch` values `<prefix>-<n>`, until stop() (bounded by `max_messages`
    and `max_seconds`). `acked` maps value -> (partition, offset) once
    stopped; `failed` counts values whose send failed (never acknowledged)."""

    def __init__(self, bootstrap, topic, work_dir, prefix="j", partition=0, batch=10,
                 pause_ms=20, max_messages=200_000, max_seconds=1800):
        node_modules = require_kafkajs()
        self.result_path = pathlib.Path(work_dir) / f"kafkajs-{topic}-{prefix}.json"
        command = {"resultPath": str(self.result_path), "brokers": bootstrap.split(","),
                   "topic": topic, "partition": partition,
                   "prefix": prefix, "batchSize": batch, "pauseMs": pause_ms,
                   "maxMessages": max_messages, "deadlineMs": int(max_seconds * 1000)}
        env = dict(os.environ, NODE_PATH=str(node_modules))
        self._progress = 0
        self._lock = threading.Lock()
        self.process = subprocess.Popen(["node", str(JS_PRODUCER), json.dumps(command)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        stdin=subprocess.DEVNULL, text=True, env=env)
        self._stderr_tail = []
        self._reader = threading.Thread(target=self._read_progress, daemon=True)
        self._reader.start()
        self.acked, self.failed, self.errors = {}, 0, []

    def _read_progress(self):
        for line in self.process.stderr:
            try:
                count = json.loads(line)["acked"]
                with self._lock:
                    self._progress = count
            except (ValueError, KeyError, TypeError):
                self._stderr_tail = (self._stderr_tail + [line])[-20:]

    def acked_count(self):
        with self._lock:
            return self._progress

    def wait_acked(self, more, timeout, cluster=None):
        target = self.acked_count() + more
        wait_until(lambda: self.acked_count() >= target or self.process.poll() is not None,
                   timeout, message=lambda: f"{more} more kafkajs acknowledgements (have "
                   f"{self.acked_count()})" + (f"\n{cluster.logs()}" if cluster else ""))
        assert self.process.poll() is None, f"kafkajs producer exited: {self._stderr_tail}"

    def stop(self, timeout=90):
        """SIGTERM: it finishes the send in flight, prints its result, exits."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            pytest.fail("kafkajs producer did not stop")
        self._reader.join(5)
        assert self.result_path.exists(), \
            f"kafkajs producer wrote no result (exit {self.process.returncode}) {self._stderr_tail}"
        result = json.loads(self.result_path.read_text())
        assert "fatal" not in result and self.process.returncode == 0, \
            f"kafkajs producer failed: {result.get('fatal')} {self._stderr_tail}"
        self.acked = {v: (p, o) for v, p, o in result["acked"]}
        self.failed, self.errors = result["failed"], result["errors"]
        return dict(self.acked)


VERIFY_KEYS = ["attempted", "acknowledged", "failed", "lost", "corrupted", "inconsistent_offsets",
               "unexpected", "unseen_by_group", "group_duplicated", "log_duplicated",
               "reordered", "misplaced"]


class VerifyLoop:
    """`holdfast verify` against the cluster, one run after another (each
    `run_seconds` of producing, then its group settle, drain and check) on
    one pre-created topic, until stop(); at most `max_runs`. A run started
    before stop() is waited for, so the last one ends after the faults."""

    def __init__(self, cluster, topic, work_dir, run_seconds=20, rate=150, partitions=3,
                 consumers=2, max_runs=200, extra=()):
        self.cluster, self.topic, self.work_dir = cluster, topic, pathlib.Path(work_dir)
        self.run_seconds, self.rate, self.partitions = run_seconds, rate, partitions
        self.consumers, self.max_runs, self.extra = consumers, max_runs, list(extra)
        self.reports = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._error = None

    def command(self, index):
        report = self.work_dir / f"verify-{self.topic}-{index}.json"
        args = [str(holdfast_binary()), "verify",
                "--brokers", ",".join(n.bootstrap for n in self.cluster.nodes),
                "--topic", self.topic, "--partitions", str(self.partitions),
                "--duration", str(self.run_seconds), "--rate", str(self.rate),
                "--acks", "all", "--idempotent", "--consumers", str(self.consumers),
                "--group", f"verify-{self.topic}-{index}",
                "--settle-timeout", "150", "--idle-timeout", "60",
                "--report", str(report), "--no-progress",
                # Give up on a request after 5 s and reconnect quickly; each
                # message is retried for up to 90 s before its delivery fails.
                "-X", "socket.timeout.ms=5000", "-X", "reconnect.backoff.max.ms=500",
                "-X", "message.timeout.ms=90000", *self.extra]
        return args, report

    def _one(self, index):
        args, report = self.command(index)
        log_path = self.work_dir / f"verify-{self.topic}-{index}.log"
        with open(log_path, "w") as log:
            log.write("$ " + " ".join(args) + "\n")
            log.flush()
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL)
            try:
                code = process.wait(self.run_seconds + 400)
            except subprocess.TimeoutExpired:
                process.kill()  # its consumers die with it (PR_SET_PDEATHSIG)
                process.wait(10)
                raise AssertionError(f"holdfast verify run {index} did not finish")
        output = log_path.read_text(errors="replace")[-4000:]
        assert report.exists(), f"holdfast verify run {index} wrote no report (exit {code})\n{output}"
        result = json.loads(report.read_text())
        result["exit_code"], result["output"] = code, output
        return result

    def _run(self):
        try:
            index = 0
            while not self._stop.is_set() and index < self.max_runs:
                self.reports.append(self._one(index))
                index += 1
        except BaseException as e:  # reported by stop()
            self._error = e

    def start(self):
        self._thread.start()
        return self

    def runs_done(self):
        return len(self.reports)

    def stop(self):
        self._stop.set()
        self._thread.join(self.run_seconds + 500)
        assert not self._thread.is_alive(), "holdfast verify loop did not finish"
        if self._error:
            raise self._error
        return list(self.reports)


def verify_problems(report):
    """What verify's checker found wrong with one run (empty: fine): lost,
    corrupted, inconsistent offsets, unexpected, duplicates in the log (the
    producer is idempotent), acknowledged messages the group never
    processed, an incomplete drain, a non-zero exit, nothing acknowledged."""
    problems = {k: report[k] for k in ("lost", "corrupted", "inconsistent_offsets", "unexpected",
                                       "log_duplicated", "unseen_by_group") if report.get(k)}
    if not report.get("drain_complete"):
        problems["drain_complete"] = False
    if report.get("exit_code") != 0:
        problems["exit_code"] = report.get("exit_code")
    if not report.get("acknowledged"):
        problems["acknowledged"] = 0
    return problems


def assert_verify_reports(reports):
    assert reports, "holdfast verify never completed a run"
    for i, report in enumerate(reports):
        problems = verify_problems(report)
        assert not problems, (f"holdfast verify run {i}: {problems}\n"
                              f"{json.dumps(report.get('examples'), indent=1)}\n{report['output']}")


def verify_totals(reports):
    return {k: sum(int(r.get(k) or 0) for r in reports) for k in VERIFY_KEYS}


def assert_verify_catches_doctoring(report):
    """Negative control for how the runs are judged: a report with one
    acknowledged message lost, one offset inconsistent, or one duplicate in
    the log must be rejected."""
    for key in ("lost", "inconsistent_offsets", "log_duplicated"):
        doctored = dict(report, **{key: 1})
        assert key in verify_problems(doctored), key
