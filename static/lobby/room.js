// The lobby view: the members (ready marks, the host's crown, who is away), the host's
// controls (kick, hand over, start), ready, leave, chat, results.
//
// The socket stays open while the player is at one of this lobby's games too, so they keep
// their place. On every (re)connect the page says who it is: its seat token if it has one
// ("resume"), else "join" (when the player asked to) or "watch".

import { JsonSocket, getJson } from "./net.js";
import { store } from "./store.js";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

/** The host's crown (drawn, so it needs no emoji font). */
function crownIcon() {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 18");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(SVG, "path");
  path.setAttribute("d", "M2 5l5 5 5-8 5 8 5-5-2 12H4z");
  svg.append(path);
  return svg;
}

export class Room {
  constructor(app) {
    this.app = app;
    this.lobby = null; // the lobby's ID
    this.sock = null;
    this.me = null; // our player ID, once welcomed
    this.state = null;
    this.intent = null; // "join" | "watch" | null
    this.watching = false; // this connection has said "watch"
    this.background = false; // open only to keep our place while at a game
    $("ready").addEventListener("click", () => {
      const mine = this.mine();
      if (mine) this.send({ type: "ready", ready: !mine.ready });
    });
    $("start").addEventListener("click", () => this.send({ type: "start" }));
    $("leave").addEventListener("click", () => {
      // Seated at the game being played: leaving gives the round up, so ask first.
      if (this.state?.status === "playing" && this.mine()?.seat) {
        $("leave-confirm").hidden = false;
        $("leave-yes").focus();
      } else this.leave();
    });
    $("leave-yes").addEventListener("click", () => this.leave());
    $("leave-no").addEventListener("click", () => ($("leave-confirm").hidden = true));
    $("watch-game").addEventListener("click", () => {
      if (this.state?.game) this.app.go(`#/game/${this.state.game}`);
    });
    $("back-to-game").addEventListener("click", () => {
      if (this.state?.game) this.app.go(`#/game/${this.state.game}`);
    });
    $("enter-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const name = $("enter-name").value.trim();
      if (!name) return $("enter-name").focus();
      store.name = name;
      this.intent = "join";
      this.send({ type: "join", name });
    });
    $("enter-watch").addEventListener("click", () => {
      this.intent = "watch";
      this.dismissed = true;
      $("enter").hidden = true;
    });
    $("chat-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const text = $("chat-text").value.trim();
      if (text && this.send({ type: "chat", text })) $("chat-text").value = "";
    });
    $("copy-link").addEventListener("click", () => this.copyLink());
  }

  /** Show lobby ``id`` (connecting if it is not the one already open). */
  open(id, intent, background = false) {
    this.background = background;
    if (this.lobby === id && this.sock) {
      if (intent === "join" && !this.me) this.hello();
      return;
    }
    this.close();
    this.lobby = id;
    this.intent = intent;
    this.dismissed = false; // the "join this lobby" offer was turned down
    this.me = null;
    this.state = null;
    $("chat-log").replaceChildren();
    $("chat-empty").hidden = false;
    $("leave-confirm").hidden = true;
    $("players").replaceChildren();
    $("results").replaceChildren();
    $("enter").hidden = true;
    $("lobby-name-shown").textContent = "Lobby";
    $("lobby-code").textContent = "";
    this.sock = new JsonSocket(`ws/${encodeURIComponent(id)}`, {
      hello: () => this.hello(),
      message: (m) => this.message(m),
      status: (kind, text) => {
        if (!this.background) this.app.status(kind, text);
      },
      ended: (code, reason) => this.ended(code, reason),
      refused: () => this.refused(),
    });
  }

  close() {
    this.sock?.stop();
    this.sock = null;
    this.lobby = null;
    this.me = null;
  }

  send(message) {
    return this.sock ? this.sock.send(message) : false;
  }

  /** Say who we are: our token, else join or watch. */
  hello() {
    this.watching = false; // (a new connection: nothing said yet)
    const token = store.lobbyToken(this.lobby);
    if (token) this.send({ type: "resume", token });
    else if (this.intent === "join" && store.name) this.send({ type: "join", name: store.name });
    else this.watch();
  }

  /** Watch (once per connection) and offer to join. */
  watch() {
    if (!this.watching) this.watching = this.send({ type: "watch" });
    $("enter-name").value = $("enter-name").value || store.name;
    $("enter").hidden = this.dismissed;
  }

  message(m) {
    switch (m.type) {
      case "welcome":
        this.me = m.player;
        store.setLobbyToken(this.lobby, m.token);
        $("enter").hidden = true;
        break;
      case "state":
        this.state = m.lobby;
        this.render();
        break;
      case "history":
        $("chat-log").replaceChildren(...m.messages.map((line) => this.line(line)));
        this.scrollChat();
        break;
      case "chat":
        $("chat-log").append(this.line(m));
        this.scrollChat();
        break;
      case "state":
      case "welcome":
        break;
      case "game":
        this.gameStarted(m);
        break;
      case "kicked":
        store.setLobbyToken(this.lobby, null);
        break;
      case "error":
        if (m.about === "resume") {
          // Our place is gone (the grace period ran out, or we were kicked meanwhile).
          store.setLobbyToken(this.lobby, null);
          this.app.banner("Your place in this lobby was given up; join again.");
          this.watch();
        } else {
          this.app.banner(m.error);
          if (m.about === "join") this.watch(); // (a full lobby, say: watch meanwhile)
        }
        break;
    }
  }

  gameStarted(m) {
    if (m.token) {
      store.setGame(m.game, { token: m.token, seat: m.seat, lobby: this.lobby });
      if (!location.hash.startsWith(`#/game/${m.game}`)) this.app.go(`#/game/${m.game}`);
    } else if (!store.game(m.game)) {
      // Not seated: remember whose game it is, so watching it keeps our place here.
      store.setGame(m.game, { token: null, seat: null, lobby: this.lobby });
    }
    this.render();
  }

  /** The server closed the socket for good (see net.js FINAL). */
  ended(code, reason) {
    const messages = {
      1000: "You left this lobby.",
      4001: "This lobby is open in another tab or window.",
      4003: "You were removed from the lobby by the host.",
      4004: "This lobby has closed.",
    };
    const text = messages[code] || reason || "Disconnected from the lobby.";
    this.sock = null;
    if (code !== 4001) {
      store.setLobbyToken(this.lobby, null);
      this.lobby = null;
      this.me = null;
    }
    // At a game, stay there: the game goes on without the lobby.
    if (code !== 4001 && !this.background) this.app.go("#/", null, text);
    else this.app.banner(text, true);
  }

  /** The socket keeps failing before it opens: does the lobby still exist? */
  async refused() {
    const [status] = await getJson(`api/lobbies/${encodeURIComponent(this.lobby)}`);
    if (status !== 404) return true; // the server was away: keep trying
    store.setLobbyToken(this.lobby, null);
    this.lobby = null;
    this.sock = null;
    this.app.go("#/", null, "That lobby does not exist (any more).");
    return false;
  }

  leave() {
    this.send({ type: "leave" });
    store.setLobbyToken(this.lobby, null);
    this.close();
    this.app.go("#/");
  }

  mine() {
    return this.state?.players.find((p) => p.player === this.me) || null;
  }

  /** Who the next game would seat, as the server chooses: the host (red, moves first) and
   * the longest-present ready member; null if it cannot start yet. */
  nextSeats(s) {
    const host = s.players.find((p) => p.host);
    if (!host || !host.ready) return null;
    const opponent = s.players.find((p) => p.ready && !p.host); // (players come in join order)
    return opponent ? [host, opponent] : null;
  }

  render() {
    const s = this.state;
    if (!s) return;
    const mine = this.mine();
    const isHost = mine !== null && s.host === this.me;
    $("lobby-name-shown").textContent = s.name;
    document.title = `${s.name} — Game lobby`;
    $("lobby-kind").textContent = s.public ? "Public" : "Private";
    const seated = s.players.filter((p) => p.seat).sort((a, b) => a.seat - b.seat);
    const places = `${s.players.length} of ${s.max_players} places taken`;
    $("lobby-fill").textContent =
      s.status === "playing"
        ? `${places} · game on${seated.length === 2 ? `: ${seated[0].name} vs ${seated[1].name}` : ""}`
        : `${places} · waiting for players to get ready`;
    $("lobby-code").textContent = s.code;
    const next = s.status === "open" ? this.nextSeats(s) : null;
    $("players").replaceChildren(...s.players.map((p) => this.player(p, isHost, next)));
    $("spectators").textContent = s.spectators
      ? `${s.spectators} watching`
      : "";
    const open = s.status === "open";
    const readyCount = s.players.filter((p) => p.ready).length;
    $("ready").hidden = !mine || !open;
    $("ready").textContent = mine?.ready ? "Not ready" : "Ready";
    $("ready").classList.toggle("secondary", Boolean(mine?.ready));
    $("start").hidden = !isHost || !open;
    $("start").disabled = readyCount < 2 || !mine?.ready;
    $("leave").hidden = !mine;
    if (!mine) $("leave-confirm").hidden = true;
    const playing = mine !== null && mine.seat;
    $("back-to-game").hidden = !(s.status === "playing" && playing && s.game);
    $("watch-game").hidden = !(s.status === "playing" && !playing && s.game);
    const watchers = next ? s.players.filter((p) => p !== next[0] && p !== next[1]) : [];
    const who = next
      ? `Starting seats ${next[0].name} (the host: red, moves first) and ${next[1].name} ` +
        `(yellow${s.players.filter((p) => p.ready).length > 2 ? ": ready the longest" : ""})` +
        (watchers.length ? `; ${watchers.map((p) => p.name).join(", ")} ${watchers.length > 1 ? "watch" : "watches"}.` : ".")
      : "";
    $("start-hint").textContent = !open
      ? "A game is being played."
      : isHost
        ? next
          ? who
          : mine.ready
            ? "Waiting for at least one other player to get ready."
            : "Get ready: the host plays. The game starts when you and one other player are ready."
        : mine
          ? next
            ? `The host can start now. ${who}`
            : "The host starts the game when they and at least one other player are ready."
          : "";
    $("chat-text").disabled = !mine;
    $("chat-send").disabled = !mine;
    this.results(s);
  }

  player(p, isHost, next = null) {
    const li = document.createElement("li");
    li.className = "player";
    li.dataset.player = p.player;
    if (p.player === this.me) li.classList.add("me");
    if (!p.connected) li.classList.add("away");
    const crown = document.createElement("span");
    crown.className = "crown";
    if (p.host) {
      crown.append(crownIcon());
      crown.title = "host";
      crown.setAttribute("role", "img");
      crown.setAttribute("aria-label", "host");
    }
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = p.name + (p.player === this.me ? " (you)" : "");
    const mark = document.createElement("span");
    mark.className = "mark";
    mark.textContent = p.ready ? "\u2713 ready" : p.connected ? "" : "away";
    if (p.seat) mark.textContent = `playing (${p.seat === 1 ? "red" : "yellow"})`;
    else if (next && next.includes(p)) mark.textContent = "\u2713 ready · plays next";
    const wins = document.createElement("span");
    wins.className = "wins";
    wins.textContent = p.wins ? `${p.wins} win${p.wins > 1 ? "s" : ""}` : "";
    const who = document.createElement("div");
    who.className = "who";
    who.append(name, mark);
    li.append(crown, who, wins);
    if (isHost && p.player !== this.me) {
      const host = document.createElement("button");
      host.type = "button";
      host.className = "ghost make-host";
      host.textContent = "Make host";
      host.addEventListener("click", () => this.send({ type: "host", player: p.player }));
      const kick = document.createElement("button");
      kick.type = "button";
      kick.className = "ghost kick";
      kick.textContent = "Kick";
      kick.setAttribute("aria-label", `Kick ${p.name}`);
      kick.addEventListener("click", () => this.send({ type: "kick", player: p.player }));
      li.append(host, kick);
    }
    return li;
  }

  results(s) {
    $("results-title").hidden = s.results.length === 0;
    $("results").replaceChildren(
      ...s.results.map((r) => {
        const li = document.createElement("li");
        const names = r.names || {};
        const winner = r.seat ? names[r.seat] : null;
        const how = {
          timeout: " (time ran out)",
          left: " (opponent left)",
          resign: " (resigned)",
          claimed: " (opponent left; win claimed)",
        }[r.ended_by] || "";
        li.textContent = r.ended_by === "aborted"
          ? `${names["1"]} vs ${names["2"]}: aborted`
          : r.draw
            ? `${names["1"]} and ${names["2"]}: a draw${r.ended_by === "agreed" ? " (agreed)" : ""}`
            : winner
              ? `${winner} beat ${names[3 - r.seat]}${how}`
              : `${names["1"]} vs ${names["2"]}: abandoned`;
        return li;
      }),
    );
  }

  line(m) {
    const li = document.createElement("li");
    if (m.player === this.me) li.className = "mine";
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = m.name;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = m.text;
    li.append(who, text);
    return li;
  }

  scrollChat() {
    const log = $("chat-log");
    log.scrollTop = log.scrollHeight;
    $("chat-empty").hidden = log.children.length > 0;
  }

  async copyLink() {
    const code = this.state?.code;
    if (!code) return;
    const link = `${location.origin}${location.pathname}#/join/${code}`;
    try {
      await navigator.clipboard.writeText(link);
      $("copy-link").textContent = "Copied";
    } catch {
      window.prompt("Share this link:", link); // no clipboard on plain http
    }
    setTimeout(() => ($("copy-link").textContent = "Copy link"), 1500);
  }
}
