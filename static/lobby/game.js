// The game view: the Connect Four board (pieces fall into place), whose turn, the turn
// timer, the result, rematch; resign, draw offers, and, when the opponent has left,
// claiming the win or aborting the round (as lichess does). The server decides everything;
// this page shows its state and sends what the player asks for (apps/lobby/game.py).
//
// The seat: the game's own token (kept in localStorage by the lobby or quick play), else the
// token of this game's lobby (the server seats a member where they play); without either,
// the socket watches. A lobby's chat is shown beside the board.

import { JsonSocket, getJson } from "./net.js";
import { store } from "./store.js";

const $ = (id) => document.getElementById(id);
const ROWS = 6;
const COLUMNS = 7;
const COLORS = { 1: "red", 2: "yellow" };

export class GameView {
  constructor(app) {
    this.app = app;
    this.game = null;
    this.sock = null;
    this.state = null;
    this.received = 0; // performance.now() when the state arrived (for away_for)
    this.deadline = null; // performance.now() when the turn runs out
    this.timer = null;
    this.buildBoard();
    $("rematch").addEventListener("click", () => this.send({ type: "rematch" }));
    $("to-lobby").addEventListener("click", () => {
      const lobby = this.state?.lobby;
      this.app.go(lobby ? `#/lobby/${lobby}` : "#/");
    });
    $("claim-win").addEventListener("click", () => this.send({ type: "claim_win" }));
    $("abort").addEventListener("click", () => this.send({ type: "abort" }));
    $("offer-draw").addEventListener("click", () => this.send({ type: "draw" }));
    $("accept-draw").addEventListener("click", () => this.send({ type: "draw" }));
    $("decline-draw").addEventListener("click", () => this.send({ type: "draw", offer: false }));
    $("resign").addEventListener("click", () => {
      $("resign-confirm").hidden = false;
      $("resign-yes").focus();
    });
    $("resign-yes").addEventListener("click", () => {
      $("resign-confirm").hidden = true;
      this.send({ type: "resign" });
    });
    $("resign-no").addEventListener("click", () => ($("resign-confirm").hidden = true));
  }

  buildBoard() {
    const board = $("board");
    this.cells = [];
    this.columns = [];
    for (let c = 0; c < COLUMNS; c++) {
      const column = document.createElement("button");
      column.type = "button";
      column.className = "column";
      column.dataset.column = String(c);
      column.setAttribute("aria-label", `Drop in column ${c + 1}`);
      column.addEventListener("click", () => this.move(c));
      for (let r = 0; r < ROWS; r++) {
        const cell = document.createElement("span");
        cell.className = "cell";
        cell.dataset.row = String(r);
        column.append(cell);
        (this.cells[r] ||= [])[c] = cell;
      }
      this.columns.push(column);
      board.append(column);
    }
  }

  /** Open game ``id``: find our seat (the game's token, else its lobby's), then connect. */
  async open(id) {
    if (this.game === id && this.sock) return;
    this.close();
    this.game = id;
    this.state = null;
    this.hint("");
    this.render();
    let token = store.game(id)?.token || null;
    let lobby = store.game(id)?.lobby || null;
    if (!token || !lobby) {
      // Which lobby's game is it? Its lobby token seats us, and its chat goes beside it.
      const [status, body] = await getJson(`api/games/${encodeURIComponent(id)}`);
      if (this.game !== id) return; // (the player went elsewhere meanwhile)
      if (status === 404) {
        this.app.go("#/", null, "That game does not exist (any more).");
        return;
      }
      lobby = lobby || body?.state?.lobby || null;
      if (!token && lobby) token = store.lobbyToken(lobby) || null;
      if (lobby) this.app.room.open(lobby, null, true); // (keeps our place; its chat shows)
    }
    this.app.showChat(Boolean(lobby));
    const query = token ? `?token=${encodeURIComponent(token)}` : "";
    this.sock = new JsonSocket(`ws/game/${encodeURIComponent(id)}${query}`, {
      message: (m) => this.message(m),
      status: (kind, text) => this.app.status(kind, text),
      ended: (code) => {
        const why = {
          4001: "This game is open in another tab or window.",
          4004: "This game has ended and was removed.",
        }[code];
        if (why) this.app.banner(why, true);
      },
      refused: async () => {
        const [status] = await getJson(`api/games/${encodeURIComponent(id)}`);
        if (status !== 404) return true;
        this.app.go("#/", null, "That game does not exist.");
        return false;
      },
    });
    this.timer = setInterval(() => this.tick(), 250);
  }

  close() {
    this.sock?.stop();
    this.sock = null;
    this.game = null;
    clearInterval(this.timer);
  }

  send(message) {
    return this.sock ? this.sock.send(message) : false;
  }

  /** A word under the board: refusals and reminders, cleared when the game moves on. */
  hint(text) {
    $("game-hint").textContent = text;
    this.hinted = Boolean(text);
  }

  message(m) {
    if (m.type === "state") {
      const previous = this.state;
      this.state = m;
      this.received = performance.now();
      this.deadline = m.remaining === null ? null : performance.now() + m.remaining * 1000;
      // What was refused a moment ago ("wait for your turn") is stale once the game moves.
      if (
        !previous ||
        previous.moves !== m.moves ||
        previous.round !== m.round ||
        previous.ended_by !== m.ended_by
      ) {
        this.hint("");
        $("resign-confirm").hidden = true;
      }
      this.render(previous);
    } else if (m.type === "error") {
      this.hint(m.error.charAt(0).toUpperCase() + m.error.slice(1) + ".");
    }
  }

  move(column) {
    const s = this.state;
    if (!s || s.you === null || s.ended_by !== null) return;
    if (s.turn !== s.you) {
      this.hint("Wait for your turn.");
      return;
    }
    this.send({ type: "move", column });
  }

  render(previous = null) {
    const s = this.state;
    $("board").classList.toggle("mine", Boolean(s && s.you && s.turn === s.you && !s.ended_by));
    for (let r = 0; r < ROWS; r++) {
      for (let c = 0; c < COLUMNS; c++) {
        const cell = this.cells[r][c];
        const seat = s ? s.board[r][c] : 0;
        const was = previous && previous.round === s.round ? previous.board[r][c] : 0;
        cell.className = seat ? `cell ${COLORS[seat]}` : "cell";
        cell.style.removeProperty("--fall");
        // A piece that was not there a moment ago falls from above the board.
        if (seat && !was && previous && s.last && s.last[0] === r && s.last[1] === c) {
          cell.style.setProperty("--fall", String(r + 1));
          cell.classList.add("drop");
        }
        if (s && s.line.some(([lr, lc]) => lr === r && lc === c)) cell.classList.add("win");
      }
    }
    for (const id of ["claim-win", "abort", "offer-draw", "accept-draw", "decline-draw", "resign"]) {
      $(id).hidden = true;
    }
    if (!s) {
      $("turn").textContent = "Connecting…";
      $("result").hidden = true;
      $("rematch").hidden = true;
      $("game-note").hidden = true;
      return;
    }
    for (const seat of [1, 2]) {
      const box = $(`seat-${seat}`);
      const p = s.players[String(seat)];
      box.querySelector(".who").textContent =
        p.name + (s.you === seat ? " (you)" : "") + (p.connected ? "" : " · away");
      box.querySelector(".score").textContent = String(s.scores[String(seat)]);
      box.classList.toggle("active", !s.ended_by && s.turn === seat);
    }
    const over = s.ended_by !== null;
    const mover = s.players[String(s.turn)].name;
    $("turn").textContent = over
      ? `Round ${s.round} over`
      : s.you === s.turn
        ? "Your turn"
        : s.you
          ? `${mover}'s turn`
          : `${mover} to move`;
    $("result").hidden = !over;
    $("result").textContent = over ? this.outcome(s) : "";
    $("rematch").hidden = !over || s.you === null;
    const asked = s.rematch.includes(s.you);
    $("rematch").disabled = asked;
    $("rematch").textContent = asked ? "Waiting for the other player…" : "Rematch";
    const seated = s.you !== null;
    if (seated && !over) {
      const other = 3 - s.you;
      $("resign").hidden = false;
      $("abort").hidden = s.moves >= 2; // (and again below, once the opponent has left)
      if (s.draw_offer === other) {
        $("accept-draw").hidden = false;
        $("decline-draw").hidden = false;
        $("decline-draw").textContent = "Decline";
      } else if (s.draw_offer === s.you) {
        $("decline-draw").hidden = false;
        $("decline-draw").textContent = "Withdraw the draw offer";
      } else {
        $("offer-draw").hidden = false;
      }
    }
    const theyAsked = s.rematch.some((seat) => seat !== s.you);
    if (!this.hinted) {
      $("game-hint").textContent =
        over && theyAsked && !asked && seated
          ? "Your opponent wants a rematch."
          : !seated
            ? `Watching${s.spectators > 1 ? ` with ${s.spectators - 1} others` : ""}.`
            : "";
    }
    $("to-lobby").textContent = s.lobby ? "Back to the lobby" : "Back to the lobbies";
    this.tick();
  }

  /** The opponent of a seated player, if they have left the round being played. */
  gone(s) {
    if (!s || s.you === null || s.ended_by !== null) return null;
    const p = s.players[String(3 - s.you)];
    return p.connected ? null : p;
  }

  outcome(s) {
    const names = { 1: s.players["1"].name, 2: s.players["2"].name };
    const loser = s.winner ? names[3 - s.winner] : "";
    if (s.ended_by === "aborted") return "Round aborted: no winner, no score.";
    if (s.ended_by === "agreed") return "A draw, agreed by both players.";
    if (s.draw) return "It's a draw: the board is full.";
    if (s.winner === null) return "Both players left: no winner.";
    const how = {
      timeout: ` (${loser} ran out of time)`,
      left: ` (${loser} left)`,
      resign: ` (${loser} resigned)`,
      claimed: ` (${loser} left; the win was claimed)`,
    }[s.ended_by] || "";
    if (s.you === s.winner) return `You win!${how}`;
    if (s.you) return `${names[s.winner]} wins.${how}`;
    return `${names[s.winner]} wins${how}.`;
  }

  tick() {
    const el = $("timer");
    const s = this.state;
    if (!s || this.deadline === null) el.textContent = "";
    else {
      const left = Math.max(0, (this.deadline - performance.now()) / 1000);
      el.textContent = `${Math.ceil(left)} s`;
      el.classList.toggle("urgent", left <= 5);
    }
    // The opponent left: say so, and offer the win (or an abort) once they have been
    // away long enough to not be just reconnecting.
    const note = $("game-note");
    const gone = this.gone(s);
    if (!gone) {
      note.hidden = true;
      return;
    }
    const away = (gone.away_for || 0) + (performance.now() - this.received) / 1000;
    const wait = Math.ceil(s.claim_after - away);
    note.hidden = false;
    note.textContent =
      wait > 0
        ? `${gone.name} left the game. If they are not back in ${wait} s, you can claim the win or abort the round.`
        : `${gone.name} left the game. Claim the win, or abort the round (no winner).`;
    $("claim-win").hidden = false;
    $("abort").hidden = false;
    $("claim-win").disabled = wait > 0;
    $("abort").disabled = wait > 0 && s.moves >= 2;
  }
}
