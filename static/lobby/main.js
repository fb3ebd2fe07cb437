// The lobby UI: one page, three views chosen by the URL hash, so a reload (or a shared
// link) lands where the player was:
//
//   #/                 the directory: create, join with a code, quick play, public lobbies
//   #/lobby/<id>       a lobby: players, ready marks, host crown, chat, kick, start
//   #/join/<CODE>      a join link: looks the code up, then goes to its lobby
//   #/game/<id>        a game: the board, whose turn, the timer, the result, rematch
//
// The server's protocol is described in apps/lobby/room.py, game.py, directory.py and
// quickplay.py. Seat tokens live in localStorage (store.js).

import { Directory } from "./directory.js";
import { GameView } from "./game.js";
import { getJson } from "./net.js";
import { Room } from "./room.js";
import { store } from "./store.js";

const $ = (id) => document.getElementById(id);

export const limits = JSON.parse($("lobby-limits").textContent);

class App {
  constructor() {
    this.views = ["directory-view", "lobby-view", "game-view"];
    this.directory = new Directory(this);
    this.room = new Room(this);
    this.game = new GameView(this);
    // Set by an action that should join the lobby it goes to (create, a code, a list item).
    this.intent = null;
    this.notice = "";
    this.bannerTimer = null;
    window.addEventListener("hashchange", () => this.route());
  }

  show(view, title) {
    for (const id of this.views) $(id).hidden = id !== view;
    if (view === "lobby-view") this.showChat(true);
    document.title = title ? `${title} — Game lobby` : "Game lobby";
    this.banner(this.notice || "", Boolean(this.notice));
    this.notice = "";
  }

  /** The lobby's chat goes where the player is: the lobby view, or beside the board of a
   * lobby's game (``withLobby``: false for a quick-play game, which has no lobby). */
  showChat(withLobby) {
    const atGame = !$("game-view").hidden;
    const slot = atGame ? $("game-chat-slot") : $("lobby-chat-slot");
    if ($("chat").parentElement !== slot) slot.append($("chat"));
    $("chat").hidden = atGame && !withLobby;
  }

  status(kind, text) {
    const el = $("status");
    el.textContent = text;
    el.dataset.kind = kind;
  }

  banner(text, sticky = false) {
    const el = $("banner");
    el.textContent = text;
    el.hidden = !text;
    clearTimeout(this.bannerTimer);
    if (text && !sticky) this.bannerTimer = setTimeout(() => (el.hidden = true), 7000);
  }

  /** Go to ``hash``; ``intent`` is for the lobby view, ``notice`` is shown when there. */
  go(hash, intent = null, notice = "") {
    this.intent = intent;
    this.notice = notice;
    if (location.hash === hash) this.route();
    else location.hash = hash;
  }

  async route() {
    const [, view = "", id = ""] = (location.hash.slice(1) || "/").split("/");
    const intent = this.intent;
    this.intent = null;
    if (view === "lobby" && id) {
      this.game.close();
      this.directory.close();
      this.room.open(id, intent);
      this.show("lobby-view", "Lobby");
    } else if (view === "game" && id) {
      this.directory.close();
      const seat = store.game(id);
      if (seat && seat.lobby) this.room.open(seat.lobby, null, true); // keep our place
      else this.room.close();
      this.show("game-view", "Connect Four");
      this.showChat(Boolean(seat && seat.lobby));
      this.game.open(id);
    } else if (view === "join" && id) {
      const [status, body] = await getJson(`api/codes/${encodeURIComponent(id)}`);
      if (status === 200) {
        history.replaceState(null, "", `#/lobby/${body.lobby}`);
        this.intent = store.name ? "join" : null;
        this.route();
      } else {
        history.replaceState(null, "", "#/");
        this.route();
        this.banner(body.error ? `Code ${id}: ${body.error}` : "That code cannot be looked up now.");
      }
    } else {
      this.game.close();
      this.room.close();
      this.directory.open();
      this.show("directory-view", "");
    }
  }
}

const app = new App();
app.route();
