// Chat client (the page at the chat's mount): the edge chat demo's protocol (see apps/chat/rules.py).
//
// The room lives in the URL hash (#name or #<64 hex>) so a link can be shared. On a dropped
// connection the client reconnects with backoff; the server then replays the roster and
// history, and messages already shown are skipped by their timestamp (unique in a room).
"use strict";

const $ = (id) => document.getElementById(id);
// Where the chat is mounted ("/chat/"): the page says so, so no path is hard-coded here.
const BASE = document.querySelector('meta[name="app-base"]').content;
const HEX64 = /^[0-9a-f]{64}$/;

const state = {
  name: localStorage.getItem("chat.name") || "",
  room: "",
  ws: null,
  ready: false,
  seen: new Set(), // timestamps of messages shown
  roster: new Map(), // name -> number of sessions with that name
  backoff: 500,
  retry: null,
  leaving: false,
  pendingRoom: "", // a room from the link, joined once a name is given
  lastSent: "",
  bannerTimer: null,
};

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
  return room.length > 0 && room.length <= 32 && !room.includes("/") && room !== "." && room !== "..";
}

function readHash() {
  try {
    return decodeURIComponent(location.hash.slice(1));
  } catch {
    return ""; // a malformed escape in a hand-made link
  }
}

function line(cls, parts) {
  const li = document.createElement("li");
  li.className = cls;
  for (const [tag, text, c] of parts) {
    const el = document.createElement(tag);
    el.textContent = text; // never innerHTML: names and messages are untrusted
    if (c) el.className = c;
    if (c === "who") el.title = text;
    li.appendChild(el);
  }
  const log = $("log");
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  log.appendChild(li);
  if (atBottom) log.scrollTop = log.scrollHeight;
}

function showMessage(data) {
  if (state.seen.has(data.timestamp)) return; // replayed after a reconnect
  state.seen.add(data.timestamp);
  if (state.seen.size > 5000) state.seen.delete(state.seen.values().next().value);
  const time = new Date(data.timestamp).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  line("msg" + (data.name === state.name ? " mine" : ""), [
    ["span", data.name, "who"],
    ["span", data.message, "text"],
    ["time", time, "when"],
  ]);
}

function renderRoster() {
  const ul = $("roster");
  ul.replaceChildren();
  const names = [...state.roster.keys()].sort((a, b) => a.localeCompare(b));
  for (const name of names) {
    const li = document.createElement("li");
    li.textContent = name;
    li.title = name;
    if (name === state.name) li.className = "me";
    const n = state.roster.get(name);
    if (n > 1) {
      const badge = document.createElement("span");
      badge.className = "count";
      badge.textContent = "\u00d7" + n;
      li.appendChild(badge);
    }
    ul.appendChild(li);
  }
  $("count").textContent = String([...state.roster.values()].reduce((a, b) => a + b, 0));
}

function joined(name) {
  state.roster.set(name, (state.roster.get(name) || 0) + 1);
  renderRoster();
  if (state.ready) line("event", [["span", name + " joined", ""]]);
}

function quit(name) {
  const n = (state.roster.get(name) || 0) - 1;
  if (n > 0) state.roster.set(name, n);
  else state.roster.delete(name);
  renderRoster();
  if (state.ready) line("event", [["span", name + " left", ""]]);
}

function setReady(ready) {
  state.ready = ready;
  $("message").disabled = !ready;
  $("send").disabled = !ready;
  if (ready) $("message").focus();
}

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
  setStatus("connecting…", "busy");

  const sendName = () => {
    if (state.ws === ws && ws.readyState === WebSocket.OPEN && !state.ready) {
      ws.send(JSON.stringify({ name: state.name }));
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
      showBanner(data.error);
      // Our name itself was refused (rate limit): say it again a little later.
      if (!state.ready) setTimeout(sendName, 5000);
      else if (state.lastSent && !$("message").value) $("message").value = state.lastSent;
    }
    else if (data.joined !== undefined) joined(data.joined);
    else if (data.quit !== undefined) quit(data.quit);
    else if (data.ready) {
      wasReady = true;
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
// websocket" means the room is fine (the server was away); anything else is final.
async function checkRefusal(url) {
  try {
    const response = await fetch(url.replace(/^ws/, "http"));
    const text = await response.text();
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
    $("join-error").textContent = "A room name is 1 to 32 characters, without '/'.";
    $("join-error").hidden = false;
    return;
  }
  state.room = room;
  state.leaving = false;
  state.seen.clear();
  $("log").replaceChildren();
  showBanner("");
  if (readHash() !== room) history.replaceState(null, "", "#" + encodeURIComponent(room));
  $("title").textContent = roomLabel(room);
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

function takeName() {
  const name = $("name").value.trim();
  if (!name) {
    $("join-error").textContent = "Pick a name first.";
    $("join-error").hidden = false;
    return false;
  }
  state.name = name;
  localStorage.setItem("chat.name", name);
  $("join-error").hidden = true;
  return true;
}

$("join-form").onsubmit = (event) => {
  event.preventDefault();
  if (!takeName()) return;
  const typed = $("room").value.trim().toLowerCase().replace(/\s+/g, "-");
  enter(typed || state.pendingRoom || "lobby");
};

$("create-private").onclick = async () => {
  if (!takeName()) return;
  let response;
  try {
    response = await fetch(`${BASE}api/room`, { method: "POST" });
  } catch {
    response = null;
  }
  if (!response || !response.ok) {
    const why = response ? await response.text() : "the server cannot be reached";
    $("join-error").textContent = "Could not create a room: " + why;
    $("join-error").hidden = false;
    return;
  }
  enter((await response.text()).trim());
};

$("send-form").onsubmit = (event) => {
  event.preventDefault();
  const text = $("message").value;
  if (!text || !state.ready) return;
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
  $("room").placeholder = HEX64.test(room) ? "the private room from your link" : "a public room name";
  if (state.name) enter(room);
}

window.addEventListener("hashchange", () => fromLink(readHash()));

$("name").value = state.name;
fromLink(readHash());
