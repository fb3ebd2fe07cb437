// What this browser remembers, so a reload puts the player back where they were: their
// name, the seat token of each lobby they are in, and the seat token of each game.
// (localStorage: the same in every tab; a second tab resuming a seat takes it over.)

const KEEP = 30; // lobbies and games remembered at most (the oldest are forgotten)

function read(key) {
  try {
    const value = JSON.parse(localStorage.getItem(key) || "{}");
    return value && typeof value === "object" ? value : {};
  } catch {
    return {};
  }
}

function write(key, map) {
  const entries = Object.entries(map).slice(-KEEP);
  localStorage.setItem(key, JSON.stringify(Object.fromEntries(entries)));
}

export const store = {
  get name() {
    return localStorage.getItem("lobby.name") || "";
  },
  set name(value) {
    localStorage.setItem("lobby.name", value);
  },
  /** The seat token of a lobby (a string), or undefined. */
  lobbyToken(lobby) {
    return read("lobby.seats")[lobby];
  },
  setLobbyToken(lobby, token) {
    const map = read("lobby.seats");
    delete map[lobby];
    if (token) map[lobby] = token;
    write("lobby.seats", map);
  },
  /** {token, seat, lobby} for a game this browser has a seat at, or undefined. */
  game(game) {
    return read("lobby.games")[game];
  },
  setGame(game, entry) {
    const map = read("lobby.games");
    delete map[game];
    if (entry) map[game] = entry;
    write("lobby.games", map);
  },
};
