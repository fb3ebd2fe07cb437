// The ops page: polls /ops/api/cluster every 2 s and draws the nodes; finds where an object
// lives (/ops/api/locate) and keeps looking, so a move shows within seconds.
"use strict";

const $ = (id) => document.getElementById(id);
let previous = null; // the last figures: event rates are differences between two polls
let lookingFor = null; // {namespace, key} of the last "Find"

function text(value, unit = "") {
  return value === null || value === undefined ? "—" : `${value}${unit}`;
}

function since(epochSeconds) {
  const s = Math.max(0, Math.round(Date.now() / 1000 - epochSeconds));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  return `${Math.round(s / 3600)} h`;
}

function cell(row, value, className) {
  const td = document.createElement("td");
  td.textContent = value;
  if (className) td.className = className;
  row.append(td);
  return td;
}

function draw(figures) {
  const rows = figures.nodes.map((n) => {
    const row = document.createElement("tr");
    row.dataset.node = n.node;
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = n.node;
    row.append(name);
    cell(row, since(n.up_since));
    const held = Object.entries(n.objects)
      .filter(([, c]) => c.live + c.hibernated > 0)
      .map(([ns, c]) => `${ns} ${c.live} / ${c.hibernated}`);
    cell(row, held.join(", ") || "none", "objects");
    const sockets = Object.values(n.sockets).reduce((a, b) => a + b, 0);
    cell(row, String(sockets));
    const before = previous && previous.nodes.find((p) => p.node === n.node);
    const seconds = previous ? figures.now - previous.now : 0;
    const rate = before && seconds > 0 ? Math.max(0, (n.events - before.events) / seconds) : null;
    cell(row, rate === null ? "…" : rate.toFixed(rate < 10 ? 1 : 0));
    cell(row, text(n.commit_p99_ms, " ms"));
    cell(row, `${text(n.redis_p50_ms)} / ${text(n.redis_p99_ms, " ms")}`);
    cell(row, String(n.leases.lost));
    const refused = Object.keys(n.links_refused.by).length + Object.keys(n.links_refused.of).length;
    cell(row, refused ? `${refused} refused` : "ok", refused ? "error" : "");
    return row;
  });
  $("nodes").tBodies[0].replaceChildren(...rows);
  $("node-count").textContent = String(figures.nodes.length);
  $("served-by").textContent = `Seen from ${figures.served_by}.`;
  $("updated").textContent = `Updated ${new Date(figures.now * 1000).toLocaleTimeString()}.`;
  const lost = figures.unreachable;
  $("unreachable").hidden = lost.length === 0;
  $("unreachable").textContent = lost.length ? `Not answering: ${lost.join(", ")}` : "";
  $("alarms-due").textContent = text(figures.alarms_due_soon);
  const valkey = figures.embedded_valkey;
  $("embedded").textContent = valkey
    ? `${valkey.state}${valkey.exits ? `, ${valkey.exits} restarts (last: ${valkey.last_exit})` : ""}`
    : "not used (REDIS_URL)";
  previous = figures;
}

async function poll() {
  try {
    const answer = await fetch("/ops/api/cluster", { credentials: "same-origin" });
    if (answer.ok) draw(await answer.json());
  } catch (err) {
    $("updated").textContent = "The node did not answer; trying again.";
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
    where.textContent = body.node || "no node";
    out.append(`${body.namespace} ${body.id.slice(0, 12)}… is held by `, where,
      body.node ? "." : " (not active: the next request activates it on the node it reaches).");
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
setInterval(poll, 2000);
