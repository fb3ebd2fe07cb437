// The counter's page: shows a counter's value at once (GET), keeps it live over the counter's
// socket (every viewer sees each change), and adds one (POST). The counter's name is in the
// URL hash (#visits), so a link opens the same counter. Its URLs come from the page (meta
// app-base), never hard-coded.
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
    const r = await fetch(base + encodeURIComponent(name));
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
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
  try {
    const r = await fetch(base + encodeURIComponent(name), { method: "POST" });
    const body = await r.json();
    if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
    $("value").textContent = String(body.value);
  } catch (e) {
    error(`Could not add one: ${e.message}`);
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
