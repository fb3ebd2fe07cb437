// The counter's page: shows a counter's value at once (GET), keeps it live over the counter's
// socket (every viewer sees each change), and adds one (POST). The counter's name is in the
// URL hash (#visits), so a link opens the same counter. Its URLs come from the page (meta
// app-base), never hard-coded.
//
// Requests go through Outcome.request (static/js/outcome.js): a read is sent again by itself
// when the server is busy; adding one is sent again by itself only when the server says it
// did not run (X-Outcome: not-run). When it may have run ("unknown"), the page says so and
// leaves the next +1 to the person: the value, live, shows whether it counted.
"use strict";

const $ = (id) => document.getElementById(id);
const base = document.querySelector('meta[name="app-base"]').content;
let name = "";
let socket = null;
let retry = null;
let backoff = 500;

function state(kind, text) {
  $("state").dataset.kind = kind;
  $("state-text").textContent = text;
}

function error(text) {
  $("out").textContent = text;
  $("out").hidden = !text;
}

async function open(next) {
  name = next;
  $("counter-name").textContent = name;
  $("name").value = name;
  document.title = `${name} · Counter`;
  if (location.hash.slice(1) !== encodeURIComponent(name)) {
    history.replaceState(null, "", "#" + encodeURIComponent(name));
  }
  $("value").textContent = "…";
  error("");
  try {
    const r = await Outcome.request(base + encodeURIComponent(name));
    const body = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(body.error || `the server answered ${r.status}`);
    if (name === next) $("value").textContent = String(body.value);
  } catch (e) {
    error(`Could not read ${next}: ${e.message}`);
  }
  connect();
}

function connect() {
  clearTimeout(retry);
  if (socket) {
    socket.onclose = null;
    socket.close();
  }
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}${base}${encodeURIComponent(name)}/ws`);
  socket = ws;
  state("busy", "connecting…");
  ws.onopen = () => {
    backoff = 500;
    state("ok", "Live");
    $("add").disabled = false;
  };
  ws.onmessage = (event) => {
    if (/^-?\d+$/.test(event.data)) $("value").textContent = event.data;
  };
  ws.onclose = () => {
    $("add").disabled = true;
    state("busy", "reconnecting…");
    retry = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 8000);
  };
}

$("add").addEventListener("click", async () => {
  error("");
  const waiting = (s) => error(`The server is busy: adding one again in ${s} s…`);
  let r;
  try {
    r = await Outcome.request(base + encodeURIComponent(name), { method: "POST" }, { onWait: waiting });
  } catch {
    r = { ok: false, outcome: "unknown", json: async () => ({}) }; // no answer at all
  }
  const body = await r.json().catch(() => ({}));
  if (r.ok) {
    error("");
    $("value").textContent = String(body.value);
  } else if (r.outcome === "unknown") {
    error(`${Outcome.explain("unknown", "adding one")} The value above is live: if it went up, it counted.`);
  } else {
    error(body.error ? `Could not add one: ${body.error}` : Outcome.explain("not-run", "adding one"));
  }
});

$("f").addEventListener("submit", (e) => {
  e.preventDefault();
  const next = $("name").value.trim();
  if (next && next !== name) open(next);
});

function fromHash() {
  try {
    return decodeURIComponent(location.hash.slice(1));
  } catch {
    return "";
  }
}

window.addEventListener("hashchange", () => {
  const next = fromHash();
  if (next && next !== name) open(next);
});
open(fromHash() || $("counter-name").textContent.trim() || "visits");
