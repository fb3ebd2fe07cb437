"""The y-websocket wire protocol, sans I/O: bytes in, messages out, and back.

Every WebSocket frame is binary and holds one message, encoded with lib0's primitives:

    varUint       7 bits per byte, least significant group first; the top bit says "more"
    varString     varUint(byte length) + UTF-8 bytes
    varUint8Array varUint(length) + bytes

    message        = varUint(type) + payload
    type 0 sync    = varUint(step) + varUint8Array(data)
                       step 0: data is a state vector ("here is what I have")
                       step 1: data is an update ("here is what you lack")
                       step 2: data is an update (a live edit)
    type 1 awareness = varUint8Array(varUint(n) + n x (varUint(clientID) + varUint(clock)
                                                       + varString(JSON state)))
                       a null state means the client is gone
    type 2 auth    = varUint(0) + varString(reason): permission denied
    type 3 query awareness (no payload): "send me every awareness state"

Decoding is strict: a truncated varint, an unknown type or step, bytes left over after
the message, or an awareness state that JavaScript's ``JSON.parse`` would refuse raise
:class:`MalformedMessage`, so the caller can close that one socket.
Nothing here knows about documents; ``rules.py`` gives the messages their meaning.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

SYNC = 0
AWARENESS = 1
AUTH = 2
QUERY_AWARENESS = 3

STEP1 = 0
STEP2 = 1
UPDATE = 2

PERMISSION_DENIED = 0

# lib0 decodes varUints into JavaScript numbers: nothing above 2**53 - 1 is meaningful.
_MAX_VARUINT_BYTES = 8
_MAX_SAFE = 2**53 - 1


class MalformedMessage(ValueError):
    """The bytes are not one well-formed y-websocket message."""


@dataclass(frozen=True, slots=True)
class Sync:
    step: int  # STEP1, STEP2 or UPDATE
    data: bytes


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    client: int
    clock: int
    state: str  # the JSON text as sent; exactly "null" when the client is gone

    @property
    def gone(self) -> bool:
        return self.state == "null"


@dataclass(frozen=True, slots=True)
class Awareness:
    entries: tuple[AwarenessEntry, ...]


@dataclass(frozen=True, slots=True)
class Auth:
    reason: str


@dataclass(frozen=True, slots=True)
class QueryAwareness:
    pass


Message = Sync | Awareness | Auth | QueryAwareness


# ------------------------------------------------------------------ lib0 primitives


def write_var_uint(out: bytearray, value: int) -> None:
    if value < 0 or value > _MAX_SAFE:
        raise ValueError(f"varUint out of range: {value}")
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)


def write_var_bytes(out: bytearray, data: bytes) -> None:
    write_var_uint(out, len(data))
    out += data


def write_var_string(out: bytearray, text: str) -> None:
    write_var_bytes(out, text.encode())


class Reader:
    """Reads lib0 primitives from a buffer; every read checks the buffer's end."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def var_uint(self) -> int:
        value = 0
        shift = 0
        for _ in range(_MAX_VARUINT_BYTES):
            if self.pos >= len(self.data):
                raise MalformedMessage("truncated varUint")
            byte = self.data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                if value > _MAX_SAFE:
                    raise MalformedMessage("varUint larger than 2**53")
                return value
            shift += 7
        raise MalformedMessage("varUint longer than 8 bytes")

    def var_bytes(self) -> bytes:
        length = self.var_uint()
        end = self.pos + length
        if end > len(self.data):
            raise MalformedMessage(f"truncated byte array: {length} bytes announced")
        chunk = self.data[self.pos : end]
        self.pos = end
        return bytes(chunk)

    def var_string(self) -> str:
        try:
            return self.var_bytes().decode()
        except UnicodeDecodeError:
            raise MalformedMessage("string is not UTF-8") from None

    def end(self) -> None:
        if self.pos != len(self.data):
            extra = len(self.data) - self.pos
            raise MalformedMessage(f"{extra} unexpected bytes after the message")


# ------------------------------------------------------------------ messages


def decode(data: bytes) -> Message:
    """One frame's message; MalformedMessage if it is not exactly one well-formed message."""
    reader = Reader(data)
    kind = reader.var_uint()
    message: Message
    if kind == SYNC:
        step = reader.var_uint()
        if step not in (STEP1, STEP2, UPDATE):
            raise MalformedMessage(f"unknown sync step {step}")
        message = Sync(step, reader.var_bytes())
    elif kind == AWARENESS:
        message = Awareness(decode_awareness(reader.var_bytes()))
    elif kind == AUTH:
        if reader.var_uint() != PERMISSION_DENIED:
            raise MalformedMessage("unknown auth message")
        message = Auth(reader.var_string())
    elif kind == QUERY_AWARENESS:
        message = QueryAwareness()
    else:
        raise MalformedMessage(f"unknown message type {kind}")
    reader.end()
    return message


def decode_awareness(data: bytes) -> tuple[AwarenessEntry, ...]:
    """The entries of an awareness update; each state must be JSON (checked, kept as text)."""
    reader = Reader(data)
    count = reader.var_uint()
    if count > len(data):  # each entry takes at least three bytes: a cheap bound first
        raise MalformedMessage(f"awareness update announces {count} entries")
    entries = []
    for _ in range(count):
        client = reader.var_uint()
        clock = reader.var_uint()
        state = reader.var_string()
        try:
            value = json.loads(state, parse_constant=_not_json)
        except (ValueError, RecursionError):  # (deep nesting raises RecursionError)
            raise MalformedMessage("awareness state is not JSON") from None
        # y-protocols removes an entry whose state parses to null, however it is spelt.
        entries.append(AwarenessEntry(client, clock, "null" if value is None else state))
    reader.end()
    return tuple(entries)


def _not_json(constant: str) -> None:
    # Python reads NaN and Infinity; JSON.parse throws on them, inside every browser's
    # applyAwarenessUpdate, dropping the rest of the message: never relay them.
    raise ValueError(f"{constant} is not JSON")


def encode(message: Message) -> bytes:
    if isinstance(message, Sync):
        return sync(message.step, message.data)
    if isinstance(message, Awareness):
        return awareness(message.entries)
    if isinstance(message, Auth):
        return permission_denied(message.reason)
    return query_awareness()


def sync(step: int, data: bytes) -> bytes:
    out = bytearray()
    write_var_uint(out, SYNC)
    write_var_uint(out, step)
    write_var_bytes(out, data)
    return bytes(out)


def awareness(entries: tuple[AwarenessEntry, ...] | list[AwarenessEntry]) -> bytes:
    body = bytearray()
    write_var_uint(body, len(entries))
    for entry in entries:
        write_var_uint(body, entry.client)
        write_var_uint(body, entry.clock)
        write_var_string(body, entry.state)
    out = bytearray()
    write_var_uint(out, AWARENESS)
    write_var_bytes(out, bytes(body))
    return bytes(out)


def permission_denied(reason: str) -> bytes:
    out = bytearray()
    write_var_uint(out, AUTH)
    write_var_uint(out, PERMISSION_DENIED)
    write_var_string(out, reason)
    return bytes(out)


def query_awareness() -> bytes:
    out = bytearray()
    write_var_uint(out, QUERY_AWARENESS)
    return bytes(out)
