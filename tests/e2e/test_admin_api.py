"""The admin HTTP listener (docs/admin-api.md, docs/metrics.md) against a
running broker, with confluent-kafka as the client: every endpoint's shape,
the JSON errors, /metrics parsed by Prometheus's own parser (counters move by
exactly the messages produced), consumer lag, and server-side message search
over 100,000 messages in compressed batches.

Every wait is bounded and polls a condition; every address is loopback."""
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from conftest import REPO_ROOT, free_loopback_port

WAIT_S = 30.0


def start_broker(broker_factory, **settings):
    port = free_loopback_port()
    values = {"admin.listener": f"127.0.0.1:{port}", "group.initial.rebalance.delay.ms": "0",
              "num.partitions": "1"}
    values.update(settings)
    broker = broker_factory(settings=values)
    return broker, f"http://127.0.0.1:{port}"


def http(method, url, body=None):
    """(status, parsed JSON or text) of one request."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            status, raw, ctype = response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as e:
        status, raw, ctype = e.code, e.read(), e.headers["Content-Type"]
    text = raw.decode()
    return status, (json.loads(text) if ctype and ctype.startswith("application/json") else text)


def get(base, path, **params):
    query = ("?" + urllib.parse.urlencode(params)) if params else ""
    return http("GET", base + path + query)


def scrape(base):
    """{(name, frozenset(labels)): value} parsed with prometheus_client's
    parser, which raises on anything the text format does not allow."""
    status, text = get(base, "/metrics")
    assert status == 200
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples, text


def metric(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_until(condition, what, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def produce(bootstrap, topic, count, compression="lz4", key=lambda i: f"k{i}",
            value=lambda i: f"value-{i}", headers=None, timestamp=None):
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                         "acks": "all", "compression.type": compression, "linger.ms": 20,
                         "batch.num.messages": 5000})
    errors = []

    def report(err, msg):
        if err is not None:
            errors.append(err)

    for i in range(count):
        kwargs = {"key": key(i), "value": value(i), "on_delivery": report}
        if headers:
            kwargs["headers"] = headers(i)
        if timestamp:
            kwargs["timestamp"] = timestamp(i)
        while True:
            try:
                producer.produce(topic, **kwargs)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0, "messages left unacknowledged"
    assert not errors, errors[:3]


def test_every_endpoint_shape_and_its_errors(broker_factory):
    broker, base = start_broker(broker_factory)

    status, b = get(base, "/v1/broker")
    assert status == 200
    assert b["node_id"] == 1 and b["state"] == "running"
    assert b["kafka_listener"] == broker.bootstrap
    assert b["admin_listener"] == base.removeprefix("http://")
    assert b["under_replicated_partitions"] == 0
    assert b["brokers"] == [{"node_id": 1, "host": "127.0.0.1", "port": broker.port}]
    assert set(b["coordinator"]) == {"loading_partitions", "active_partitions", "failed_partitions"}

    status, c = get(base, "/v1/config")
    assert status == 200 and c["settings"]["admin.listener"] == b["admin_listener"]
    assert c["settings"]["flush.policy"] == "always"

    status, t = http("POST", base + "/v1/topics",
                     {"name": "orders", "partitions": 3, "configs": {"retention.ms": "3600000"}})
    assert status == 201, t
    assert t["name"] == "orders" and len(t["partitions"]) == 3
    p0 = t["partitions"][0]
    assert set(p0) >= {"partition", "leader", "replicas", "isr", "log_start_offset",
                       "high_watermark", "log_end_offset", "size_bytes"}
    assert p0["leader"] == 1 and p0["isr"] == [1] and p0["high_watermark"] == 0
    assert t["configs"]["retention.ms"] == {"value": "3600000", "default": False}

    status, e = http("POST", base + "/v1/topics", {"name": "orders", "partitions": 1})
    assert status == 409 and e["error"] == "TOPIC_ALREADY_EXISTS"
    status, e = http("POST", base + "/v1/topics", {"name": "bad", "partitions": 0})
    assert status == 400 and e["error"] == "INVALID_PARTITIONS"
    status, e = http("POST", base + "/v1/topics", {"partitions": 1})
    assert status == 400 and e["parameter"] == "name" and "'name'" in e["message"]
    status, e = http("POST", base + "/v1/topics", {"name": "x", "configs": {"nope.ms": "1"}})
    assert status == 400 and e["error"] == "INVALID_CONFIG"

    status, ts = get(base, "/v1/topics")
    assert status == 200
    names = {x["name"]: x for x in ts["topics"]}
    assert names["orders"]["partitions"] == 3 and names["__consumer_offsets"]["internal"]

    status, e = get(base, "/v1/topics/nosuch")
    assert status == 404 and e["error"] == "UNKNOWN_TOPIC_OR_PARTITION" and e["message"]
    status, e = get(base, "/v1/topics/nosuch/messages")
    assert status == 404 and e["error"] == "UNKNOWN_TOPIC_OR_PARTITION"
    for name, bad in [("limit", "abc"), ("limit", "0"), ("offset", "-1"), ("timestamp", "x"),
                      ("max_scan_bytes", "0")]:
        status, e = get(base, "/v1/topics/orders/messages", **{name: bad})
        assert status == 400 and e["error"] == "INVALID_REQUEST", (name, e)
        assert e["parameter"] == name and f"'{name}'" in e["message"]
    status, e = get(base, "/v1/topics/orders/messages", partition="7")
    assert status == 404 and e["parameter"] == "partition"
    status, s = get(base, "/v1/topics/orders/messages", partition="0")
    assert status == 200
    assert s["messages"] == [] and s["next_offset"] == 0 and s["budget_exhausted"] is False

    status, g = get(base, "/v1/groups")
    assert status == 200 and g["groups"] == []
    status, e = get(base, "/v1/groups/nosuch")
    assert status == 404 and e["error"] == "GROUP_ID_NOT_FOUND"
    status, e = http("POST", base + "/v1/groups/g1/offsets", {"topic": "orders", "to": "sideways"})
    assert status == 400 and e["parameter"] == "to"
    status, e = http("POST", base + "/v1/groups/g1/offsets", {"topic": "nosuch", "to": "earliest"})
    assert status == 404 and e["error"] == "UNKNOWN_TOPIC_OR_PARTITION"
    status, e = http("POST", base + "/v1/groups/g1/offsets", {"topic": "orders", "to": "offset",
                                                            "offset": 5})
    assert status == 400 and e["error"] == "OFFSET_OUT_OF_RANGE"

    status, e = get(base, "/v1/nothing-here")
    assert status == 404 and e["error"] == "NOT_FOUND"
    status, e = http("POST", base + "/v1/topics", None)
    assert status == 400 and e["error"] == "INVALID_REQUEST"

    status, d = http("DELETE", base + "/v1/topics/orders")
    assert status == 200 and d == {"deleted": "orders"}
    status, e = http("DELETE", base + "/v1/topics/orders")
    assert status == 404 and e["error"] == "UNKNOWN_TOPIC_OR_PARTITION"
    status, e = get(base, "/v1/topics/orders")
    assert status == 404


def test_metrics_scrape_cleanly_and_messages_in_moves_by_exactly_the_count(broker_factory):
    broker, base = start_broker(broker_factory)
    status, _ = http("POST", base + "/v1/topics", {"name": "counted", "partitions": 2})
    assert status == 201
    before, text = scrape(base)
    for family in ("kafka_server_replicamanager_underreplicatedpartitions",
                   "holdfast_network_connections", "holdfast_request_budget_in_use_bytes",
                   "holdfast_idempotent_producers", "holdfast_coordinator_partitions",
                   "kafka_network_requestmetrics_totaltime_seconds",
                   "holdfast_log_fsync_latency_seconds", "holdfast_log_unsynced_bytes"):
        assert f"# TYPE {family} " in text, family

    produce(broker.bootstrap, "counted", 1234, compression="gzip")

    after, _ = scrape(base)
    name = "kafka_server_brokertopicmetrics_messagesin_total"
    assert metric(after, name, topic="counted") - metric(before, name, topic="counted") == 1234
    assert metric(after, "kafka_server_brokertopicmetrics_bytesin_total", topic="counted") > 0
    assert (metric(after, "kafka_network_requestmetrics_requests_total", request="Produce") >
            metric(before, "kafka_network_requestmetrics_requests_total", request="Produce"))
    assert metric(after, "holdfast_produce_ack_latency_seconds_count", acks="all") > 0
    assert metric(after, "kafka_server_replicamanager_underreplicatedpartitions") == 0
    assert metric(after, "holdfast_idempotent_producers") >= 1
    sizes = sum(metric(after, "kafka_log_log_size", topic="counted", partition=str(p))
                for p in range(2))
    assert sizes > 0
    fsyncs = [v for (n, labels), v in after.items() if n == "holdfast_log_fsyncs_total"]
    assert fsyncs and fsyncs[0] > 0

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "reader",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["counted"])
    got = 0
    deadline = time.monotonic() + WAIT_S
    while got < 1234 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got += 1
    consumer.close()
    assert got == 1234
    out, _ = scrape(base)
    assert metric(out, "kafka_server_brokertopicmetrics_bytesout_total", topic="counted") > 0
    assert metric(out, "kafka_network_requestmetrics_requests_total", request="Fetch") > 0


def test_a_recreated_topic_does_not_inherit_the_deleted_topics_counts(broker_factory):
    """Per-topic series go with their topic: deleted, they leave /metrics;
    created again under the same name, they start from zero."""
    broker, base = start_broker(broker_factory)
    topic = "reborn"
    in_name = "kafka_server_brokertopicmetrics_messagesin_total"
    out_name = "kafka_server_brokertopicmetrics_bytesout_total"
    assert http("POST", base + "/v1/topics", {"name": topic, "partitions": 1})[0] == 201
    produce(broker.bootstrap, topic, 50)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "reborn-reader",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got = 0
    deadline = time.monotonic() + WAIT_S
    while got < 50 and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            got += 1
    consumer.close()
    assert got == 50
    samples, _ = scrape(base)
    assert metric(samples, in_name, topic=topic) == 50
    assert metric(samples, out_name, topic=topic) > 0

    assert http("DELETE", base + "/v1/topics/" + topic)[0] == 200

    def series_gone():
        samples, _ = scrape(base)
        return not any(labels == frozenset({("topic", topic)}) for _, labels in samples)
    wait_until(series_gone, "the deleted topic's series to leave /metrics")

    assert http("POST", base + "/v1/topics", {"name": topic, "partitions": 1})[0] == 201
    produce(broker.bootstrap, topic, 7)
    samples, _ = scrape(base)
    assert metric(samples, in_name, topic=topic) == 7
    assert (in_name, frozenset({("topic", topic)})) in samples
    assert metric(samples, out_name, topic=topic) == 0


def documented_metrics():
    """{name: type} from the tables of docs/metrics.md."""
    docs = (REPO_ROOT / "docs" / "metrics.md").read_text()
    return {m.group(1): m.group(2) for m in
            re.finditer(r"^\| `([a-z_:][a-z0-9_:]*)` \| (counter|gauge|histogram) \|", docs, re.M)}


def test_docs_list_exactly_the_exposed_metrics_and_the_dashboard_uses_only_them(broker_factory):
    """docs/metrics.md lists every family /metrics exposes, with its type, and
    nothing else; every metric the Grafana dashboard queries exists; the
    start-up log prints the console's address."""
    broker, base = start_broker(broker_factory)
    status, text = get(base, "/metrics")
    assert status == 200
    exposed = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    documented = documented_metrics()
    assert documented, "no metric table found in docs/metrics.md"
    assert set(exposed) - set(documented) == set(), "exposed but not in docs/metrics.md"
    assert set(documented) - set(exposed) == set(), "in docs/metrics.md but not exposed"
    assert {n: t for n, t in exposed.items()} == documented

    dashboard = json.loads((REPO_ROOT / "docs" / "grafana" / "holdfast-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", []) if "expr" in t]
    assert exprs
    for expr in exprs:
        for name in re.findall(r"\b((?:kafka|holdfast)_[a-z0-9_]+)", expr):
            base_name = re.sub(r"_(bucket|sum|count)$", "", name)
            assert name in documented or documented.get(base_name) == "histogram", (name, expr)

    admin = base.removeprefix("http://")
    assert f"web console, admin API and /metrics on http://{admin}/" in \
        broker.log_path.read_text()


def test_lag_is_log_end_minus_committed_and_offsets_reset_only_when_empty(broker_factory):
    broker, base = start_broker(broker_factory)
    status, _ = http("POST", base + "/v1/topics", {"name": "lagged", "partitions": 1})
    assert status == 201
    produce(broker.bootstrap, "lagged", 100)

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "slow",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(["lagged"])
    wait_until(lambda: consumer.poll(0.2) is not None or bool(consumer.assignment()),
               "the consumer to get its assignment")
    consumer.commit(offsets=[TopicPartition("lagged", 0, 30)], asynchronous=False)

    status, g = get(base, "/v1/groups/slow")
    assert status == 200
    assert g["state"] == "Stable" and len(g["members"]) == 1
    assert g["members"][0]["assignment"] == [{"topic": "lagged", "partitions": [0]}]
    assert g["offsets"] == [{"topic": "lagged", "partition": 0, "committed_offset": 30,
                             "metadata": "", "high_watermark": 100, "lag": 70}]
    assert g["total_lag"] == 70
    samples, _ = scrape(base)
    assert metric(samples, "kafka_consumergroup_lag", group="slow", topic="lagged",
                  partition="0") == 70
    status, groups = get(base, "/v1/groups")
    assert {"group_id": "slow", "state": "Stable", "protocol_type": "consumer", "members": 1,
            "total_lag": 70} in groups["groups"]

    # Kafka's rule: no reset while the group has members.
    status, e = http("POST", base + "/v1/groups/slow/offsets", {"topic": "lagged", "to": "latest"})
    assert status == 409 and e["error"] == "NON_EMPTY_GROUP"

    # The broker's short lag history (the console's sparkline): sampled every 2 s.
    def last_sampled_lag():
        history = get(base, "/v1/groups/slow")[1]["lag_history"]
        return history[-1]["total_lag"] if history else None
    wait_until(lambda: last_sampled_lag() == 70, "a lag sample of 70")

    produce(broker.bootstrap, "lagged", 25)  # lag follows the log end
    samples, _ = scrape(base)
    assert metric(samples, "kafka_consumergroup_lag", group="slow", topic="lagged",
                  partition="0") == 95
    wait_until(lambda: last_sampled_lag() == 95, "a lag sample of 95")
    history = get(base, "/v1/groups/slow")[1]["lag_history"]
    assert 2 <= len(history) <= 60
    assert [p["timestamp"] for p in history] == sorted(p["timestamp"] for p in history)
    assert {p["total_lag"] for p in history} <= {0, 70, 95}  # 0: before the commit

    consumer.close()
    wait_until(lambda: get(base, "/v1/groups/slow")[1]["members"] == [], "the group to empty")
    status, r = http("POST", base + "/v1/groups/slow/offsets",
                     {"topic": "lagged", "to": "offset", "offset": 120})
    assert status == 200, r
    assert r["offsets"] == [{"topic": "lagged", "partition": 0, "committed_offset": 120}]
    samples, _ = scrape(base)
    assert metric(samples, "kafka_consumergroup_lag", group="slow", topic="lagged",
                  partition="0") == 5
    status, r = http("POST", base + "/v1/groups/slow/offsets", {"topic": "lagged", "to": "earliest"})
    assert status == 200 and r["offsets"][0]["committed_offset"] == 0
    assert get(base, "/v1/groups/slow")[1]["total_lag"] == 125


SEARCH_COUNT = 100_000
BASE_TS = 1_700_000_000_000


def test_search_100k_messages_by_key_header_value_and_timestamp(broker_factory):
    broker, base = start_broker(broker_factory)
    status, _ = http("POST", base + "/v1/topics", {"name": "haystack", "partitions": 1})
    assert status == 201
    produce(broker.bootstrap, "haystack", SEARCH_COUNT, compression="lz4",
            key=lambda i: f"key-{i}", value=lambda i: f"payload-{i}-" + "x" * 40,
            headers=lambda i: [("trace", f"t{i}")], timestamp=lambda i: BASE_TS + i)
    status, t = get(base, "/v1/topics/haystack")
    assert t["partitions"][0]["high_watermark"] == SEARCH_COUNT

    status, s = get(base, "/v1/topics/haystack/messages", key="key-77777")
    assert status == 200
    assert [m["offset"] for m in s["messages"]] == [77777]
    m = s["messages"][0]
    assert m["key"] == "key-77777" and m["key_encoding"] == "text"
    assert m["value"].startswith("payload-77777-") and m["timestamp"] == BASE_TS + 77777
    assert m["headers"] == [{"key": "trace", "value": "t77777", "value_encoding": "text"}]
    assert s["scanned_bytes"] > 0 and s["budget_exhausted"] is False

    status, s = get(base, "/v1/topics/haystack/messages", header="trace=t31415", limit=1)
    assert [m["offset"] for m in s["messages"]] == [31415]
    assert s["next_offset"] == 31416

    status, s = get(base, "/v1/topics/haystack/messages", value="payload-99999-", partition=0)
    assert [m["offset"] for m in s["messages"]] == [99999]

    status, s = get(base, "/v1/topics/haystack/messages", timestamp=BASE_TS + 54321, limit=3)
    assert [m["offset"] for m in s["messages"]] == [54321, 54322, 54323]

    # No match: the scan stops at its byte budget and says where to continue.
    status, s = get(base, "/v1/topics/haystack/messages", partition=0, key="absent",
                    max_scan_bytes=100_000)
    assert status == 200 and s["messages"] == []
    assert s["budget_exhausted"] is True
    assert 0 < s["next_offset"] < SEARCH_COUNT
    assert 100_000 <= s["scanned_bytes"] < 100_000 + 1_100_000  # at most one batch past
    first_stop = s["next_offset"]
    status, s = get(base, "/v1/topics/haystack/messages", partition=0, key="absent",
                    offset=first_stop, max_scan_bytes=100_000)
    assert s["budget_exhausted"] is True and s["next_offset"] > first_stop
    # With the whole budget it reaches the end and says so.
    status, s = get(base, "/v1/topics/haystack/messages", partition=0, key="absent")
    assert s["budget_exhausted"] is False and s["next_offset"] == SEARCH_COUNT
    assert s["partitions"][0]["reached_end"] is True


def test_admin_listener_in_use_fails_start_up_before_touching_the_data_dir(tmp_path):
    import socket
    import subprocess
    from conftest import holdfast_binary
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        data_dir = tmp_path / "data"
        result = subprocess.run(
            [str(holdfast_binary()), "serve", "--data-dir", str(data_dir),
             "--listen", f"127.0.0.1:{free_loopback_port()}",
             "--set", f"admin.listener=127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert "admin.listener" in result.stderr and str(port) in result.stderr
    assert not data_dir.exists()
    bad = subprocess.run([str(holdfast_binary()), "serve", "--data-dir", str(data_dir),
                          "--set", "admin.listener=nonsense"],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert bad.returncode != 0 and "admin.listener" in bad.stderr
