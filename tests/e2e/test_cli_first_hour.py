"""A newcomer's first hour with `holdfast` (issue 15): the real binary against
a real broker and against a closed port. Wrong answers, failing fast, usage
errors, and what Kafka users expect to see.

No timed assertions: "fails fast" is checked by giving the command a timeout
far beyond the test's own bound (it must not wait for it).
"""
import json
import re
import signal
import subprocess

import pytest

from conftest import cli_binary, free_loopback_port, holdfast_binary, wait_until
from support import ck_consume_all, ck_produce, ck_topic_partitions, json_lines, run

LONG_TIMEOUT_MS = "600000"  # ten minutes: a command that waits for it trips the test's bound
TEST_BOUND_S = 30


def hf(bootstrap, *args, input=None, check=True, timeout=60):
    return run([str(cli_binary()), *args, "--brokers", bootstrap], input=input, check=check,
               timeout=timeout)


def hf_bare(*args, input=None, check=False, timeout=60):
    return run([str(cli_binary()), *args], input=input, check=check, timeout=timeout)


def one_line(result):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def high_watermarks(bootstrap, topic):
    described = json_lines(hf(bootstrap, "topic", "describe", topic, "--format", "json").stdout)[0]
    return {p["partition"]: p["high_watermark"] for p in described["partitions"]}


# ---- Wrong answers ----------------------------------------------------------------------------

def test_interrupted_verify_is_inconclusive_not_lost(bootstrap, topic_name, tmp_path):
    report_path = tmp_path / "verify.json"
    verify = subprocess.Popen(
        [str(cli_binary()), "verify", "--brokers", bootstrap, "--topic", topic_name,
         "--duration", "120", "--rate", "300", "--partitions", "2", "--consumers", "1",
         "--report", str(report_path), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Interrupt once messages are acknowledged (in the log), long before the drain.
        wait_until(lambda: ck_topic_partitions(bootstrap, topic_name, timeout=2) is not None
                   and sum(high_watermarks(bootstrap, topic_name).values()) >= 50,
                   TEST_BOUND_S, message="verify to produce")
        verify.send_signal(signal.SIGINT)
        out, err = verify.communicate(timeout=TEST_BOUND_S * 2)
    finally:
        if verify.poll() is None:
            verify.kill()
            verify.wait(10)
    assert verify.returncode == 130, (out, err)
    assert "INCONCLUSIVE" in out and "FAIL" not in out, out
    assert "INCONCLUSIVE" in err and "none counted as lost" in err, err
    report = json.loads(report_path.read_text())
    assert report["verdict"] == "inconclusive" and report["valid"] is None, report
    assert report["lost"] == 0 and report["interrupted"] is True
    assert report["acknowledged"] > 0


def test_consume_from_beyond_the_end_is_the_same_with_and_without_exit_at_end(bootstrap,
                                                                            topic_name):
    ck_produce(bootstrap, topic_name, [{"key": None, "value": f"v{i}"} for i in range(10)],
               partition=1)
    values = [f"v{i}" for i in range(10)]
    with_e = hf(bootstrap, "consume", topic_name, "-p", "1", "--from", "100", "-e")
    with_n = hf(bootstrap, "consume", topic_name, "-p", "1", "--from", "100", "-n", "10")
    assert with_e.stdout.splitlines() == values == with_n.stdout.splitlines()
    for result in (with_e, with_n):
        assert "offset 100 is outside the log [0, 10]; reading from 0" in result.stderr


def test_consume_timestamp_without_at_is_a_clear_error(bootstrap, topic_name):
    ck_produce(bootstrap, topic_name, [{"key": None, "value": "x"}], partition=0)
    r = hf(bootstrap, "consume", topic_name, "--from", "1700000000000", "-e", check=False)
    assert r.returncode == 2, r.stderr
    assert "for a timestamp write --from @1700000000000" in one_line(r)


def test_consume_from_words_and_relative_offsets(bootstrap, topic_name):
    ck_produce(bootstrap, topic_name, [{"key": None, "value": f"v{i}"} for i in range(10)],
               partition=0)
    for word in ("earliest", "start", "beginning"):
        out = hf(bootstrap, "consume", topic_name, "-p", "0", "--from", word, "-e").stdout
        assert out.splitlines() == [f"v{i}" for i in range(10)], word
    assert hf(bootstrap, "consume", topic_name, "--from", "latest", "-e").stdout == ""
    out = hf(bootstrap, "consume", topic_name, "-p", "0", "--from", "-3", "-e").stdout
    assert out.splitlines() == ["v7", "v8", "v9"]
    out = hf(bootstrap, "consume", topic_name, "-p", "0", "-o", "-30", "-e").stdout
    assert len(out.splitlines()) == 10  # clamped at the log start


# ---- Fail fast, say where -------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["topic", "list"],
    ["topic", "create", "t"],
    ["topic", "describe", "t"],
    ["consume", "t", "-e"],
    ["group", "list"],
    ["produce", "t", "-X", f"message.timeout.ms={LONG_TIMEOUT_MS}"],
    ["verify", "--topic", "t", "--messages", "10"],
])
def test_closed_port_fails_at_once_in_one_line_naming_the_address(args):
    address = f"127.0.0.1:{free_loopback_port()}"  # nothing listens there
    r = run([str(cli_binary()), *args, "--brokers", address, "--timeout-ms", LONG_TIMEOUT_MS],
            input="a\n", check=False, timeout=TEST_BOUND_S)
    assert r.returncode == 1, (args, r.stderr)
    line = one_line(r)  # and no librdkafka "%3|...|FAIL|" lines
    assert line.startswith("holdfast: cannot connect to " + address), line
    assert "Connection refused" in line


def test_produce_to_a_missing_topic_fails_at_once(broker_factory, topic_name):
    broker = broker_factory(settings={"auto.create.topics.enable": "false"})
    r = hf(broker.bootstrap, "produce", topic_name, "-X", f"message.timeout.ms={LONG_TIMEOUT_MS}",
           input="a\n", check=False, timeout=TEST_BOUND_S)
    assert r.returncode == 1
    assert f"topic '{topic_name}' does not exist" in one_line(r)


def test_produce_to_a_missing_partition_fails_at_once(bootstrap, topic_name):
    hf(bootstrap, "topic", "create", topic_name, "--partitions", "2")
    r = hf(bootstrap, "produce", topic_name, "-p", "5", input="a\n", check=False,
           timeout=TEST_BOUND_S)
    assert r.returncode == 2
    assert "has no partition 5 (it has 2: 0..1)" in one_line(r)


def test_ctrl_c_during_produce_reports_delivered_failed_in_flight(bootstrap, topic_name):
    produce = subprocess.Popen([str(cli_binary()), "produce", topic_name, "--brokers", bootstrap,
                                "-p", "0"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        produce.stdin.write("one\ntwo\nthree\n")
        produce.stdin.flush()  # stdin stays open: the command waits for more lines
        wait_until(lambda: ck_topic_partitions(bootstrap, topic_name, timeout=2) is not None
                   and high_watermarks(bootstrap, topic_name)[0] == 3,
                   TEST_BOUND_S, message="three messages in the log")
        produce.send_signal(signal.SIGINT)
        _, err = produce.communicate(timeout=TEST_BOUND_S)
    finally:
        if produce.poll() is None:
            produce.kill()
            produce.wait(10)
    assert produce.returncode == 130, err
    assert "interrupted: 3 delivered, 0 failed, 0 in flight" in err, err


# ---- Usage errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("args, needle", [
    (["topic", "lst"], "did you mean 'list'?"),
    (["tpoic", "list"], "did you mean 'topic'?"),
    (["topic", "list", "--timeout-ms", "0"], "must be between 1 and 3600000, got 0"),
    (["consume", "t", "-n", "-5"], "must be at least 0, got -5"),
    (["topic", "list", "--no-such-option"], "--no-such-option"),
    (["consume"], "topic"),
    (["topic", "create", "t", "-p", "3"], "--partitions N"),
    (["verify", "-t", "t", "-p", "3"], "--partitions N"),
    (["consume", "t", "-f", "%x"], "unknown field %x"),
    (["consume", "t", "--print", "key,colour"], "unknown field 'colour'"),
])
def test_usage_errors_exit_2_in_one_line(args, needle):
    r = hf_bare(*args, "--brokers", f"127.0.0.1:{free_loopback_port()}")
    assert r.returncode == 2, (args, r.stderr)
    line = one_line(r)
    assert needle in line, line
    assert "e+308" not in line and len(line) < 300, line


def test_version_and_help():
    r = hf_bare("--version", check=True)
    assert r.stdout.startswith("holdfast ")
    overview = hf_bare("help", check=True).stdout
    for command in ("serve", "topic", "produce", "consume", "group", "verify"):
        assert command in overview
    topic_help = hf_bare("help", "topic", check=True).stdout
    for sub in ("alter-config", "add-partitions", "delete-records"):
        assert sub in topic_help
    assert "--partitions" in hf_bare("help", "topic", "create", check=True).stdout
    assert hf_bare("help", "nope").returncode == 2


# ---- What Kafka users expect -------------------------------------------------------------------

def test_consume_print_formats(bootstrap, topic_name):
    hf(bootstrap, "produce", topic_name, "-p", "2", "-K", ":", "-H", "h=1", input="k1:v1\nnokey\n")
    out = hf(bootstrap, "consume", topic_name, "-p", "2", "-e", "-f",
             r"%t/%p/%o key=%k value=%s headers=%h sizes=%K,%S\n").stdout
    assert out.splitlines() == [
        f"{topic_name}/2/0 key=k1 value=v1 headers=h=1 sizes=2,2",
        f"{topic_name}/2/1 key= value=nokey headers=h=1 sizes=-1,5"]
    out = hf(bootstrap, "consume", topic_name, "-p", "2", "-e", "--print",
             "key,partition,offset").stdout
    assert out.splitlines() == ["k1\t2\t0\tv1", "\t2\t1\tnokey"]
    out = hf(bootstrap, "consume", topic_name, "-p", "2", "-e", "--print", "timestamp").stdout
    assert all(int(line.split("\t")[0]) > 0 for line in out.splitlines())


def test_topic_alter_config_add_partitions_delete_records(bootstrap, topic_name):
    hf(bootstrap, "topic", "create", topic_name, "--partitions", "2", "-c", "retention.ms=3600000")
    out = hf(bootstrap, "topic", "alter-config", topic_name, "--set", "segment.bytes=1048576").stdout
    assert "segment.bytes=1048576" in out
    configs = json_lines(hf(bootstrap, "topic", "describe", topic_name, "--format", "json").stdout
                         )[0]["configs"]
    # The other dynamic config stays (AlterConfigs alone would reset it).
    assert configs["retention.ms"] == "3600000" and configs["segment.bytes"] == "1048576"
    hf(bootstrap, "topic", "alter-config", topic_name, "--delete", "retention.ms")
    configs = json_lines(hf(bootstrap, "topic", "describe", topic_name, "--format", "json").stdout
                         )[0]["configs"]
    assert "retention.ms" not in configs and configs["segment.bytes"] == "1048576"

    out = hf(bootstrap, "topic", "add-partitions", topic_name, "--partitions", "5").stdout
    assert "2 -> 5 partitions" in out
    wait_until(lambda: ck_topic_partitions(bootstrap, topic_name) == [0, 1, 2, 3, 4], 10,
               message="five partitions")
    r = hf(bootstrap, "topic", "add-partitions", topic_name, "--partitions", "3", check=False)
    assert r.returncode == 2 and "must be larger" in one_line(r)

    ck_produce(bootstrap, topic_name, [{"key": None, "value": f"v{i}"} for i in range(10)],
               partition=4)
    out = hf(bootstrap, "topic", "delete-records", topic_name, "-p", "4", "--before", "6").stdout
    assert out.splitlines()[1].split() == ["4", "6"]
    assert [m["value"] for m in ck_consume_all(bootstrap, topic_name, partitions=[4])] == \
        ["v6", "v7", "v8", "v9"]
    hf(bootstrap, "topic", "delete-records", topic_name, "--before", "end")
    assert high_watermarks(bootstrap, topic_name)[4] == 10
    assert ck_consume_all(bootstrap, topic_name, partitions=[4]) == []


def test_verify_cleanup_deletes_its_topic_and_group(bootstrap, topic_name):
    group = f"g-{topic_name}"
    r = hf(bootstrap, "verify", "--topic", topic_name, "--messages", "200", "--consumers", "1",
           "--group", group, "--cleanup", "--no-progress", timeout=120)
    assert "OK:" in r.stdout
    assert f"deleted topic '{topic_name}'" in r.stderr and f"deleted group '{group}'" in r.stderr
    wait_until(lambda: ck_topic_partitions(bootstrap, topic_name, timeout=2) is None, 10,
               message="the topic to go")
    groups = json_lines(hf(bootstrap, "group", "list", "--format", "json").stdout)[0]
    assert group not in [g["group"] for g in groups]


def test_verify_says_when_no_consumer_was_killed(bootstrap, topic_name):
    r = hf(bootstrap, "verify", "--topic", topic_name, "--messages", "50", "--consumers", "1",
           "--crash-consumers-every", "3600", "--no-progress", timeout=120)
    assert "killed 0" in r.stdout
    assert "no consumer was killed" in r.stdout and "--crash-consumers-every 3600" in r.stdout


# ---- serve with a stock Kafka server.properties ------------------------------------------------

KRAFT_SAMPLE = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@localhost:9093
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
num.network.threads=3
num.io.threads=8
socket.send.buffer.bytes=102400
socket.receive.buffer.bytes=102400
socket.request.max.bytes=104857600
num.partitions=1
num.recovery.threads.per.data.dir=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
log.retention.hours=168
log.segment.bytes=1073741824
log.retention.check.interval.ms=300000
"""


def serve(tmp_path, *args):
    port = free_loopback_port()
    return [str(holdfast_binary()), "serve", "--data-dir", str(tmp_path / "data"),
            "--listen", f"127.0.0.1:{port}", "--advertise", f"127.0.0.1:{port}", *args]


def run_until_listening(cmd):
    """Starts `holdfast serve`, returns its output up to the 'listening on' line, stops it."""
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    try:
        for line in process.stdout:  # bounded: the broker prints it or exits
            lines.append(line)
            if "listening on" in line:
                break
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(TEST_BOUND_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    return "".join(lines)


def test_serve_accepts_a_stock_kafka_server_properties(tmp_path):
    config = tmp_path / "server.properties"
    config.write_text(KRAFT_SAMPLE)
    output = run_until_listening(serve(tmp_path, "--config", str(config)))
    assert "listening on" in output, output
    warnings = [l for l in output.splitlines() if "do not apply to Holdfast" in l]
    assert len(warnings) == 1, output
    for key in ("process.roles", "num.io.threads", "socket.send.buffer.bytes",
                "offsets.topic.replication.factor", "controller.quorum.voters"):
        assert key in warnings[0]


def test_serve_lists_every_unknown_key_in_one_error(tmp_path):
    config = tmp_path / "server.properties"
    config.write_text(KRAFT_SAMPLE + "colour=blue\nnum.io.threadz=8\n")
    r = run(serve(tmp_path, "--config", str(config)), check=False, timeout=TEST_BOUND_S)
    assert r.returncode == 2
    line = one_line(r)
    assert "'colour'" in line and "'num.io.threadz'" in line
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").iterdir())


def test_serve_set_trims_spaces_and_logs_one_summary_per_data_dir(tmp_path, topic_name):
    cmd = serve(tmp_path, "--set", " num.partitions = 3 ")
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for line in process.stdout:  # bounded: the broker prints it or exits
            if "listening on" in line:
                address = line.split("listening on ")[1].split()[0]
                hf(address, "topic", "create", topic_name)
                assert ck_topic_partitions(address, topic_name) == [0, 1, 2]
                break
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(TEST_BOUND_S)
    # Restart: three partitions loaded; one summary line, no line per partition.
    output = run_until_listening(cmd)
    summaries = [l for l in output.splitlines() if "partitions from" in l]
    assert len(summaries) == 1, output
    loaded = re.search(r"loaded (\d+) partitions from", summaries[0])
    assert loaded and int(loaded.group(1)) >= 3, summaries  # and __consumer_offsets
    assert "clean shutdown" in summaries[0], summaries
    assert not [l for l in output.splitlines() if f"loaded {topic_name}-" in l], output
