"""The admin APIs UIs and operators' scripts call beyond topics and groups,
sent with kafka-python's connection and protocol framework (kafka-python 2.0.2
has no DescribeLogDirs/ElectLeaders helpers, so the request structs are
declared here from Kafka's schemas): DescribeLogDirs reports every partition's
size as the files on disk add up; ElectLeaders and ListPartitionReassignments
answer INVALID_REQUEST naming the single-node limitation, and the connection
stays usable.
"""
import pathlib

from kafka.admin import KafkaAdminClient
from kafka.protocol.api import Request, Response
from kafka.protocol.types import Array, Boolean, Int8, Int16, Int32, Int64, Schema, String

from conftest import wait_until
from support import ck_produce, make_messages


class DescribeLogDirsResponse_v1(Response):
    API_KEY = 35
    API_VERSION = 1
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        ("results", Array(("error_code", Int16), ("log_dir", String("utf-8")),
                          ("topics", Array(("name", String("utf-8")),
                                           ("partitions", Array(("partition_index", Int32),
                                                                ("partition_size", Int64),
                                                                ("offset_lag", Int64),
                                                                ("is_future_key", Boolean))))))))


class DescribeLogDirsRequest_v1(Request):
    API_KEY = 35
    API_VERSION = 1
    RESPONSE_TYPE = DescribeLogDirsResponse_v1
    SCHEMA = Schema(("topics", Array(("topic", String("utf-8")), ("partitions", Array(Int32)))))


class ElectLeadersResponse_v1(Response):
    API_KEY = 43
    API_VERSION = 1
    SCHEMA = Schema(
        ("throttle_time_ms", Int32), ("error_code", Int16),
        ("results", Array(("topic", String("utf-8")),
                          ("partitions", Array(("partition_id", Int32), ("error_code", Int16),
                                               ("error_message", String("utf-8")))))))


class ElectLeadersRequest_v1(Request):
    API_KEY = 43
    API_VERSION = 1
    RESPONSE_TYPE = ElectLeadersResponse_v1
    SCHEMA = Schema(("election_type", Int8),
                    ("topic_partitions", Array(("topic", String("utf-8")),
                                               ("partitions", Array(Int32)))),
                    ("timeout_ms", Int32))


def send(admin, request):
    client = admin._client  # kafka-python has no public call for these APIs
    node = client.least_loaded_node()
    wait_until(lambda: client.ready(node) or client.poll(timeout_ms=100) and False, 10,
               message="a connection to the broker")
    future = client.send(node, request)
    client.poll(timeout_ms=15000, future=future)
    assert future.is_done and future.succeeded(), future.exception
    return future.value


def test_describe_log_dirs_and_cluster_only_apis(broker, topic_name):
    ck_produce(broker.bootstrap, topic_name, make_messages(200), partition=0)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15000)
    try:
        response = send(admin, DescribeLogDirsRequest_v1(topics=[(topic_name, [0, 1, 2, 3])]))
        [(error, log_dir, topics)] = response.results
        assert error == 0
        assert pathlib.Path(log_dir) == broker.data_dir.resolve()
        [(name, partitions)] = topics
        assert name == topic_name
        sizes = {index: size for index, size, lag, future in partitions}
        assert sorted(sizes) == [0, 1, 2, 3]  # auto-created with 4 partitions
        # Partition 0's size is its segment files' bytes.
        on_disk = sum(f.stat().st_size for f in (broker.data_dir / f"{topic_name}-0").glob("*.log"))
        assert sizes[0] == on_disk > 0
        assert sizes[1] == sizes[2] == sizes[3] == 0

        elect = send(admin, ElectLeadersRequest_v1(election_type=0,
                                                   topic_partitions=[(topic_name, [0])],
                                                   timeout_ms=10000))
        assert elect.error_code == 42  # INVALID_REQUEST
        [(topic, [(partition, code, message)])] = elect.results
        assert (topic, partition, code) == (topic_name, 0, 42)
        assert "single node" in message
        # The connection still answers.
        again = send(admin, DescribeLogDirsRequest_v1(topics=[(topic_name, [0])]))
        assert again.results[0][0] == 0
    finally:
        admin.close()
