// Holdfast web console: a single page with hash routes over the /v1 admin API
// and /metrics (docs/admin-api.md). Plain JS, no dependencies, no build step.
"use strict";

const view = document.getElementById("view");
const statusLine = document.getElementById("status");
let timers = [];           // polling timers of the current page, cleared on navigation
let generation = 0;        // bumps on navigation so late responses of the old page are dropped

// ---- helpers ---------------------------------------------------------------

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function fmt(n) {
  if (n === null || n === undefined) return "–";
  if (typeof n === "number") return n.toLocaleString("en-US", { maximumFractionDigits: 1 });
  return String(n);
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

function table(headers, rows, opts) {
  const numeric = (opts && opts.numeric) || [];
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("thead", {}, h("tr", {}, headers.map((t, i) =>
        h("th", { scope: "col", class: numeric.includes(i) ? "num" : null }, t)))),
      h("tbody", {}, rows.length === 0
        ? h("tr", {}, h("td", { colspan: headers.length, class: "muted" }, "none"))
        : rows.map(r => h("tr", {}, r.map((c, i) =>
            c instanceof Node && c.tagName === "TD" ? c
              : h("td", { class: numeric.includes(i) ? "num" : null }, c)))))));
}

// Replaces the content of a box that a timer refreshes without taking the
// keyboard focus away: unchanged content is left as it is, and a focused link
// or control inside the box is focused again in the new content (found by id,
// else by href). Otherwise every refresh would drop a keyboard user's focus
// back to the top of the page.
function refresh(box, ...nodes) {
  const next = document.createElement("div");
  next.append(...nodes);
  if (next.innerHTML === box.innerHTML) return;
  const active = document.activeElement;
  const key = active && active !== box && box.contains(active) ? focusKey(active) : null;
  box.replaceChildren(...next.childNodes);
  const again = key && box.querySelector(key);
  if (again) again.focus({ preventScroll: true });
}

function focusKey(el) {
  if (el.id) return "#" + CSS.escape(el.id);
  const href = el.getAttribute("href");
  return href === null ? null : el.tagName.toLowerCase() + '[href="' + CSS.escape(href) + '"]';
}

function setStatus(text, isError) {
  statusLine.textContent = text || "";
  statusLine.className = isError ? "error" : "";
}

// Fetches JSON; API errors ({"error", "message"}) become exceptions with that message.
async function api(path) {
  const res = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    const msg = body && body.message ? body.error + ": " + body.message : "HTTP " + res.status;
    throw new Error(msg);
  }
  return body;
}

// Sums Prometheus samples of one metric name over all label sets.
function metricSum(text, name) {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(name + "{") || line.startsWith(name + " ")) {
      const v = Number(line.slice(line.lastIndexOf(" ") + 1));
      if (!Number.isNaN(v)) sum += v;
    }
  }
  return sum;
}

// Runs fn now and every `ms` after it finishes, until the page changes or fn
// returns false.
function every(ms, fn) {
  const gen = generation;
  const tick = async () => {
    if (gen !== generation) return;
    try { if (await fn() === false) return; }
    catch (e) { if (gen === generation) setStatus(e.message, true); }
    // Counts the refreshes (tests wait on it rather than on time).
    document.body.dataset.refreshes = String(Number(document.body.dataset.refreshes || 0) + 1);
    if (gen === generation) timers.push(setTimeout(tick, ms));
  };
  tick();
}

function sparkline(points, width, height) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("role", "img");
  const max = Math.max(1, ...points);
  const step = points.length > 1 ? width / (points.length - 1) : 0;
  const coords = points.map((v, i) =>
    (i * step).toFixed(1) + "," + (height - 1 - (v / max) * (height - 2)).toFixed(1));
  svg.setAttribute("aria-label", "lag over time, latest " + (points.length ? points[points.length - 1] : 0));
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", coords.join(" "));
  svg.append(line);
  return svg;
}

const topicHref = t => "#/topics/" + encodeURIComponent(t);
const groupHref = g => "#/groups/" + encodeURIComponent(g);

// ---- pages -----------------------------------------------------------------

async function overviewPage() {
  const cards = h("div", { class: "cards", id: "overview-cards" });
  const topicsBox = h("div");
  view.replaceChildren(h("h1", {}, "Overview"), cards, h("h2", {}, "Topics"), topicsBox);
  let last = null;
  every(2000, async () => {
    const [broker, topics, groups, metrics] = await Promise.all([
      api("/v1/broker"), api("/v1/topics"), api("/v1/groups"),
      fetch("/metrics").then(r => r.text())]);
    const now = performance.now();
    const sample = {
      t: now,
      msgIn: metricSum(metrics, "kafka_server_brokertopicmetrics_messagesin_total"),
      bytesIn: metricSum(metrics, "kafka_server_brokertopicmetrics_bytesin_total"),
      bytesOut: metricSum(metrics, "kafka_server_brokertopicmetrics_bytesout_total"),
    };
    const rate = k => last ? Math.max(0, (sample[k] - last[k]) / ((now - last.t) / 1000)) : null;
    const rates = { msgIn: rate("msgIn"), bytesIn: rate("bytesIn"), bytesOut: rate("bytesOut") };
    last = sample;
    const totalLag = groups.groups.reduce((s, g) => s + (g.total_lag || 0), 0);
    const card = (label, value, id) =>
      h("div", { class: "card" }, h("div", { class: "label" }, label),
        h("div", { class: "value", "data-metric": id }, value));
    refresh(cards,
      card("Broker", "#" + broker.node_id + " " + broker.state, "broker"),
      card("Brokers", fmt(broker.brokers.length), "brokers"),
      card("Topics", fmt(broker.topics), "topics"),
      card("Partitions", fmt(broker.partitions), "partitions"),
      card("Under-replicated", fmt(broker.under_replicated_partitions), "under-replicated"),
      card("Messages in/s", rates.msgIn === null ? "…" : fmt(rates.msgIn), "messages-in"),
      card("Bytes in/s", rates.bytesIn === null ? "…" : bytes(rates.bytesIn), "bytes-in"),
      card("Bytes out/s", rates.bytesOut === null ? "…" : bytes(rates.bytesOut), "bytes-out"),
      card("Groups", fmt(groups.groups.length), "groups"),
      card("Total lag", fmt(totalLag), "total-lag"));
    refresh(topicsBox, topicTable(topics.topics.filter(t => !t.internal)));
    setStatus("");
  });
}

function topicTable(topics) {
  return table(["Topic", "Partitions", "Replication", "Messages", "Size"],
    topics.map(t => [h("a", { href: topicHref(t.name) }, t.name), fmt(t.partitions),
      fmt(t.replication_factor), fmt(t.messages), bytes(t.size_bytes)]),
    { numeric: [1, 2, 3, 4] });
}

async function topicsPage() {
  const box = h("div");
  view.replaceChildren(h("h1", {}, "Topics"), box);
  every(5000, async () => {
    const topics = await api("/v1/topics");
    refresh(box, topicTable(topics.topics));
    setStatus("");
  });
}

async function topicPage(name) {
  const gen = generation;
  const t = await api("/v1/topics/" + encodeURIComponent(name));
  if (gen !== generation) return;
  const partsBox = h("div");
  const renderParts = topic => refresh(partsBox, table(
    ["Partition", "Leader", "Log start", "High watermark", "Log end", "Segments", "Size"],
    topic.partitions.map(p => [fmt(p.partition), fmt(p.leader), fmt(p.log_start_offset),
      fmt(p.high_watermark), fmt(p.log_end_offset), fmt(p.segments), bytes(p.size_bytes)]),
    { numeric: [0, 1, 2, 3, 4, 5, 6] }));
  renderParts(t);
  const configs = table(["Config", "Value", "Source"],
    Object.entries(t.configs || {}).map(([k, v]) => [k, v.value === null ? "–" : v.value,
      v.default ? "default" : "topic"]));

  view.replaceChildren(
    h("h1", {}, "Topic ", h("span", { id: "topic-name" }, name)),
    h("h2", {}, "Partitions"), partsBox,
    searchSection(t),
    tailSection(t),
    h("details", {}, h("summary", {}, "Configs (" + Object.keys(t.configs || {}).length + ")"), configs));
  every(5000, async () => renderParts(await api("/v1/topics/" + encodeURIComponent(name))));
}

function messageRows(messages) {
  return messages.map(m => [fmt(m.partition), fmt(m.offset),
    m.timestamp === null ? "–" : new Date(m.timestamp).toISOString(),
    m.key === null ? h("span", { class: "muted" }, "null") : m.key + (m.key_encoding === "base64" ? " (base64)" : ""),
    (m.headers || []).map(x => x.key + "=" + (x.value === null ? "null" : x.value)).join(", "),
    h("td", { class: "value-cell" }, m.value === null ? "null"
      : m.value + (m.value_encoding === "base64" ? " (base64)" : ""))]);
}

const MESSAGE_HEADERS = ["Partition", "Offset", "Timestamp", "Key", "Headers", "Value"];

function searchSection(topic) {
  const field = (label, name, attrs) =>
    h("label", {}, label, h("input", Object.assign({ name, id: "search-" + name }, attrs || {})));
  const partition = h("select", { name: "partition", id: "search-partition" },
    h("option", { value: "" }, "all"),
    topic.partitions.map(p => h("option", { value: p.partition }, String(p.partition))));
  const results = h("div", { id: "search-results" });
  const summary = h("p", { class: "muted", id: "search-summary" });
  const more = h("button", { type: "button", class: "secondary", id: "search-continue", disabled: true }, "Continue");
  let cursors = [];  // [{partition, offset}] still to scan, in order
  let query = null;  // the filters of the current search
  let found = [];
  let scannedTotal = 0;

  const run = async (partitionNo, offset) => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== "") p.set(k, v);
    if (partitionNo !== null) p.set("partition", partitionNo);
    if (offset !== null) p.set("offset", offset);
    more.disabled = true;
    summary.textContent = "Searching…";
    const r = await api("/v1/topics/" + encodeURIComponent(topic.name) + "/messages?" + p);
    found = found.concat(r.messages);
    results.replaceChildren(table(MESSAGE_HEADERS, messageRows(found), { numeric: [0, 1] }));
    // Where to continue: partitions the scan stopped in, then those it never reached.
    const scanned = new Map(r.partitions.map(s => [s.partition, s]));
    const order = partitionNo !== null ? [partitionNo, ...cursors.map(c => c.partition)]
                                       : topic.partitions.map(x => x.partition);
    const rest = new Map(cursors.map(c => [c.partition, c.offset]));
    cursors = [];
    for (const pn of order) {
      const s = scanned.get(pn);
      if (s) { if (!s.reached_end) cursors.push({ partition: pn, offset: s.next_offset }); }
      else if (rest.has(pn)) cursors.push({ partition: pn, offset: rest.get(pn) });
      else if (partitionNo === null) cursors.push({ partition: pn, offset: offset });
    }
    scannedTotal += r.scanned_bytes;
    const next = cursors.length === 0 ? "; reached the end"
      : "; more to scan from partition " + cursors[0].partition +
        (cursors[0].offset === null ? "" : " offset " + cursors[0].offset);
    summary.textContent = found.length + " match" + (found.length === 1 ? "" : "es") +
      ", scanned " + bytes(scannedTotal) + (r.budget_exhausted ? " (scan budget spent)" : "") + next;
    more.disabled = cursors.length === 0;
    return r;
  };

  const form = h("form", { class: "search", id: "search-form", role: "search",
    onsubmit: async e => {
      e.preventDefault();
      const f = new FormData(form);
      query = { key: f.get("key"), value: f.get("value"), header: f.get("header"),
                timestamp: f.get("timestamp"), limit: f.get("limit") };
      found = [];
      cursors = [];
      scannedTotal = 0;
      const pn = f.get("partition");
      const off = f.get("offset");
      try { await run(pn === "" ? null : Number(pn), off === "" ? null : off); setStatus(""); }
      catch (err) { summary.textContent = ""; setStatus(err.message, true); }
    } },
    h("label", {}, "Partition", partition),
    field("Start offset", "offset", { type: "number", min: 0, inputmode: "numeric" }),
    field("From timestamp (ms)", "timestamp", { type: "number", min: 0, inputmode: "numeric" }),
    field("Limit", "limit", { type: "number", min: 1, max: 1000, value: 20 }),
    field("Key equals", "key", { type: "search" }),
    field("Value contains", "value", { type: "search" }),
    field("Header (name or name=value)", "header", { type: "search" }),
    h("div", { class: "actions" }, h("button", { type: "submit", id: "search-submit" }, "Search"), more));
  // Continue: up to `limit` more matches, partition after partition, stopping
  // early when a scan spends its budget (the next click goes on from there).
  more.addEventListener("click", async () => {
    const limit = Number(query.limit) || 20;
    const before = found.length;
    try {
      while (cursors.length && found.length - before < limit) {
        const c = cursors.shift();
        query.limit = String(limit - (found.length - before));
        const r = await run(c.partition, c.offset);
        if (r.budget_exhausted) break;
      }
      setStatus("");
    } catch (err) { setStatus(err.message, true); }
    query.limit = String(limit);
  });
  return h("section", { "aria-labelledby": "search-h" },
    h("h2", { id: "search-h" }, "Find messages"), form, summary, results);
}

function tailSection(topic) {
  const rows = h("div", { id: "tail-results" });
  const button = h("button", { type: "button", class: "secondary", id: "tail-toggle", "aria-pressed": "false" },
    "Start live tail");
  let running = false;
  let run = 0;  // bumps at every start and stop, so one polling loop runs at most
  let shown = [];
  button.addEventListener("click", async () => {
    running = !running;
    const myRun = ++run;
    button.textContent = running ? "Stop live tail" : "Start live tail";
    button.setAttribute("aria-pressed", String(running));
    if (!running) return;
    const t = await api("/v1/topics/" + encodeURIComponent(topic.name));
    if (myRun !== run) return;  // stopped meanwhile
    const pos = new Map(t.partitions.map(p => [p.partition, p.high_watermark]));
    shown = [];
    rows.replaceChildren(h("p", { class: "muted" }, "Waiting for new messages…"));
    every(1500, async () => {
      if (myRun !== run) return false;  // stopped or restarted: this loop ends
      const now = await api("/v1/topics/" + encodeURIComponent(topic.name));
      for (const p of now.partitions) {
        const from = pos.get(p.partition) || 0;
        if (p.high_watermark <= from) continue;
        const r = await api("/v1/topics/" + encodeURIComponent(topic.name) + "/messages?partition=" +
          p.partition + "&offset=" + from + "&limit=100");
        shown = r.messages.slice().reverse().concat(shown).slice(0, 200);
        pos.set(p.partition, r.next_offset === null ? p.high_watermark : r.next_offset);
      }
      if (shown.length) rows.replaceChildren(table(MESSAGE_HEADERS, messageRows(shown), { numeric: [0, 1] }));
    });
  });
  return h("section", { "aria-labelledby": "tail-h" },
    h("h2", { id: "tail-h" }, "Live tail"),
    h("p", { class: "actions" }, button, h("span", { class: "muted" }, "newest first, polls every 1.5 s")), rows);
}

async function groupsPage() {
  const box = h("div");
  view.replaceChildren(h("h1", {}, "Consumer groups"), box);
  every(3000, async () => {
    const g = await api("/v1/groups");
    refresh(box, table(["Group", "State", "Protocol type", "Members", "Total lag"],
      g.groups.map(x => [h("a", { href: groupHref(x.group_id) }, x.group_id), x.state,
        x.protocol_type || "–", fmt(x.members), fmt(x.total_lag)]), { numeric: [3, 4] }));
    setStatus("");
  });
}

async function groupPage(id) {
  const head = h("div", { class: "cards" });
  const spark = h("div", { id: "lag-spark" });
  const members = h("div");
  const offsets = h("div");
  view.replaceChildren(h("h1", {}, "Group ", h("span", { id: "group-name" }, id)), head,
    h("h2", {}, "Lag over time"), spark, h("h2", {}, "Members"), members,
    h("h2", {}, "Offsets and lag"), offsets);
  every(2000, async () => {
    const g = await api("/v1/groups/" + encodeURIComponent(id));
    // The broker samples every group's total lag every 2 s and keeps the last
    // 60 samples, so the sparkline has a history as soon as the page opens.
    const history = (g.lag_history || []).map(p => p.total_lag);
    if (history.length === 0) history.push(g.total_lag);
    const card = (label, value, metric) => h("div", { class: "card" }, h("div", { class: "label" }, label),
      h("div", { class: "value", "data-metric": metric }, value));
    refresh(head, card("State", g.state, "state"), card("Members", fmt(g.members.length), "members"),
      card("Protocol", g.protocol || "–", "protocol"), card("Total lag", fmt(g.total_lag), "total-lag"));
    refresh(spark, sparkline(history, 320, 48),
      h("span", { class: "muted" }, " last " + history.length + " samples, 2 s apart, kept by the broker"));
    refresh(members, table(["Member", "Client", "Host", "Assignment"],
      g.members.map(m => [m.member_id, m.client_id, m.client_host,
        (m.assignment || []).map(a => a.topic + " [" + a.partitions.join(", ") + "]").join("; ")])));
    refresh(offsets, table(["Topic", "Partition", "Committed", "High watermark", "Lag"],
      g.offsets.map(o => [h("a", { href: topicHref(o.topic) }, o.topic), fmt(o.partition),
        fmt(o.committed_offset), fmt(o.high_watermark),
        h("td", { class: "num" + (o.lag > 0 ? " lag-bad" : "") }, fmt(o.lag))]),
      { numeric: [1, 2, 3, 4] }));
    setStatus("");
  });
}

async function producePage() {
  const [broker, topics] = await Promise.all([api("/v1/broker"), api("/v1/topics")]);
  const userTopics = topics.topics.filter(t => !t.internal);
  const result = h("p", { id: "produce-result", role: "status", "aria-live": "polite" });
  const cmd = h("pre", { class: "cmd", id: "produce-command" });
  const topic = h("select", { name: "topic", id: "produce-topic" },
    userTopics.map(t => h("option", { value: t.name }, t.name)));
  const partition = h("select", { name: "partition", id: "produce-partition" });
  const fillPartitions = () => {
    const t = userTopics.find(x => x.name === topic.value);
    partition.replaceChildren(...Array.from({ length: t ? t.partitions : 0 },
      (_, i) => h("option", { value: i }, String(i))));
  };
  const key = h("input", { name: "key", id: "produce-key" });
  const header = h("input", { name: "header", id: "produce-header", placeholder: "name=value" });
  const value = h("textarea", { name: "value", id: "produce-value", rows: 3 });
  const send = h("button", { type: "submit", id: "produce-submit" }, "Produce");
  const quote = s => "'" + String(s).replace(/'/g, "'\\''") + "'";
  const update = () => {
    const k = key.value;
    cmd.textContent = "printf '%s\\n' " + quote((k ? k + "\t" : "") + value.value) +
      " | kcat -P -b " + broker.advertised_listener + " -t " + quote(topic.value) +
      " -p " + (partition.value || 0) + (k ? " -K '\\t'" : "");
  };
  const form = h("form", { class: "produce", id: "produce-form", onsubmit: async e => {
      e.preventDefault();
      const body = { partition: Number(partition.value || 0), key: key.value === "" ? null : key.value,
                     value: value.value };
      if (header.value !== "") {
        const eq = header.value.indexOf("=");
        body.headers = [eq < 0 ? { key: header.value, value: null }
                               : { key: header.value.slice(0, eq), value: header.value.slice(eq + 1) }];
      }
      send.disabled = true;
      try {
        const res = await fetch("/v1/topics/" + encodeURIComponent(topic.value) + "/messages", {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
        const r = await res.json();
        if (!res.ok) throw new Error(r.error + ": " + r.message);
        result.replaceChildren("Produced to partition " + r.partition + " at offset " + r.offset + ". ",
          h("a", { href: topicHref(r.topic) }, "Open " + r.topic));
        setStatus("");
      } catch (err) { result.textContent = ""; setStatus(err.message, true); }
      send.disabled = false;
    } },
    h("label", {}, "Topic", topic), h("label", {}, "Partition", partition),
    h("label", {}, "Key (empty: null)", key), h("label", {}, "Header (optional)", header),
    h("label", {}, "Value", value), h("div", { class: "actions" }, send));
  topic.addEventListener("change", () => { fillPartitions(); update(); });
  for (const el of [partition, key, value]) el.addEventListener("input", update);
  fillPartitions();
  update();
  view.replaceChildren(h("h1", {}, "Produce a test message"),
    userTopics.length ? form : h("p", {}, "No topics yet: create one first (POST /v1/topics or holdfast topics create)."),
    result,
    h("h2", {}, "From a shell"),
    h("p", {}, "The same message through the Kafka listener with kcat:"), cmd);
}

// ---- routing ---------------------------------------------------------------

async function route() {
  generation++;
  for (const t of timers) clearTimeout(t);
  timers = [];
  setStatus("");
  const hash = location.hash.replace(/^#/, "") || "/";
  const parts = hash.split("/").filter(Boolean).map(decodeURIComponent);
  const section = parts[0] || "overview";
  for (const a of document.querySelectorAll("nav a")) {
    if (a.dataset.nav === section) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  view.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    if (section === "overview") await overviewPage();
    else if (section === "topics" && parts[1]) await topicPage(parts[1]);
    else if (section === "topics") await topicsPage();
    else if (section === "groups" && parts[1]) await groupPage(parts[1]);
    else if (section === "groups") await groupsPage();
    else if (section === "produce") await producePage();
    else view.replaceChildren(h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the overview")));
    document.title = "Holdfast · " + (parts[1] || section);
  } catch (e) {
    view.replaceChildren(h("h1", {}, "Error"));
    setStatus(e.message, true);
  }
}

window.addEventListener("hashchange", () => { route(); document.getElementById("main").focus(); });
route();
