// The admin page: live figures and charts over the room's admin socket, the settings form
// (PATCH api/rooms/<room> with the admin token), pausing the line (queue_all) and deleting
// the room (DELETE). The admin link is never shown here: it is shown once, on the start page
// of the browser that made the room; this page takes it (or its token) to open.
//
// Socket protocol (apps/waiting_room/room.py): we send {"token"}; the room answers
// {"type": "hello", settings, figures, samples}, then {"type": "sample", t, active, queued,
// admitted_last_minute} every second and {"type": "settings", settings} on every change.
"use strict";

const data = JSON.parse(document.getElementById("admin-data").textContent);
const $ = (id) => document.getElementById(id);
const STORE = "waiting-room.token." + data.room;
const WINDOW_S = 600; // samples kept: ten minutes
const MIN_SPAN_S = 30; // the charts span what was seen, at least half a minute
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

// The time the charts span: what the samples cover (a fresh room's first minute fills the
// width, not a sliver at its right edge), from half a minute to ten minutes.
function span(now) {
  const oldest = samples.length ? samples[0].t : now;
  return Math.min(WINDOW_S, Math.max(MIN_SPAN_S, Math.ceil((now - oldest) / 15) * 15));
}

function ago(seconds) {
  return seconds < 120 ? `-${seconds} s` : `-${Math.round(seconds / 60)} min`;
}

function chart(id, key, limit) {
  const svg = $(id);
  const width = 600, height = 200, left = 70, bottom = 28, top = 12;
  const now = Date.now() / 1000;
  const spanS = span(now);
  const points = samples.filter((s) => s.t >= now - spanS);
  const peak = Math.max(1, limit || 0, ...points.map((s) => s[key]));
  const y = (v) => top + (height - top - bottom) * (1 - v / (peak * 1.1));
  const x = (t) => left + (width - left) * (1 - (now - t) / spanS);
  const parts = [
    el("line", { class: "grid", x1: left, x2: width, y1: y(0), y2: y(0) }),
    el("text", { class: "axis", x: left - 8, y: y(0) + 6, "text-anchor": "end" }, "0"),
    el("text", { class: "axis", x: left - 8, y: y(peak) + 6, "text-anchor": "end" }, String(peak)),
    el("text", { class: "axis", x: left, y: height - 4 }, ago(spanS)),
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
  const paused = Boolean(next.queue_all);
  $("paused-banner").hidden = !paused;
  $("pause").textContent = paused ? "Resume the line" : "Pause the line";
  $("pause").classList.toggle("secondary", !paused);
  showState();
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
  $("settings-error").hidden = true;
  if (!RoomForms.check(form)) return;
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
  $("save").disabled = true;
  try {
    const [ok, answer] = await change(body);
    if (!ok) {
      RoomForms.refused(form, answer, $("settings-error"));
      return;
    }
    editing = false;
    fill(answer);
    draw();
    $("saved").textContent = "Saved " + new Date().toLocaleTimeString();
  } catch {
    $("settings-error").textContent = "The server cannot be reached; your changes are not saved.";
    $("settings-error").hidden = false;
  } finally {
    $("save").disabled = false;
  }
});

// PATCH some settings: [ok, the answer]. Sent again by itself while the server says nothing
// ran (static/js/outcome.js); when the change may have been saved, the answer says so (the
// figures, live, show the room's settings as they are).
async function change(body) {
  const response = await Outcome.request(data.api, {
    method: "PATCH",
    headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
  if (response.outcome === "unknown") answer.error = Outcome.explain("unknown", "the change");
  return [response.ok, answer];
}

// ------------------------------------------------------------------ pause, delete

$("pause").addEventListener("click", async () => {
  const pausing = !(settings && settings.queue_all);
  $("pause").disabled = true;
  $("pause-error").hidden = true;
  try {
    const [ok, answer] = await change({ queue_all: pausing });
    if (!ok) throw new Error(answer.error);
    fill(answer);
  } catch (error) {
    $("pause-error").textContent = `Could not ${pausing ? "pause" : "resume"}: ${error.message || "the server cannot be reached"}`;
    $("pause-error").hidden = false;
  } finally {
    $("pause").disabled = false;
  }
});

$("delete").addEventListener("click", () => {
  $("delete-confirm").hidden = false;
  $("delete-no").focus();
});
$("delete-no").addEventListener("click", () => ($("delete-confirm").hidden = true));
/** What the room list says once this page deleted the room. */
function deletedNotice() {
  return `The room “${settings ? settings.name : "Room"}” was deleted.`;
}

$("delete-yes").addEventListener("click", async () => {
  $("delete-yes").disabled = true;
  $("delete-error").hidden = true;
  deleting = true; // (the socket's 4004 may come before the answer: it is ours)
  try {
    // (deleting twice is deleting once: sent again by itself whatever the outcome)
    const response = await Outcome.request(
      data.api,
      { method: "DELETE", headers: { Authorization: "Bearer " + token } },
      { idempotent: true },
    );
    const answer = await response.json().catch(() => ({}));
    if (!response.ok && response.status !== 404) throw new Error(answer.error || `HTTP ${response.status}`);
    deleted = true;
    forgetRoom();
    sessionStorage.setItem("waiting-room.notice", deletedNotice());
    location.assign(data.index_url);
  } catch (error) {
    deleting = false;
    $("delete-error").textContent = "Could not delete the room: " + (error.message || error);
    $("delete-error").hidden = false;
    $("delete-yes").disabled = false;
  }
});

function forgetRoom() {
  sessionStorage.removeItem(STORE);
  try {
    const mine = JSON.parse(localStorage.getItem("waiting-room.rooms") || "[]");
    if (Array.isArray(mine)) {
      localStorage.setItem("waiting-room.rooms", JSON.stringify(mine.filter((r) => r && r.room !== data.room)));
    }
  } catch {
    // nothing kept to forget
  }
}

// The live state: connected (and since when the last figures came), or not.
let live = false;
let deleted = false;
let deleting = false; // this page asked for the delete, and has no answer yet
let lastSample = 0;

function showState() {
  const el = $("state");
  el.dataset.kind = live ? (settings && settings.queue_all ? "paused" : "ok") : "busy";
  const when = lastSample ? ` · updated ${new Date(lastSample).toLocaleTimeString()}` : "";
  $("state-text").textContent = live ? `Live${when}` : "Reconnecting…";
}

// ------------------------------------------------------------------ socket

function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + data.socket);
  ws.onopen = () => ws.send(JSON.stringify({ token }));
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "hello") {
      backoff = 500;
      live = true;
      lastSample = Date.now();
      $("unlock").hidden = true;
      $("panel").hidden = false;
      samples = msg.samples;
      fill(msg.settings);
    } else if (msg.type === "sample") {
      lastSample = Date.now();
      showState();
      samples.push(msg);
      const cutoff = Date.now() / 1000 - WINDOW_S;
      while (samples.length && samples[0].t < cutoff) samples.shift();
    } else if (msg.type === "settings") {
      fill(msg.settings);
    }
    draw();
  };
  ws.onclose = (event) => {
    live = false;
    if (deleted) return;
    if (event.code === 4003) {
      sessionStorage.removeItem(STORE);
      $("panel").hidden = true;
      $("unlock").hidden = false;
      $("unlock-error").textContent = "That link or token does not open this room. Check it, and paste it again.";
      $("unlock-error").hidden = false;
      $("token-input").setAttribute("aria-invalid", "true");
      $("token-input").focus();
      return;
    }
    if (event.code === 4004) {
      $("panel").hidden = true;
      $("unlock").hidden = true;
      $("delete-error").hidden = true;
      sessionStorage.setItem("waiting-room.notice", deleting ? deletedNotice() : "That room was deleted.");
      location.assign(data.index_url);
      return;
    }
    showState();
    const delay = backoff + Math.random() * backoff;
    backoff = Math.min(backoff * 2, 10_000);
    setTimeout(connect, delay);
  };
}

// What the operator pasted: the admin link (its #token=...) or the token alone.
function tokenFrom(text) {
  const match = /[#&]token=([^&\s]+)/.exec(text);
  try {
    return match ? decodeURIComponent(match[1]) : text;
  } catch {
    return text;
  }
}

$("unlock").addEventListener("submit", (event) => {
  event.preventDefault();
  const pasted = $("token-input").value.trim();
  if (!pasted) {
    $("unlock-error").textContent = "Paste the admin link (or its token) first.";
    $("unlock-error").hidden = false;
    $("token-input").focus();
    return;
  }
  token = tokenFrom(pasted);
  sessionStorage.setItem(STORE, token);
  $("unlock-error").hidden = true;
  $("token-input").removeAttribute("aria-invalid");
  connect();
});

token = findToken();
if (token) connect();
else $("unlock").hidden = false;
