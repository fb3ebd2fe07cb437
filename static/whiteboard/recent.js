// The boards this browser has opened, kept in localStorage (nothing about them is on the
// server's side: a board's name is its capability, so the list is personal).
//
// Shared by the list page (loaded as a native ES module, no bundle) and the board page
// (bundled into static/build/whiteboard.js). An entry: { room, title, opened, readOnly,
// thumb } (thumb: a small picture of the drawing, a data: URL, kept for the newest boards).

const KEY = "whiteboard.boards";
const MAX = 100;
const THUMBS = 40; // boards that keep a picture (each a few KB of the browser's storage)

export function recentBoards() {
  try {
    const list = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(list) ? list.filter((b) => b && typeof b.room === "string") : [];
  } catch {
    return []; // a hand-edited or foreign value: start over rather than break the page
  }
}

function save(list) {
  const kept = list.slice(0, MAX).map((b, i) => (i < THUMBS || !b.thumb ? b : { ...b, thumb: "" }));
  try {
    localStorage.setItem(KEY, JSON.stringify(kept));
  } catch {
    // storage full or disabled (private mode): the list is a convenience, not data
  }
}

// Record a visit (or a new title) and move the board to the top of the list.
export function rememberBoard(room, fields) {
  const list = recentBoards();
  const old = list.find((b) => b.room === room) || {};
  const entry = { ...old, room, ...fields };
  save([entry, ...list.filter((b) => b.room !== room)]);
}

export function forgetBoard(room) {
  save(recentBoards().filter((b) => b.room !== room));
}
