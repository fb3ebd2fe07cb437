// The admin page: live figures and charts over the room's admin socket, and the settings
// form (PATCH api/rooms/<room> with the admin token).
//
// Socket protocol (apps/waiting_room/room.py): we send {"token"}; the room answers
// {"type": "hello", settings, figures, samples}, then {"type": "sample", t, active, queued,
// admitted_last_minute} every second and {"type": "settings", settings} on every change.
"use strict";

const data = JSON.parse(document.getElementById("admin-data").textContent);
const $ = (id) => document.getElementById(id);
const STORE = "waiting-room.token." + data.room;
const WINDOW_S = 600;
let token = "";
let samples = [];
let settings = null;
let backoff = 500;
let editing = false;

function findToken() {
  const match = /(?:^|&)token=([^&]+)/.exec(location.hash.slice(1));
  if (match) {
    const found = decodeURIComponent(match[1]);
    sessionStorage.setItem(STORE, found);
    history.replaceState(null, "", location.pathname + location.search); // out of the address bar
    return found;
  }
  const kept = sessionStorage.getItem(STORE);
  if (kept) return kept;
  try {
    const mine = JSON.parse(localStorage.getItem("waiting-room.rooms") || "[]");
    const room = Array.isArray(mine) ? mine.find((r) => r.room === data.room) : null;
    return room ? room.token : "";
  } catch {
    return "";
  }
}

// ------------------------------------------------------------------ figures and charts

const SVG = "http://www.w3.org/2000/svg";

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function chart(id, key, limit) {
  const svg = $(id);
  const width = 600, height = 200, left = 70, bottom = 28, top = 12;
  const now = Date.now() / 1000;
  const points = samples.filter((s) => s.t >= now - WINDOW_S);
  const peak = Math.max(1, limit || 0, ...points.map((s) => s[key]));
  const y = (v) => top + (height - top - bottom) * (1 - v / (peak * 1.1));
  const x = (t) => left + (width - left) * (1 - (now - t) / WINDOW_S);
  const parts = [
    el("line", { class: "grid", x1: left, x2: width, y1: y(0), y2: y(0) }),
    el("text", { class: "axis", x: left - 8, y: y(0) + 6, "text-anchor": "end" }, "0"),
    el("text", { class: "axis", x: left - 8, y: y(peak) + 6, "text-anchor": "end" }, String(peak)),
    el("text", { class: "axis", x: left, y: height - 4 }, "-10 min"),
    el("text", { class: "axis", x: width, y: height - 4, "text-anchor": "end" }, "now"),
  ];
  if (limit) parts.push(el("line", { class: "limit", x1: left, x2: width, y1: y(limit), y2: y(limit) }));
  if (points.length) {
    const path = points.map((s) => `${x(s.t).toFixed(1)},${y(s[key]).toFixed(1)}`).join(" ");
    parts.push(el("polyline", { class: "line", points: path }));
  }
  svg.replaceChildren(...parts);
}

function draw() {
  const last = samples[samples.length - 1];
  if (last) {
    $("active").textContent = last.active;
    $("queued").textContent = last.queued;
    $("per-minute").textContent = last.admitted_last_minute;
  }
  const cap = settings && settings.queueing_method !== "passthrough" ? settings.total_active_users : 0;
  chart("chart-active", "active", cap);
  chart("chart-queued", "queued", 0);
  chart("chart-rate", "admitted_last_minute", settings ? settings.new_users_per_minute : 0);
}

// ------------------------------------------------------------------ settings form

const form = $("settings");

function localTime(epoch) {
  if (epoch === null || epoch === undefined) return "";
  const d = new Date(epoch * 1000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fill(next) {
  settings = next;
  $("capacity").textContent = next.total_active_users;
  $("rate").textContent = next.new_users_per_minute;
  if (editing) return; // do not overwrite what the operator is typing
  for (const name of ["total_active_users", "new_users_per_minute", "session_duration", "queueing_method", "name", "title", "message", "reject_message"]) {
    form.elements[name].value = next[name];
  }
  form.elements.event_start.value = localTime(next.event_start);
  form.elements.prequeue_start.value = localTime(next.prequeue_start);
  form.elements.shuffle_at_start.checked = !!next.shuffle_at_start;
  form.elements.gate_prefix.value = next.gate_prefix || "";
}

form.addEventListener("input", () => (editing = true));

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const f = form.elements;
  const epoch = (value) => (value ? new Date(value).getTime() / 1000 : null);
  const body = {
    total_active_users: Number(f.total_active_users.value),
    new_users_per_minute: Number(f.new_users_per_minute.value),
    session_duration: Number(f.session_duration.value),
    queueing_method: f.queueing_method.value,
    name: f.name.value,
    title: f.title.value,
    message: f.message.value,
    reject_message: f.reject_message.value,
    event_start: epoch(f.event_start.value),
    prequeue_start: epoch(f.prequeue_start.value),
    shuffle_at_start: f.shuffle_at_start.checked,
    gate_prefix: f.gate_prefix.value.trim() || null,
  };
  $("settings-error").hidden = true;
  $("save").disabled = true;
  try {
    const response = await fetch(data.api, {
      method: "PATCH",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.field ? `${answer.field}: ${answer.error}` : answer.error);
    editing = false;
    fill(answer);
    draw();
    $("saved").textContent = "Saved " + new Date().toLocaleTimeString();
  } catch (error) {
    $("settings-error").textContent = String(error.message || error);
    $("settings-error").hidden = false;
  } finally {
    $("save").disabled = false;
  }
});

// ------------------------------------------------------------------ socket

function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + data.socket);
  ws.onopen = () => ws.send(JSON.stringify({ token }));
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "hello") {
      backoff = 500;
      $("unlock").hidden = true;
      $("panel").hidden = false;
      $("state").textContent = "Live";
      samples = msg.samples;
      fill(msg.settings);
    } else if (msg.type === "sample") {
      samples.push(msg);
      const cutoff = Date.now() / 1000 - WINDOW_S;
      while (samples.length && samples[0].t < cutoff) samples.shift();
    } else if (msg.type === "settings") {
      fill(msg.settings);
    }
    draw();
  };
  ws.onclose = (event) => {
    if (event.code === 4003) {
      sessionStorage.removeItem(STORE);
      $("panel").hidden = true;
      $("unlock").hidden = false;
      $("unlock-error").textContent = "That token does not open this room.";
      $("unlock-error").hidden = false;
      return;
    }
    $("state").textContent = "Reconnecting…";
    const delay = backoff + Math.random() * backoff;
    backoff = Math.min(backoff * 2, 10_000);
    setTimeout(connect, delay);
  };
}

$("unlock").addEventListener("submit", (event) => {
  event.preventDefault();
  token = $("token-input").value.trim();
  sessionStorage.setItem(STORE, token);
  $("unlock-error").hidden = true;
  connect();
});

token = findToken();
if (token) connect();
else $("unlock").hidden = false;
