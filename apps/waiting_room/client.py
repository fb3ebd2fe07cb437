"""How a node's routes and gate reach a room: which object decides a visitor's request, and
the cookie that carries the answer.

Without slot leasing every decision goes to the room's object. With it, a request goes to
the shard holding the visitor's session (the cookie's ``holder``), a queued visitor's or one
the room admitted itself goes to the room, and a newcomer goes to this node's shard, which
admits with a leased slot or asks the room.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from runtime import Env, InvalidObjectId, ObjectId

from .config import WaitingRoomConfig
from .cookies import PURPOSE, Pass, cookie_name, new_visitor, signer_for, valid_room
from .names import ROOMS, SHARDS
from .room_shard import shard_name

#: Seconds a rejected visitor's cookie lasts (it only keeps their ID for the next try).
REJECTED_TTL = 60
#: How long browsers keep a cookie (its signed expiry decides what it is worth).
COOKIE_MAX_AGE = 86_400 * 2
_MODES_MAX = 10_000
_modes: dict[str, bool] = {}  # room -> slot leasing (chosen at creation: never changes)


class UnknownRoom(Exception):
    """No such room (a malformed ID, or an ID nobody created)."""


class RoomError(Exception):
    """The room refused the call (its answer carried an error)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Decision:
    """What a room decided for one request, and who the visitor is."""

    status: str
    position: int | None
    eta_s: int | None
    visitor: str
    holder: str
    session_duration: int
    first_position: int
    paused: bool = False
    #: The room's version after deciding (0: a shard decided; versions.py).
    version: int = 0

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "position": self.position,
            "eta_s": self.eta_s,
        }
        if self.paused:  # (a field present only while the room is paused)
            out["paused"] = True
        return out

    @property
    def admitted(self) -> bool:
        return self.status == "admitted"

    def ticket(self, room: str, config: WaitingRoomConfig, now: float) -> Pass:
        """The cookie's content after this decision."""
        if self.status == "admitted":
            ttl = self.session_duration
        elif self.status == "queued":
            ttl = config.queued_cookie_ttl
        else:
            ttl = REJECTED_TTL
        return Pass(room, self.visitor, self.status, int(now + ttl) + 1, self.holder)


def room_id(env: Env, room: str) -> ObjectId:
    """The room's object ID (UnknownRoom if the text is not one this app minted)."""
    if not valid_room(room):
        raise UnknownRoom(room)
    try:
        return env.namespace(ROOMS).id_from_string(room)
    except InvalidObjectId:
        raise UnknownRoom(room) from None


def room_stub(env: Env, room: str, after: int = 0) -> Any:
    """The room's stub; ``after``: a version of the room the client has seen (its reads
    are then at least that current: versions.py)."""
    return env.namespace(ROOMS).get(room_id(env, room), after=after)


async def leasing(env: Env, room: str) -> bool:
    """Whether the room lends slots to shards (asked once per node, then remembered)."""
    known = _modes.get(room)
    if known is not None:
        return known
    mode = await room_stub(env, room).mode()
    if mode is None:
        raise UnknownRoom(room)
    if len(_modes) >= _MODES_MAX:
        _modes.clear()
    _modes[room] = bool(mode["slot_leasing"])
    return _modes[room]


_settings: dict[str, tuple[float, dict[str, Any]]] = {}
SETTINGS_CACHE = 2.0


async def room_settings(env: Env, room: str) -> dict[str, Any]:
    """The room's settings for its pages' texts, cached a moment per node."""
    cached = _settings.get(room)
    if cached is not None and time.monotonic() - cached[0] < SETTINGS_CACHE:
        return cached[1]
    found = await room_stub(env, room).settings()
    if found is None:
        raise UnknownRoom(room)
    if len(_settings) >= _MODES_MAX:
        _settings.clear()
    _settings[room] = (time.monotonic(), found)
    return dict(found)


async def replica_exact(env: Env, room: str) -> bool:
    """Whether a replica's figures of the room are exactly the room's own (replica.py:
    not for a room that lends slots to shards or lets everyone through)."""
    if await leasing(env, room):
        return False
    return (await room_settings(env, room)).get("queueing_method") != "passthrough"


def forget_settings(room: str) -> None:
    """This node changed the room's settings: its pages show the new texts at once."""
    _settings.pop(room, None)


def forget_room(room: str) -> None:
    """The room was deleted (through this node): nothing about it is kept here."""
    _settings.pop(room, None)
    _modes.pop(room, None)


async def read_pass(env: Env, room: str, cookies: dict[str, str]) -> Pass | None:
    """The visitor's pass for ``room`` from the request's cookies, if valid."""
    text = cookies.get(cookie_name(room))
    if not text:
        return None
    signer = signer_for(await env.signing_key(PURPOSE))
    return signer.read(text, room, time.time())


async def decide(env: Env, room: str, visitor: Pass | None, join: bool = True) -> Decision:
    """Ask the object that decides this visitor's request (UnknownRoom, RoomError). Without
    ``join``, a newcomer who cannot be admitted at once is turned away ("rejected") rather
    than queued: for requests that cannot show the waiting page (a WebSocket handshake)."""
    who = visitor.visitor if visitor is not None else new_visitor()
    stub = room_stub(env, room)
    if not await leasing(env, room):
        answer = await stub.visit(who, join)
    elif visitor is not None and not visitor.holder and visitor.state != "rejected":
        answer = await stub.visit(who, join)  # the room knows them
    else:
        node = visitor.holder if visitor is not None and visitor.holder else env.node_id
        shard = env.namespace(SHARDS).get_by_name(shard_name(room, node))
        answer = await shard.visit(room, node, who, join)
    if "error" in answer:
        if answer.get("status") == 404:
            raise UnknownRoom(room)
        raise RoomError(str(answer["error"]), int(answer.get("status", 500)))
    return Decision(
        status=str(answer["status"]),
        position=answer.get("position"),
        eta_s=answer.get("eta_s"),
        visitor=who,
        holder=str(answer.get("holder", "")),
        session_duration=int(answer.get("session_duration", 0)),
        first_position=int(answer.get("first_position", 0)),
        paused=answer.get("paused") is True,
        version=int(stub.version),
    )


async def leave(env: Env, room: str, visitor: Pass) -> tuple[bool, int]:
    """Free the visitor's slot (or place in line) at once: (whether the visitor was known,
    the room's version after it; 0 when the visitor's shard took the leave)."""
    if visitor.holder and await leasing(env, room):
        shard = env.namespace(SHARDS).get_by_name(shard_name(room, visitor.holder))
        return bool(await shard.leave(room, visitor.holder, visitor.visitor)), 0
    stub = room_stub(env, room)
    left = bool(await stub.leave(visitor.visitor))
    return left, int(stub.version)


async def cookie_header(
    env: Env, room: str, decision: Decision, config: WaitingRoomConfig, secure: bool
) -> str:
    """The Set-Cookie value carrying ``decision`` (every node can read it)."""
    signer = signer_for(await env.signing_key(PURPOSE))
    value = signer.sign(decision.ticket(room, config, time.time()))
    return morsel(cookie_name(room), value, COOKIE_MAX_AGE, secure)


def morsel(name: str, value: str, max_age: int, secure: bool) -> str:
    """One Set-Cookie header value: the whole site (gated apps too), HttpOnly, SameSite=Lax.
    (Names and values here are of characters cookies take as they are: nothing to quote.)"""
    header = f"{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
    return header + "; Secure" if secure else header
