"""Control-plane requests in a cluster (issue 9): config changes sent to a
node that is not the controller are forwarded and reach every node, and
`holdfast cluster status` reports brokers and unhealthy partitions.
"""
import json
import subprocess

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from conftest import SESSION_TIMEOUT_MS, holdfast_binary, metadata, wait_until

TOPIC_RESOURCE = 2


def controller_id(bootstrap):
    return metadata(bootstrap).controller_id


def kafka_python_admin(node):
    from kafka import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=node.bootstrap, request_timeout_ms=40000)


def send_to(admin, node_id, request):
    """Sends `request` to exactly broker `node_id` (not whichever the client
    would pick) and returns its response."""
    future = admin._send_request_to_node(node_id, request)
    admin._wait_for_futures([future])
    return future.value


def alter_configs_at(node, topic, configs):
    """AlterConfigs v0 sent to `node` itself: the topic's error code."""
    from kafka.protocol.admin import AlterConfigsRequest_v0
    admin = kafka_python_admin(node)
    try:
        request = AlterConfigsRequest_v0(
            resources=[(TOPIC_RESOURCE, topic, list(configs.items()))], validate_only=False)
        response = send_to(admin, node.node_id, request)
    finally:
        admin.close()
    (error_code, _message, _type, name), = response.resources
    assert name == topic
    return error_code


def describe_at(node, topic):
    """The topic's configs as `node` itself describes them (DescribeConfigs v0)."""
    from kafka.protocol.admin import DescribeConfigsRequest_v0
    admin = kafka_python_admin(node)
    try:
        response = send_to(admin, node.node_id,
                           DescribeConfigsRequest_v0(resources=[(TOPIC_RESOURCE, topic, None)]))
    finally:
        admin.close()
    (error_code, message, _type, _name, entries), = response.resources
    assert error_code == 0, message
    return {entry[0]: entry[1] for entry in entries}


def test_topic_configs_altered_through_a_non_controller_reach_every_node(cluster):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap()})
    admin.create_topics([NewTopic("configured", 2, 3)])["configured"].result(30)
    controller = controller_id(cluster.nodes[0].bootstrap)
    other = next(n for n in cluster.nodes if n.node_id != controller)

    # Sent to the non-controller itself: it forwards (it answered
    # NOT_CONTROLLER before), and answers once its own image has the change.
    assert alter_configs_at(other, "configured", {"retention.ms": "3600000"}) == 0
    assert describe_at(other, "configured")["retention.ms"] == "3600000"
    for node in cluster.nodes:
        wait_until(lambda: describe_at(node, "configured")["retention.ms"] == "3600000", 30,
                   message=f"retention.ms on node {node.node_id}")

    # confluent-kafka's AdminClient, bootstrapped at the non-controller.
    via_other = AdminClient({"bootstrap.servers": other.bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, "configured",
                              set_config={"retention.ms": "7200000",
                                          "min.insync.replicas": "3"})
    via_other.alter_configs([resource])[resource].result(30)
    for node in cluster.nodes:
        def changed():
            configs = describe_at(node, "configured")
            return (configs["retention.ms"] == "7200000"
                    and configs["min.insync.replicas"] == "3")
        wait_until(changed, 30, message=f"the second change on node {node.node_id}")


def cluster_status(bootstrap, fmt="json"):
    result = subprocess.run(
        [str(holdfast_binary()), "cluster", "status", "--bootstrap-server", bootstrap,
         "--format", fmt, "--timeout-ms", "10000"],
        capture_output=True, text=True, timeout=60)
    return result


def test_cluster_status_shows_brokers_and_unhealthy_partitions(cluster):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap()})
    futures = admin.create_topics([
        NewTopic("replicated", 3, 3),
        NewTopic("strict", 1, 3, config={"min.insync.replicas": "3"}),
        NewTopic("single", 3, 1),  # one replica on each broker (leaders round-robin)
    ])
    for future in futures.values():
        future.result(30)
    controller = controller_id(cluster.nodes[0].bootstrap)

    healthy = cluster_status(cluster.node(controller).bootstrap)
    assert healthy.returncode == 0, healthy.stderr
    status = json.loads(healthy.stdout)
    assert status["controller"] == controller
    assert status["cluster_id"]
    assert {b["id"] for b in status["brokers"]} == {1, 2, 3}
    assert all(b["status"] == "alive" for b in status["brokers"])
    assert status["partitions"]["under_replicated"] == 0
    assert status["partitions"]["offline"] == 0
    assert status["partitions"]["total"] >= 7

    victim = next(n for n in cluster.nodes if n.node_id != controller)
    single = metadata(cluster.node(controller).bootstrap).topics["single"].partitions
    lost = [i for i, p in single.items() if p.replicas == [victim.node_id]]
    assert lost, "no partition of 'single' on the victim"
    victim.kill()
    watcher = cluster.node(controller)

    def degraded():
        result = cluster_status(watcher.bootstrap)
        if result.returncode not in (0, 3):
            return None
        s = json.loads(result.stdout)
        return (result, s) if s["partitions"]["offline"] == len(lost) and \
            s["partitions"]["under_replicated"] >= 4 else None

    result, status = wait_until(degraded, SESSION_TIMEOUT_MS / 1000 + 30,
                                message=lambda: "the victim fenced in cluster status\n"
                                + cluster.logs())
    # Offline partitions: exit code 3.
    assert result.returncode == 3
    brokers = {b["id"]: b for b in status["brokers"]}
    assert brokers[victim.node_id]["status"] == "fenced-or-down"
    problems = {(p["topic"], p["partition"]): p for p in status["problems"]}
    for i in lost:
        assert problems[("single", i)]["offline"]
    for i in range(3):
        p = problems[("replicated", i)]
        assert p["under_replicated"] and not p["under_min_isr"] and not p["offline"]
        assert victim.node_id not in p["isr"]
    strict = problems[("strict", 0)]
    assert strict["under_min_isr"] and strict["min_insync_replicas"] == 3

    text = cluster_status(watcher.bootstrap, "text")
    assert text.returncode == 3
    assert "offline: %d" % len(lost) in text.stdout
    assert "fenced or down" in text.stdout
    assert "under-min-isr" in text.stdout

    # Once it is back and caught up, nothing is offline again.
    victim.start()
    wait_until(lambda: cluster_status(watcher.bootstrap).returncode == 0, 60,
               message=lambda: "no offline partitions after the restart\n" + cluster.logs())
