// The poll's page (examples/poll.py). Without a #<id>: a form that POSTs a new poll. With one:
// the poll's WebSocket, which sends the poll as JSON on connect, after every vote and when it
// closes; a vote is an option's text, sent once. URLs come from <meta name="app-base">.
"use strict";

const BASE = document.querySelector('meta[name="app-base"]').content;
const $ = (id) => document.getElementById(id);
let socket = null;
let retry = 0;
let voted = null; // this page's vote: the server allows one per socket, the page asks once

function showError(el, text) {
  el.textContent = text || "";
  el.hidden = !text;
}

$("create").addEventListener("submit", async (event) => {
  event.preventDefault();
  const params = new URLSearchParams({ question: $("question").value.trim() });
  for (const line of $("options").value.split("\n")) {
    if (line.trim()) params.append("option", line.trim());
  }
  params.append("seconds", $("seconds").value);
  // Sent again by itself while the server says nothing ran (static/js/outcome.js); if the
  // poll may have been made, say so rather than make a second one.
  const waiting = (s) => showError($("create-error"), `The server is busy: trying again in ${s} s…`);
  let response;
  try {
    response = await Outcome.request(`${BASE}?${params}`, { method: "POST" }, { onWait: waiting });
  } catch {
    return showError($("create-error"), Outcome.explain("unknown", "the new poll"));
  }
  const body = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
  if (!response.ok) {
    const said = response.outcome === "unknown" ? Outcome.explain("unknown", "the new poll") : "";
    return showError($("create-error"), said || body.error);
  }
  showError($("create-error"), "");
  location.hash = body.id;
});

function render(poll) {
  $("poll-question").textContent = poll.question;
  const total = Object.values(poll.votes).reduce((a, b) => a + b, 0);
  const top = Math.max(...Object.values(poll.votes));
  const list = $("poll-options");
  list.replaceChildren();
  for (const [option, count] of Object.entries(poll.votes)) {
    const row = document.createElement("li");
    row.style.setProperty("--share", `${total ? (100 * count) / total : 0}%`);
    row.classList.toggle("winner", Boolean(poll.closed) && count === top && top > 0);
    const label = document.createElement("span");
    label.textContent = option;
    const tally = document.createElement("span");
    tally.className = "count";
    tally.textContent = String(count);
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = voted === option ? "Voted" : "Vote";
    button.disabled = Boolean(poll.closed) || voted !== null;
    button.addEventListener("click", () => {
      voted = option;
      socket.send(option);
      render(poll);
    });
    row.append(label, tally, button);
    list.append(row);
  }
  $("poll-status").textContent = poll.closed
    ? `Closed. ${total} vote${total === 1 ? "" : "s"}.`
    : `Open: counts update live; share this page's address. ${voted === null ? "One vote each." : "Thanks for voting."}`;
}

function stop() {
  if (socket) {
    socket.onclose = null;
    socket.close();
    socket = null;
  }
}

function watch(id) {
  stop();
  const url = new URL(BASE + encodeURIComponent(id), location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  socket = new WebSocket(url);
  let closed = false;
  let opened = false;
  socket.onopen = () => {
    opened = true;
    retry = 0;
  };
  socket.onmessage = (event) => {
    const data = JSON.parse(event.data);
    if (data.error) return showError($("poll-error"), data.error);
    closed = Boolean(data.closed);
    showError($("poll-error"), "");
    render(data);
  };
  socket.onclose = () => {
    if (closed) return; // nothing will change any more
    // The poll's node went away (1012) or the network dropped: come back, a little later each time.
    retry = Math.min(retry + 1, 6);
    $("poll-status").textContent = opened ? "Reconnecting…" : "Cannot open this poll (is the link right?); retrying…";
    setTimeout(() => { if (location.hash.slice(1) === id) watch(id); }, 250 * 2 ** retry);
  };
}

function route() {
  const id = location.hash.slice(1);
  $("create").hidden = Boolean(id);
  $("poll").hidden = !id;
  if (id) {
    voted = null;
    watch(id);
  } else {
    stop();
  }
}

$("poll-new").addEventListener("click", (event) => {
  event.preventDefault();
  location.hash = "";
});
window.addEventListener("hashchange", route);
route();
