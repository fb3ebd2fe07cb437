"""The LobbyRoom object: one lobby's rules (rules.py) wired to sockets, storage and an alarm.

One object per lobby (a unique ID). The socket at ``/lobby/ws/<lobby>``, text frames of
JSON. Client to server:

    {"type": "join", "name": str}          become a member (a place of max_players)
    {"type": "resume", "token": str}       take your place back (after a reload, a drop)
    {"type": "watch"}                      watch as a spectator (no place taken)
    {"type": "ready", "ready": bool}       members: ready or not for the next game
    {"type": "chat", "text": str}          members: say something
    {"type": "kick", "player": id}         the host: remove a member
    {"type": "host", "player": id}         the host: hand the role over
    {"type": "start"}                      the host: start the game
    {"type": "leave"}                      members: give your place up (the socket closes)

Server to client:

    {"type": "welcome", "player": id, "token": str, "lobby": id}     you are a member
    {"type": "state", "lobby": {...}}      to everyone in the lobby, on every change
    {"type": "history", "messages": [...]} the recent chat, after welcome or watch
    {"type": "chat", "player", "name", "text", "at"}                 a chat line
    {"type": "game", "game": id[, "token": str, "seat": 1|2]}        a game started
    {"type": "error", "error": str}        your last message was refused; nothing changed

A kicked member gets ``{"type": "kicked"}`` and the socket closes with 4003. A member who
leaves, or is kicked, while seated at the game being played gives that round up (the game
is told: ``Game.forfeit``), so the other player is not left waiting for them.

**Identity.** A member's socket carries ``{"player": id}`` in its attachment (and the tags
``in`` and ``p:<id>``), so hibernation forgets nothing; the lobby itself is stored whole
under ``state`` after every change (a few hundred bytes), each chat line under
``c/<number>`` (the oldest beyond ``chat_history`` deleted). The member's token (seats.py)
is their identity on reconnect, through any node.

**Time.** One alarm serves the grace periods of dropped members and the removal of an
empty lobby (``rules.Lobby.next_deadline``). A node that dies takes its sockets with it:
the lobby rebuilt elsewhere counts every member without a socket as dropped from then.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from runtime import (
    AlarmInfo,
    CloseCode,
    DurableObject,
    DurableObjectError,
    Env,
    ObjectContext,
    ObjectWebSocket,
    rpc,
)

from .config import LobbyConfig
from .namespaces import CODES, GAMES
from .protocol import ProtocolError, clean_text, encode, error, field, parse
from .reporter import Reporter, directory
from .rules import PLAYING, Lobby, Refused
from .seats import PURPOSE, Seat, SeatSigner

log = logging.getLogger("apps.lobby")

#: Tags: everyone who hears the lobby's state; a member's own sockets; spectators.
IN, WATCH = "in", "watch"
MAX_SPECTATORS = 200
KICKED = 4003
REPLACED = 4001
CLOSED = 4004

TYPES = frozenset({"join", "resume", "watch", "ready", "chat", "kick", "host", "start", "leave"})

Handler = Callable[[ObjectWebSocket, dict[str, Any]], Awaitable[None]]


def tag_of(player: str) -> str:
    return f"p:{player}"


class LobbyRoom(DurableObject):
    """One lobby."""

    def __init__(self, ctx: ObjectContext, env: Env) -> None:
        super().__init__(ctx, env)
        self.config = env.app_settings(LobbyConfig)
        self.lobby: Lobby | None = None
        self.chat_log: list[dict[str, Any]] = []  # the last chat_history lines, oldest first
        self.chat_keys: list[str] = []  # their keys
        self.alarm_at: float | None = None
        self.reporter = Reporter(ctx, env, lambda: self.lobby)
        self.starting = False
        ctx.block_concurrency_while(self.load)

    @property
    def hex(self) -> str:
        return self.id.hex

    async def load(self) -> None:
        """The stored lobby; members without an open socket count as dropped from now."""
        state = await self.storage.get("state")
        if state is None:
            return
        self.lobby = Lobby.load(state, self.config.grace, self.config.empty_ttl)
        if self.config.chat_history:
            newest = await self.storage.list(
                prefix="c/", reverse=True, limit=self.config.chat_history
            )
            self.chat_keys = list(reversed(newest))
            self.chat_log = [newest[key] for key in self.chat_keys]
        self.alarm_at = await self.storage.get_alarm()
        present = {(ws.attachment or {}).get("player") for ws in self.get_websockets(IN)}
        now = time.time()
        dropped = False
        for member in self.lobby.members.values():
            if member.player not in present and member.away_since is None:
                self.lobby.disconnect(member.player, now)  # its node died with the socket
                dropped = True
        if dropped:
            await self.save()
        await self.arm()
        self.reporter.soon()  # in case the last report died with a node

    # ------------------------------------------------------------- created by the route

    @rpc
    async def create(self, name: str, public: bool, max_players: int, code: str) -> dict[str, Any]:
        """Set the lobby up (once); it is listed (if public) when this returns."""
        if self.lobby is None:
            lobby = Lobby.create(
                name,
                public,
                max_players,
                code,
                time.time(),
                max_name=self.config.max_lobby_name,
                grace=self.config.grace,
                empty_ttl=self.config.empty_ttl,
            )
            self.lobby = lobby
            await self.save()
            await self.arm()
            await self.storage.sync()  # listed only once it exists for good
            try:
                await self.reporter.now()
            except DurableObjectError as exc:  # listed a little later, then
                log.warning("directory unreachable at creation (%s)", exc)
                self.reporter.soon()
        return self.lobby.summary()

    # ------------------------------------------------------------- sockets

    async def websocket_connect(self, ws: ObjectWebSocket) -> None:
        """Anyone may connect to an existing lobby; they hear nothing until join/watch."""
        if self.lobby is None or self.lobby.closed:
            ws.reject(404, "no such lobby (it may have closed)")
            return
        self.accept_websocket(ws)
        ws.attachment = {}

    async def websocket_message(self, ws: ObjectWebSocket, message: str | bytes) -> None:
        """One client message; a refused one gets an error and changes nothing."""
        try:
            data = parse(message, self.config.max_message_bytes, TYPES)
        except ProtocolError as exc:
            ws.send(error(str(exc)))
            return
        try:
            handler: Handler = getattr(self, f"on_{data['type']}")
            if self.lobby is None or self.lobby.closed:
                raise Refused("this lobby has closed")
            await handler(ws, data)
        except (ProtocolError, Refused) as exc:
            ws.send(error(str(exc), about=data["type"]))

    async def websocket_close(self, ws: ObjectWebSocket, code: int, reason: str) -> None:
        """A member's connection dropped: their place is kept for the grace period."""
        await self.dropped(ws)

    async def websocket_error(self, ws: ObjectWebSocket, error: Exception) -> None:
        await self.dropped(ws)

    async def dropped(self, ws: ObjectWebSocket) -> None:
        if self.lobby is None:
            return
        attachment = ws.attachment or {}
        player = attachment.get("player")
        if player is None:
            if attachment.get("watch"):
                self.broadcast_state()  # one spectator fewer
            return
        others = [w for w in self.get_websockets(tag_of(player)) if w is not ws]
        if others or player not in self.lobby.members:
            return
        self.lobby.disconnect(player, time.time())
        await self.changed()

    # ------------------------------------------------------------- joining

    async def on_join(self, ws: ObjectWebSocket, data: dict[str, Any]) -> None:
        """A new member: a place, a player ID and a token."""
        lobby = self.entering(ws)
        name = clean_text(data.get("name"), "your name", self.config.max_player_name)
        player = secrets.token_hex(8)
        lobby.join(player, name, time.time())
        token = (await self.signer()).sign(Seat("lobby", self.hex, player, 0))
        await self.admit(ws, player, token)

    async def on_resume(self, ws: ObjectWebSocket, data: dict[str, Any]) -> None:
        """A member comes back with their token (any node, any time within the grace)."""
        lobby = self.entering(ws)
        token = data.get("token")
        seat = (await self.signer()).read(token)
        if seat is None or seat.kind != "lobby" or seat.place != self.hex:
            raise Refused("that seat token is not valid for this lobby")
        lobby.reconnect(seat.player)
        for old in self.get_websockets(tag_of(seat.player)):
            if old is not ws:  # an older tab or a half-dead connection: this one wins
                old.close(REPLACED, "this seat was taken up by another connection")
        assert isinstance(token, str)
        await self.admit(ws, seat.player, token)

    async def on_watch(self, ws: ObjectWebSocket, data: dict[str, Any]) -> None:
        """A spectator: the lobby's state and chat, no place."""
        self.entering(ws)
        if (ws.attachment or {}).get("watch"):
            raise Refused("you are watching already")
        if len(self.get_websockets(WATCH)) >= MAX_SPECTATORS:
            raise Refused("too many spectators already")
        ws.attachment = {"watch": True}
        ws.tags = [IN, WATCH]
        ws.send(encode({"type": "history", "messages": self.chat_log}))
        self.broadcast_state()
        if self.lobby is not None and self.lobby.status == PLAYING and self.lobby.game:
            ws.send(encode({"type": "game", "game": self.lobby.game}))

    def entering(self, ws: ObjectWebSocket) -> Lobby:
        """The lobby, for a socket that is not a member yet (a spectator may become one)."""
        assert self.lobby is not None
        if (ws.attachment or {}).get("player"):
            raise Refused("this connection has joined already")
        return self.lobby

    async def admit(self, ws: ObjectWebSocket, player: str, token: str) -> None:
        """Bind the socket to the member; tell them, then everyone."""
        assert self.lobby is not None
        ws.attachment = {"player": player}
        ws.tags = [IN, tag_of(player)]
        ws.send(encode({"type": "welcome", "player": player, "token": token, "lobby": self.hex}))
        ws.send(encode({"type": "history", "messages": self.chat_log}))
        await self.changed()
        if self.lobby.status == PLAYING and self.lobby.game:
            await self.send_game(ws, player)

    # ------------------------------------------------------------- members' actions

    def member(self, ws: ObjectWebSocket) -> str:
        player = (ws.attachment or {}).get("player")
        if player is None:
            raise Refused("join the lobby first")
        return str(player)

    async def on_ready(self, ws: ObjectWebSocket, data: dict[str, Any]) -> None:
        assert self.lobby is not None
        self.lobby.set_ready(self.member(ws), field(data, "ready", bool))
        await self.changed()

    async def on_chat(self, ws: ObjectWebSocket, data: dict[str, Any]) -> None:
        assert self.lobby is not None
        player = self.member(ws)
        text = clean_text(data.get("text"), "a message", self.config.max_chat)
        config = self.config
        line = self.lobby.chat(player, text, time.time(), config.chat_burst, config.chat_window)
        if config.chat_history:  # one key per line; the oldest beyond the history go
            last = int(self.chat_keys[-1][2:]) if self.chat_keys else 0
            key = f"c/{last + 1:012d}"
            await self.storage.put(key, line)
            self.chat_keys.append(key)
            self.chat_log.append(line)
            if len(self.chat_keys) > config.chat_history:
                await self.storage.delete(self.chat_keys.pop(0))
                self.chat_log.pop(0)
        self.broadcast(encode({"type": "chat", **line}), tag=IN)

    async def on_kick(self, ws: ObjectWebSocket, data: dict[str, Any]) -> None:
        assert self.lobby is not None
        target = field(data, "player", str)
        playing = self.playing(target)
        self.lobby.kick(self.member(ws), target, time.time())
        for sock in self.get_websockets(tag_of(target)):
            sock.send(encode({"type": "kicked"}))
            sock.close(KICKED, "removed from the lobby by the host")
        await self.changed()
        await self.forfeit(playing, target)

    async def on_host(self, ws: ObjectWebSocket, data: dict[str, Any]) -> None:
        assert self.lobby is not None
        self.lobby.transfer(self.member(ws), field(data, "player", str))
        await self.changed()

    async def on_leave(self, ws: ObjectWebSocket, data: dict[str, Any]) -> None:
        assert self.lobby is not None
        player = self.member(ws)
        playing = self.playing(player)
        self.lobby.leave(player, time.time())
        for sock in self.get_websockets(tag_of(player)):
            sock.close(CloseCode.NORMAL, "left the lobby")
        await self.changed()
        await self.forfeit(playing, player)

    def playing(self, player: str) -> str | None:
        """The game ``player`` is seated at and being played now, if any."""
        lobby = self.lobby
        if lobby is None or lobby.status != PLAYING or player not in lobby.seats:
            return None
        return lobby.game

    async def forfeit(self, game: str | None, player: str) -> None:
        """Tell the game a seated player left: the round is theirs to lose, not the other
        player's to wait out. (If the game cannot be told, its grace period decides.)"""
        if game is None:
            return
        try:
            games = self.env.namespace(GAMES)
            await games.get(games.id_from_string(game)).forfeit(player)
        except DurableObjectError as exc:
            log.warning("lobby %s: could not tell game %s: %s", self.hex[:12], game[:12], exc)

    async def on_start(self, ws: ObjectWebSocket, data: dict[str, Any]) -> None:
        """The host starts: a new Game object, seats for two, the news to everyone."""
        assert self.lobby is not None
        if self.starting:
            raise Refused("the game is starting")
        first, second = self.lobby.start(self.member(ws))
        games = self.env.namespace(GAMES)
        game = games.new_unique_id()
        players = [[first.player, first.name], [second.player, second.name]]
        self.starting = True  # (the call below lets other events in: no second start)
        try:
            await games.get(game).create(self.hex, players)
        except DurableObjectError as exc:
            log.warning("could not create a game: %s", exc)
            raise Refused("the game could not be started; try again") from None
        finally:
            self.starting = False
        self.lobby.begin(game.hex, first, second)
        await self.changed()
        for sock in self.get_websockets(IN):
            player = (sock.attachment or {}).get("player")
            await self.send_game(sock, player)

    async def send_game(self, ws: ObjectWebSocket, player: str | None) -> None:
        """The current game: with a seat token for its two players, without for the rest."""
        assert self.lobby is not None and self.lobby.game is not None
        message: dict[str, Any] = {"type": "game", "game": self.lobby.game}
        seat = self.lobby.seats.get(player or "")
        if seat is not None and player is not None:
            message["seat"] = seat
            message["token"] = (await self.signer()).sign(
                Seat("game", self.lobby.game, player, seat)
            )
        ws.send(encode(message))

    # ------------------------------------------------------------- from games

    @rpc
    async def game_event(self, game: str, seq: int, event: dict[str, Any]) -> None:
        """A game of this lobby reports (a result, a rematch); at least once, in order."""
        if self.lobby is None or not isinstance(event, dict):
            return
        if self.lobby.game_event(game, seq, event):
            await self.changed()

    @rpc
    async def summary(self) -> dict[str, Any] | None:
        """What the directory would show (None: no such lobby, or it has closed)."""
        if self.lobby is None or self.lobby.closed:
            return None
        return {"lobby": self.hex, **self.lobby.summary(), "public": self.lobby.public}

    @rpc
    async def info(self) -> dict[str, Any] | None:
        """The lobby's state, as its members see it (for tools and tests)."""
        return None if self.lobby is None else self.lobby.view(len(self.get_websockets(WATCH)))

    # ------------------------------------------------------------- the alarm

    async def alarm(self, info: AlarmInfo) -> None:
        """Grace periods run out; an empty lobby closes."""
        self.alarm_at = None
        if self.lobby is None:
            return
        now = time.time()
        if self.lobby.closed or self.lobby.due_to_close(now):  # (closed: a retry)
            await self.close_lobby()
            return
        if self.lobby.expire(now):
            await self.changed()
        await self.arm()

    async def close_lobby(self) -> None:
        """Unlist, free the code, forget everything. If the directory or the code cannot
        be reached, try again in a few seconds (nobody may join meanwhile)."""
        assert self.lobby is not None
        lobby = self.lobby
        if not lobby.closed:
            lobby.close()
            await self.save()
        try:
            if lobby.public:
                await directory(self.env).remove(self.hex, lobby.rev)
            await self.env.namespace(CODES).get_by_name(lobby.code).release(self.hex)
        except DurableObjectError as exc:
            log.warning("closing lobby %s: %s; retrying", self.hex[:12], exc)
            await self.storage.set_alarm(time.time() + 5)
            return
        for sock in self.get_websockets():
            sock.close(CLOSED, "the lobby has closed")
        await self.storage.delete_all()
        log.info("closed empty lobby %s", self.hex[:12])

    async def arm(self) -> None:
        """Keep the alarm at the lobby's next deadline."""
        assert self.lobby is not None
        when = self.lobby.next_deadline()
        if when is not None and (self.alarm_at is None or when < self.alarm_at):
            await self.storage.set_alarm(when)
            self.alarm_at = when

    # ------------------------------------------------------------- helpers

    async def changed(self) -> None:
        """Store the lobby, tell everyone in it, keep the alarm and the directory current."""
        await self.save()
        self.broadcast_state()
        await self.arm()
        self.reporter.soon()

    async def save(self) -> None:
        assert self.lobby is not None
        await self.storage.put("state", self.lobby.dump())

    def broadcast_state(self) -> None:
        assert self.lobby is not None
        view = {"lobby": self.hex, **self.lobby.view(len(self.get_websockets(WATCH)))}
        self.broadcast(encode({"type": "state", "lobby": view}), tag=IN)

    async def signer(self) -> SeatSigner:
        return SeatSigner(await self.env.signing_key(PURPOSE))
