// The waiting page: live position, wait and progress over the room's WebSocket, and off to
// the site (or back where the visitor was going) by itself when admitted.
//
// The server's messages are {"status", "position", "eta_s"} (apps/waiting_room/waiting_room.py), with
// "paused": true while the organisers have paused the line. If the socket drops, the page
// asks over plain HTTP (which also counts as being here) and reconnects with backoff; a line
// under the figures says whether the page is live and when it last heard from the room. A socket refused for want of a valid cookie (4001) reloads the
// page once, which makes one; if the socket is refused again soon after (a browser that
// keeps no cookies, say), the page stays and goes on asking over HTTP, with backoff.
"use strict";

const data = JSON.parse(document.getElementById("waiting-data").textContent);
const $ = (id) => document.getElementById(id);
let first = data.first_position || data.position || 0;
let backoff = 500;
let done = false;
const RELOADED = "wr-reloaded-" + data.room; // (session storage) when 4001 last reloaded
const RELOAD_EVERY = 60_000;

function waitText(eta) {
  if (eta === null || eta === undefined) return "unknown";
  if (eta < 60) return "less than a minute";
  if (eta < 5400) return `about ${Math.ceil(eta / 60)} min`;
  return `about ${(eta / 3600).toFixed(1)} h`;
}

// How far along the line, in percent: 0 where the visitor joined, never full while they
// wait (as rules.progress computes it for the page's first view).
function progress(firstPosition, position) {
  if (position === null || firstPosition <= 0) return 0;
  const start = Math.max(firstPosition, position);
  return Math.max(0, Math.min(95, Math.round((100 * (start - position)) / start)));
}

// Live, and when the room last told us anything; or trying to get back.
let heard = 0;
function freshness(live) {
  if (live) heard = Date.now();
  const el = $("freshness");
  el.dataset.kind = live ? "ok" : "busy";
  const when = heard ? ` · updated ${new Date(heard).toLocaleTimeString()}` : "";
  $("freshness-text").textContent = (live ? "Live" : "Reconnecting…") + when;
}

function show(state) {
  if (done) return;
  if (state.status === "admitted") {
    done = true;
    $("live").textContent = "It is your turn: taking you to the site…";
    $("bar").style.width = "100%";
    location.replace(data.next);
    return;
  }
  if (state.status === "rejected") {
    location.reload(); // the server shows the rejection page
    return;
  }
  const position = state.position;
  $("position").textContent = position === null ? "drawn at random" : String(position);
  $("eta").textContent = state.paused ? "paused" : waitText(state.eta_s);
  $("paused").hidden = !state.paused;
  if (position !== null) {
    if (!first || position > first) first = position;
    const pct = progress(first, position);
    $("bar").style.width = pct + "%";
    $("progress").setAttribute("aria-valuenow", String(pct));
  }
}

async function ask() {
  // A plain request: tells the room we are still here, and the answer is our status.
  try {
    // (a read, and the visitor's own: sent again by itself when the server is busy)
    const response = await Outcome.request(data.status_url, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store",
    });
    if (response.ok) {
      show(await response.json());
      freshness(true);
    } else if (response.status === 404) {
      location.reload(); // the room is gone: the server's page says so
    }
  } catch {
    // offline for a moment: the socket's reconnection will try again
  }
}

function reloadForCookie() {
  // At most one reload a minute: without session storage to remember it, none.
  try {
    const last = Number(sessionStorage.getItem(RELOADED)) || 0;
    if (Date.now() - last < RELOAD_EVERY) return false;
    sessionStorage.setItem(RELOADED, String(Date.now()));
  } catch {
    return false;
  }
  location.reload();
  return true;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + data.socket);
  ws.onopen = () => {
    backoff = 500;
    $("live").textContent = "This page updates by itself and takes you to the site when it is your turn.";
  };
  ws.onmessage = (event) => {
    try {
      show(JSON.parse(event.data));
      freshness(true);
    } catch {
      // not ours: ignore
    }
  };
  ws.onclose = (event) => {
    if (done) return;
    if (event.code === 4001 && reloadForCookie()) return; // the page load makes a cookie
    if (event.code === 4004) {
      location.reload(); // the room was deleted: the server's page says so
      return;
    }
    freshness(false);
    $("live").textContent = "Reconnecting…";
    ask();
    const delay = backoff + Math.random() * backoff;
    backoff = Math.min(backoff * 2, 10_000);
    setTimeout(connect, delay);
  };
}

show({ status: data.status, position: data.position, eta_s: data.eta_s, paused: data.paused });
freshness(true);
connect();
