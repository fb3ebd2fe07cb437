// Chat client (the page at the chat's mount): the edge chat demo's protocol (see apps/chat/rules.py).
//
// The room lives in the URL hash (#name or #<64 hex>) so a link can be shared. On a dropped
// connection the client reconnects with backoff; the server then replays the roster and
// history, and messages already shown are skipped by their timestamp (unique in a room).
//
// Who is who: the server adds an "id" to every joined, quit, ready and chat frame. This page
// sends a "key" kept in localStorage with its name, so it has the same id in a room on every
// visit (and in every tab); two people who picked the same name have different ids, and the
// page shows a short tag (Ada #3f2a) wherever a name is shared.
"use strict";

const $ = (id) => document.getElementById(id);
// Where the chat is mounted ("/chat/"): the page says so, so no path is hard-coded here.
const BASE = document.querySelector('meta[name="app-base"]').content;
const HEX64 = /^[0-9a-f]{64}$/;
const MAX_NAME = Number($("name").dataset.max) || 32;
const URL_RE = /\bhttps?:\/\/[^\s<>"']+/gi;

const state = {
  name: localStorage.getItem("chat.name") || "",
  key: browserKey(),
  id: "", // our id in the room (from {"ready"})
  room: "",
  ws: null,
  ready: false,
  seen: new Set(), // timestamps of messages shown
  roster: new Map(), // id -> {name, n}: sessions of that person here
  ids: new Map(), // name -> Set of ids seen with it (a name two ids share gets tags)
  backoff: 500,
  retry: null,
  leaving: false,
  pendingRoom: "", // a room from the link, joined once a name is given
  lastSent: "",
  bannerTimer: null,
  cooldown: { until: 0, timer: null },
  messages: 0,
};

// A random key of this browser: its identity in rooms (hashed by the server with the room).
function browserKey() {
  let key = localStorage.getItem("chat.key");
  if (!key || !/^[A-Za-z0-9_-]{16,64}$/.test(key)) {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    key = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
    try {
      localStorage.setItem("chat.key", key);
    } catch {
      // private mode: a key for this page only
    }
  }
  return key;
}

function roomLabel(room) {
  return HEX64.test(room) ? "Private room" : "#" + room;
}

function setStatus(text, kind) {
  const el = $("status");
  el.textContent = text;
  el.dataset.kind = kind || "";
}

function showBanner(text, sticky) {
  const el = $("banner");
  el.textContent = text;
  el.hidden = !text;
  clearTimeout(state.bannerTimer);
  if (text && !sticky) state.bannerTimer = setTimeout(() => (el.hidden = true), 6000);
}

// A room name the server takes: a private id, or a public name of <= 32 UTF-16 units that
// stays one path segment.
function validRoom(room) {
  if (HEX64.test(room)) return true;
  return room.length > 0 && room.length <= MAX_NAME && !room.includes("/") && room !== "." && room !== "..";
}

function readHash() {
  try {
    return decodeURIComponent(location.hash.slice(1));
  } catch {
    return ""; // a malformed escape in a hand-made link
  }
}

// ---- who is who ---------------------------------------------------------------------------

function know(id, name) {
  if (!id) return;
  const ids = state.ids.get(name) || new Set();
  const before = ids.size;
  ids.add(id);
  state.ids.set(name, ids);
  if (ids.size > 1 && before <= 1) retag(name); // the name just became ambiguous
}

function shared(name) {
  return (state.ids.get(name)?.size || 0) > 1;
}

function tag(id) {
  return "#" + id.slice(0, 4);
}

// A colour per person (the dot beside their name): a hue from their id.
function hue(id, name) {
  const text = id || name;
  let h = 0;
  for (const c of text) h = (h * 31 + c.codePointAt(0)) % 360;
  return h;
}

// A person's name as the page shows it: a coloured dot, the name, and a tag when shared.
function person(id, name, cls = "who") {
  const span = document.createElement("span");
  span.className = cls;
  span.dataset.name = name;
  span.dataset.id = id || "";
  const dot = document.createElement("span");
  dot.className = "dot";
  dot.setAttribute("aria-hidden", "true");
  dot.style.background = `hsl(${hue(id, name)} 65% 42%)`;
  const label = document.createElement("span");
  label.className = "label";
  label.textContent = name; // never innerHTML: names are untrusted
  span.title = name;
  span.append(dot, label);
  if (id && shared(name)) span.append(tagElement(id));
  return span;
}

function tagElement(id) {
  const t = document.createElement("span");
  t.className = "tag";
  t.textContent = tag(id);
  t.title = "Another person here has the same name";
  return t;
}

// Add tags to every place a now-shared name was already shown.
function retag(name) {
  for (const el of document.querySelectorAll(".who, .roster-name")) {
    if (el.dataset.name === name && el.dataset.id && !el.querySelector(".tag")) {
      el.append(tagElement(el.dataset.id));
    }
  }
  renderRoster();
}

// ---- the log ------------------------------------------------------------------------------

function appendLine(li) {
  const scroller = document.querySelector(".log-scroll");
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
  $("log").appendChild(li);
  if (atBottom) scroller.scrollTop = scroller.scrollHeight;
}

// Text with its http(s) links made clickable (built as DOM nodes, never as HTML).
function linked(text) {
  const out = document.createElement("span");
  out.className = "text";
  let last = 0;
  for (const match of text.matchAll(URL_RE)) {
    let url = match[0].replace(/[.,;:!?)\]}'"]+$/, "");
    if (url.length < 9) continue;
    out.append(text.slice(last, match.index));
    const a = document.createElement("a");
    a.href = url;
    a.textContent = url;
    a.target = "_blank";
    a.rel = "noopener noreferrer nofollow";
    out.append(a);
    last = match.index + url.length;
  }
  out.append(text.slice(last));
  return out;
}

function showMessage(data) {
  if (state.seen.has(data.timestamp)) return; // replayed after a reconnect
  state.seen.add(data.timestamp);
  if (state.seen.size > 5000) state.seen.delete(state.seen.values().next().value);
  know(data.id, data.name);
  const mine = data.id ? data.id === state.id : data.name === state.name;
  const li = document.createElement("li");
  li.className = "msg" + (mine ? " mine" : "");
  li.dataset.id = data.id || "";
  const time = document.createElement("time");
  time.className = "when";
  const at = new Date(data.timestamp);
  time.dateTime = at.toISOString();
  time.textContent = at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  time.title = at.toLocaleString();
  li.append(person(data.id, data.name), linked(data.message), time);
  appendLine(li);
  state.messages += 1;
  showPlaceholders();
}

function event(id, name, what) {
  const li = document.createElement("li");
  li.className = "event";
  li.append(person(id, name), document.createTextNode(" " + what));
  appendLine(li);
}

function showPlaceholders() {
  $("loading").hidden = state.ready || state.messages > 0;
  $("empty").hidden = !state.ready || state.messages > 0;
}

// ---- the roster ---------------------------------------------------------------------------

function renderRoster() {
  const ul = $("roster");
  const people = [...state.roster.entries()].sort(
    ([a, p], [b, q]) => (b === state.id) - (a === state.id) || p.name.localeCompare(q.name)
  );
  ul.replaceChildren(
    ...people.map(([id, p]) => {
      const li = document.createElement("li");
      if (id === state.id) li.className = "me";
      li.append(person(id, p.name, "roster-name"));
      if (id === state.id) {
        const you = document.createElement("span");
        you.className = "you";
        you.textContent = "(you)";
        li.append(you);
      }
      if (p.n > 1) {
        const badge = document.createElement("span");
        badge.className = "count";
        badge.textContent = "\u00d7" + p.n;
        badge.title = `${p.n} tabs or devices`;
        li.appendChild(badge);
      }
      return li;
    })
  );
  $("count").textContent = String(state.roster.size);
  $("count").title = `${state.roster.size} ${state.roster.size === 1 ? "person" : "people"} here`;
}

// A demo client sends no ids: its frames are keyed by name, as the demo's page did.
function joined(data) {
  const id = data.id || "name:" + data.joined;
  know(data.id, data.joined);
  const p = state.roster.get(id) || { name: data.joined, n: 0 };
  p.name = data.joined;
  p.n += 1;
  state.roster.set(id, p);
  renderRoster();
  if (state.ready && p.n === 1) event(data.id, data.joined, "joined");
}

function quit(data) {
  const id = data.id || "name:" + data.quit;
  const p = state.roster.get(id);
  if (p && p.n > 1) p.n -= 1;
  else state.roster.delete(id);
  renderRoster();
  if (state.ready && !state.roster.has(id)) event(data.id, data.quit, "left");
}

// ---- sending, and the cooldown the rate limiter asks for ----------------------------------

function setReady(ready) {
  state.ready = ready;
  $("message").disabled = !ready;
  $("send").disabled = !ready || coolingDown();
  if (ready) $("message").focus();
  showPlaceholders();
}

function coolingDown() {
  return Date.now() < state.cooldown.until;
}

function startCooldown(seconds) {
  state.cooldown.until = Date.now() + seconds * 1000;
  clearInterval(state.cooldown.timer);
  state.cooldown.timer = setInterval(showCooldown, 250);
  showCooldown();
}

function clearCooldown() {
  state.cooldown.until = 0;
  clearInterval(state.cooldown.timer);
  showCooldown();
}

function showCooldown() {
  const el = $("cooldown");
  const left = Math.ceil((state.cooldown.until - Date.now()) / 1000);
  if (left <= 0) {
    clearInterval(state.cooldown.timer);
    el.hidden = true;
    $("send").disabled = !state.ready;
    $("send").textContent = "Send";
    return;
  }
  el.hidden = false;
  el.textContent = `You are sending messages too fast. You can send again in ${left} s.`;
  $("send").disabled = true;
  $("send").textContent = `${left} s`;
}

// ---- the connection -----------------------------------------------------------------------

function connect() {
  clearTimeout(state.retry);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = `${scheme}//${location.host}${BASE}api/room/${encodeURIComponent(state.room)}/websocket`;
  const ws = new WebSocket(url);
  let wasReady = false;
  state.ws = ws;
  state.roster.clear();
  renderRoster();
  setReady(false);
  clearCooldown(); // a new connection starts with its own allowance
  setStatus("connecting…", "busy");

  const sendName = () => {
    if (state.ws === ws && ws.readyState === WebSocket.OPEN && !state.ready) {
      ws.send(JSON.stringify({ name: state.name, key: state.key }));
    }
  };
  ws.onopen = sendName;
  ws.onmessage = (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    if (data.error) {
      const wait = Number.isFinite(data.retry_after) ? Math.max(1, data.retry_after) : 5;
      if (data.retry_after !== undefined) startCooldown(wait);
      else showBanner(data.error);
      // Our name itself was refused (rate limit): say it again when allowed.
      if (!state.ready) setTimeout(sendName, wait * 1000);
      else if (state.lastSent && !$("message").value) $("message").value = state.lastSent;
    } else if (data.joined !== undefined) joined(data);
    else if (data.quit !== undefined) quit(data);
    else if (data.ready) {
      wasReady = true;
      state.id = data.id || "";
      know(state.id, state.name);
      // The backlog came before we knew our id: mark our own messages in it now.
      for (const li of document.querySelectorAll(".log .msg")) {
        if (li.dataset.id) li.classList.toggle("mine", li.dataset.id === state.id);
      }
      renderRoster();
      setReady(true);
      state.backoff = 500;
      showBanner("");
      setStatus("connected", "ok");
    } else if (data.timestamp) showMessage(data);
  };
  ws.onclose = (event) => {
    if (state.ws !== ws) return;
    setReady(false);
    if (state.leaving) return;
    if (event.code === 1009) {
      // The server refused our name: reconnecting would only be refused again.
      setStatus("disconnected", "bad");
      showBanner(event.reason || "Refused by the server.", true);
      return;
    }
    if (!wasReady) checkRefusal(url);
    const wait = state.backoff + Math.random() * state.backoff * 0.3;
    state.backoff = Math.min(state.backoff * 2, 10000);
    setStatus(`reconnecting in ${Math.round(wait / 100) / 10}s…`, "busy");
    state.retry = setTimeout(connect, wait);
  };
}

// A handshake that failed before we were ever in: ask over plain HTTP why. "expected
// websocket" means the room is fine (the server was away), and so does a 503 (busy, or
// restarting: the socket's own retries go on); anything else is final.
async function checkRefusal(url) {
  try {
    const response = await Outcome.request(url.replace(/^ws/, "http"));
    const text = await response.text();
    if (response.status === 503) return;
    if (response.status !== 400 || text !== "expected websocket") {
      clearTimeout(state.retry);
      state.leaving = true;
      setStatus("refused", "bad");
      showBanner(`This room cannot be joined: ${text || response.status}`, true);
    }
  } catch {
    // the server is unreachable: keep retrying
  }
}

function enter(room) {
  if (!validRoom(room)) {
    leave();
    showJoinError(`A room name is 1 to ${MAX_NAME} characters, without '/'.`);
    return;
  }
  state.room = room;
  state.leaving = false;
  state.seen.clear();
  state.ids.clear();
  state.messages = 0;
  $("log").replaceChildren();
  showBanner("");
  if (readHash() !== room) history.replaceState(null, "", "#" + encodeURIComponent(room));
  $("title").textContent = roomLabel(room);
  $("empty-room-name").textContent = HEX64.test(room) ? "this private room" : roomLabel(room);
  document.title = roomLabel(room) + " — Chat";
  $("join").hidden = true;
  $("chat").hidden = false;
  $("share").hidden = false;
  $("leave").hidden = false;
  connect();
}

function leave() {
  state.leaving = true;
  state.room = "";
  setReady(false);
  clearTimeout(state.retry);
  if (state.ws) state.ws.close(1000, "left");
  state.ws = null;
  history.replaceState(null, "", location.pathname);
  $("title").textContent = "Chat";
  document.title = "Chat";
  $("chat").hidden = true;
  $("share").hidden = true;
  $("leave").hidden = true;
  $("join").hidden = false;
  setStatus("", "");
}

// ---- the join form: names and rooms say when they are too long, never cut silently ---------

function showJoinError(text) {
  $("join-error").textContent = text;
  $("join-error").hidden = !text;
}

function counted(input, counter) {
  const show = () => {
    const n = input.value.trim().length;
    const over = n > MAX_NAME;
    counter.textContent = n >= MAX_NAME - 5 ? `${n}/${MAX_NAME}${over ? ": too long" : ""}` : "";
    counter.classList.toggle("over", over);
    input.setAttribute("aria-invalid", String(over));
  };
  input.addEventListener("input", show);
  show();
}

function takeName() {
  const name = $("name").value.trim();
  if (!name) {
    showJoinError("Pick a name first.");
    $("name").focus();
    return false;
  }
  if (name.length > MAX_NAME) {
    showJoinError(`A name is at most ${MAX_NAME} characters; this one has ${name.length}.`);
    $("name").focus();
    return false;
  }
  state.name = name;
  localStorage.setItem("chat.name", name);
  showJoinError("");
  return true;
}

$("join-form").onsubmit = (event) => {
  event.preventDefault();
  if (!takeName()) return;
  const typed = $("room").value.trim().toLowerCase().replace(/\s+/g, "-");
  if (typed.length > MAX_NAME) {
    showJoinError(`A room name is at most ${MAX_NAME} characters; this one has ${typed.length}.`);
    $("room").focus();
    return;
  }
  enter(typed || state.pendingRoom || "lobby");
};

$("create-private").onclick = async () => {
  if (!takeName()) return;
  let response;
  try {
    // (only a name is minted: safe to send again, whatever the answer said: outcome.js)
    const waiting = (s) => showJoinError(`The server is busy: trying again in ${s} s…`);
    response = await Outcome.request(`${BASE}api/room`, { method: "POST" }, { idempotent: true, onWait: waiting });
  } catch {
    response = null;
  }
  if (!response || !response.ok) {
    const why = response ? await response.text() : "the server cannot be reached";
    showJoinError("Could not create a room: " + why);
    return;
  }
  showJoinError("");
  enter((await response.text()).trim());
};

$("send-form").onsubmit = (event) => {
  event.preventDefault();
  const text = $("message").value;
  if (!text || !state.ready || coolingDown()) return;
  state.lastSent = text;
  state.ws.send(JSON.stringify({ message: text }));
  $("message").value = "";
};

$("share").onclick = async () => {
  try {
    await navigator.clipboard.writeText(location.href);
    $("share").textContent = "Copied";
  } catch {
    window.prompt("Share this link:", location.href); // no clipboard on plain http
  }
  setTimeout(() => ($("share").textContent = "Copy link"), 1500);
};

$("leave").onclick = leave;

// A room from a link: join it at once when we know the name, else offer it in the form.
function fromLink(room) {
  if (!room || room === state.room) return;
  if (state.room && state.name) {
    if (state.ws) {
      state.leaving = true;
      state.ws.close(1000, "switching rooms");
    }
    enter(room);
    return;
  }
  state.pendingRoom = room;
  $("room").value = HEX64.test(room) ? "" : room;
  $("room").placeholder = HEX64.test(room) ? "the private room from your link" : "e.g. lobby";
  if (state.name) enter(room);
}

window.addEventListener("hashchange", () => fromLink(readHash()));

$("name").value = state.name;
counted($("name"), $("name-count"));
counted($("room"), $("room-count"));
fromLink(readHash());
