// The waiting room's start page: create a room (POST api/rooms), show its admin link once
// (with a copy button; the browser keeps it too), and list the rooms made in this browser,
// each with its visitor page and its admin page (the token rides in the URL fragment,
// which browsers never send to the server).
"use strict";

const $ = (id) => document.getElementById(id);
const BASE = document.querySelector('meta[name="app-base"]').content;
const KEY = "waiting-room.rooms";
const form = $("create");

function rooms() {
  try {
    const list = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(list) ? list.filter((r) => r && typeof r.room === "string") : [];
  } catch {
    return [];
  }
}

function adminLink(r) {
  return location.origin + BASE + "admin/" + encodeURIComponent(r.room) + "#token=" + encodeURIComponent(r.token);
}

function siteLink(r) {
  return location.origin + BASE + "r/" + encodeURIComponent(r.room) + "/";
}

function render() {
  const list = rooms();
  $("empty").hidden = list.length > 0;
  $("rooms").replaceChildren(
    ...list.map((r) => {
      const li = document.createElement("li");
      const name = document.createElement("strong");
      name.textContent = r.name || "Room"; // text, never HTML
      const site = document.createElement("a");
      site.href = siteLink(r);
      site.textContent = "visitor page";
      const admin = document.createElement("a");
      admin.href = adminLink(r);
      admin.textContent = "admin";
      admin.setAttribute("aria-label", `admin page of ${name.textContent}`);
      const copy = document.createElement("button");
      copy.type = "button";
      copy.className = "wr-button secondary small";
      copy.textContent = "Copy admin link";
      copy.onclick = () => copyText(adminLink(r), copy);
      const forget = document.createElement("button");
      forget.type = "button";
      forget.className = "wr-button secondary small";
      forget.textContent = "Forget";
      forget.setAttribute("aria-label", `Forget ${name.textContent} (the room stays)`);
      forget.onclick = () => {
        localStorage.setItem(KEY, JSON.stringify(rooms().filter((x) => x.room !== r.room)));
        render();
      };
      li.append(name, site, admin, copy, forget);
      return li;
    })
  );
}

async function copyText(text, button) {
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    window.prompt("Copy this link:", text); // no clipboard API on plain http
  }
  button.textContent = "Copied";
  setTimeout(() => (button.textContent = label), 1500);
}

for (const button of document.querySelectorAll("[data-copy]")) {
  button.onclick = () => {
    $(button.dataset.copy).select();
    copyText($(button.dataset.copy).value, button);
  };
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  $("create-error").hidden = true;
  if (!RoomForms.check(form)) return;
  const field = (name) => form.elements.namedItem(name);
  const body = {
    total_active_users: Number(field("total_active_users").value),
    new_users_per_minute: Number(field("new_users_per_minute").value),
    session_duration: Number(field("session_duration").value),
    queueing_method: field("queueing_method").value,
    slot_leasing: field("slot_leasing").checked,
  };
  const name = field("name").value.trim();
  if (name) body.name = name;
  const gate = field("gate_prefix").value.trim();
  if (gate) body.gate_prefix = gate;
  $("create-button").disabled = true;
  $("create-button").textContent = "Creating…";
  try {
    // Sent again by itself while the server says nothing ran (static/js/outcome.js).
    const waiting = (s) => ($("create-button").textContent = `Busy: trying again in ${s} s…`);
    const response = await Outcome.request(
      BASE + "api/rooms",
      { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) },
      { onWait: waiting },
    );
    const answer = await response.json().catch(() => ({ error: `the server answered ${response.status}` }));
    if (!response.ok) {
      if (response.outcome === "unknown") answer.error = Outcome.explain("unknown", "the new room");
      RoomForms.refused(form, answer, $("create-error"));
      return;
    }
    const made = { room: answer.room, token: answer.admin_token, name: answer.name, created: Date.now() };
    const list = rooms().filter((x) => x.room !== made.room);
    list.unshift(made);
    localStorage.setItem(KEY, JSON.stringify(list.slice(0, 50)));
    showCreated(made);
    form.reset();
    render();
  } catch {
    $("create-error").textContent = "The server cannot be reached; try again.";
    $("create-error").hidden = false;
  } finally {
    $("create-button").disabled = false;
    $("create-button").textContent = "Create room";
  }
});

// The room just made: its admin link, shown this once (and kept in this browser).
function showCreated(r) {
  $("created-name").textContent = r.name || "Room";
  $("created-admin").value = adminLink(r);
  $("created-site").value = siteLink(r);
  $("created-open").href = adminLink(r);
  $("created-visit").href = siteLink(r);
  $("created").hidden = false;
  $("created").scrollIntoView({ block: "start" });
  $("created-title").setAttribute("tabindex", "-1");
  $("created-title").focus();
}

// Another page sent a word along (the admin page, after deleting a room).
const notice = sessionStorage.getItem("waiting-room.notice");
if (notice) {
  sessionStorage.removeItem("waiting-room.notice");
  $("notice").textContent = notice;
  $("notice").hidden = false;
}
render();
