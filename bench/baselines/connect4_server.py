"""Baseline: Connect Four games on a plain `websockets` server, in memory, no storage.

python bench/baselines/connect4_server.py PORT

The same rules (apps/lobby/game_rules.py) and the same game protocol as the lobby's
``/lobby/ws/game/<game>?token=<seat>``, except that a game is any path and the token is
just the seat ("1" or "2"): what a move costs with no durability, no output gate and no
object runtime around it.
"""

import asyncio
import json
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from apps.lobby.effects import Refuse
from apps.lobby.game_rules import GameRules, Player

games: dict[str, tuple[GameRules, dict[int, set[ServerConnection]]]] = {}


def game_of(path: str) -> tuple[GameRules, dict[int, set[ServerConnection]]]:
    if path not in games:
        players = {1: Player("p1", "One"), 2: Player("p2", "Two")}
        match = GameRules.start(players, time.time(), 3600.0, 3600.0)
        games[path] = (match, {1: set(), 2: set()})
    return games[path]


def send_state(match: GameRules, sockets: dict[int, set[ServerConnection]]) -> None:
    now = time.time()
    for seat, group in sockets.items():
        broadcast(group, json.dumps({"type": "state", **match.view(seat, now)}))


async def session(ws: ServerConnection) -> None:
    url = urlsplit(ws.request.path)
    seat = int(parse_qs(url.query).get("token", ["1"])[0])
    match, sockets = game_of(url.path)
    sockets[seat].add(ws)
    match.connect(seat)
    await ws.send(json.dumps({"type": "state", **match.view(seat, time.time())}))
    try:
        async for raw in ws:
            data = json.loads(raw)
            if data["type"] == "move":
                effects = match.move(seat, data.get("column"), time.time())
            else:
                effects = match.ask_rematch(seat, time.time())
            refused = [e.reason for e in effects if isinstance(e, Refuse)]
            if refused:
                await ws.send(json.dumps({"type": "error", "error": refused[0]}))
                continue
            send_state(match, sockets)
    finally:
        sockets[seat].discard(ws)


async def main() -> None:
    async with serve(session, "127.0.0.1", int(sys.argv[1]), max_queue=None):
        await asyncio.Future()


asyncio.run(main())
