// The boards this browser has opened, kept in localStorage (nothing about them is on the
// server's side: a board's name is its capability, so the list is personal).
//
// Shared by the list page (loaded as a native ES module, no bundle) and the board page
// (bundled into static/build/whiteboard.js). An entry: { room, title, opened, readOnly }.

const KEY = "whiteboard.boards";
const MAX = 100;

export function recentBoards() {
  try {
    const list = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(list) ? list.filter((b) => b && typeof b.room === "string") : [];
  } catch {
    return []; // a hand-edited or foreign value: start over rather than break the page
  }
}

function save(list) {
  try {
    localStorage.setItem(KEY, JSON.stringify(list.slice(0, MAX)));
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
