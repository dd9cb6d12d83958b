"""ACL authorisation end to end (issue 11): CreateAcls / DescribeAcls /
DeleteAcls through kafka-python's admin client and `holdfast acl` (librdkafka's
ACL admin API; the confluent-kafka 1.7 Python binding installed here has no
create_acls), and enforcement seen by real producers and consumers
(confluent-kafka) and kcat.

Every client is User:ANONYMOUS until SASL lands, so the bootstrap path is:
start with authorizer.enabled=false, grant User:ANONYMOUS Alter and Describe
on the cluster (so the tests can go on managing ACLs), restart with
authorizer.enabled=true. That restart is also the "ACLs survive a restart"
check. Each negative is paired with the positive that shows it can fail:
the same operation succeeds once the missing ACL is added (or the Deny
removed).
"""
import json
import shutil
import subprocess
import time

import pytest
from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import NewTopic
from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                         KafkaAdminClient, ResourcePattern, ResourcePatternFilter, ResourceType)

from conftest import cli_binary, wait_until
from support import ck_admin, ck_consumer, ck_producer

ANON = "User:ANONYMOUS"
CLUSTER = "kafka-cluster"


def binding(name, operation, permission=ACLPermissionType.ALLOW, pattern=ACLResourcePatternType.LITERAL,
            rtype=ResourceType.TOPIC, principal=ANON):
    return ACL(principal=principal, host="*", operation=operation, permission_type=permission,
               resource_pattern=ResourcePattern(rtype, name, pattern))


def acl_filter(name=None, rtype=ResourceType.TOPIC, pattern=ACLResourcePatternType.ANY, principal=None,
               operation=ACLOperation.ANY, permission=ACLPermissionType.ANY):
    return ACLFilter(principal=principal, host=None, operation=operation, permission_type=permission,
                     resource_pattern=ResourcePatternFilter(rtype, name, pattern))


def kp_admin(bootstrap):
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)


def create_acls(bootstrap, bindings):
    admin = kp_admin(bootstrap)
    try:
        result = admin.create_acls(bindings)
    finally:
        admin.close()
    assert not result["failed"], result["failed"]
    return result


def delete_acls(bootstrap, filters):
    """Deletes what `filters` match; returns the deleted ACLs."""
    admin = kp_admin(bootstrap)
    try:
        results = admin.delete_acls(filters)
    finally:
        admin.close()
    deleted = []
    for _, matching, error in results:
        assert error.errno == 0, error
        deleted += [acl for acl, _ in matching]
    return deleted


def describe_acls(bootstrap, the_filter):
    admin = kp_admin(bootstrap)
    try:
        found, error = admin.describe_acls(the_filter)
    finally:
        admin.close()
    assert error.errno == 0, error
    return found


def holdfast_acl(bootstrap, *args, check=True):
    """Runs `holdfast acl ...` (librdkafka's ACL admin API)."""
    proc = subprocess.run([str(cli_binary()), "acl", *args, "--brokers", bootstrap],
                          capture_output=True, text=True, timeout=60)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def create_topics(bootstrap, names):
    admin = ck_admin(bootstrap)
    for f in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        f.result(timeout=20)


def produce_one(bootstrap, topic, value=b"v"):
    """Produces one message; returns the delivery error (None on success)."""
    producer = ck_producer(bootstrap, **{"message.timeout.ms": 8000, "retries": 0})
    result = {}

    def on_delivery(err, msg):
        result["error"] = err

    producer.produce(topic, value=value, on_delivery=on_delivery)
    assert producer.flush(20) == 0
    return result["error"]


def end_offset(bootstrap, topic):
    consumer = ck_consumer(bootstrap)
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
    finally:
        consumer.close()


def consume(bootstrap, topic, timeout=10):
    """Reads partition 0 from the start: (values, first error code or None)."""
    consumer = ck_consumer(bootstrap)
    values = []
    try:
        consumer.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(0.2)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return values, None
                return values, msg.error().code()
            values.append(msg.value())
        return values, None
    finally:
        consumer.close()


@pytest.fixture
def secured(broker_factory):
    """A broker with authorizer.enabled=true, bootstrapped as the module doc
    says, with topics created beforehand. Returns (broker, topics)."""
    topics = ["acl-write", "acl-read", "acl-deny", "pay-in", "payout", "acl-hidden"]
    broker = broker_factory(settings={"authorizer.enabled": "false"})
    create_topics(broker.bootstrap, topics)
    create_acls(broker.bootstrap, [
        binding(CLUSTER, ACLOperation.ALTER, rtype=ResourceType.CLUSTER),
        binding(CLUSTER, ACLOperation.DESCRIBE, rtype=ResourceType.CLUSTER),
        # librdkafka consumers look up their group's coordinator even when
        # they only assign(): let them (these tests are about topics).
        binding("*", ACLOperation.READ, rtype=ResourceType.GROUP),
    ])
    broker.stop()
    broker.settings["authorizer.enabled"] = "true"
    broker.start()
    return broker, topics


def test_cluster_acls_survive_restart(secured):
    broker, _ = secured
    found = describe_acls(broker.bootstrap, acl_filter(rtype=ResourceType.CLUSTER))
    assert sorted(a.operation.name for a in found) == ["ALTER", "DESCRIBE"], found
    groups = describe_acls(broker.bootstrap, acl_filter(rtype=ResourceType.GROUP))
    assert [a.resource_pattern.resource_name for a in groups] == ["*"]


def test_produce_without_write_is_refused_and_appends_nothing(secured):
    broker, _ = secured
    b = broker.bootstrap
    create_acls(b, [binding("acl-write", ACLOperation.DESCRIBE)])
    err = produce_one(b, "acl-write")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    assert end_offset(b, "acl-write") == 0
    # The positive: with Write the same produce is appended.
    create_acls(b, [binding("acl-write", ACLOperation.WRITE)])
    assert produce_one(b, "acl-write") is None
    assert end_offset(b, "acl-write") == 1


def test_consume_without_read_sees_no_data(secured):
    broker, _ = secured
    b = broker.bootstrap
    create_acls(b, [binding("acl-read", ACLOperation.WRITE)])  # Write implies Describe
    assert produce_one(b, "acl-read", b"secret") is None
    values, error = consume(b, "acl-read")
    assert values == []
    assert error == KafkaError.TOPIC_AUTHORIZATION_FAILED
    create_acls(b, [binding("acl-read", ACLOperation.READ)])
    values, error = consume(b, "acl-read")
    assert values == [b"secret"] and error is None


def test_deny_overrides_allow(secured):
    broker, _ = secured
    b = broker.bootstrap
    create_acls(b, [binding("acl-deny", ACLOperation.ALL),
                    binding("acl-deny", ACLOperation.WRITE, ACLPermissionType.DENY)])
    err = produce_one(b, "acl-deny")
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    assert end_offset(b, "acl-deny") == 0
    deleted = delete_acls(b, [acl_filter("acl-deny", pattern=ACLResourcePatternType.LITERAL,
                                         principal=ANON, operation=ACLOperation.WRITE,
                                         permission=ACLPermissionType.DENY)])
    assert len(deleted) == 1
    assert produce_one(b, "acl-deny") is None
    assert end_offset(b, "acl-deny") == 1


def test_prefixed_acls_match_as_kafka(secured):
    broker, _ = secured
    b = broker.bootstrap
    create_acls(b, [binding("pay-", ACLOperation.WRITE, pattern=ACLResourcePatternType.PREFIXED),
                    binding("payout", ACLOperation.DESCRIBE)])
    assert produce_one(b, "pay-in") is None  # "pay-in" starts with "pay-"
    err = produce_one(b, "payout")           # "payout" does not
    assert err is not None and err.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, err
    assert end_offset(b, "payout") == 0
    # MATCH finds the prefixed binding for a topic it covers; LITERAL does not.
    match = describe_acls(b, acl_filter("pay-in", pattern=ACLResourcePatternType.MATCH))
    assert [(a.resource_pattern.resource_name, a.resource_pattern.pattern_type) for a in match] == \
        [("pay-", ACLResourcePatternType.PREFIXED)]
    assert describe_acls(b, acl_filter("pay-in", pattern=ACLResourcePatternType.LITERAL)) == []


def test_metadata_hides_undescribable_topics(secured):
    broker, _ = secured
    b = broker.bootstrap
    before = set(ck_admin(b).list_topics(timeout=10).topics)
    assert before == set(), before  # no topic ACL yet: nothing is describable
    create_acls(b, [binding("acl-", ACLOperation.DESCRIBE, pattern=ACLResourcePatternType.PREFIXED),
                    binding("acl-hidden", ACLOperation.DESCRIBE, ACLPermissionType.DENY)])
    listed = set(ck_admin(b).list_topics(timeout=10).topics)
    assert listed == {"acl-write", "acl-read", "acl-deny"}, listed


def test_acl_admin_needs_cluster_alter(secured):
    broker, _ = secured
    b = broker.bootstrap
    create_acls(b, [binding("x", ACLOperation.READ)])  # the positive: allowed now
    # Remove our own Alter on the cluster: further CreateAcls are refused.
    delete_acls(b, [acl_filter(CLUSTER, rtype=ResourceType.CLUSTER, operation=ACLOperation.ALTER)])
    admin = kp_admin(b)
    try:
        result = admin.create_acls([binding("y", ACLOperation.READ)])
    finally:
        admin.close()
    assert not result["succeeded"]
    assert "ClusterAuthorizationFailed" in str(result["failed"][0][1]), result


def test_kafka_python_admin_create_describe_delete(broker_factory):
    """Authoriser off (the default): the ACL APIs still manage bindings."""
    b = broker_factory().bootstrap
    wanted = [binding("orders", ACLOperation.READ),
              binding("ord", ACLOperation.WRITE, pattern=ACLResourcePatternType.PREFIXED,
                      principal="User:alice"),
              binding("g1", ACLOperation.READ, rtype=ResourceType.GROUP, principal="User:*")]
    create_acls(b, wanted)

    def key(a):
        return (a.resource_pattern.resource_type.name, a.resource_pattern.resource_name,
                a.resource_pattern.pattern_type.name, a.principal, a.host, a.operation.name,
                a.permission_type.name)

    everything = acl_filter(rtype=ResourceType.ANY)
    assert sorted(map(key, describe_acls(b, everything))) == sorted(map(key, wanted))
    only_alice = acl_filter(rtype=ResourceType.ANY, principal="User:alice")
    assert [a.resource_pattern.resource_name for a in describe_acls(b, only_alice)] == ["ord"]
    deleted = delete_acls(b, [acl_filter()])  # every topic binding
    assert sorted(a.resource_pattern.resource_name for a in deleted) == ["ord", "orders"]
    assert [a.resource_pattern.resource_name for a in describe_acls(b, everything)] == ["g1"]


def test_holdfast_acl_cli_add_list_remove(broker_factory):
    """`holdfast acl` (librdkafka's CreateAcls / DescribeAcls / DeleteAcls)."""
    b = broker_factory().bootstrap
    holdfast_acl(b, "add", "--allow-principal", "User:alice", "--operation", "Read",
                 "--operation", "Describe", "--topic", "orders")
    holdfast_acl(b, "add", "--deny-principal", "User:bob", "--operation", "Write",
                 "--topic", "pay-", "--resource-pattern-type", "prefixed")
    holdfast_acl(b, "add", "--allow-principal", "User:ops", "--operation", "Alter", "--cluster")
    listed = json.loads(holdfast_acl(b, "list", "--format", "json").stdout)
    assert sorted((x["resource_type"], x["resource_name"], x["pattern_type"], x["principal"],
                   x["operation"], x["permission"]) for x in listed) == sorted([
        ("Topic", "orders", "Literal", "User:alice", "Read", "Allow"),
        ("Topic", "orders", "Literal", "User:alice", "Describe", "Allow"),
        ("Topic", "pay-", "Prefixed", "User:bob", "Write", "Deny"),
        ("Cluster", "kafka-cluster", "Literal", "User:ops", "Alter", "Allow")])
    match = json.loads(holdfast_acl(b, "list", "--topic", "pay-in", "--resource-pattern-type", "match",
                                    "--format", "json").stdout)
    assert [x["resource_name"] for x in match] == ["pay-"]
    removed = json.loads(holdfast_acl(b, "remove", "--allow-principal", "User:alice", "--topic", "orders",
                                      "--format", "json").stdout)
    assert len(removed) == 2
    left = json.loads(holdfast_acl(b, "list", "--format", "json").stdout)
    assert sorted(x["principal"] for x in left) == ["User:bob", "User:ops"]
    bad = holdfast_acl(b, "add", "--allow-principal", "User:alice", "--operation", "Fly", "--topic", "t",
                       check=False)
    assert bad.returncode == 2 and "unknown operation" in bad.stderr


def test_kcat_produce_refused_without_write(secured):
    kcat = shutil.which("kcat") or shutil.which("kafkacat")
    if kcat is None:
        pytest.skip("kcat is not installed")
    broker, _ = secured
    b = broker.bootstrap
    create_acls(b, [binding("acl-write", ACLOperation.DESCRIBE)])
    refused = subprocess.run([kcat, "-b", b, "-P", "-t", "acl-write", "-p", "0",
                              "-X", "message.timeout.ms=8000"],
                             input=b"nope\n", capture_output=True, timeout=60)
    assert b"uthoriz" in refused.stderr, refused.stderr
    assert end_offset(b, "acl-write") == 0
    create_acls(b, [binding("acl-write", ACLOperation.WRITE)])
    ok = subprocess.run([kcat, "-b", b, "-P", "-t", "acl-write", "-p", "0"],
                        input=b"yes\n", capture_output=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    wait_until(lambda: end_offset(b, "acl-write") == 1, timeout=10, message="kcat's message appended")


def test_transactions_need_write_on_the_transactional_id(secured):
    from confluent_kafka import KafkaException, Producer
    broker, _ = secured
    b = broker.bootstrap
    create_acls(b, [binding("acl-write", ACLOperation.WRITE)])

    def transactional_producer():
        return Producer({"bootstrap.servers": b, "transactional.id": "txn-acl",
                         "message.timeout.ms": 10000})

    refused = transactional_producer()
    with pytest.raises(KafkaException) as raised:
        refused.init_transactions(20)
    assert raised.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
    assert end_offset(b, "acl-write") == 0
    # The positive: with Write on the id, a transaction commits.
    create_acls(b, [binding("txn-acl", ACLOperation.WRITE, rtype=ResourceType.TRANSACTIONAL_ID)])
    p = transactional_producer()
    p.init_transactions(20)
    p.begin_transaction()
    p.produce("acl-write", value=b"in-a-transaction")
    p.commit_transaction(20)
    # The message and its commit marker; the marker follows EndTxn's answer.
    assert wait_until(lambda: end_offset(b, "acl-write") == 2, 20, message="the commit marker")
