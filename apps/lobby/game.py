"""The Game object: one server-authoritative game of Connect Four, its rules (GameRules,
game_rules.py) wired to sockets, storage and an alarm.

One object per game (a unique ID), made by a lobby when its host starts, or by quick play.
The socket at ``/lobby/ws/game/<game>?token=<seat token>``: the game's own seat token, or
the lobby token its player got in ``welcome`` (good at every game that lobby starts, for
the seat its holder plays; a member without a seat in this game watches). Without a token
(or with one that is neither: an error says so) the socket watches. Client to server:

    {"type": "move", "column": 0..6}       the seated player whose turn it is
    {"type": "rematch"}                    after a round: both ask, the next round starts
    {"type": "resign"}                     give the round up: the other seat wins
    {"type": "draw"[, "offer": bool]}      offer a draw, or accept the other's offer (the
                                           round ends, a draw); "offer": false withdraws
                                           your offer or declines theirs
    {"type": "claim_win"}                  the opponent has been away claim_after seconds:
                                           win the round now instead of waiting out the grace
    {"type": "abort"}                      call the round off (no winner, no score): before
                                           both players have moved, or once the opponent has
                                           been away claim_after seconds

Server to client, on connect and after every change, to both players and every spectator:

    {"type": "state", "board": [[0|1|2] x 7] x 6 (top row first), "turn": 1|2,
     "you": 1|2|null, "winner": 1|2|null, "draw": bool,
     "round", "moves", "last": [row, column]|null, "line": [[row, column], ...],
     "ended_by": "four"|"draw"|"timeout"|"left"|"abandoned"|"resign"|"agreed"|"claimed"|
                 "aborted"|null, "remaining": seconds|null,
     "turn_time", "players": {"1": {"player", "name", "connected", "away_for"}, "2": ...},
     "scores": {"1": n, "2": n}, "rematch": [seats], "draw_offer": 1|2|null,
     "claim_after": seconds, "spectators": n, "game", "lobby"}
    {"type": "error", "error": str}        the last message was refused; nothing changed

**Every move is committed before anyone sees it.** A move changes the stored ``game`` key
in the same event that broadcasts the new state, and the output gate holds the broadcast
until the write is in Redis: a state a player has seen survives a kill -9 of the node.

**The turn timer is the object's alarm**, set to the earliest of the turn's deadline and
the grace periods of dropped players (``GameRules.next_deadline``). The alarm's decision (a
forfeit) is written together with the alarm's clearing, so it happens exactly once even if
a node dies mid-alarm: a redelivered alarm finds the round already over. Once the game is
over, the same alarm removes it ``game_ttl`` seconds later (its sockets close with 4004).

**Results go back to the lobby** through an outbox: each result (and each rematch) is
stored with a sequence number in the same write as the move that caused it, then the
alarm delivers the outbox to the lobby's ``game_event`` (at least once, in order; the lobby
ignores numbers it has seen) and clears what was delivered.

    stored: game     {"lobby": id|null, "match": GameRules.dump(), "outbox": [[seq, event]],
                      "seq": n}
            history  [results] (the last MAX_HISTORY; its own key, written when a round
                      ends: a move does not encode and store a hundred results again)
"""

from __future__ import annotations

import logging
import time
from typing import Any

from runtime import (
    AlarmInfo,
    DurableObject,
    DurableObjectError,
    Env,
    ObjectContext,
    ObjectWebSocket,
    rpc,
)

from .config import LobbyConfig
from .effects import Changed, GameEffect, Refuse, Report, Save
from .game_rules import SEATS, GameRules, Player
from .names import LOBBIES
from .protocol import ProtocolError, encode, error, parse
from .seats import PURPOSE, SeatSigner

log = logging.getLogger("apps.lobby")

WATCH = "watch"
MAX_SPECTATORS = 500
MAX_HISTORY = 100
REPLACED = 4001
GONE = 4004
TYPES = frozenset({"move", "rematch", "resign", "draw", "claim_win", "abort"})
BAD_TOKEN = "that seat token is not valid for this game; you are watching"


def seat_tag(seat: int) -> str:
    return f"seat{seat}"


class Game(DurableObject):
    """One game between two seats."""

    def __init__(self, ctx: ObjectContext, env: Env) -> None:
        super().__init__(ctx, env)
        self.config = env.app_settings(LobbyConfig)
        self.rules: GameRules | None = None
        self.lobby: str | None = None
        self.outbox: list[list[Any]] = []
        self.seq = 0
        self.history: list[dict[str, Any]] = []
        self.history_changed = False  # (since the last save)
        self.alarm_at: float | None = None
        ctx.block_concurrency_while(self.load)

    @property
    def hex(self) -> str:
        return self.id.hex

    async def load(self) -> None:
        """The stored game; seats without an open socket count as dropped from now."""
        data = await self.storage.get("game")
        if data is None:
            return
        self.lobby = data["lobby"]
        config = self.config
        self.rules = GameRules.load(
            data["match"], config.turn_time, config.grace, config.claim_after
        )
        self.outbox = list(data["outbox"])
        self.seq = data["seq"]
        old = data.get("history")  # (where games stored before history had a key of its own)
        self.history = list(old if old is not None else await self.storage.get("history", []))
        self.history_changed = old is not None  # (the next save moves it to its key)
        self.alarm_at = await self.storage.get_alarm()
        # Seats without a socket lost it with the node that held them.
        connected = {seat for seat in SEATS if self.get_websockets(seat_tag(seat))}
        await self.apply(self.rules.found_without_sockets(connected, time.time()))
        await self.arm()

    @rpc
    async def create(self, lobby: str | None, players: list[list[str]]) -> None:
        """Set the game up: ``players`` are [player, name] for seat 1, then seat 2.
        Calling it again changes nothing (a retried call)."""
        if self.rules is not None:
            return
        if not (isinstance(players, list) and len(players) == 2):
            raise ValueError("a game takes two players")
        seats = {seat: Player(str(p[0]), str(p[1])) for seat, p in zip(SEATS, players, strict=True)}
        self.lobby = lobby
        config = self.config
        self.rules = GameRules.start(
            seats, time.time(), config.turn_time, config.grace, config.claim_after
        )
        await self.save()
        await self.arm()

    @rpc
    async def forfeit(self, player: str) -> bool:
        """The lobby says ``player`` left it: if they are seated and a round is being
        played, the other seat wins it (``"left"``). Whether it ended a round."""
        if self.rules is None or not isinstance(player, str):
            return False
        seat = self.rules.seat_of(player)
        if seat is None:
            return False
        effects = self.rules.forfeit(seat, time.time())
        await self.apply(effects)
        return bool(effects)

    @rpc
    async def info(self) -> dict[str, Any] | None:
        """The game as a spectator sees it, with every round's result (tools and tests)."""
        if self.rules is None:
            return None
        return {"state": self.view(None, time.time()), "history": self.history}

    # ------------------------------------------------------------- sockets

    async def websocket_connect(self, ws: ObjectWebSocket) -> None:
        """A player (with a valid seat token) or a spectator."""
        if self.rules is None:
            ws.reject(404, "no such game")
            return
        seat, problem = await self.seat_for(ws.request.query_param("token"))
        if seat is None and len(self.get_websockets(WATCH)) >= MAX_SPECTATORS:
            ws.reject(503, "too many spectators")
            return
        if seat is not None:
            for old in self.get_websockets(seat_tag(seat)):
                old.close(REPLACED, "this seat was taken up by another connection")
        self.accept_websocket(ws, tags=[seat_tag(seat) if seat else WATCH])
        ws.attachment = {"seat": seat}
        if problem:
            ws.send(error(problem))
        effects = self.rules.connect(seat) if seat is not None else []
        if effects:
            await self.apply(effects)  # everyone sees the player back
        else:
            ws.send(encode(self.view(seat, time.time())))

    async def seat_for(self, token: str | None) -> tuple[int | None, str | None]:
        """The seat a token holds here (None: spectator), and what was wrong with it. A
        game token names its seat; the lobby token of a member of this game's lobby seats
        them where they play (a member not playing watches, which is no error)."""
        if token is None:
            return None, None
        assert self.rules is not None
        seat = SeatSigner(await self.env.signing_key(PURPOSE)).read(token)
        if seat is not None and seat.kind == "lobby" and seat.place == self.lobby:
            return self.rules.seat_of(seat.player), None
        if seat is None or seat.kind != "game" or seat.place != self.hex:
            return None, BAD_TOKEN
        holder = self.rules.players.get(seat.seat)
        if holder is None or holder.player != seat.player:
            return None, BAD_TOKEN
        return seat.seat, None

    async def websocket_message(self, ws: ObjectWebSocket, message: str | bytes) -> None:
        """A move, a rematch request, ...; a refused one gets an error and changes nothing."""
        rules = self.rules
        assert rules is not None
        seat = (ws.attachment or {}).get("seat")
        now = time.time()
        try:
            data = parse(message, self.config.max_message_bytes, TYPES)
        except ProtocolError as exc:
            ws.send(error(str(exc)))
            return
        about = data["type"]
        if about == "move":
            effects = rules.move(seat, data.get("column"), now)
        elif about == "resign":
            effects = rules.resign(seat, now)
        elif about == "draw":
            offer = data.get("offer", True)
            if type(offer) is not bool:
                effects = [Refuse('"offer" must be true or false')]
            else:
                effects = rules.draw(seat, offer, now)
        elif about == "claim_win":
            effects = rules.claim_win(seat, now)
        elif about == "abort":
            effects = rules.abort(seat, now)
        else:
            effects = rules.ask_rematch(seat, now)
        await self.apply(effects, ws, about)

    async def websocket_close(self, ws: ObjectWebSocket, code: int, reason: str) -> None:
        """A player's connection dropped: the seat is kept for the grace period."""
        await self.dropped(ws)

    async def websocket_error(self, ws: ObjectWebSocket, error: Exception) -> None:
        await self.dropped(ws)

    async def dropped(self, ws: ObjectWebSocket) -> None:
        seat = (ws.attachment or {}).get("seat")
        if self.rules is None:
            return
        if seat is None:
            self.broadcast_state()  # one spectator fewer
            return
        if any(w is not ws for w in self.get_websockets(seat_tag(seat))):
            return
        await self.apply(self.rules.disconnect(seat, time.time()))

    # ------------------------------------------------------------- the alarm

    async def alarm(self, info: AlarmInfo) -> None:
        """The turn timer or a grace period ran out; the outbox goes to the lobby."""
        self.alarm_at = None
        if self.rules is None:
            return
        now = time.time()
        await self.apply(self.rules.expire(now))
        await self.deliver()
        if self.finished_before(now - self.config.game_ttl) and not self.outbox:
            await self.remove()
            return
        await self.arm()

    def finished_before(self, when: float) -> bool:
        """The last round ended before ``when`` (and no rematch started since)."""
        assert self.rules is not None
        ended = self.rules.ended_at
        return self.rules.over and ended is not None and ended <= when

    async def remove(self) -> None:
        """A game long over: forget it (its seat tokens now lead nowhere)."""
        for ws in self.get_websockets():
            ws.close(GONE, "this game has ended and was removed")
        await self.storage.delete_all()
        self.rules = None
        log.info("removed finished game %s", self.hex[:12])

    async def deliver(self) -> None:
        """Send the outbox to the lobby, in order; keep what did not get there."""
        if not self.outbox or self.lobby is None:
            return
        sending = list(self.outbox)
        try:
            lobbies = self.env.namespace(LOBBIES)
            lobby = lobbies.get(lobbies.id_from_string(self.lobby))
            for seq, event in sending:
                await lobby.game_event(self.hex, seq, event)
        except DurableObjectError as exc:
            log.warning("game %s: lobby unreachable (%s); retrying", self.hex[:12], exc)
            await self.storage.set_alarm(time.time() + 2)
            self.alarm_at = time.time() + 2
            return
        done = {seq for seq, _ in sending}
        self.outbox = [entry for entry in self.outbox if entry[0] not in done]
        await self.save()

    async def arm(self) -> None:
        """Keep the alarm at the next deadline (now, if the outbox has something)."""
        assert self.rules is not None
        due = self.rules.next_deadline()
        if self.rules.ended_at is not None:  # removal, once the game has been over a while
            removal = self.rules.ended_at + self.config.game_ttl
            due = removal if due is None else min(due, removal)
        if self.outbox and self.lobby is not None:
            due = time.time() if due is None else min(due, time.time())
        if due is not None and (self.alarm_at is None or due < self.alarm_at):
            await self.storage.set_alarm(due)
            self.alarm_at = due

    # ------------------------------------------------------------- helpers

    async def apply(
        self, effects: list[GameEffect], ws: ObjectWebSocket | None = None, about: str = ""
    ) -> None:
        """Carry out what the rules decided (``ws`` and ``about``: the socket that asked, and
        the type of its message, for a refusal)."""
        for effect in effects:
            if isinstance(effect, Refuse):
                if ws is not None:
                    ws.send(error(effect.reason, about or None))
            elif isinstance(effect, Report):
                self.report(effect.event)
            elif isinstance(effect, Save):
                await self.save()
            elif isinstance(effect, Changed):
                await self.save()
                self.broadcast_state()
                await self.arm()

    def report(self, event: dict[str, Any]) -> None:
        """Queue a report for the lobby (stored with the change that caused it)."""
        if event["kind"] == "result":
            self.history = [*self.history, event][-MAX_HISTORY:]
            self.history_changed = True
        if self.lobby is not None:
            self.seq += 1
            self.outbox.append([self.seq, event])

    async def save(self) -> None:
        assert self.rules is not None
        await self.storage.put(
            "game",
            {
                "lobby": self.lobby,
                "match": self.rules.dump(),
                "outbox": self.outbox,
                "seq": self.seq,
            },
        )
        if self.history_changed:
            await self.storage.put("history", self.history)
            self.history_changed = False

    def view(self, you: int | None, now: float, spectators: int | None = None) -> dict[str, Any]:
        assert self.rules is not None
        if spectators is None:
            spectators = len(self.get_websockets(WATCH))
        return {
            **self.rules.view(you, now),
            "spectators": spectators,
            "game": self.hex,
            "lobby": self.lobby,
        }

    def broadcast_state(self) -> None:
        """The state to each seat (``you`` differs) and to the spectators. A view is built
        only for a group with a socket open: a game nobody watches built and encoded one
        view per move for no one, a third of the JSON a move costs."""
        now = time.time()
        spectators = len(self.get_websockets(WATCH))
        for you, tag in ((seat, seat_tag(seat)) for seat in SEATS):
            if self.get_websockets(tag):
                self.broadcast(encode(self.view(you, now, spectators)), tag=tag)
        if spectators:
            self.broadcast(encode(self.view(None, now, spectators)), tag=WATCH)
