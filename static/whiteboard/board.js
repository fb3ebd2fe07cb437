// The whiteboard page (/whiteboard/b/<room>), bundled by esbuild into
// static/build/whiteboard.js. It wires the shared document (Yjs, synced by the stock
// y-websocket provider) to the canvas, the tools and the page's controls.
//
// Read top to bottom: configuration, document and connection, drawing, toolbar, header
// (title, share, export, status), keyboard, people. The pieces live in their own modules:
// model.js (the data), render.js, input.js, tools.js, textedit.js, presence.js, export.js.
import * as Y from "yjs";
import { WebsocketProvider } from "y-websocket";
import { exportPNG, exportSVG, thumbnail } from "./export.js";
import { Input } from "./input.js";
import { Board } from "./model.js";
import { freeColor, OLD_COLORS, Presence, USER_COLORS } from "./presence.js";
import { rememberBoard } from "./recent.js";
import { Renderer } from "./render.js";
import { TextEditor } from "./textedit.js";
import { makeTools } from "./tools.js";
import { Viewport } from "./view.js";

const $ = (id) => document.getElementById(id);

// ---- configuration: what the server rendered into the page --------------------------------

const config = JSON.parse($("board-config").textContent);
const readOnly = Boolean(config.readOnly);
const room = config.room;
// Nothing was ever stored on this board (the server says so): any name is a board, so a
// mistyped link opens an empty one, and the page says it is new rather than look as if a
// drawing had been lost. (Not for a board this tab just made with "New board".)
const madeHere = sessionStorage.getItem("whiteboard.made." + room) === "1";
const isNew = Boolean(config.isNew) && !madeHere;
// One text's update must stay under the server's limit (a character is at most 4 bytes).
const maxTextChars = Math.max(100, Math.min(10_000, Math.floor((config.maxUpdateBytes - 1024) / 4)));

// ---- the document and its connection ------------------------------------------------------

const doc = new Y.Doc();
const board = new Board(doc);
// Where the whiteboard is mounted ("/whiteboard/"): the page says so (no hard-coded path).
const BASE = document.querySelector('meta[name="app-base"]').content;
const wsBase = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + BASE + "ws";
const provider = new WebsocketProvider(wsBase, room, doc);

// ---- drawing ------------------------------------------------------------------------------

const stage = $("stage");
const canvas = $("canvas");
const view = new Viewport(viewChanged);
const renderer = new Renderer(canvas, board, view);
const presence = new Presence(provider.awareness, view, { layer: $("cursors"), list: $("people") });

const style = loadStyle();
const app = {
  board,
  view,
  renderer,
  presence,
  style,
  readOnly,
  tool: readOnly ? "hand" : "pen",
  select,
  editText: (p, id) => textEditor.start(p, id),
  finishText: () => textEditor.commit(),
};
app.tools = readOnly ? {} : makeTools(app);
const textEditor = new TextEditor($("text-editor"), app, maxTextChars);
const input = new Input(canvas, app);

new ResizeObserver(() => {
  const r = stage.getBoundingClientRect();
  view.width = r.width;
  view.height = r.height;
  if (!placement.laidOut) {
    placement.laidOut = true;
    placement.restored = restoreView();
    place();
  }
  viewChanged();
}).observe(stage);

function viewChanged() {
  renderer.invalidate();
  presence.renderCursors();
  textEditor.layout();
  $("zoom-level").textContent = Math.round(view.scale * 100) + "%";
  saveView();
}

// Each board remembers this tab's view across reloads. A board opened afresh shows its
// origin in the middle, then, once its content has arrived, is fitted to it.
const viewKey = "whiteboard.view." + room;
const placement = { laidOut: false, restored: false, synced: false };
let viewTimer = null;

function place() {
  if (!placement.restored) view.fit(placement.synced ? renderer.contentBounds() : null);
}

provider.once("sync", () => {
  placement.synced = true;
  if (placement.laidOut) place();
  showEmptyHint();
});

// ---- a new board: said so until something is drawn ----------------------------------------

const newNotice = $("new-notice");
newNotice.hidden = !isNew;
$("new-notice-close").onclick = () => (newNotice.hidden = true);

// ---- the board list's preview of this board -----------------------------------------------

let thumbTimer = null;

function saveThumbnail() {
  clearTimeout(thumbTimer);
  thumbTimer = null;
  rememberBoard(room, { thumb: thumbnail(renderer) || "" });
}

function saveView() {
  clearTimeout(viewTimer);
  viewTimer = setTimeout(() => {
    sessionStorage.setItem(viewKey, JSON.stringify({ x: view.x, y: view.y, scale: view.scale }));
  }, 300);
}

function restoreView() {
  let v = null;
  try {
    v = JSON.parse(sessionStorage.getItem(viewKey) || "null");
  } catch {
    // a damaged entry: fit instead
  }
  if (!v || ![v.x, v.y, v.scale].every(Number.isFinite)) return false;
  view.set(v.x, v.y, v.scale);
  return true;
}

// ---- selection and the toolbar ------------------------------------------------------------

function select(id) {
  renderer.selected = id;
  for (const b of document.querySelectorAll("[data-needs-selection]")) b.hidden = !id;
  // The palette shows the selected shape's style, or else what the next shape gets.
  const s = id && renderer.entries.get(id)?.s;
  if (s) showStyle(s.color, s.width);
  else showStyle(style.color, style.width);
  renderer.invalidate();
}

// The selection may vanish under us: deleted by someone else, or by an undo.
renderer.listeners.add(() => {
  if (renderer.selected && !renderer.entries.has(renderer.selected)) select(null);
  showEmptyHint();
  if (board.shapes.size > 0) newNotice.hidden = true;
  if (!thumbTimer) thumbTimer = setTimeout(saveThumbnail, 3000); // the preview, now and then
});
window.addEventListener("pagehide", () => thumbTimer && saveThumbnail());

// A word of help on a board that is empty (once we know it is: after the first sync).
function showEmptyHint() {
  $("empty-hint").hidden = !placement.synced || board.shapes.size > 0;
}

function setTool(name) {
  if (readOnly) return;
  textEditor.commit();
  app.tool = name;
  if (name !== "select") select(null);
  for (const b of document.querySelectorAll("[data-tool]")) {
    b.setAttribute("aria-pressed", String(b.dataset.tool === name));
  }
  input.updateCursor();
}

function loadStyle() {
  let saved = {};
  try {
    saved = JSON.parse(localStorage.getItem("whiteboard.style") || "{}");
  } catch {
    // keep the defaults
  }
  const swatches = [...document.querySelectorAll("[data-color]")].map((b) => b.dataset.color);
  const widths = [...document.querySelectorAll("[data-width]")];
  const width = widths.find((b) => Number(b.dataset.width) === saved.width) || widths[1] || widths[0];
  return {
    color: swatches.includes(saved.color) ? saved.color : swatches[0] || "#1e1e1e",
    width: Number(width?.dataset.width || 4),
    textSize: Number(width?.dataset.textSize || 24),
  };
}

function saveStyle() {
  localStorage.setItem("whiteboard.style", JSON.stringify({ color: style.color, width: style.width }));
}

function showStyle(color, width) {
  for (const b of document.querySelectorAll("[data-color]")) {
    b.setAttribute("aria-pressed", String(b.dataset.color === color));
  }
  for (const b of document.querySelectorAll("[data-width]")) {
    b.setAttribute("aria-pressed", String(Number(b.dataset.width) === width));
  }
}

// Picking a colour or width sets it for what comes next, and restyles the selected shape.
function pickColor(color) {
  style.color = color;
  saveStyle();
  showStyle(color, style.width);
  if (renderer.selected) restyle({ color });
}

function pickWidth(button) {
  style.width = Number(button.dataset.width);
  style.textSize = Number(button.dataset.textSize);
  saveStyle();
  showStyle(style.color, style.width);
  const s = renderer.selected && renderer.entries.get(renderer.selected)?.s;
  if (s) restyle(s.type === "text" ? { size: style.textSize, width: style.width } : { width: style.width });
}

function restyle(changes) {
  board.step();
  board.update(renderer.selected, changes);
}

function deleteSelection() {
  if (!renderer.selected) return;
  board.step();
  board.remove([renderer.selected]);
  select(null);
}

function restack(top) {
  if (!renderer.selected) return;
  board.step();
  board.update(renderer.selected, { z: top ? board.topZ() + 1 : board.bottomZ() - 1 });
}

function undo() {
  textEditor.commit();
  board.undo.undo();
}

function redo() {
  textEditor.commit();
  board.undo.redo();
}

function updateHistoryButtons() {
  $("undo").disabled = !board.undo.canUndo();
  $("redo").disabled = !board.undo.canRedo();
}

function zoomToFit() {
  view.fit(renderer.contentBounds());
}

$("zoom-in").onclick = () => view.zoomAt(1.25);
$("zoom-out").onclick = () => view.zoomAt(0.8);
$("zoom-level").onclick = () => view.zoomAt(1 / view.scale);
$("zoom-fit").onclick = zoomToFit;

// A view-only page has no toolbar at all (the server refuses its edits anyway).
if (!readOnly) {
  for (const event of ["stack-item-added", "stack-item-popped", "stack-cleared"]) {
    board.undo.on(event, updateHistoryButtons);
  }
  updateHistoryButtons();
  document.querySelectorAll("[data-tool]").forEach((b) => (b.onclick = () => setTool(b.dataset.tool)));
  document.querySelectorAll("[data-color]").forEach((b) => (b.onclick = () => pickColor(b.dataset.color)));
  document.querySelectorAll("[data-width]").forEach((b) => (b.onclick = () => pickWidth(b)));
  $("undo").onclick = undo;
  $("redo").onclick = redo;
  $("delete").onclick = deleteSelection;
  $("front").onclick = () => restack(true);
  $("back").onclick = () => restack(false);
  setTool(app.tool);
  showStyle(style.color, style.width);
}
input.updateCursor();

// ---- header: title, share, export, status -------------------------------------------------

const titleInput = $("title");

function showTitle() {
  const title = board.title;
  if (document.activeElement !== titleInput) titleInput.value = title;
  document.title = (title || "Untitled board") + " · Whiteboard";
  rememberBoard(room, { title, readOnly, opened: Date.now() });
}

board.meta.observe(showTitle);
showTitle();
titleInput.readOnly = readOnly;
titleInput.onchange = () => board.setTitle(titleInput.value.trim().slice(0, 100));
titleInput.onkeydown = (e) => {
  if (e.key === "Enter") titleInput.blur();
  if (e.key === "Escape") {
    titleInput.value = board.title;
    titleInput.blur();
  }
};

const editLink = location.origin + location.pathname;
$("edit-link").value = readOnly ? "" : editLink;
$("edit-link-row").hidden = readOnly;
$("view-link").value = readOnly ? editLink : location.origin + config.viewUrl;
$("share").onclick = () => $("share-dialog").showModal();
for (const button of document.querySelectorAll("[data-copy]")) {
  button.onclick = () => copy($(button.dataset.copy), button);
}

async function copy(field, button) {
  field.select();
  try {
    await navigator.clipboard.writeText(field.value);
  } catch {
    document.execCommand("copy"); // no clipboard API on plain http: the old way
  }
  button.textContent = "Copied";
  setTimeout(() => (button.textContent = "Copy"), 1500);
}

function fileName() {
  const slug = board.title.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
  return slug || "whiteboard";
}

function exported(ok) {
  $("export-menu").open = false;
  if (!ok) showBanner("The board is empty: nothing to export yet.");
}

// The export menu is a <details>: close it on a click anywhere else.
document.addEventListener("pointerdown", (e) => {
  if (!e.target.closest?.("#export-menu")) $("export-menu").open = false;
});
$("export-png").onclick = () => exported(exportPNG(renderer, fileName()));
$("export-svg").onclick = () => exported(exportSVG(board.shapes, fileName()));

let bannerTimer = null;

function showBanner(text, sticky = false) {
  const el = $("banner");
  el.textContent = text;
  el.hidden = !text;
  clearTimeout(bannerTimer);
  if (text && !sticky) bannerTimer = setTimeout(() => (el.hidden = true), 6000);
}

// connecting -> connected (once synced) -> offline (the provider retries with backoff).
const connection = { status: "connecting", synced: false };

function showStatus() {
  const el = $("status");
  let [text, kind] = ["connecting…", "busy"];
  if (!navigator.onLine || connection.status === "disconnected") [text, kind] = ["offline", "bad"];
  else if (connection.status === "connected" && connection.synced) [text, kind] = ["connected", "ok"];
  el.textContent = text;
  el.dataset.kind = kind;
}

provider.on("status", ({ status }) => {
  connection.status = status;
  if (status !== "connected") connection.synced = false;
  showStatus();
});
provider.on("sync", (synced) => {
  connection.synced = synced;
  showStatus();
});
provider.on("connection-close", (event) => {
  // 1009: the server refused a change too large to store. Sending it again would only be
  // refused again, so stop and say so; a reload starts from what the server has.
  if (event?.code === 1009) {
    provider.disconnect();
    showBanner("The server refused a change that was too large. Reload the page to continue.", true);
  }
});
window.addEventListener("online", showStatus);
window.addEventListener("offline", showStatus);
showStatus();

// ---- keyboard -----------------------------------------------------------------------------

const TOOL_KEYS = { v: "select", h: "hand", p: "pen", l: "line", r: "rect", o: "ellipse", t: "text", e: "eraser" };

window.addEventListener("keydown", (e) => {
  if (e.target instanceof Element && e.target.closest("input, textarea, [contenteditable], dialog")) return;
  const mod = e.ctrlKey || e.metaKey;
  const key = e.key.toLowerCase();
  let handled = true;
  if (mod && key === "z" && !readOnly) e.shiftKey ? redo() : undo();
  else if (mod && key === "y" && !readOnly) redo();
  else if (mod || e.altKey) handled = false;
  else if (key === "+" || key === "=") view.zoomAt(1.25);
  else if (key === "-" || key === "_") view.zoomAt(0.8);
  else if (key === "0") view.zoomAt(1 / view.scale);
  else if (e.code === "Digit1" && e.shiftKey) zoomToFit();
  else if (readOnly) handled = false;
  else if (key === "delete" || key === "backspace") deleteSelection();
  else if (key === "escape") select(null);
  else if (key === "]") restack(true);
  else if (key === "[") restack(false);
  else if (TOOL_KEYS[key] && !e.shiftKey) setTool(TOOL_KEYS[key]);
  else handled = false;
  if (handled) e.preventDefault();
});

// ---- people -------------------------------------------------------------------------------

// A user is { name, color, auto }: auto (the colour was given, not picked) unless the
// person picked a colour in the dialog. Users kept before `auto` existed never picked one
// either (the dialog came prefilled), so a missing `auto` reads as true.
function loadUser() {
  try {
    const user = JSON.parse(localStorage.getItem("whiteboard.user") || "null");
    const color = OLD_COLORS[user?.color] || user?.color;
    if (user && typeof user.name === "string" && USER_COLORS.includes(color)) {
      return { name: user.name, color, auto: user.auto !== false };
    }
  } catch {
    // ask again
  }
  return null;
}

function saveUser(user) {
  localStorage.setItem("whiteboard.user", JSON.stringify(user));
  presence.setUser(user);
}

// Two people must not share a given colour: whoever should move takes a free one.
presence.awareness.on("change", () => {
  const color = freeColor(presence.people());
  const user = presence.awareness.getLocalState()?.user;
  if (color && user) saveUser({ ...user, color });
});

// The name is asked once (prefilled with a guest name) and kept; the avatar marked "you"
// opens the same dialog to change it.
function askName(current) {
  const dialog = $("name-dialog");
  $("name").value = current.name;
  const swatches = $("user-colors");
  let picked = false; // a colour clicked: chosen, kept even if someone else has it
  swatches.onchange = () => (picked = true);
  swatches.replaceChildren(
    ...USER_COLORS.map((color) => {
      const label = document.createElement("label");
      label.className = "user-color";
      label.style.background = color;
      label.title = color;
      const radio = document.createElement("input");
      radio.type = "radio";
      radio.name = "user-color";
      radio.value = color;
      radio.checked = color === current.color;
      radio.setAttribute("aria-label", "Colour " + color);
      label.appendChild(radio);
      return label;
    })
  );
  dialog.onclose = () => {
    const name = $("name").value.trim().slice(0, 40) || current.name;
    const color = swatches.querySelector("input:checked")?.value || current.color;
    saveUser({ name, color, auto: picked ? false : current.auto !== false });
  };
  dialog.showModal();
  $("name").select();
}

// A view-only visitor is not asked who they are (they only watch): a guest name is used,
// and their own avatar still opens the dialog if they want to say.
const user = loadUser();
if (user) presence.setUser(user);
else {
  const guest = {
    name: "Guest " + (100 + Math.floor(Math.random() * 900)),
    color: USER_COLORS[Math.floor(Math.random() * USER_COLORS.length)],
    auto: true,
  };
  presence.setUser(guest);
  if (!readOnly) askName(guest);
}
$("people").onclick = (e) => {
  if (e.target.closest(".me")) askName(loadUser() || presence.awareness.getLocalState().user);
};

// ---- the debug and test handle ------------------------------------------------------------

window.whiteboard = { doc, provider, Y, shapes: board.shapes, undo: board.undo, board, view, renderer };
