"""Reading what clients send, and writing what they get: JSON text frames, checked.

Every client message is a JSON object with a string ``"type"``. Anything else (binary
frames, oversized frames, invalid JSON, a missing or unknown type, a field of the wrong
kind) is answered with ``{"type": "error", "error": "<why>"}`` and changes nothing; the
socket stays open. The message types of each socket are listed in the module that serves
it (lobby_room.py, game.py, matchmaker.py).
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any


class ProtocolError(Exception):
    """A client message that cannot be taken; the text is sent back as the error."""


#: One encoder for every message (``json.dumps`` with options builds a new one per call).
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def encode(message: dict[str, Any]) -> str:
    """A message as compact JSON text."""
    return _JSON.encode(message)


def error(text: str, about: str | None = None) -> str:
    """An error message; ``about`` names the refused message's type, when it had one."""
    message = {"type": "error", "error": text}
    if about is not None:
        message["about"] = about
    return encode(message)


def parse(message: str | bytes, max_bytes: int, types: frozenset[str]) -> dict[str, Any]:
    """A client message as a dict whose ``type`` is one of ``types``."""
    if isinstance(message, bytes):
        raise ProtocolError("messages are JSON text frames, not binary")
    if len(message) > max_bytes or len(message.encode("utf-8", "replace")) > max_bytes:
        raise ProtocolError(f"message too large (the limit is {max_bytes} bytes)")
    try:
        data = json.loads(message)
    except (ValueError, RecursionError):
        raise ProtocolError("messages are JSON objects; that was not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError('a message is a JSON object with a "type"')
    if data["type"] not in types:
        known = ", ".join(sorted(types))
        raise ProtocolError(f"unknown message type {data['type'][:40]!r} (expected: {known})")
    return data


def clean_text(value: object, what: str, limit: int) -> str:
    """A name or a chat line: a string of 1..limit characters once control characters are
    dropped and runs of white space are folded to one space."""
    if not isinstance(value, str):
        raise ProtocolError(f"{what} must be a string")
    printable = "".join(" " if ch.isspace() else ch for ch in value if _shown(ch))
    text = " ".join(printable.split())
    if not text:
        raise ProtocolError(f"{what} must not be empty")
    if len(text) > limit:
        raise ProtocolError(f"{what} is too long (at most {limit} characters)")
    return text


def _shown(ch: str) -> bool:
    """Characters kept in names and chat: everything but control and format characters
    (which could hide text or reverse it on screen), spaces excepted."""
    return ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn")


def field(data: dict[str, Any], key: str, kind: type, what: str | None = None) -> Any:
    """``data[key]``, which must be a ``kind`` (bool is not an int here)."""
    value = data.get(key)
    if type(value) is not kind:
        label = {bool: "true or false", int: "a whole number", str: "a string"}.get(kind, "")
        raise ProtocolError(f"{what or repr(key)} must be {label or kind.__name__}")
    return value
