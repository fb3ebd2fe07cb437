// The board list (the whiteboard's mount): the boards this browser has opened, newest first, and
// a "New board" button. Plain ES module, no bundle; recent.js is shared with the board page.
import { forgetBoard, recentBoards } from "./recent.js";

const $ = (id) => document.getElementById(id);
// Where the whiteboard is mounted ("/whiteboard/"): the page says so (no hard-coded path).
const BASE = document.querySelector('meta[name="app-base"]').content;

function when(ms) {
  if (!Number.isFinite(ms)) return "";
  const minutes = Math.round((Date.now() - ms) / 60_000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min ago`;
  if (minutes < 60 * 24) return `${Math.round(minutes / 60)} h ago`;
  return new Date(ms).toLocaleDateString([], { day: "numeric", month: "short", year: "numeric" });
}

function render() {
  const boards = recentBoards();
  $("empty").hidden = boards.length > 0;
  $("boards").replaceChildren(
    ...boards.map((b) => {
      const li = document.createElement("li");
      li.className = "board-card";
      // A preview of the drawing (decorative: the title names the board), or an empty frame.
      const preview = document.createElement("div");
      preview.className = "preview";
      if (typeof b.thumb === "string" && /^data:image\/(webp|png);base64,/.test(b.thumb)) {
        const img = document.createElement("img");
        img.src = b.thumb;
        img.alt = "";
        preview.append(img);
      } else {
        preview.classList.add("blank");
        preview.textContent = "No preview yet";
      }
      const link = document.createElement("a");
      link.href = BASE + "b/" + encodeURIComponent(b.room);
      link.textContent = b.title || "Untitled board"; // never innerHTML: titles are shared data
      const meta = document.createElement("p");
      meta.textContent = when(b.opened);
      if (b.readOnly) {
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.textContent = "View only";
        meta.append(" ", badge);
      }
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "remove";
      remove.textContent = "\u00d7";
      remove.title = "Remove from this list";
      remove.setAttribute("aria-label", `Remove ${link.textContent} from this list`);
      remove.onclick = () => {
        forgetBoard(b.room);
        render();
      };
      li.append(preview, link, meta, remove);
      return li;
    })
  );
}

$("new-board").onclick = async () => {
  const button = $("new-board");
  button.disabled = true;
  $("error").hidden = true;
  try {
    // Only a name is minted: safe to send again whatever the answer (static/js/outcome.js).
    const waiting = (s) => (button.textContent = `Busy: trying again in ${s} s…`);
    const response = await window.Outcome.request(
      BASE + "api/boards",
      { method: "POST" },
      { idempotent: true, onWait: waiting },
    );
    if (!response.ok) throw new Error((await response.text()) || `HTTP ${response.status}`);
    const { room, url } = await response.json();
    // (this tab made it: the board page need not say "new board, check the link")
    sessionStorage.setItem("whiteboard.made." + room, "1");
    location.assign(url);
  } catch (error) {
    $("error").textContent = "Could not create a board: " + (error.message || "the server cannot be reached");
    $("error").hidden = false;
    button.disabled = false;
    button.textContent = "New board";
  }
};

// Another tab may open or rename a board meanwhile.
window.addEventListener("storage", render);
window.addEventListener("pageshow", render); // coming back with the Back button
render();
