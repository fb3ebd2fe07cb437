"""The rules of a chat room, with no sockets and no storage: input in, effects out.

This is the wire protocol of Cloudflare's edge chat demo (workers-chat-demo), kept
message for message so its clients work unchanged:

    client -> server   {"name": "<user>"}            first message; the name (<= 32 chars)
                       {"message": "<text>"}         every later one (<= 256 chars)
    server -> client   {"joined": "<name>"}          someone joined (also: the roster on join)
                       {"quit": "<name>"}            someone left
                       {"ready": true}               you have the backlog; you are in
                       {"error": "<reason>"}         your last message was refused
                       {"name", "message", "timestamp"}   a chat message, to everyone named,
                                                          the sender included

Fields this app adds (a client of the demo ignores them): every ``joined``, ``quit``,
``ready`` and chat message carries ``"id"``, who it is about: 12 hex characters that tell
apart two people who chose the same name. The name frame may carry ``"key"`` (16-64
letters, digits, ``-`` or ``_``, kept by the browser): the id is then a hash of the key and
the room, the same for that browser across reconnects and reloads, and nobody without the
key can take it; without a key, the id is random per connection. ``ready`` tells a session
its own id.

A session that has not sent its name receives nothing; what it would have received waits in
its backlog: a {"joined"} per named session, the last 100 messages oldest first, then
whatever is broadcast meanwhile. On its name it gets the backlog, everybody gets
{"joined": name}, and it gets {"ready": true}. Timestamps are milliseconds, strictly
increasing in a room: max(now, last + 1).

:class:`ChatRules` takes those inputs and returns effects (effects.py: send, broadcast,
close, store, remember a name) for the ChatRoom object (chat_room.py) to carry out.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from .effects import Broadcast, Close, Effect, Named, Send, Store

MAX_NAME = 32
MAX_MESSAGE = 256
BACKLOG = 100
#: What a silent (unnamed) session may have waiting for it; past this its backlog is dropped
#: and made afresh (roster now, last 100 messages) when it names itself, so a client that
#: never names itself cannot grow memory for ever.
MAX_MISSED = 1000
#: Frames longer than this are refused without being parsed (any valid one is far shorter).
MAX_FRAME = 16 * 1024

NAME_TOO_LONG = "Name too long."
MESSAGE_TOO_LONG = "Message too long."
RATE_LIMITED = "Your IP is being rate-limited, please try again later."
NOT_JSON = "Invalid message: expected a JSON object."
NOT_TEXT = "Invalid message: expected a text frame."
BAD_KEY = 'Invalid message: "key" is 16 to 64 letters, digits, - or _.'
#: What a name frame's "key" may be (a browser makes 22 random URL-safe characters).
KEY_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
#: Hex characters of an id: 48 bits, so two people in one room all but never share one.
ID_CHARS = 12


# ------------------------------------------------------------------ helpers


#: JSON as JavaScript's JSON.stringify writes it (made once: ``json.dumps`` with options
#: builds a new encoder on every call, a cost every message paid).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode(value: dict[str, Any]) -> str:
    """JSON as JavaScript's JSON.stringify writes it: compact, non-ASCII kept as is."""
    return _ENCODER.encode(value)


def js_string(value: Any, missing: bool = False, depth: int = 0) -> str:
    """``"" + value`` in JavaScript, for values that came out of JSON.parse."""
    if missing:
        return "undefined"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {True: "Infinity", False: "-Infinity"}.get(value > 0, "NaN")
        if value == int(value) and abs(value) < 1e21:
            return str(int(value))
        return repr(value)
    if isinstance(value, list):
        if depth > 32:  # String([[[...]]]) flattens; no real name or message nests deeper
            raise ValueError("nested too deep")
        return ",".join("" if v is None else js_string(v, depth=depth + 1) for v in value)
    if isinstance(value, dict):
        return "[object Object]"
    return str(value)


def js_length(text: str) -> int:
    """String length as JavaScript counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def sendable(text: str) -> bool:
    """Whether ``text`` can go out in a text frame (JSON escapes can make lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def history_key(timestamp_ms: int) -> str:
    """``m/`` + the ISO time JavaScript's toISOString gives: sorts by time."""
    return f"{_key_prefix(timestamp_ms // 1000)}{timestamp_ms % 1000:03d}Z"


@lru_cache(maxsize=4)
def _key_prefix(second: int) -> str:
    """``m/2026-12-01T07:30:05.``: formatting a date is most of a key's cost, and a busy
    room's messages share their second."""
    return "m/" + datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def person_id(salt: str, key: str | None) -> str:
    """Who a session is, as others see it: a hash of its browser's key and the room (so the
    same browser has the same id on every visit to a room, and different ids in different
    rooms), or a random id for a client that sends no key."""
    if key is None:
        return secrets.token_hex(ID_CHARS // 2)
    digest = hashlib.sha256(f"chat-person\0{salt}\0{key}".encode()).hexdigest()
    return digest[:ID_CHARS]


def overflow(count: int, keep: int) -> int:
    """How many of the oldest messages to prune when ``count`` are stored and ``keep`` may
    stay. Pruning waits for 10 % extra (at least 10) so it runs once per batch of messages,
    not after every message."""
    slack = max(10, keep // 10)
    return count - keep if count > keep + slack else 0


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # JSON.parse refuses NaN and Infinity too


_DECODER = json.JSONDecoder(parse_constant=_no_constants)  # (made once, as _ENCODER)


def parse(frame: str | bytes) -> tuple[dict[str, Any] | None, str | None]:
    """The JSON object a frame carries, or an error to send back."""
    if isinstance(frame, bytes):
        return None, NOT_TEXT
    if len(frame) > MAX_FRAME:
        return None, MESSAGE_TOO_LONG
    try:
        data = _DECODER.decode(frame)
    except (ValueError, RecursionError):
        return None, NOT_JSON
    if data is None:  # `null.name` throws in the demo
        return None, NOT_JSON
    # JSON.parse of a number, a string or an array gives a value whose name and message
    # read as undefined, as in the demo.
    return (data if isinstance(data, dict) else {}), None


# ------------------------------------------------------------------ the room


@dataclass
class Session:
    name: str | None = None
    #: Who the session is (see person_id); set with the name.
    id: str = ""
    #: What this session will receive when it sends its name (None once named, or when the
    #: room was rebuilt from storage: the backlog is then made at naming time).
    backlog: list[str] | None = field(default_factory=list)


class ChatRules:
    """One chat room's sessions, clock and rules."""

    def __init__(self, last_timestamp: int = 0, salt: str = "") -> None:
        self.sessions: dict[int, Session] = {}
        self.last_timestamp = last_timestamp
        #: Mixed into every id made from a key (the room's ID: ids differ from room to room).
        self.salt = salt

    # -- sessions ---------------------------------------------------------

    def restore(self, session: int, name: str | None, id: str = "") -> None:
        """A socket kept across hibernation (its name and id came from its attachment)."""
        self.sessions[session] = Session(name=name, id=id, backlog=None)

    def roster(self) -> list[str]:
        """A {"joined"} frame per named session."""
        named = (s for s in self.sessions.values() if s.name is not None)
        return [encode({"joined": s.name, "id": s.id}) for s in named]

    def connect(self, session: int, history: list[str]) -> list[Effect]:
        """A new socket: it will get the roster and ``history`` (oldest first) on naming."""
        backlog = self.roster()
        backlog.extend(history[-BACKLOG:])
        self.sessions[session] = Session(backlog=backlog)
        return []

    def needs_history(self, session: int) -> bool:
        """True when naming this session needs the history first (room was rebuilt)."""
        s = self.sessions.get(session)
        return s is not None and s.name is None and s.backlog is None

    def disconnect(self, session: int, name: str | None = None, id: str = "") -> list[Effect]:
        """A socket closed. ``name`` and ``id`` are its attachment's, for a session this
        instance never saw (it closed while the room was out of memory)."""
        s = self.sessions.pop(session, None)
        left, who = (s.name, s.id) if s is not None else (name, id)
        if left is None:
            return []
        return self._broadcast(encode({"quit": left, "id": who}))

    # -- messages ---------------------------------------------------------

    def receive(
        self, session: int, frame: str | bytes, now_ms: int, history: list[str] | None = None
    ) -> list[Effect]:
        """A frame from a session (already let through by the rate limiter)."""
        s = self.sessions.get(session)
        if s is None:
            return []
        data, error = parse(frame)
        if data is None:
            return [Send(session, encode({"error": error}))]
        try:
            if s.name is None:
                return self._name(session, s, data, history or [])
            return self._message(session, s, data, now_ms)
        except (ValueError, TypeError, RecursionError, OverflowError):
            return [Send(session, encode({"error": NOT_JSON}))]

    def _name(
        self, session: int, s: Session, data: dict[str, Any], history: list[str]
    ) -> list[Effect]:
        raw = data.get("name")
        name = js_string(raw) if raw not in (None, "", 0, False) else "anonymous"
        if not sendable(name):
            return [Send(session, encode({"error": NOT_JSON}))]
        if js_length(name) > MAX_NAME:
            del self.sessions[session]  # gone without ever joining: no {"quit"} for it
            return [
                Send(session, encode({"error": NAME_TOO_LONG})),
                Close(session, 1009, NAME_TOO_LONG),
            ]
        key = data.get("key")
        if key is not None and not (isinstance(key, str) and KEY_RE.fullmatch(key)):
            return [Send(session, encode({"error": BAD_KEY}))]  # not named: may try again
        if s.backlog is None:  # rebuilt after hibernation: make the backlog now
            s.backlog = self.roster() + history[-BACKLOG:]
        effects: list[Effect] = [Send(session, text) for text in s.backlog]
        s.backlog = None
        s.name = name
        s.id = person_id(self.salt, key)
        effects.append(Named(session, name, s.id))
        effects.extend(self._broadcast(encode({"joined": name, "id": s.id})))
        effects.append(Send(session, encode({"ready": True, "id": s.id})))
        return effects

    def _message(self, session: int, s: Session, data: dict[str, Any], now_ms: int) -> list[Effect]:
        text = js_string(data.get("message"), missing="message" not in data)
        if not sendable(text):
            return [Send(session, encode({"error": NOT_JSON}))]
        if js_length(text) > MAX_MESSAGE:
            return [Send(session, encode({"error": MESSAGE_TOO_LONG}))]
        timestamp = max(now_ms, self.last_timestamp + 1)
        self.last_timestamp = timestamp
        assert s.name is not None
        out = encode({"name": s.name, "message": text, "timestamp": timestamp, "id": s.id})
        return [*self._broadcast(out), Store(history_key(timestamp), out)]

    def _broadcast(self, text: str) -> list[Effect]:
        for s in self.sessions.values():
            if s.name is None and s.backlog is not None:
                s.backlog.append(text)
                if len(s.backlog) > BACKLOG + MAX_MISSED:
                    s.backlog = None  # too much missed: make the backlog afresh at naming
        return [Broadcast(text)]

    def is_named(self, session: int) -> bool:
        s = self.sessions.get(session)
        return s is not None and s.name is not None
