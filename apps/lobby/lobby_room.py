"""The LobbyRoom object: one lobby's rules (LobbyRules, rules.py) wired to sockets, storage
and an alarm.

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
empty lobby (``LobbyRules.next_deadline``). A node that dies takes its sockets with it:
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
from .effects import (
    Changed,
    ChatLine,
    Forfeit,
    Kicked,
    Left,
    LobbyEffect,
    Refuse,
    Save,
    ShowGame,
    StartGame,
    Welcome,
)
from .names import CODES, GAMES
from .protocol import ProtocolError, clean_text, encode, error, field, parse
from .reporter import Reporter, directory
from .rules import PLAYING, LobbyRules, Terms, check_terms
from .seats import PURPOSE, Seat, SeatSigner

log = logging.getLogger("apps.lobby")

#: Tags: everyone who hears the lobby's state; a member's own sockets; spectators.
IN, WATCH = "in", "watch"
MAX_SPECTATORS = 200
KICKED = 4003
REPLACED = 4001
CLOSED = 4004

TYPES = frozenset({"join", "resume", "watch", "ready", "chat", "kick", "host", "start", "leave"})

Effects = list[LobbyEffect]
Handler = Callable[[ObjectWebSocket, dict[str, Any]], Awaitable[Effects]]


def tag_of(player: str) -> str:
    return f"p:{player}"


class LobbyRoom(DurableObject):
    """One lobby."""

    def __init__(self, ctx: ObjectContext, env: Env) -> None:
        super().__init__(ctx, env)
        self.config = env.app_settings(LobbyConfig)
        self.rules: LobbyRules | None = None
        self.chat_log: list[dict[str, Any]] = []  # the last chat_history lines, oldest first
        self.chat_keys: list[str] = []  # their keys
        self.alarm_at: float | None = None
        self.reporter = Reporter(ctx, env, lambda: self.rules)
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
        self.rules = LobbyRules.load(state, self.config.grace, self.config.empty_ttl)
        if self.config.chat_history:
            newest = await self.storage.list(
                prefix="c/", reverse=True, limit=self.config.chat_history
            )
            self.chat_keys = list(reversed(newest))
            self.chat_log = [newest[key] for key in self.chat_keys]
        self.alarm_at = await self.storage.get_alarm()
        present = {(ws.attachment or {}).get("player") for ws in self.get_websockets(IN)}
        connected = {player for player in present if isinstance(player, str)}
        await self.apply(None, self.rules.found_without_sockets(connected, time.time()))
        await self.arm()
        self.reporter.soon()  # in case the last report died with a node

    # ------------------------------------------------------------- created by the route

    @rpc
    async def create(self, name: str, public: bool, max_players: int, code: str) -> dict[str, Any]:
        """Set the lobby up (once); it is listed (if public) when this returns."""
        if self.rules is None:
            terms = check_terms(name, public, max_players, self.config.max_lobby_name)
            if not isinstance(terms, Terms):  # (the route checked them: not from a browser)
                raise ValueError(terms.reason)
            self.rules = LobbyRules.create(
                terms, code, time.time(), grace=self.config.grace, empty_ttl=self.config.empty_ttl
            )
            await self.save()
            await self.arm()
            await self.storage.sync()  # listed only once it exists for good
            try:
                await self.reporter.now()
            except DurableObjectError as exc:  # listed a little later, then
                log.warning("directory unreachable at creation (%s)", exc)
                self.reporter.soon()
        return self.rules.summary()

    # ------------------------------------------------------------- sockets

    async def websocket_connect(self, ws: ObjectWebSocket) -> None:
        """Anyone may connect to an existing lobby; they hear nothing until join/watch."""
        if self.rules is None or self.rules.closed:
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
        about = data["type"]
        handler: Handler = getattr(self, f"on_{about}")
        try:
            if self.rules is None or self.rules.closed:
                effects: Effects = [Refuse("this lobby has closed")]
            else:
                effects = await handler(ws, data)
        except ProtocolError as exc:  # a field of the wrong kind, a socket not joined...
            effects = [Refuse(str(exc))]
        await self.apply(ws, effects, about)

    async def websocket_close(self, ws: ObjectWebSocket, code: int, reason: str) -> None:
        """A member's connection dropped: their place is kept for the grace period."""
        await self.dropped(ws)

    async def websocket_error(self, ws: ObjectWebSocket, error: Exception) -> None:
        await self.dropped(ws)

    async def dropped(self, ws: ObjectWebSocket) -> None:
        if self.rules is None:
            return
        attachment = ws.attachment or {}
        player = attachment.get("player")
        if player is None:
            if attachment.get("watch"):
                self.broadcast_state()  # one spectator fewer
            return
        if any(w is not ws for w in self.get_websockets(tag_of(player))):
            return  # another of their sockets is still open
        await self.apply(ws, self.rules.disconnect(player, time.time()))

    # ------------------------------------------------------------- joining

    async def on_join(self, ws: ObjectWebSocket, data: dict[str, Any]) -> Effects:
        """A new member: a place, a player ID and a token."""
        rules = self.entering(ws)
        name = clean_text(data.get("name"), "your name", self.config.max_player_name)
        return rules.join(secrets.token_hex(8), name, time.time())

    async def on_resume(self, ws: ObjectWebSocket, data: dict[str, Any]) -> Effects:
        """A member comes back with their token (any node, any time within the grace)."""
        rules = self.entering(ws)
        seat = (await self.signer()).read(data.get("token"))
        if seat is None or seat.kind != "lobby" or seat.place != self.hex:
            return [Refuse("that seat token is not valid for this lobby")]
        return rules.resume(seat.player)

    async def on_watch(self, ws: ObjectWebSocket, data: dict[str, Any]) -> Effects:
        """A spectator: the lobby's state and chat, no place."""
        rules = self.entering(ws)
        if (ws.attachment or {}).get("watch"):
            return [Refuse("you are watching already")]
        if len(self.get_websockets(WATCH)) >= MAX_SPECTATORS:
            return [Refuse("too many spectators already")]
        ws.attachment = {"watch": True}
        ws.tags = [IN, WATCH]
        ws.send(encode({"type": "history", "messages": self.chat_log}))
        self.broadcast_state()
        if rules.status == PLAYING and rules.game:
            ws.send(encode({"type": "game", "game": rules.game}))
        return []

    def entering(self, ws: ObjectWebSocket) -> LobbyRules:
        """The lobby, for a socket that is not a member yet (a spectator may become one)."""
        assert self.rules is not None
        if (ws.attachment or {}).get("player"):
            raise ProtocolError("this connection has joined already")
        return self.rules

    # ------------------------------------------------------------- members' actions

    def member(self, ws: ObjectWebSocket) -> str:
        player = (ws.attachment or {}).get("player")
        if player is None:
            raise ProtocolError("join the lobby first")
        return str(player)

    async def on_ready(self, ws: ObjectWebSocket, data: dict[str, Any]) -> Effects:
        assert self.rules is not None
        return self.rules.set_ready(self.member(ws), field(data, "ready", bool))

    async def on_chat(self, ws: ObjectWebSocket, data: dict[str, Any]) -> Effects:
        assert self.rules is not None
        player = self.member(ws)
        text = clean_text(data.get("text"), "a message", self.config.max_chat)
        config = self.config
        return self.rules.chat(player, text, time.time(), config.chat_burst, config.chat_window)

    async def on_kick(self, ws: ObjectWebSocket, data: dict[str, Any]) -> Effects:
        assert self.rules is not None
        target = field(data, "player", str)
        return self.rules.kick(self.member(ws), target, time.time())

    async def on_host(self, ws: ObjectWebSocket, data: dict[str, Any]) -> Effects:
        assert self.rules is not None
        return self.rules.transfer(self.member(ws), field(data, "player", str))

    async def on_leave(self, ws: ObjectWebSocket, data: dict[str, Any]) -> Effects:
        assert self.rules is not None
        return self.rules.leave(self.member(ws), time.time())

    async def on_start(self, ws: ObjectWebSocket, data: dict[str, Any]) -> Effects:
        """The host starts: a new Game object, seats for two, the news to everyone."""
        assert self.rules is not None
        if self.starting:
            return [Refuse("the game is starting")]
        return self.rules.start(self.member(ws))

    # ------------------------------------------------------------- effects

    async def apply(
        self, ws: ObjectWebSocket | None, effects: Effects, about: str | None = None
    ) -> None:
        """Carry out what the rules decided (``ws``: the socket whose message it was, and
        ``about`` its type, for a refusal)."""
        for effect in effects:
            if isinstance(effect, Refuse):
                if ws is not None:
                    ws.send(error(effect.reason, about=about))
            elif isinstance(effect, Welcome):
                assert ws is not None
                await self.welcome(ws, effect.player)
            elif isinstance(effect, Save):
                await self.save()
            elif isinstance(effect, Changed):
                await self.save()
                self.broadcast_state()
                await self.arm()
                self.reporter.soon()
            elif isinstance(effect, ChatLine):
                await self.keep_chat(effect.line)
                self.broadcast(encode({"type": "chat", **effect.line}), tag=IN)
            elif isinstance(effect, Kicked):
                for sock in self.get_websockets(tag_of(effect.player)):
                    sock.send(encode({"type": "kicked"}))
                    sock.close(KICKED, "removed from the lobby by the host")
            elif isinstance(effect, Left):
                for sock in self.get_websockets(tag_of(effect.player)):
                    sock.close(CloseCode.NORMAL, "left the lobby")
            elif isinstance(effect, Forfeit):
                await self.forfeit(effect.game, effect.player)
            elif isinstance(effect, StartGame):
                await self.start_game(ws, effect, about)
            elif isinstance(effect, ShowGame):
                socks = self.get_websockets(IN) if effect.everyone or ws is None else [ws]
                for sock in socks:
                    await self.send_game(sock, (sock.attachment or {}).get("player"))

    async def welcome(self, ws: ObjectWebSocket, player: str) -> None:
        """Bind the socket to the member (an older socket of theirs gives way); tell them."""
        for old in self.get_websockets(tag_of(player)):
            if old is not ws:  # an older tab or a half-dead connection: this one wins
                old.close(REPLACED, "this seat was taken up by another connection")
        token = (await self.signer()).sign(Seat("lobby", self.hex, player, 0))
        ws.attachment = {"player": player}
        ws.tags = [IN, tag_of(player)]
        ws.send(encode({"type": "welcome", "player": player, "token": token, "lobby": self.hex}))
        ws.send(encode({"type": "history", "messages": self.chat_log}))

    async def keep_chat(self, line: dict[str, Any]) -> None:
        """One key per line; the oldest beyond the history go."""
        if not self.config.chat_history:
            return
        last = int(self.chat_keys[-1][2:]) if self.chat_keys else 0
        key = f"c/{last + 1:012d}"
        await self.storage.put(key, line)
        self.chat_keys.append(key)
        self.chat_log.append(line)
        if len(self.chat_keys) > self.config.chat_history:
            await self.storage.delete(self.chat_keys.pop(0))
            self.chat_log.pop(0)

    async def forfeit(self, game: str, player: str) -> None:
        """Tell the game a seated player left: the round is theirs to lose, not the other
        player's to wait out. (If the game cannot be told, its grace period decides.)"""
        try:
            games = self.env.namespace(GAMES)
            await games.get(games.id_from_string(game)).forfeit(player)
        except DurableObjectError as exc:
            log.warning("lobby %s: could not tell game %s: %s", self.hex[:12], game[:12], exc)

    async def start_game(
        self, ws: ObjectWebSocket | None, start: StartGame, about: str | None
    ) -> None:
        """Make the game the rules asked for, then begin it (or say it could not start)."""
        assert self.rules is not None
        games = self.env.namespace(GAMES)
        game = games.new_unique_id()
        self.starting = True  # (the call below lets other events in: no second start)
        try:
            await games.get(game).create(self.hex, [list(p) for p in start.players])
        except DurableObjectError as exc:
            log.warning("could not create a game: %s", exc)
            await self.apply(ws, [Refuse("the game could not be started; try again")], about)
            return
        finally:
            self.starting = False
        first, second = start.players
        await self.apply(ws, self.rules.begin(game.hex, first[0], second[0]))

    async def send_game(self, ws: ObjectWebSocket, player: str | None) -> None:
        """The current game: with a seat token for its two players, without for the rest."""
        assert self.rules is not None and self.rules.game is not None
        message: dict[str, Any] = {"type": "game", "game": self.rules.game}
        seat = self.rules.seats.get(player or "")
        if seat is not None and player is not None:
            message["seat"] = seat
            message["token"] = (await self.signer()).sign(
                Seat("game", self.rules.game, player, seat)
            )
        ws.send(encode(message))

    # ------------------------------------------------------------- from games

    @rpc
    async def game_event(self, game: str, seq: int, event: dict[str, Any]) -> None:
        """A game of this lobby reports (a result, a rematch); at least once, in order."""
        if self.rules is None or not isinstance(event, dict):
            return
        await self.apply(None, self.rules.game_event(game, seq, event))

    @rpc
    async def summary(self) -> dict[str, Any] | None:
        """What the directory would show (None: no such lobby, or it has closed)."""
        if self.rules is None or self.rules.closed:
            return None
        return {"lobby": self.hex, **self.rules.summary(), "public": self.rules.public}

    @rpc
    async def info(self) -> dict[str, Any] | None:
        """The lobby's state, as its members see it (for tools and tests)."""
        return None if self.rules is None else self.rules.view(len(self.get_websockets(WATCH)))

    # ------------------------------------------------------------- the alarm

    async def alarm(self, info: AlarmInfo) -> None:
        """Grace periods run out; an empty lobby closes."""
        self.alarm_at = None
        if self.rules is None:
            return
        now = time.time()
        if self.rules.closed or self.rules.due_to_close(now):  # (closed: a retry)
            await self.close_lobby()
            return
        await self.apply(None, self.rules.expire(now))
        await self.arm()

    async def close_lobby(self) -> None:
        """Unlist, free the code, forget everything. If the directory or the code cannot
        be reached, try again in a few seconds (nobody may join meanwhile)."""
        assert self.rules is not None
        rules = self.rules
        if not rules.closed:
            await self.apply(None, rules.close())
        try:
            if rules.public:
                await directory(self.env).remove(self.hex, rules.rev)
            await self.env.namespace(CODES).get_by_name(rules.code).release(self.hex)
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
        assert self.rules is not None
        when = self.rules.next_deadline()
        if when is not None and (self.alarm_at is None or when < self.alarm_at):
            await self.storage.set_alarm(when)
            self.alarm_at = when

    # ------------------------------------------------------------- helpers

    async def save(self) -> None:
        assert self.rules is not None
        await self.storage.put("state", self.rules.dump())

    def broadcast_state(self) -> None:
        assert self.rules is not None
        view = {"lobby": self.hex, **self.rules.view(len(self.get_websockets(WATCH)))}
        self.broadcast(encode({"type": "state", "lobby": view}), tag=IN)

    async def signer(self) -> SeatSigner:
        return SeatSigner(await self.env.signing_key(PURPOSE))
