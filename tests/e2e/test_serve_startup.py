"""Start-up safety of `holdfast serve` (issue 8 item 6a): one broker per data
directory (an exclusive lock on <dir>/.lock), the listener bound and the
settings validated before anything in the data directory is created or
changed, and no clean-shutdown marker from a start that did not own it."""
import re
import subprocess
import socket

import pytest

from conftest import free_loopback_port, holdfast_binary
from support import ck_consume_all, ck_produce

START_EXIT_TIMEOUT_S = 20.0  # bound on a refused start-up


def serve(data_dir, port, *extra):
    """Runs `holdfast serve` expecting it to refuse: returns (exit code,
    output). A process still running after the bound is killed and fails the
    test (it started when it should not have). port None: no --listen."""
    cmd = [str(holdfast_binary()), "serve", "--data-dir", str(data_dir), *extra]
    if port is not None:
        cmd += ["--listen", f"127.0.0.1:{port}"]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, text=True, errors="replace")
    try:
        output, _ = process.communicate(timeout=START_EXIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate(timeout=10)
        pytest.fail(f"`{' '.join(cmd)}` was still running after {START_EXIT_TIMEOUT_S} s; "
                    f"it should have refused to start:\n{output}")
    return process.returncode, output


def tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else None


def values(messages):
    return sorted(m["value"] for m in messages)


def test_second_broker_on_the_same_data_dir_refuses_and_nothing_acknowledged_is_lost(
        broker_factory):
    first = broker_factory()
    produced = ck_produce(first.bootstrap, "t", [{"value": f"A{i}"} for i in (1, 2, 3)],
                          partition=0)
    assert all(m["error"] is None for m in produced)

    code, output = serve(first.data_dir, free_loopback_port())
    assert code != 0
    assert f"another process is using {first.data_dir}" in output, output

    # The first broker is unaffected and keeps acknowledging.
    more = ck_produce(first.bootstrap, "t", [{"value": "A4"}], partition=0)
    assert more[0]["error"] is None
    assert values(ck_consume_all(first.bootstrap, "t")) == ["A1", "A2", "A3", "A4"]

    # A crash of the real broker: the refused start wrote no clean-shutdown
    # marker, so the restart recovers, and everything acknowledged is there.
    first.kill()
    assert not (first.data_dir / ".kafka_cleanshutdown").exists()
    first.start()
    assert values(ck_consume_all(first.bootstrap, "t")) == ["A1", "A2", "A3", "A4"]
    log = first.log_path.read_text(errors="replace")
    restart = log[log.rindex("==== start:"):]
    # The start-up summary (one line per data dir) says the logs were recovered.
    assert re.search(r"loaded \d+ partitions from .* \(\d+ recovered after an unclean shutdown[;)]",
                     restart), restart


def test_port_in_use_leaves_the_data_dir_untouched(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        fresh = tmp_path / "fresh"
        code, output = serve(fresh, port)
        assert code != 0
        assert "cannot listen" in output, output
        assert not fresh.exists(), f"created: {tree(fresh)}"

        existing = tmp_path / "existing"
        existing.mkdir()
        code, output = serve(existing, port)
        assert code != 0
        assert tree(existing) == [], f"created: {tree(existing)}"


def test_unsupported_listener_leaves_the_data_dir_untouched(tmp_path):
    fresh = tmp_path / "fresh"
    port = free_loopback_port()
    code, output = serve(fresh, None, "--set",
                         f"listeners=PLAINTEXT://127.0.0.1:{port},"
                         f"CONTROLLER://127.0.0.1:{free_loopback_port()}")
    assert code != 0, output
    assert "controller.quorum.voters" in output, output
    assert not fresh.exists(), f"created: {tree(fresh)}\n{output}"


def test_negative_node_id_is_rejected(tmp_path):
    fresh = tmp_path / "fresh"
    code, output = serve(fresh, free_loopback_port(), "--node-id", "-5")
    assert code != 0
    assert "node.id" in output, output
    assert not fresh.exists(), f"created: {tree(fresh)}"
