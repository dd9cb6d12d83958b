"""The internal topics are never created with fewer replicas than configured
(docs/cluster.md): with one of three brokers down, FindCoordinator for a
transactional id answers COORDINATOR_NOT_AVAILABLE and creates nothing; once
the third broker is back, __transaction_state is created with replication
factor 3. (Capped to the live brokers, as it once was, a one-replica
__transaction_state with min.insync.replicas=2 could never be written.)
"""
import socket
import struct

from conftest import metadata, wait_until


def find_coordinator(node, key, key_type):
    """FindCoordinator v1 over a raw socket: (error_code, error_message, node_id)."""
    client_id = b"internal-topics-test"
    key_bytes = key.encode()
    body = (struct.pack(">hhih", 10, 1, 7, len(client_id)) + client_id +
            struct.pack(">h", len(key_bytes)) + key_bytes + struct.pack(">b", key_type))
    with socket.create_connection(("127.0.0.1", node.client_port), timeout=10) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        data = b""
        while len(data) < 4 or len(data) < 4 + struct.unpack(">i", data[:4])[0]:
            chunk = s.recv(65536)
            assert chunk, "connection closed before the FindCoordinator answer"
            data += chunk
    pos = 8 + 4  # size, correlation id, throttle_time_ms
    (error,) = struct.unpack(">h", data[pos:pos + 2])
    (length,) = struct.unpack(">h", data[pos + 2:pos + 4])
    message = data[pos + 4:pos + 4 + length].decode() if length >= 0 else None
    pos += 4 + max(length, 0)
    (node_id,) = struct.unpack(">i", data[pos:pos + 4])
    return error, message, node_id


def test_transaction_state_waits_for_enough_live_brokers(cluster):
    n1, n3 = cluster.node(1), cluster.node(3)
    n3.kill()
    wait_until(lambda: set(metadata(n1.bootstrap).brokers) == {1, 2}, 30,
               message="node 3 fenced in node 1's Metadata")
    error, message, _ = find_coordinator(n1, "tid-1", 1)
    assert error == 15, (error, message)  # COORDINATOR_NOT_AVAILABLE
    assert "waiting for 3 live brokers" in message and "2 live now" in message, message
    assert "__transaction_state" not in metadata(n1.bootstrap).topics

    n3.start()
    wait_until(lambda: set(metadata(n1.bootstrap).brokers) == {1, 2, 3}, 60,
               message="node 3 registered again")
    wait_until(lambda: find_coordinator(n1, "tid-1", 1)[0] == 0, 60,
               message=lambda: f"a coordinator for tid-1: {find_coordinator(n1, 'tid-1', 1)}")
    topic = metadata(n1.bootstrap).topics["__transaction_state"]
    assert all(len(p.replicas) == 3 for p in topic.partitions.values())
