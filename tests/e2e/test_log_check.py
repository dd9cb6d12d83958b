"""`holdfast log check|repair` on a partition with a corrupt segment
(docs/operations.md, "Corrupt segments")."""
import fcntl
import struct

from conftest import cli_binary
from support import ck_consume_all, ck_produce, run

SEGMENT = "00000000000000000000.log"


def log_command(*args):
    return run([str(cli_binary()), "log", *args], check=False)


def batches_of(path):
    """(position, records count) of each batch in a segment file."""
    data = path.read_bytes()
    out, position = [], 0
    while position + 61 <= len(data):
        length = struct.unpack(">i", data[position + 8:position + 12])[0]
        count = struct.unpack(">i", data[position + 57:position + 61])[0]
        out.append((position, count))
        position += 12 + length
    return out


def test_check_reports_the_damage_and_repair_cuts_it_only_when_asked(broker_factory, topic_name):
    broker = broker_factory()
    messages = [{"key": None, "value": f"v{i}"} for i in range(20)]
    for m in messages:  # one batch each
        ck_produce(broker.bootstrap, topic_name, [m], partition=0)
    code, clean = broker.stop()
    assert code == 0 and clean
    partition_dir = broker.data_dir / f"{topic_name}-0"
    segment = partition_dir / SEGMENT
    batches = batches_of(segment)
    assert sum(count for _, count in batches) == 20

    clean_check = log_command("check", str(partition_dir))
    assert clean_check.returncode == 0, clean_check.stdout + clean_check.stderr
    assert "no damage found" in clean_check.stdout

    # A bit flip in the payload of the 11th batch.
    damaged, _ = batches[10]
    data = bytearray(segment.read_bytes())
    data[damaged + 61 + 3] ^= 0x10
    segment.write_bytes(bytes(data))
    original = segment.read_bytes()

    check = log_command("check", str(partition_dir))
    assert check.returncode == 1, check.stdout + check.stderr
    assert f"DAMAGED {segment} at byte {damaged}: record batch CRC mismatch" in check.stdout
    assert "1 damaged stretch" in check.stdout

    # Without --yes: says what it would remove, changes nothing.
    dry = log_command("repair", str(partition_dir))
    assert dry.returncode == 1, dry.stdout + dry.stderr
    assert f"cut {segment} at byte {damaged}" in dry.stdout
    assert "9 good batches after the damage" in dry.stdout
    assert "nothing changed" in dry.stdout
    assert segment.read_bytes() == original

    # A process holding the data directory's lock (a running broker): refused.
    lock_path = broker.data_dir / ".lock"
    with open(lock_path, "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        refused = log_command("repair", str(partition_dir), "--yes")
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert f"another process is using {broker.data_dir}" in refused.stderr
    assert segment.read_bytes() == original

    repaired = log_command("repair", str(partition_dir), "--yes")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "repaired" in repaired.stdout
    assert segment.read_bytes() == original[:damaged]
    after = log_command("check", str(partition_dir))
    assert after.returncode == 0, after.stdout + after.stderr

    # The broker serves what came before the damage, and takes new messages after it.
    broker.start()
    kept = sum(count for _, count in batches[:10])
    consumed = ck_consume_all(broker.bootstrap, topic_name, partitions=[0])
    assert [m["value"] for m in consumed] == [f"v{i}" for i in range(kept)]
    ck_produce(broker.bootstrap, topic_name, [{"key": None, "value": "after"}], partition=0)
    consumed = ck_consume_all(broker.bootstrap, topic_name, partitions=[0])
    assert [m["value"] for m in consumed][-1] == "after"
    assert consumed[-1]["offset"] == kept


def test_check_of_a_missing_directory_exits_2(tmp_path):
    result = log_command("check", str(tmp_path / "nope-0"))
    assert result.returncode == 2
    assert "not a directory" in result.stderr
