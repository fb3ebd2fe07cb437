// The directory view: your name, create a lobby, join with a code, quick play, and the
// live list of public lobbies (pushed by the Directory object over /ws/directory).

import { JsonSocket, getJson, postJson } from "./net.js";
import { store } from "./store.js";

const $ = (id) => document.getElementById(id);

export class Directory {
  constructor(app) {
    this.app = app;
    this.sock = null;
    this.queue = null;
    this.lobbies = new Map(); // id -> summary, in the order they were created
    $("my-name").value = store.name;
    $("my-name").addEventListener("change", () => (store.name = $("my-name").value.trim()));
    $("create-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.create();
    });
    $("code-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.joinCode();
    });
    $("quick").addEventListener("click", () => this.quickPlay());
    $("quick-cancel").addEventListener("click", () => this.stopQueue());
  }

  open() {
    if (this.sock) return;
    this.sock = new JsonSocket("ws/directory", {
      message: (m) => this.message(m),
      status: (kind, text) => this.app.status(kind, text),
    });
  }

  close() {
    this.sock?.stop();
    this.sock = null;
    this.stopQueue();
  }

  message(m) {
    if (m.type === "lobbies") {
      this.lobbies = new Map(m.lobbies.map((l) => [l.lobby, l]));
    } else if (m.type === "lobby") {
      this.lobbies.set(m.lobby.lobby, m.lobby);
    } else if (m.type === "removed") {
      this.lobbies.delete(m.lobby);
    } else return;
    this.render();
  }

  render() {
    const list = $("lobby-list");
    const items = [...this.lobbies.values()].reverse(); // newest first
    list.replaceChildren(...items.map((l) => this.item(l)));
    $("lobby-count").textContent = String(items.length);
    $("no-lobbies").hidden = items.length > 0;
  }

  item(lobby) {
    const li = document.createElement("li");
    li.className = "lobby-item";
    li.dataset.lobby = lobby.lobby;
    const full = lobby.players >= lobby.max_players;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = lobby.name; // never innerHTML: names are untrusted
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.textContent = `${lobby.players}/${lobby.max_players}`;
    fill.title = `${lobby.players} of ${lobby.max_players} players`;
    const badge = document.createElement("span");
    badge.className = `badge ${lobby.status}${full ? " full" : ""}`;
    badge.textContent = lobby.status === "playing" ? "playing" : full ? "full" : "open";
    // A lobby playing, or full, is for watching (its game, its chat); joining it is still
    // offered there, for the next game.
    const watch = full || lobby.status === "playing";
    const button = document.createElement("button");
    button.type = "button";
    button.className = watch ? "secondary" : "";
    button.textContent = watch ? "Watch" : "Join";
    button.setAttribute("aria-label", `${button.textContent} ${lobby.name}`);
    button.addEventListener("click", () => {
      if (!watch && !this.name()) return;
      this.app.go(`#/lobby/${lobby.lobby}`, watch ? "watch" : "join");
    });
    li.append(name, fill, badge, button);
    return li;
  }

  /** The player's name, or null after asking for it. */
  name() {
    const name = $("my-name").value.trim();
    if (!name) {
      this.app.banner("Pick a name first.");
      $("my-name").focus();
      return null;
    }
    store.name = name;
    return name;
  }

  async create() {
    if (!this.name()) return;
    const name = $("lobby-name").value.trim() || `${store.name}'s lobby`;
    const settings = { name, public: $("public").checked, max_players: Number($("max-players").value) };
    const [status, body] = await postJson("api/lobbies", settings, (s) =>
      this.app.banner(`The server is busy: creating the lobby again in ${s} s…`, true),
    );
    this.app.banner("");
    if (status !== 201) {
      // After "unknown" a lobby may exist: say so, rather than offer to make a second one.
      const said = body.outcome === "unknown" ? window.Outcome.explain("unknown", "your new lobby") : "";
      this.app.banner(said || `The lobby could not be created: ${body.error || status}`);
      return;
    }
    $("lobby-name").value = "";
    this.app.go(`#/lobby/${body.lobby}`, "join");
  }

  async joinCode() {
    if (!this.name()) return;
    const code = $("code").value.trim();
    if (!code) return;
    const [status, body] = await getJson(`api/codes/${encodeURIComponent(code)}`);
    if (status !== 200) {
      this.app.banner(body.error ? `Code ${code}: ${body.error}` : "Try again in a moment.");
      return;
    }
    $("code").value = "";
    this.app.go(`#/lobby/${body.lobby}`, "join");
  }

  quickPlay() {
    const name = this.name();
    if (!name || this.queue) return;
    $("quick").hidden = true;
    $("queue").hidden = false;
    this.queue = new JsonSocket("ws/quickplay", {
      hello: (sock) => sock.send({ type: "queue", name }),
      message: (m) => {
        if (m.type === "queued") {
          const others = m.waiting - 1;
          $("queue").firstChild.textContent = others
            ? `Waiting… (${m.waiting} in the queue) `
            : "Waiting for an opponent… ";
        } else if (m.type === "matched") {
          store.setGame(m.game, { token: m.token, seat: m.seat, lobby: null });
          this.stopQueue();
          this.app.go(`#/game/${m.game}`);
        } else if (m.type === "error") {
          this.app.banner(m.error);
        }
      },
      status: (kind, text) => this.app.status(kind, text),
    });
  }

  stopQueue() {
    this.queue?.stop();
    this.queue = null;
    $("quick").hidden = false;
    $("queue").hidden = true;
  }
}
