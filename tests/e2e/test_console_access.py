"""The web console with the keyboard alone and at two screen sizes, in
headless Debian chromium driven by selenium (fixtures shared with
test_console_browser.py).

- Keyboard: a full round trip with Tab / Shift+Tab / Enter / Space only —
  nav link → topic list → topic page → search box → live tail → Configs →
  groups → group page → produce form → the produced message found by key.
  Every element is reached by pressing Tab (bounded), so a "link" that is a
  div with an onclick fails it; every focused element must show a focus
  outline; a focused link must stay focused across the page's periodic
  refresh.
- Layout: every page at 1280×800 and at a 390×844 phone viewport, with a long
  topic name, long keys and an unbroken 300-character value: the document
  never scrolls sideways and the key elements are visible inside the
  viewport. Screenshots go to build/console-screenshots/ for a person.

Every wait is a bounded WebDriverWait on a condition."""
import pytest
from confluent_kafka import Consumer

from conftest import free_loopback_port, wait_until
from test_console_browser import SCREENSHOTS, WAIT_S, Page, driver, http_json, produce  # noqa: F401

try:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as EC
except ImportError:  # test_console_browser's driver fixture reports it
    pass

MAX_TABS = 80  # bound on Tab presses to reach one element


def start(broker_factory, topic, group, messages=12):
    """A broker with one user topic of 2 partitions, `messages` records, and a
    group that consumed and committed all of them."""
    admin_port = free_loopback_port()
    broker = broker_factory(settings={"admin.listener": f"127.0.0.1:{admin_port}",
                                      "group.initial.rebalance.delay.ms": "0"})
    base = f"http://127.0.0.1:{admin_port}"
    http_json("POST", base + "/v1/topics", {"name": topic, "partitions": 2})
    produce(broker.bootstrap, topic, 0, messages)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        seen = set()

        def consumed_all():
            m = consumer.poll(0.2)
            if m is not None and m.error() is None:
                seen.add(m.key())
            return len(seen) == messages
        wait_until(consumed_all, WAIT_S, interval=0, message=f"the group consuming {messages}")
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return broker, base


class Keyboard:
    """Key presses sent to whatever has focus, as a keyboard user would."""

    def __init__(self, page):
        self.page = page
        self.d = page.d

    def press(self, *keys):
        ActionChains(self.d).send_keys(*keys).perform()

    def type(self, text):
        ActionChains(self.d).send_keys(text).perform()

    def focused(self, script):
        """Evaluates `script` (a JS expression over `el`) on the focused element."""
        return self.d.execute_script(
            "const el = document.activeElement; return el ? (" + script + ") : null;")

    def tab_to(self, what, script, backwards=False):
        """Presses Tab (Shift+Tab) until the focused element satisfies
        `script`; fails after MAX_TABS presses. Then checks the focus is
        visible (an outline or a box shadow)."""
        for _ in range(MAX_TABS):
            if backwards:
                ActionChains(self.d).key_down(Keys.SHIFT).send_keys(Keys.TAB) \
                    .key_up(Keys.SHIFT).perform()
            else:
                self.press(Keys.TAB)
            if self.focused(script):
                break
        else:
            pytest.fail(f"{what} is not reachable with {'Shift+' if backwards else ''}Tab "
                        f"(focus ended on {self.describe()})")
        visible = self.focused(
            "(() => { const s = getComputedStyle(el);"
            " return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0)"
            "        || s.boxShadow !== 'none'; })()")
        assert visible, f"{what} has focus but no visible focus indicator ({self.describe()})"

    def tab_to_id(self, element_id, backwards=False):
        self.tab_to("#" + element_id, f"el.id === {element_id!r}", backwards)

    def tab_to_link(self, href, backwards=False):
        self.tab_to(f"the link to {href}",
                    f"el.tagName === 'A' && el.getAttribute('href') === {href!r}", backwards)

    def describe(self):
        return self.focused("el.tagName + (el.id ? '#' + el.id : '') + ' ' +"
                            " (el.getAttribute('href') || '') + ' ' + el.textContent.slice(0, 40)")


def wait_hash(page, route):
    page.wait.until(lambda d: d.execute_script("return location.hash") == "#" + route,
                    f"the address to become #{route}")


def test_keyboard_only_round_trip(broker_factory, driver, topic_name):
    group = "kb-group"
    broker, base = start(broker_factory, topic_name, group)
    page = Page(driver, base)
    kb = Keyboard(page)
    topic_href = "#/topics/" + topic_name
    group_href = "#/groups/" + group

    page.open("/")
    page.text_in("view", topic_name)

    # A focused link survives the page's periodic refresh (the overview
    # redraws every 2 s): a keyboard user must not be thrown back to the top.
    kb.tab_to_link(topic_href)
    ticks = int(driver.execute_script("return document.body.dataset.refreshes || 0"))
    page.wait.until(lambda d: int(d.execute_script(
        "return document.body.dataset.refreshes || 0")) >= ticks + 2, "two refreshes")
    assert kb.focused(f"el.isConnected && el.getAttribute('href') === {topic_href!r}"), \
        f"focus lost on refresh: now on {kb.describe()}"

    # Nav → topic list → topic page.
    kb.tab_to_link("#/topics", backwards=True)
    kb.press(Keys.ENTER)
    wait_hash(page, "/topics")
    page.text_in("view", topic_name)
    kb.tab_to_link(topic_href)
    kb.press(Keys.ENTER)
    page.text_in("topic-name", topic_name)

    # The search box: type a key, Enter submits.
    kb.tab_to_id("search-key")
    kb.type("k7")
    kb.press(Keys.ENTER)
    page.text_in("search-summary", "1 match,")
    assert "value-7" in driver.find_element(By.ID, "search-results").text

    # Live tail toggles with Space; the Configs disclosure opens with Enter.
    kb.tab_to_id("tail-toggle")
    kb.press(Keys.SPACE)
    page.wait.until(lambda d: d.find_element(By.ID, "tail-toggle").get_attribute("aria-pressed")
                    == "true", "the live tail started by Space")
    kb.press(Keys.SPACE)
    page.wait.until(lambda d: d.find_element(By.ID, "tail-toggle").get_attribute("aria-pressed")
                    == "false", "the live tail stopped by Space")
    kb.tab_to("the Configs summary", "el.tagName === 'SUMMARY'")
    kb.press(Keys.ENTER)
    page.wait.until(lambda d: d.find_element(By.TAG_NAME, "details").get_attribute("open")
                    is not None, "the configs opened by Enter")
    page.done("keyboard-topic")

    # Nav → groups → group page.
    kb.tab_to_link("#/groups", backwards=True)
    kb.press(Keys.ENTER)
    wait_hash(page, "/groups")
    page.text_in("view", group)
    kb.tab_to_link(group_href)
    kb.press(Keys.ENTER)
    page.text_in("group-name", group)
    page.wait_metric("total-lag", "0")
    page.done("keyboard-group")

    # Nav → produce form, filled and sent with the keyboard.
    kb.tab_to_link("#/produce", backwards=True)
    kb.press(Keys.ENTER)
    wait_hash(page, "/produce")
    page.wait.until(EC.presence_of_element_located((By.ID, "produce-form")))
    kb.tab_to_id("produce-topic")
    assert kb.focused("el.value") == topic_name
    kb.tab_to_id("produce-partition")
    kb.press(Keys.ARROW_DOWN)  # partition 0 -> 1
    page.wait.until(lambda d: kb.focused("el.value") == "1", "partition 1 chosen with the arrow key")
    kb.tab_to_id("produce-key")
    kb.type("typed-key")
    kb.tab_to_id("produce-value")
    kb.type("typed with the keyboard")
    kb.tab_to_id("produce-submit")
    kb.press(Keys.ENTER)
    page.text_in("produce-result", "Produced to partition 1")
    kb.tab_to_link(topic_href)
    kb.press(Keys.ENTER)
    page.text_in("topic-name", topic_name)
    kb.tab_to_id("search-key")
    kb.type("typed-key")
    kb.press(Keys.ENTER)
    page.text_in("search-summary", "1 match,")
    assert "typed with the keyboard" in driver.find_element(By.ID, "search-results").text
    page.done("keyboard-produced")


DESKTOP = (1280, 800)
PHONE = (390, 844)


def set_viewport(driver, size):
    width, height = size
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": size == PHONE})


def assert_fits(page, shot, selectors):
    """No sideways scrolling of the document; every selector's first element
    is displayed and lies inside the viewport's width."""
    d = page.d
    widths = d.execute_script(
        "const e = document.documentElement; return [e.scrollWidth, e.clientWidth];")
    if widths[0] > widths[1] + 1:
        wide = d.execute_script(
            "const w = document.documentElement.clientWidth;"
            "return [...document.querySelectorAll('body *')]"
            ".filter(e => e.getBoundingClientRect().right > w + 1 && !e.closest('.table-wrap'))"
            ".slice(0, 5).map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className + ' '"
            " + Math.round(e.getBoundingClientRect().right));")
        pytest.fail(f"{shot}: the page scrolls sideways (scrollWidth {widths[0]} > clientWidth "
                    f"{widths[1]}); too wide: {wide}")
    for selector in selectors:
        el = page.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, selector)),
                             f"{selector} on {shot}")
        assert el.is_displayed(), f"{shot}: {selector} is not displayed"
        left, right = d.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return [r.left, r.right];", el)
        assert left >= -1 and right <= widths[1] + 1, \
            f"{shot}: {selector} spans {left:.0f}..{right:.0f}, outside 0..{widths[1]}"


def test_every_page_fits_desktop_and_phone(broker_factory, driver, topic_name):
    group = "a-consumer-group-with-a-rather-long-name-" + "g" * 30
    broker, base = start(broker_factory, topic_name, group)
    http_json("POST", base + f"/v1/topics/{topic_name}/messages",
              {"partition": 0, "key": "long-key-" + "k" * 80, "value": "v" * 300,
               "headers": [{"key": "trace-" + "h" * 40, "value": "x" * 60}]})
    page = Page(driver, base)
    topic_path = "/topics/" + topic_name
    pages = [
        ("overview", "/", ["h1", "nav a[href='#/produce']", "#overview-cards .card",
                           f"a[href='#{topic_path}']"], None),
        ("topics", "/topics", ["h1", f"a[href='#{topic_path}']"], None),
        ("topic", topic_path, ["#topic-name", "#search-key", "#search-submit", "#tail-toggle",
                               "#search-results .table-wrap"], "search"),
        ("groups", "/groups", ["h1", f"a[href='#/groups/{group}']"], None),
        ("group", "/groups/" + group, ["#group-name", "[data-metric='total-lag']",
                                       "#lag-spark svg"], None),
        ("produce", "/produce", ["#produce-topic", "#produce-value", "#produce-submit",
                                 "#produce-command"], None),
        ("not-found", "/nosuch", ["h1", "main a[href='#/']"], None),
    ]
    try:
        for size in (DESKTOP, PHONE):
            set_viewport(driver, size)
            for name, route, selectors, action in pages:
                shot = f"layout-{name}-{size[0]}x{size[1]}"
                page.open(route)
                driver.refresh()  # a hash change alone does not reload; start each page afresh
                for selector in selectors:
                    if selector != "#search-results .table-wrap":
                        page.wait.until(EC.presence_of_element_located(
                            (By.CSS_SELECTOR, selector)), f"{selector} on {shot}")
                if action == "search":  # a result row with the long key and value
                    driver.find_element(By.ID, "search-value").send_keys("vvvv")
                    driver.find_element(By.ID, "search-submit").click()
                    page.text_in("search-summary", "1 match,")
                assert_fits(page, shot, selectors)
                page.done(shot)
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
