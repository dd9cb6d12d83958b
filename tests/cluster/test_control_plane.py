"""Control-plane requests in a cluster (issue 9): config changes sent to a
node that is not the controller are forwarded and reach every node.
"""

from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from conftest import metadata, wait_until

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
