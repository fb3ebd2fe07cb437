// Who is here. Each client shares one awareness state (y-protocols, over the same socket):
//
//   { user: { name, color, auto }, cursor: { x, y } | null }     cursor in board coordinates
//
// `auto` says the colour was given, not chosen: two people never keep the same given colour
// (see freeColor), so cursors and avatars can be told apart, as in tldraw and Excalidraw.
//
// Others' cursors are drawn as DOM elements over the canvas (an arrow and their name in
// their colour), placed through this viewer's own pan and zoom; everyone, oneself
// included, is listed as an avatar in the header.

// People's colours: white initials and names on them read at 4.5:1 or better (WCAG AA).
export const USER_COLORS = ["#c92a2a", "#a85200", "#237032", "#0b7285", "#1971c2", "#6741d9", "#c2255c", "#4c7a0a"];
// Colours browsers kept before these (too light under white text) -> their darker twin.
export const OLD_COLORS = {
  "#e03131": "#c92a2a",
  "#f08c00": "#a85200",
  "#2f9e44": "#237032",
  "#0c8599": "#0b7285",
  "#7048e8": "#6741d9",
  "#5c940d": "#4c7a0a",
};
const MAX_AVATARS = 5;
const PHONE = window.matchMedia("(max-width: 640px)"); // (fewer avatars: the title needs room)
const SEND_EVERY_MS = 50; // cursor updates, at most 20 a second
const SVG_NS = "http://www.w3.org/2000/svg";

export class Presence {
  constructor(awareness, view, { layer, list }) {
    this.awareness = awareness;
    this.view = view;
    this.layer = layer; // the element the cursors live in, over the canvas
    this.list = list; // the avatars' <ul>
    this.cursors = new Map(); // clientID -> element
    this.pending = undefined;
    this.timer = null;
    awareness.setLocalStateField("cursor", null);
    awareness.on("change", () => this.render());
    PHONE.addEventListener("change", () => this.render());
  }

  setUser(user) {
    this.awareness.setLocalStateField("user", user);
  }

  // Where this user's pointer is on the board (null: off the board). Sent at most every
  // SEND_EVERY_MS, always with the latest position.
  pointer(p) {
    this.pending = p && { x: Math.round(p.x), y: Math.round(p.y) };
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      const old = this.awareness.getLocalState()?.cursor;
      const now = this.pending;
      if (old?.x !== now?.x || old?.y !== now?.y || !old !== !now) {
        this.awareness.setLocalStateField("cursor", now);
      }
    }, SEND_EVERY_MS);
  }

  // Everyone's state, sanitised: names and colours come from other clients.
  people() {
    const people = [];
    for (const [id, state] of this.awareness.getStates()) {
      const user = state?.user;
      if (!user) continue;
      people.push({
        id,
        me: id === this.awareness.clientID,
        name: String(user.name || "Guest").slice(0, 40),
        color: /^#[0-9a-f]{6}$/i.test(user.color) ? user.color : "#868e96",
        auto: user.auto === true,
        cursor: state.cursor,
      });
    }
    return people;
  }

  render() {
    const people = this.people();
    this.renderList(people);
    this.renderCursors(people);
  }

  // Called when the view moves: cursors stay on the board point they point at.
  renderCursors(people = this.people()) {
    const seen = new Set();
    for (const person of people) {
      const c = person.cursor;
      if (person.me || !c || !Number.isFinite(c.x) || !Number.isFinite(c.y)) continue;
      seen.add(person.id);
      let el = this.cursors.get(person.id);
      if (!el) {
        el = cursorElement();
        this.layer.appendChild(el);
        this.cursors.set(person.id, el);
      }
      el.querySelector("path").setAttribute("fill", person.color);
      const label = el.querySelector(".cursor-name");
      label.textContent = person.name;
      label.style.background = person.color;
      const p = this.view.toScreen(c.x, c.y);
      const off = p.x < -20 || p.y < -20 || p.x > this.view.width || p.y > this.view.height;
      el.hidden = off;
      el.style.transform = `translate(${p.x}px, ${p.y}px)`;
    }
    for (const [id, el] of this.cursors) {
      if (seen.has(id)) continue;
      el.remove();
      this.cursors.delete(id);
    }
  }

  renderList(people) {
    people.sort((a, b) => b.me - a.me || a.name.localeCompare(b.name));
    // Cursors move many times a second; the list only changes when people do.
    const max = PHONE.matches ? 2 : MAX_AVATARS;
    const key = JSON.stringify([max, people.map((p) => [p.id, p.name, p.color])]);
    if (key === this.listKey) return;
    this.listKey = key;
    const shown = people.length > max ? max - 1 : max; // room for the "+n" too
    // Initials for the eye, the whole name for screen readers; your own avatar is a
    // button (it opens the name dialog).
    const items = people.slice(0, shown).map((person) => {
      const li = document.createElement("li");
      li.className = "avatar" + (person.me ? " me" : "");
      li.style.background = person.color;
      li.dataset.name = person.name;
      const inner = person.me ? document.createElement("button") : li;
      if (person.me) {
        inner.type = "button";
        inner.className = "avatar-button";
        li.append(inner);
      }
      const letters = document.createElement("span");
      letters.setAttribute("aria-hidden", "true");
      letters.textContent = initials(person.name);
      const full = document.createElement("span");
      full.className = "visually-hidden";
      full.textContent = person.me ? `${person.name} (you): change your name` : person.name;
      inner.append(letters, full);
      li.title = person.me ? `${person.name} (you): change your name` : person.name;
      return li;
    });
    if (people.length > shown) {
      const more = document.createElement("li");
      more.className = "avatar more";
      more.textContent = "+" + (people.length - shown);
      more.title = people.slice(shown).map((p) => p.name).join(", ");
      more.textContent = "";
      const count = document.createElement("span");
      count.setAttribute("aria-hidden", "true");
      count.textContent = "+" + (people.length - shown);
      const names = document.createElement("span");
      names.className = "visually-hidden";
      names.textContent = `and ${people.length - shown} more: ${more.title}`;
      more.append(count, names);
      items.push(more);
    }
    this.list.replaceChildren(...items);
    this.list.setAttribute("aria-label", `${people.length} here`);
  }
}

// The colour this client should take instead of its own given (auto) colour, or null to
// keep it. It gives way when someone else here has the same colour and either chose it or
// came first (a lower client ID): of two people given one colour, exactly one moves, the
// same decision on both sides. It takes the first colour nobody here has.
export function freeColor(people) {
  const me = people.find((p) => p.me);
  if (!me || !me.auto) return null;
  const others = people.filter((p) => !p.me);
  const clash = others.some((p) => p.color === me.color && (!p.auto || p.id < me.id));
  if (!clash) return null;
  const taken = new Set(others.map((p) => p.color));
  return USER_COLORS.find((c) => !taken.has(c)) || null;
}

function cursorElement() {
  const el = document.createElement("div");
  el.className = "cursor";
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", "0 0 16 20");
  svg.setAttribute("width", "16");
  svg.setAttribute("height", "20");
  const path = document.createElementNS(SVG_NS, "path");
  path.setAttribute("d", "M1 1v16l4.5-4.2 3 6.2 2.8-1.3-3-6.1H14z");
  path.setAttribute("stroke", "#fff");
  path.setAttribute("stroke-width", "1.2");
  svg.appendChild(path);
  const name = document.createElement("span");
  name.className = "cursor-name";
  el.append(svg, name);
  return el;
}

function initials(name) {
  // by code point, not UTF-16 unit: an emoji stays whole
  const words = name.trim().split(/\s+/).filter(Boolean).map((w) => [...w]);
  if (!words.length) return "?";
  const letters = words.length > 1 ? words[0][0] + words[words.length - 1][0] : words[0].slice(0, 2).join("");
  return letters.toUpperCase();
}
