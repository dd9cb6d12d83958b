"""`holdfast verify --transactional` against `holdfast serve` (issue 10): a
transactional copier stage (consume-transform-produce with
send_offsets_to_transaction) between verify's producers and its read_committed
consumers, its copiers SIGKILLed and replaced while producing and copying
(and, in one test, the broker SIGKILLed and restarted in the middle).

The negative control is the hidden, test-only `--copier-non-transactional`:
the same stage copying at least once (produce, flush, commit offsets) under
the same kills must show duplicates in the output, so the checker can fail.
"""
import json
import subprocess

from conftest import cli_binary, wait_until
from support import ck_topic_partitions, json_lines, run

MESSAGES = 3000
RATE = 600  # messages/s: producing lasts about 5 s, so several copier kills land in it
RUN_BOUND_S = 240


def verify_command(bootstrap, topic, report, *extra):
    return [str(cli_binary()), "verify", "--brokers", bootstrap, "--topic", topic,
            "--messages", str(MESSAGES), "--rate", str(RATE), "--partitions", "3",
            "--consumers", "1", "--transactional", "--crash-copiers-every", "1",
            # Kills land between producing a batch and committing it: inside open
            # transactions (aborted by the replacement), or, in the control, after
            # the copies are visible and before the offsets are committed.
            "--copier-processing-ms", "300",
            "--no-progress", "--report", str(report), *extra]


def output_end(bootstrap, topic):
    """The sum of `topic`'s high watermarks, 0 while it does not exist."""
    if not ck_topic_partitions(bootstrap, topic, timeout=2):
        return 0
    r = run([str(cli_binary()), "topic", "describe", topic, "--format", "json", "--brokers",
             bootstrap], check=False)
    if r.returncode != 0:
        return 0
    return sum(p["high_watermark"] for p in json_lines(r.stdout)[0]["partitions"])


def verify(bootstrap, topic, report, *extra, check=False):
    return run(verify_command(bootstrap, topic, report, *extra), timeout=RUN_BOUND_S, check=check)


def test_transactional_copies_are_exactly_once_through_copier_crashes(bootstrap, topic_name,
                                                                      tmp_path):
    report_path = tmp_path / "verify.json"
    r = verify(bootstrap, topic_name, report_path, "--copiers", "2")
    assert r.returncode == 0, (r.stdout, r.stderr[-3000:])
    report = json.loads(report_path.read_text())
    assert report["verdict"] == "ok", r.stdout
    assert report["acknowledged"] == MESSAGES
    assert report["lost"] == 0
    assert report["output_duplicates"] == 0, r.stdout
    assert report["output_lost"] == 0, r.stdout
    assert report["aborted_reads"] == 0, r.stdout
    assert report["copier_kills"] >= 2, r.stdout
    assert report["transactional"]["output_read"] == MESSAGES
    assert report["transactional"]["output_drain_complete"] is True
    assert report["settings"]["output_topic"] == topic_name + ".out"
    assert "output duplicates" in r.stdout and "exactly once" in r.stdout


def test_transactional_copies_survive_a_broker_sigkill_too(broker, bootstrap, topic_name,
                                                          tmp_path):
    report_path = tmp_path / "verify.json"
    process = subprocess.Popen(verify_command(bootstrap, topic_name, report_path, "--idempotent"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Once the copiers committed copies the run is under way: crash the broker.
        wait_until(lambda: output_end(bootstrap, topic_name + ".out") > 300, 60,
                   message="copies in the output")
        broker.restart()
        out, err = process.communicate(timeout=RUN_BOUND_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    assert process.returncode == 0, (out, err[-3000:])
    report = json.loads(report_path.read_text())
    assert report["output_duplicates"] == 0 and report["output_lost"] == 0, out
    assert report["aborted_reads"] == 0 and report["lost"] == 0, out
    assert report["copier_kills"] >= 2, out


def test_control_non_transactional_copier_duplicates_and_fails(bootstrap, topic_name, tmp_path):
    report_path = tmp_path / "verify.json"
    r = verify(bootstrap, topic_name, report_path, "--copier-non-transactional",
               "--output-topic", topic_name + "-copy")
    report = json.loads(report_path.read_text())
    assert report["copier_kills"] >= 2, r.stdout
    assert report["output_lost"] == 0, r.stdout  # at least once: nothing lost ...
    assert report["output_duplicates"] > 0, r.stdout  # ... but copied again after a kill
    assert report["verdict"] == "fail"
    assert r.returncode == 1, (r.stdout, r.stderr[-3000:])
    assert "output duplicates" in r.stderr


def test_transactional_options_need_transactional(bootstrap, topic_name):
    r = run([str(cli_binary()), "verify", "--brokers", bootstrap, "--topic", topic_name,
             "--crash-copiers-every", "1"], check=False)
    assert r.returncode == 2 and "--transactional" in r.stderr, r.stderr
    help_all = run([str(cli_binary()), "verify", "--help"], check=False).stdout
    assert "--transactional" in help_all and "--crash-copiers-every" in help_all
    assert "--copier-non-transactional" not in help_all  # hidden: test-only
