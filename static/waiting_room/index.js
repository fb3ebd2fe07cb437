// The waiting room's start page: create a room (POST api/rooms) and list the rooms made in
// this browser, each with its visitor page and its admin page (the token rides in the URL
// fragment, which browsers never send to the server).
"use strict";

const $ = (id) => document.getElementById(id);
const BASE = document.querySelector('meta[name="app-base"]').content;
const KEY = "waiting-room.rooms";

function rooms() {
  try {
    const list = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
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
      site.href = BASE + "r/" + encodeURIComponent(r.room) + "/";
      site.textContent = "visitor page";
      const admin = document.createElement("a");
      admin.href = BASE + "admin/" + encodeURIComponent(r.room) + "#token=" + encodeURIComponent(r.token);
      admin.textContent = "admin";
      const forget = document.createElement("button");
      forget.type = "button";
      forget.className = "wr-button secondary";
      forget.textContent = "Forget";
      forget.onclick = () => {
        localStorage.setItem(KEY, JSON.stringify(rooms().filter((x) => x.room !== r.room)));
        render();
      };
      li.append(name, site, admin, forget);
      return li;
    })
  );
}

$("create").addEventListener("submit", async (event) => {
  event.preventDefault();
  // (form.elements by name: `form.name` would be the form's own name attribute)
  const field = (name) => event.target.elements.namedItem(name);
  const body = {
    name: field("name").value,
    total_active_users: Number(field("total_active_users").value),
    new_users_per_minute: Number(field("new_users_per_minute").value),
    session_duration: Number(field("session_duration").value),
    queueing_method: field("queueing_method").value,
    slot_leasing: field("slot_leasing").checked,
  };
  const gate = field("gate_prefix").value.trim();
  if (gate) body.gate_prefix = gate;
  $("create-error").hidden = true;
  $("create-button").disabled = true;
  try {
    const response = await fetch(BASE + "api/rooms", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.field ? `${answer.field}: ${answer.error}` : answer.error);
    const list = rooms().filter((x) => x.room !== answer.room);
    list.unshift({ room: answer.room, token: answer.admin_token, name: answer.name, created: Date.now() });
    localStorage.setItem(KEY, JSON.stringify(list.slice(0, 50)));
    location.assign(answer.admin_url + "#token=" + encodeURIComponent(answer.admin_token));
  } catch (error) {
    $("create-error").textContent = String(error.message || error);
    $("create-error").hidden = false;
  } finally {
    $("create-button").disabled = false;
  }
});

render();
