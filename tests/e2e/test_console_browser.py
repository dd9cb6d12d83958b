"""The web console (console/, served at / by the admin listener) in headless
Debian chromium driven by selenium: loads every page, finds a message through
the search box by key and continues a search, watches the live tail, produces
a message from the form and finds it by key, sees a
consumer group's lag change after more messages are produced, and checks the
browser log has no SEVERE entries. Screenshots go to build/console-screenshots/
for a person to look at.

A missing chromium, chromedriver or selenium is a failure, not a skip
(scripts/install-deps.sh installs them). Every wait is a bounded
WebDriverWait on a condition."""
import json
import pathlib
import shutil
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer

from conftest import REPO_ROOT, free_loopback_port, wait_until

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError as e:  # a failure, not a skip
    webdriver = None
    SELENIUM_IMPORT_ERROR = e

WAIT_S = 30.0
SCREENSHOTS = REPO_ROOT / "build" / "console-screenshots"
GROUP = "console-group"


def find_executable(*names):
    for name in names:
        path = shutil.which(name) or (f"/usr/bin/{name}" if pathlib.Path(f"/usr/bin/{name}").exists() else None)
        if path:
            return path
    return None


@pytest.fixture
def driver():
    if webdriver is None:
        pytest.fail(f"python3-selenium is missing ({SELENIUM_IMPORT_ERROR}): run scripts/install-deps.sh")
    chromium = find_executable("chromium", "chromium-browser")
    chromedriver = find_executable("chromedriver")
    if chromium is None or chromedriver is None:
        pytest.fail("chromium and chromium-driver are needed: run scripts/install-deps.sh")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,800", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    d.set_page_load_timeout(WAIT_S)
    yield d
    d.quit()


def http_json(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def produce(bootstrap, topic, start, count):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                         "compression.type": "lz4"})
    for i in range(start, start + count):
        producer.produce(topic, key=f"k{i}", value=f"value-{i}", partition=i % 2,
                         headers=[("trace", f"t{i}".encode())])
    assert producer.flush(WAIT_S) == 0, "messages left unacknowledged"


class Page:
    """The browser plus the checks every page gets: no SEVERE log entries, a screenshot."""

    def __init__(self, driver, base):
        self.d = driver
        self.base = base
        self.wait = WebDriverWait(driver, WAIT_S)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def open(self, route):
        self.d.get(self.base + "/#" + route)

    def text_in(self, element_id, text):
        self.wait.until(EC.text_to_be_present_in_element((By.ID, element_id), text),
                        f"'{text}' in #{element_id}")

    def metric(self, name):
        # The page re-renders on each refresh: an element found just before
        # one is stale; find it again (bounded).
        for _ in range(5):
            try:
                return self.d.find_element(By.CSS_SELECTOR, f'[data-metric="{name}"]').text
            except StaleElementReferenceException:
                continue
        return self.d.find_element(By.CSS_SELECTOR, f'[data-metric="{name}"]').text

    def wait_metric(self, name, expected):
        self.wait.until(lambda d: self.metric_or_none(name) == expected,
                        f"{name} == {expected} (last {self.metric_or_none(name)!r})")

    def metric_or_none(self, name):
        try:
            found = self.d.find_elements(By.CSS_SELECTOR, f'[data-metric="{name}"]')
            return found[0].text if found else None
        except StaleElementReferenceException:
            return None  # re-rendered between the find and the read: the wait asks again

    def done(self, shot):
        self.d.save_screenshot(str(SCREENSHOTS / f"{shot}.png"))
        severe = [e for e in self.d.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, f"browser log on {shot}: {severe}"


def test_console_pages_search_and_lag(broker_factory, driver, topic_name):
    admin_port = free_loopback_port()
    broker = broker_factory(settings={"admin.listener": f"127.0.0.1:{admin_port}",
                                      "group.initial.rebalance.delay.ms": "0"})
    base = f"http://127.0.0.1:{admin_port}"
    http_json("POST", base + "/v1/topics", {"name": topic_name, "partitions": 2})
    produce(broker.bootstrap, topic_name, 0, 40)

    # A group that has consumed and committed everything: lag 0 on both partitions.
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": GROUP,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe([topic_name])
        seen = set()

        def consumed_all():
            m = consumer.poll(0.2)
            if m is not None and m.error() is None:
                seen.add(m.key())
            return len(seen) == 40
        wait_until(consumed_all, WAIT_S, interval=0, message="the group consuming 40 messages")
        consumer.commit(asynchronous=False)

        page = Page(driver, base)

        # Overview: the broker, the topic and the totals; a second refresh fills in the rates.
        page.open("/")
        page.wait.until(EC.presence_of_element_located((By.LINK_TEXT, topic_name)))
        page.wait.until(lambda d: page.metric_or_none("messages-in") not in (None, "…"),
                        "a message rate")
        assert page.metric("topics") != "0"
        page.done("overview")

        # Phone width: the page fits without sideways scrolling.
        driver.set_window_size(390, 844)
        page.wait.until(lambda d: d.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1"),
            "the overview fitting a phone-width window")
        page.done("overview-phone")
        driver.set_window_size(1280, 800)

        # Topics list -> topic page through the real link.
        page.open("/topics")
        page.wait.until(EC.element_to_be_clickable((By.LINK_TEXT, topic_name))).click()
        page.text_in("topic-name", topic_name)
        page.wait.until(EC.presence_of_element_located((By.ID, "search-form")))

        # Find a message by key through the search box.
        driver.find_element(By.ID, "search-key").send_keys("k37")
        driver.find_element(By.ID, "search-submit").click()
        page.text_in("search-summary", "1 match,")
        results = driver.find_element(By.ID, "search-results").text
        assert "k37" in results and "value-37" in results and "trace=t37" in results
        assert "k36" not in results
        page.done("topic-search-key")

        # A search that stops at its limit continues from where it stopped.
        key_box = driver.find_element(By.ID, "search-key")
        key_box.clear()
        driver.find_element(By.ID, "search-value").send_keys("value-")
        limit = driver.find_element(By.ID, "search-limit")
        limit.clear()
        limit.send_keys("15")
        driver.find_element(By.ID, "search-submit").click()
        page.text_in("search-summary", "15 matches")
        page.wait.until(EC.element_to_be_clickable((By.ID, "search-continue"))).click()
        page.text_in("search-summary", "30 matches")
        page.wait.until(EC.element_to_be_clickable((By.ID, "search-continue"))).click()
        page.text_in("search-summary", "40 matches")
        page.done("topic-search-continue")

        # Live tail shows what is produced after it starts.
        driver.find_element(By.ID, "tail-toggle").click()
        page.text_in("tail-results", "Waiting for new messages")
        produce(broker.bootstrap, topic_name, 40, 6)
        page.text_in("tail-results", "value-45")
        page.done("topic-tail")

        # Groups list -> group page; lag 6 now, then 6 more makes 12 while the page watches.
        page.open("/groups")
        page.wait.until(EC.element_to_be_clickable((By.LINK_TEXT, GROUP))).click()
        page.text_in("group-name", GROUP)
        page.wait_metric("total-lag", "6")
        produce(broker.bootstrap, topic_name, 46, 6)
        page.wait_metric("total-lag", "12")
        page.wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#lag-spark svg polyline"),
                        "the lag sparkline")
        page.done("group")

        # Produce from the form, then find the message by key on the topic page.
        page.open("/produce")
        page.wait.until(EC.presence_of_element_located((By.ID, "produce-form")))
        Select(driver.find_element(By.ID, "produce-topic")).select_by_value(topic_name)
        Select(driver.find_element(By.ID, "produce-partition")).select_by_value("1")
        driver.find_element(By.ID, "produce-key").send_keys("from-form")
        driver.find_element(By.ID, "produce-header").send_keys("src=console")
        driver.find_element(By.ID, "produce-value").send_keys("hello from the console")
        page.text_in("produce-command", "kcat -P -b " + broker.bootstrap)
        driver.find_element(By.ID, "produce-submit").click()
        page.text_in("produce-result", "Produced to partition 1 at offset 26")
        page.done("produce")
        driver.find_element(By.CSS_SELECTOR, "#produce-result a").click()
        page.text_in("topic-name", topic_name)
        page.wait.until(EC.presence_of_element_located((By.ID, "search-key"))).send_keys("from-form")
        driver.find_element(By.ID, "search-submit").click()
        page.text_in("search-summary", "1 match,")
        results = driver.find_element(By.ID, "search-results").text
        assert "hello from the console" in results and "src=console" in results
        page.done("topic-search-produced")
    finally:
        consumer.close()


def test_console_files_are_embedded_and_typed(broker_factory):
    """/ and /console/* come from the binary with their content types; an
    unknown console file is a JSON 404 like the rest of the API."""
    admin_port = free_loopback_port()
    broker_factory(settings={"admin.listener": f"127.0.0.1:{admin_port}"})
    base = f"http://127.0.0.1:{admin_port}"
    expected = {"/": ("text/html", "<title>Holdfast console</title>"),
                "/console/console.css": ("text/css", "@media (max-width"),
                "/console/console.js": ("text/javascript", "function route()")}
    for path, (ctype, snippet) in expected.items():
        with urllib.request.urlopen(base + path, timeout=30) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith(ctype), path
            assert snippet in response.read().decode("utf-8"), path
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(base + "/console/nosuch.js", timeout=30)
    assert missing.value.code == 404
    assert json.loads(missing.value.read())["error"] == "NOT_FOUND"


def test_produce_endpoint(broker_factory):
    """POST /v1/topics/{t}/messages appends one record through the Produce
    path: the search finds it, messages-in moves by one, errors are JSON."""
    admin_port = free_loopback_port()
    broker_factory(settings={"admin.listener": f"127.0.0.1:{admin_port}"})
    base = f"http://127.0.0.1:{admin_port}"
    http_json("POST", base + "/v1/topics", {"name": "formed", "partitions": 2})
    first = http_json("POST", base + "/v1/topics/formed/messages",
                      {"partition": 1, "key": "a", "value": "v1",
                       "headers": [{"key": "h", "value": "x"}, {"key": "n", "value": None}]})
    second = http_json("POST", base + "/v1/topics/formed/messages",
                       {"partition": 1, "key": None, "value": "v2"})
    assert first["topic"] == "formed" and first["partition"] == 1 and first["offset"] == 0
    assert second["offset"] == 1 and second["timestamp"] > 0
    found = http_json("GET", base + "/v1/topics/formed/messages?partition=1&key=a")["messages"]
    assert [(m["offset"], m["value"]) for m in found] == [(0, "v1")]
    assert [(x["key"], x["value"]) for x in found[0]["headers"]] == [("h", "x"), ("n", None)]
    with urllib.request.urlopen(base + "/metrics", timeout=30) as response:
        metrics = response.read().decode()
    assert 'kafka_server_brokertopicmetrics_messagesin_total{topic="formed"} 2' in metrics

    def error_of(path, body):
        with pytest.raises(urllib.error.HTTPError) as e:
            http_json("POST", base + path, body)
        return e.value.code, json.loads(e.value.read())
    status, e = error_of("/v1/topics/nosuch/messages", {"value": "x"})
    assert status == 404 and e["error"] == "UNKNOWN_TOPIC_OR_PARTITION"
    status, e = error_of("/v1/topics/formed/messages", {"partition": 7, "value": "x"})
    assert status == 404 and e["error"] == "UNKNOWN_TOPIC_OR_PARTITION"
    status, e = error_of("/v1/topics/formed/messages", {"key": 5})
    assert status == 400 and e["parameter"] == "key"
    status, e = error_of("/v1/topics/__consumer_offsets/messages", {"value": "x"})
    assert status == 400 and e["error"] == "INVALID_TOPIC_EXCEPTION"
