"""The Matchmaker object: quick play pairs waiting players into new games.

One object (named ``"quickplay"``). The socket at ``/lobby/ws/quickplay``. Client to server:

    {"type": "queue", "name": str}        wait for an opponent
    {"type": "cancel"}                    stop waiting (the socket closes)

Server to client:

    {"type": "queued", "waiting": n}       you are waiting (n players waiting, you included)
    {"type": "matched", "game": id, "token": str, "seat": 1|2, "opponent": str}
                                           a game for you; the socket then closes (1000)
    {"type": "error", "error": str}

Players are paired first come, first served; the one who waited longer takes seat 1 and
moves first. A quick-play game has no lobby: its result stays with the game.

Waiting players live only in their sockets (attachment: name, player ID, since when; the
tag ``waiting``), so hibernation loses nobody. If the queue's node dies, the sockets close
with 1012 and the pages queue again.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from runtime import (
    CloseCode,
    DurableObject,
    DurableObjectError,
    Env,
    ObjectContext,
    ObjectWebSocket,
)

from .config import LobbyConfig
from .names import GAMES
from .protocol import ProtocolError, clean_text, encode, error, parse
from .seats import PURPOSE, Seat, SeatSigner

WAITING, PAIRED = "waiting", "paired"
TYPES = frozenset({"queue", "cancel"})


class Matchmaker(DurableObject):
    """The quick-play queue."""

    def __init__(self, ctx: ObjectContext, env: Env) -> None:
        super().__init__(ctx, env)
        self.config = env.app_settings(LobbyConfig)

    async def websocket_connect(self, ws: ObjectWebSocket) -> None:
        self.accept_websocket(ws)
        ws.attachment = {}

    async def websocket_message(self, ws: ObjectWebSocket, message: str | bytes) -> None:
        """Queue up or cancel."""
        try:
            data = parse(message, self.config.max_message_bytes, TYPES)
            if data["type"] == "cancel":
                ws.close(CloseCode.NORMAL, "left the queue")
                return
            if ws.attachment:
                raise ProtocolError("you are in the queue already")
            name = clean_text(data.get("name"), "your name", self.config.max_player_name)
        except ProtocolError as exc:
            ws.send(error(str(exc)))
            return
        ws.attachment = {"name": name, "player": secrets.token_hex(8), "since": time.time()}
        ws.tags = [WAITING]
        await self.pair()

    def waiting(self) -> list[ObjectWebSocket]:
        return sorted(self.get_websockets(WAITING), key=lambda ws: ws.attachment["since"])

    async def pair(self) -> None:
        """Make games for the longest-waiting pairs; tell whoever is left how many wait."""
        queue = self.waiting()
        while len(queue) >= 2:
            first, second = queue[0], queue[1]
            queue = queue[2:]
            # Out of the queue before the call below lets other events in.
            first.tags = second.tags = [PAIRED]
            players: list[dict[str, Any]] = [first.attachment, second.attachment]
            games = self.env.namespace(GAMES)
            game = games.new_unique_id()
            try:
                await games.get(game).create(None, [[p["player"], p["name"]] for p in players])
            except DurableObjectError:
                first.tags = second.tags = [WAITING]
                for ws in (first, second):
                    ws.send(error("a game could not be started; still waiting"))
                return
            signer = SeatSigner(await self.env.signing_key(PURPOSE))
            for seat, (ws, opponent) in enumerate(((first, second), (second, first)), start=1):
                player = ws.attachment["player"]
                token = signer.sign(Seat("game", game.hex, player, seat))
                ws.send(
                    encode(
                        {
                            "type": "matched",
                            "game": game.hex,
                            "token": token,
                            "seat": seat,
                            "opponent": opponent.attachment["name"],
                        }
                    )
                )
                ws.close(CloseCode.NORMAL, "matched")
        waiting = self.waiting()
        for ws in waiting:
            ws.send(encode({"type": "queued", "waiting": len(waiting)}))
