"""Client byte-rate quotas end to end (issue 11, KIP-546/KIP-219): quotas
set with `holdfast quota` (AlterClientQuotas), shown by DescribeClientQuotas,
stored in the metadata log (they survive a restart), and enforced on real
confluent-kafka clients: a client over its quota sees throttle_time_ms in
librdkafka's statistics (the broker `throttle` window) and its traffic is
held near the quota, while a client with another client.id is not throttled
(the control).

The broker runs with quota.window.num=2: with Kafka's default of 11 windows
a client may send a burst of 10 s worth of its quota before any throttling,
which would make these tests slow. The rate checks are bounds on outcomes
(elapsed >= half of bytes / quota), never timed assertions on speed.
kafka-python's producer ignores throttle_time_ms (it only records it): it
shows that the broker's mute holds back a client that ignores the hint.
"""
import json
import time
import uuid

import pytest
from confluent_kafka.admin import NewTopic

from conftest import cli_binary, free_loopback_port, wait_until
from support import ck_admin, ck_consumer, ck_producer, metric, run

QUOTA = 256 * 1024           # bytes per second
PAYLOAD = 1024               # bytes per message
TOTAL = 2 * 1024 * 1024      # bytes each client sends or fetches
SETTINGS = {"quota.window.num": "2", "num.partitions": "1"}


def quota(bootstrap, *args, check=True):
    return run([str(cli_binary()), "quota", *args, "--brokers", bootstrap], check=check)


def quota_list(bootstrap, *filters):
    return json.loads(quota(bootstrap, "list", "--format", "json", *filters).stdout)


def start(broker_factory):
    admin = f"127.0.0.1:{free_loopback_port()}"
    broker = broker_factory(settings={**SETTINGS, "admin.listener": admin})
    return broker, admin


def create_topic(bootstrap, topic):
    admin = ck_admin(bootstrap)  # kept alive until the futures are done
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    for f in futures.values():
        f.result(timeout=10)


class Throttle:
    """The largest broker throttle time (ms) librdkafka's statistics reported."""

    def __init__(self):
        self.max_ms = 0

    def __call__(self, stats_json):
        stats = json.loads(stats_json)
        for b in stats.get("brokers", {}).values():
            self.max_ms = max(self.max_ms, b.get("throttle", {}).get("max", 0))


def produce(bootstrap, topic, client_id):
    """Sends TOTAL bytes as client_id; returns (elapsed s, max throttle ms)."""
    throttle = Throttle()
    producer = ck_producer(bootstrap, **{"client.id": client_id, "batch.size": 16384,
                                         "linger.ms": 5, "message.timeout.ms": 120000,
                                         "statistics.interval.ms": 100,
                                         "stats_cb": throttle})
    failures = []
    started = time.monotonic()
    for i in range(TOTAL // PAYLOAD):
        while True:
            try:
                producer.produce(topic, value=b"x" * PAYLOAD,
                                 on_delivery=lambda err, msg: err and failures.append(err))
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(120) == 0, "messages left undelivered"
    elapsed = time.monotonic() - started
    producer.poll(0.3)  # one more statistics report
    assert not failures, failures[:3]
    return elapsed, throttle.max_ms


def consume(bootstrap, topic, client_id):
    """Reads the topic's TOTAL bytes from the start as client_id; returns
    (elapsed s, max throttle ms)."""
    throttle = Throttle()
    consumer = ck_consumer(bootstrap, **{"client.id": client_id, "group.id": f"g-{uuid.uuid4().hex[:6]}",
                                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                         "statistics.interval.ms": 100, "stats_cb": throttle})
    consumer.subscribe([topic])
    got = 0
    started = None
    deadline = time.monotonic() + 120
    while got < TOTAL and time.monotonic() < deadline:
        msg = consumer.poll(0.2)
        if msg is None or msg.error():
            continue
        if started is None:
            started = time.monotonic()
        got += len(msg.value())
    elapsed = time.monotonic() - (started or time.monotonic())
    consumer.poll(0.3)
    consumer.close()
    assert got == TOTAL, f"consumed {got} of {TOTAL} bytes"
    return elapsed, throttle.max_ms


def test_producer_over_its_quota_is_throttled_and_others_are_not(broker_factory, topic_name):
    broker, admin = start(broker_factory)
    create_topic(broker.bootstrap, topic_name)
    quota(broker.bootstrap, "set", "--client-id", "slow-producer", "--producer-byte-rate", str(QUOTA))

    # The control first: another client id, no quota applies.
    _, control_throttle = produce(broker.bootstrap, topic_name, "free-producer")
    assert control_throttle == 0

    elapsed, throttle_ms = produce(broker.bootstrap, topic_name, "slow-producer")
    print(f"slow producer: {TOTAL} bytes in {elapsed:.1f} s, max throttle {throttle_ms} ms")
    assert throttle_ms > 0, "librdkafka saw no throttle_time_ms"
    # Held near the quota: at most twice the quota on average (the first
    # window's burst is allowed).
    assert elapsed >= 0.5 * TOTAL / QUOTA, f"{TOTAL} bytes in {elapsed:.1f} s at a {QUOTA} B/s quota"
    assert metric(admin, "holdfast_throttle_time_seconds_count", kind="produce") > 0
    assert metric(admin, "holdfast_throttle_time_seconds_count", kind="fetch") == 0


def test_a_producer_that_ignores_the_hint_is_held_back_too(broker_factory, topic_name):
    from kafka import KafkaProducer
    broker, _ = start(broker_factory)
    create_topic(broker.bootstrap, topic_name)
    quota(broker.bootstrap, "set", "--client-id", "kp-slow", "--producer-byte-rate", str(QUOTA))
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, client_id="kp-slow", linger_ms=5,
                             batch_size=16384, acks=1, request_timeout_ms=120000)
    started = time.monotonic()
    futures = [producer.send(topic_name, b"x" * PAYLOAD) for _ in range(TOTAL // PAYLOAD)]
    producer.flush(timeout=120)
    elapsed = time.monotonic() - started
    producer.close()
    assert all(f.succeeded() for f in futures)
    print(f"kafka-python producer: {TOTAL} bytes in {elapsed:.1f} s")
    assert elapsed >= 0.5 * TOTAL / QUOTA, f"{TOTAL} bytes in {elapsed:.1f} s at a {QUOTA} B/s quota"


def test_consumer_over_its_quota_is_throttled_and_others_are_not(broker_factory, topic_name):
    broker, admin = start(broker_factory)
    create_topic(broker.bootstrap, topic_name)
    produce(broker.bootstrap, topic_name, "loader")
    quota(broker.bootstrap, "set", "--client-id", "slow-consumer", "--consumer-byte-rate", str(QUOTA))

    _, control_throttle = consume(broker.bootstrap, topic_name, "free-consumer")
    assert control_throttle == 0

    elapsed, throttle_ms = consume(broker.bootstrap, topic_name, "slow-consumer")
    print(f"slow consumer: {TOTAL} bytes in {elapsed:.1f} s, max throttle {throttle_ms} ms")
    assert throttle_ms > 0, "librdkafka saw no throttle_time_ms"
    assert elapsed >= 0.5 * TOTAL / QUOTA, f"{TOTAL} bytes in {elapsed:.1f} s at a {QUOTA} B/s quota"
    assert metric(admin, "holdfast_throttle_time_seconds_count", kind="fetch") > 0


def test_describe_delete_and_restart(broker_factory):
    broker = broker_factory(settings=SETTINGS)
    b = broker.bootstrap
    assert quota_list(b) == []
    quota(b, "set", "--client-id", "app", "--producer-byte-rate", "1048576", "--consumer-byte-rate", "2097152")
    quota(b, "set", "--user", "alice", "--default", "client-id", "--producer-byte-rate", "4096")
    quota(b, "set", "--default", "client-id", "--consumer-byte-rate", "65536")
    want = [
        {"entity": {"client-id": None}, "quotas": {"consumer_byte_rate": 65536.0}},
        {"entity": {"client-id": "app"},
         "quotas": {"consumer_byte_rate": 2097152.0, "producer_byte_rate": 1048576.0}},
        {"entity": {"client-id": None, "user": "alice"}, "quotas": {"producer_byte_rate": 4096.0}},
    ]

    def by_entity(entries):
        return sorted(entries, key=lambda e: json.dumps(e["entity"], sort_keys=True))

    assert by_entity(quota_list(b)) == by_entity(want)
    # Filters: an exact name, and the default entity.
    assert quota_list(b, "--client-id", "app") == [want[1]]
    assert quota_list(b, "--user", "alice") == [want[2]]
    assert by_entity(quota_list(b, "--default", "client-id")) == by_entity([want[0], want[2]])
    text = quota(b, "list").stdout
    assert "client-id=app" in text and "1048576" in text

    # They are in the metadata log: a restart (SIGKILL) keeps them.
    broker.restart()
    b = broker.bootstrap
    assert by_entity(quota_list(b)) == by_entity(want)

    # Delete one key, then the whole entity.
    quota(b, "delete", "--client-id", "app", "--key", "producer_byte_rate")
    assert quota_list(b, "--client-id", "app") == [
        {"entity": {"client-id": "app"}, "quotas": {"consumer_byte_rate": 2097152.0}}]
    quota(b, "delete", "--client-id", "app")
    assert quota_list(b, "--client-id", "app") == []
    assert len(quota_list(b)) == 2  # the others stay


def test_bad_input_gets_clear_errors_and_stores_nothing(broker_factory):
    broker = broker_factory(settings=SETTINGS)
    b = broker.bootstrap
    negative = quota(b, "set", "--client-id", "x", "--producer-byte-rate=-5", check=False)
    assert negative.returncode == 1
    assert "INVALID_REQUEST" in negative.stderr and "above 0" in negative.stderr, negative.stderr
    fractional = quota(b, "set", "--client-id", "x", "--producer-byte-rate", "10.5", check=False)
    assert fractional.returncode == 1 and "whole number" in fractional.stderr, fractional.stderr
    unknown = quota(b, "delete", "--client-id", "x", "--key", "bogus_rate", check=False)
    assert unknown.returncode == 1 and "unknown quota key 'bogus_rate'" in unknown.stderr, unknown.stderr
    # Kafka knows request_percentage; Holdfast does not enforce it and says so.
    unsupported = quota(b, "delete", "--client-id", "x", "--key", "request_percentage", check=False)
    assert unsupported.returncode == 1, unsupported.stderr
    assert "not supported by Holdfast" in unsupported.stderr, unsupported.stderr
    no_entity = quota(b, "set", "--producer-byte-rate", "100", check=False)
    assert no_entity.returncode == 2 and "name an entity" in no_entity.stderr
    assert quota_list(b) == []
    # The positive control: the same entity with a valid rate is stored.
    quota(b, "set", "--client-id", "x", "--producer-byte-rate", "100")
    assert quota_list(b) == [{"entity": {"client-id": "x"}, "quotas": {"producer_byte_rate": 100.0}}]


def holdfast_acl(bootstrap, *args):
    run([str(cli_binary()), "acl", *args, "--brokers", bootstrap])


def test_quota_apis_need_alter_and_describe_configs_on_the_cluster(broker_factory):
    """With the authoriser on, AlterClientQuotas needs AlterConfigs and
    DescribeClientQuotas DescribeConfigs on the cluster (Kafka's checks):
    refused with CLUSTER_AUTHORIZATION_FAILED without them, allowed once granted."""
    broker = broker_factory(settings={**SETTINGS, "authorizer.enabled": "false"})
    # Bootstrap (as test_acls does): Alter on the cluster, to manage ACLs later.
    holdfast_acl(broker.bootstrap, "add", "--allow-principal", "User:ANONYMOUS",
                 "--operation", "Alter", "--cluster")
    broker.stop()
    broker.settings["authorizer.enabled"] = "true"
    broker.start()
    b = broker.bootstrap
    refused = quota(b, "set", "--client-id", "x", "--producer-byte-rate", "100", check=False)
    assert refused.returncode == 1 and "CLUSTER_AUTHORIZATION_FAILED" in refused.stderr, refused.stderr
    listed = quota(b, "list", check=False)
    assert listed.returncode == 1 and "CLUSTER_AUTHORIZATION_FAILED" in listed.stderr, listed.stderr

    holdfast_acl(b, "add", "--allow-principal", "User:ANONYMOUS", "--operation", "AlterConfigs",
                 "--operation", "DescribeConfigs", "--cluster")
    quota(b, "set", "--client-id", "x", "--producer-byte-rate", "100")
    assert quota_list(b) == [{"entity": {"client-id": "x"}, "quotas": {"producer_byte_rate": 100.0}}]
