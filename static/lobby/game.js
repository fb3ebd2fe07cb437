// The game view: the Connect Four board (pieces fall into place), whose turn, the turn
// timer, the result, rematch. The server decides everything; this page only shows its
// state and sends {"type": "move", "column"} when it is our turn.
//
// With a seat token (kept in localStorage by the lobby or quick play) the socket takes the
// seat; without one it watches.

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
    this.deadline = null; // performance.now() when the turn runs out
    this.timer = null;
    this.buildBoard();
    $("rematch").addEventListener("click", () => this.send({ type: "rematch" }));
    $("to-lobby").addEventListener("click", () => {
      const lobby = this.state?.lobby;
      this.app.go(lobby ? `#/lobby/${lobby}` : "#/");
    });
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

  open(id) {
    if (this.game === id && this.sock) return;
    this.close();
    this.game = id;
    this.state = null;
    this.render();
    const seat = store.game(id);
    const query = seat?.token ? `?token=${encodeURIComponent(seat.token)}` : "";
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

  message(m) {
    if (m.type === "state") {
      const previous = this.state;
      this.state = m;
      this.deadline = m.remaining === null ? null : performance.now() + m.remaining * 1000;
      this.render(previous);
    } else if (m.type === "error") {
      this.app.banner(m.error);
    }
  }

  move(column) {
    const s = this.state;
    if (!s || s.you === null || s.ended_by !== null) return;
    if (s.turn !== s.you) {
      this.app.banner("Wait for your turn.");
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
    if (!s) {
      $("turn").textContent = "Connecting…";
      $("result").hidden = true;
      $("rematch").hidden = true;
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
    const theyAsked = s.rematch.some((seat) => seat !== s.you);
    $("game-hint").textContent =
      over && theyAsked && !asked
        ? "Your opponent wants a rematch."
        : s.you === null
          ? `Watching${s.spectators > 1 ? ` with ${s.spectators - 1} others` : ""}.`
          : "";
    $("to-lobby").textContent = s.lobby ? "Back to the lobby" : "Back to the lobbies";
    this.tick();
  }

  outcome(s) {
    const names = { 1: s.players["1"].name, 2: s.players["2"].name };
    if (s.draw) return "It's a draw: the board is full.";
    if (s.winner === null) return "Both players left: no winner.";
    const how = {
      timeout: ` (${names[3 - s.winner]} ran out of time)`,
      left: ` (${names[3 - s.winner]} left)`,
    }[s.ended_by] || "";
    if (s.you === s.winner) return `You win!${how}`;
    if (s.you) return `${names[s.winner]} wins.${how}`;
    return `${names[s.winner]} wins${how}.`;
  }

  tick() {
    const el = $("timer");
    if (!this.state || this.deadline === null) {
      el.textContent = "";
      return;
    }
    const left = Math.max(0, (this.deadline - performance.now()) / 1000);
    el.textContent = `${Math.ceil(left)} s`;
    el.classList.toggle("urgent", left <= 5);
  }
}
