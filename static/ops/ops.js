// The ops page: polls /ops/api/cluster every 2 s and draws the cluster: summary tiles, then a
// card per node with its health (a colour and the reason), its figures and their trends over
// the last two minutes (kept by this page), and the objects it holds by namespace. It finds
// where an object lives (/ops/api/locate) and keeps looking, so a move shows within seconds.
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 2000;
const HISTORY = 60; // polls kept per node for the trends: two minutes
const SVG = "http://www.w3.org/2000/svg";
// When a figure turns the card amber, then red (milliseconds).
// (A p99 over a few seconds on a busy or shared machine jumps now and then: the thresholds
// leave room for that, and flag what a person would call slow.)
const SLOW = { commit: [100, 500], redis: [50, 250] };

let previous = null; // the last figures: event rates are differences between two polls
let lookingFor = null; // {namespace, key} of the last "Find"
const history = new Map(); // node -> [{events_s, commit, redis, lost}], oldest first

function text(value, unit = "") {
  return value === null || value === undefined ? "—" : `${value}${unit}`;
}

function since(epochSeconds) {
  const s = Math.max(0, Math.round(Date.now() / 1000 - epochSeconds));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} days`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "className") node.className = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

// A small line of the last values (decorative: the figure beside it says the value).
function sparkline(values) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 100 24");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("aria-hidden", "true");
  const points = values.filter((v) => v !== null && Number.isFinite(v));
  if (points.length > 1) {
    const top = Math.max(...points) || 1;
    const line = document.createElementNS(SVG, "polyline");
    // (the trend fills the width once there are ten polls; fewer take their share of it)
    const step = 100 / Math.max(points.length - 1, 9);
    const start = 100 - step * (points.length - 1);
    line.setAttribute(
      "points",
      points.map((v, i) => `${(start + i * step).toFixed(1)},${(22 - (20 * v) / top).toFixed(1)}`).join(" ")
    );
    svg.append(line);
  }
  return svg;
}

function level(value, [warn, bad]) {
  if (value === null || value === undefined) return "";
  return value >= bad ? "bad" : value >= warn ? "warn" : "";
}

// A node's health: the worst of its signs, and why.
function health(n, lostLately) {
  const refused = Object.keys(n.links_refused.by).length + Object.keys(n.links_refused.of).length;
  const commit = level(n.commit_p99_ms, SLOW.commit);
  const redis = level(n.redis_p99_ms, SLOW.redis);
  const why = [];
  if (refused) why.push(`${refused} node-to-node link${refused > 1 ? "s" : ""} refused`);
  if (commit) why.push(`commits slow (p99 ${n.commit_p99_ms} ms)`);
  if (redis) why.push(`Redis slow (p99 ${n.redis_p99_ms} ms)`);
  if (lostLately) why.push(`${lostLately} lease${lostLately > 1 ? "s" : ""} lost lately`);
  const worst = refused || commit === "bad" || redis === "bad" ? "bad" : why.length ? "warn" : "ok";
  return { worst, why: why.join("; ") };
}

function figure(label, value, cls, trend) {
  const dd = el("dd", { className: cls || "" }, value);
  if (trend) dd.append(sparkline(trend));
  return el("div", {}, el("dt", {}, label), dd);
}

function card(n, rate, past) {
  const lost = past.length ? n.leases.lost - past[0].lost : 0;
  const { worst, why } = health(n, lost);
  const label = { ok: "healthy", warn: "slow", bad: "trouble" }[worst];
  const li = el("li", { className: "node", "data-node": n.node, "data-health": worst });
  li.append(
    el(
      "div",
      { className: "node-head" },
      el("h3", {}, n.node),
      el("span", { className: `health ${worst}` }, label),
      el("span", { className: "up" }, `up ${since(n.up_since)}`)
    ),
    el("p", { className: "why" }, why)
  );
  const sockets = Object.values(n.sockets).reduce((a, b) => a + b, 0);
  const trend = (key) => past.map((p) => p[key]);
  li.append(
    el(
      "dl",
      { className: "figures" },
      figure("events/s", rate === null ? "…" : rate.toFixed(rate < 10 ? 1 : 0), "", trend("events")),
      figure("sockets", String(sockets), "", trend("sockets")),
      figure("commit p99", text(n.commit_p99_ms, " ms"), level(n.commit_p99_ms, SLOW.commit), trend("commit")),
      figure(
        "Redis p50 / p99",
        `${text(n.redis_p50_ms)} / ${text(n.redis_p99_ms, " ms")}`,
        level(n.redis_p99_ms, SLOW.redis),
        trend("redis")
      ),
      figure("leases lost", String(n.leases.lost), lost ? "warn" : ""),
      figure("forwarded", String(n.forwarded)),
      // Read replicas held here (docs/replicas.md): how many, and the worst one's lag.
      ...(n.replicas && (n.replicas.held || n.replicas.reads)
        ? [figure("replicas · lag", `${n.replicas.held} · ${text(n.replicas.lag_ms_max, " ms")}`, n.replicas.stale ? "warn" : "")]
        : [])
    )
  );
  const held = Object.entries(n.objects).filter(([, c]) => c.live + c.hibernated > 0);
  if (held.length) {
    li.append(
      el(
        "ul",
        { className: "objects", "aria-label": "Objects held (live / hibernated)" },
        ...held.map(([ns, c]) => el("li", {}, el("span", { className: "ns" }, ns), " ", el("span", { className: "n" }, `${c.live} / ${c.hibernated}`)))
      )
    );
  } else li.append(el("p", { className: "objects-none" }, "No objects held."));
  return li;
}

function draw(figures) {
  const seconds = previous ? figures.now - previous.now : 0;
  let totalRate = 0;
  let rated = false;
  const cards = figures.nodes.map((n) => {
    const before = previous && previous.nodes.find((p) => p.node === n.node);
    const rate = before && seconds > 0 ? Math.max(0, (n.events - before.events) / seconds) : null;
    if (rate !== null) {
      totalRate += rate;
      rated = true;
    }
    const past = history.get(n.node) || [];
    past.push({
      events: rate,
      sockets: Object.values(n.sockets).reduce((a, b) => a + b, 0),
      commit: n.commit_p99_ms,
      redis: n.redis_p99_ms,
      lost: n.leases.lost,
    });
    while (past.length > HISTORY) past.shift();
    history.set(n.node, past);
    return card(n, rate, past);
  });
  for (const id of figures.unreachable) {
    cards.push(
      el(
        "li",
        { className: "node", "data-node": id, "data-health": "bad" },
        el("div", { className: "node-head" }, el("h3", {}, id), el("span", { className: "health bad" }, "not answering")),
        el("p", { className: "why" }, "Registered, but it did not answer this node's request for its figures.")
      )
    );
  }
  $("nodes").replaceChildren(...cards);
  $("nodes-empty").hidden = cards.length > 0;
  $("node-count").textContent = String(figures.nodes.length + figures.unreachable.length);
  $("served-by").textContent = `Seen from ${figures.served_by}.`;
  live(true, figures.now);
  const lost = figures.unreachable;
  $("unreachable").hidden = lost.length === 0;
  $("unreachable").textContent = lost.length ? `Not answering: ${lost.join(", ")}` : "";
  summary(figures, rated ? totalRate : null);
  previous = figures;
}

function summary(figures, rate) {
  let liveObjects = 0;
  let hibernated = 0;
  let sockets = 0;
  for (const n of figures.nodes) {
    for (const c of Object.values(n.objects)) {
      liveObjects += c.live;
      hibernated += c.hibernated;
    }
    sockets += Object.values(n.sockets).reduce((a, b) => a + b, 0);
  }
  const up = figures.nodes.length;
  const down = figures.unreachable.length;
  $("sum-nodes").textContent = down ? `${up} up, ${down} down` : `${up} up`;
  $("tile-nodes").className = `tile ${down ? "bad" : "ok"}`;
  $("sum-objects").textContent = `${liveObjects} / ${hibernated}`;
  $("sum-sockets").textContent = String(sockets);
  $("sum-events").textContent = rate === null ? "…" : rate.toFixed(rate < 10 ? 1 : 0);
  $("alarms-due").textContent = text(figures.alarms_due_soon);
  const valkey = figures.embedded_valkey;
  $("embedded").textContent = valkey
    ? `${valkey.state}${valkey.exits ? `, ${valkey.exits} restarts (last: ${valkey.last_exit})` : ""}`
    : "not used";
  $("embedded").title = valkey ? "" : "This node uses the Redis of REDIS_URL.";
  $("tile-valkey").className = `tile ${!valkey ? "" : valkey.state === "running" ? "ok" : "bad"}`;
}

function live(ok, now) {
  const el = $("updated");
  el.dataset.kind = ok ? "ok" : "bad";
  $("updated-text").textContent = ok
    ? `Live · updated ${new Date(now * 1000).toLocaleTimeString()}`
    : "The node did not answer; trying again.";
}

async function poll() {
  try {
    const answer = await fetch("/ops/api/cluster", { credentials: "same-origin" });
    if (answer.ok) draw(await answer.json());
    else live(false);
  } catch (err) {
    live(false);
  }
  if (lookingFor) await locate();
}

async function locate() {
  const q = new URLSearchParams(lookingFor);
  const out = $("location");
  try {
    const answer = await fetch(`/ops/api/locate?${q}`, { credentials: "same-origin" });
    const body = await answer.json();
    if (!answer.ok) {
      out.textContent = body.error;
      out.dataset.node = "";
      return;
    }
    out.replaceChildren();
    const where = document.createElement("strong");
    if (body.node) {
      where.textContent = body.node;
      out.append(`${body.namespace} ${body.id.slice(0, 12)}… is live on `, where, ".");
    } else {
      // No lease: the object is not active anywhere. It may never have been used, or be
      // idle (its state, if any, is in Redis); the locator cannot tell which.
      where.textContent = "not active on any node";
      out.append(
        `${body.namespace} ${body.id.slice(0, 12)}… is `,
        where,
        ": it has never been used, or it has been idle long enough to leave memory. " +
          "The next request for it activates it on the node that request reaches."
      );
    }
    out.dataset.node = body.node || "";
  } catch (err) {
    out.textContent = "The node did not answer.";
  }
}

$("locate").addEventListener("submit", (e) => {
  e.preventDefault();
  lookingFor = { namespace: $("namespace").value, key: $("key").value };
  locate();
});

poll();
setInterval(poll, POLL_MS);
