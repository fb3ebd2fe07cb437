"""The visitor's cookie: who they are to one room, signed so that every node trusts it and
nobody can make one.

A cookie per room (the name carries the room, so one browser can wait in several rooms and
the cookie reaches a gated app's paths too), holding ``room|visitor|state|expiry|holder``
signed with itsdangerous (HMAC-SHA256) under the app's key (``env.signing_key(PURPOSE)``,
already one key per purpose, so the signer derives nothing more). A plain dotted string
rather than a serializer's JSON: a decision signs one cookie and reads one, and this costs
microseconds where zlib-compressed JSON cost a hundred.

    room      the room's ID: a cookie of another room is worth nothing here
    visitor   a random ID (128 bits)
    state     "admitted" | "queued" | "rejected": what the visitor was last told
    expiry    epoch seconds; past it the cookie is ignored (a new visitor)
    holder    where the visitor's session lives: "" for the room, else the node whose shard
              admitted it (slot leasing)

The cookie is identity, not authority: the room's object decides every request. A forged,
expired or other room's cookie reads as no cookie at all (a newcomer), so it never admits
anyone.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, Signer

PURPOSE = "waiting-room/cookies"
SEP = "|"
PREFIX = "wr_"
STATES = ("admitted", "queued", "rejected")
MAX_COOKIE = 512
_VISITOR_RE = re.compile(r"[A-Za-z0-9_-]{16,43}")
_ROOM_RE = re.compile(r"[0-9a-f]{64}")
_HOLDER_RE = re.compile(r"[A-Za-z0-9_.-]{0,64}")


def new_visitor() -> str:
    """A fresh visitor ID: 128 random bits."""
    return secrets.token_urlsafe(16)


def valid_visitor(visitor: Any) -> bool:
    return isinstance(visitor, str) and _VISITOR_RE.fullmatch(visitor) is not None


def cookie_name(room: str) -> str:
    """The room's cookie name (128 bits of its ID: distinct per room)."""
    return PREFIX + room[:32]


@dataclass(frozen=True, slots=True)
class Pass:
    """What a valid cookie says."""

    room: str
    visitor: str
    state: str
    expiry: int
    holder: str = ""


class CookieSigner:
    """Signs and reads cookies with one key."""

    def __init__(self, key: bytes) -> None:
        self._signer = Signer(key, key_derivation="none", digest_method=hashlib.sha256)

    def sign(self, ticket: Pass) -> str:
        fields = (ticket.room, ticket.visitor, ticket.state, str(ticket.expiry), ticket.holder)
        return self._signer.sign(SEP.join(fields)).decode("ascii")

    def read(self, text: str | None, room: str, now: float) -> Pass | None:
        """The pass ``text`` carries for ``room``, or None if it is missing, forged,
        malformed, expired or another room's."""
        if not text or len(text) > MAX_COOKIE or not text.isascii():
            return None
        try:
            data = self._signer.unsign(text).decode("ascii")
        except (BadSignature, ValueError):
            return None
        fields = data.split(SEP)
        if len(fields) != 5:
            return None
        room_id, visitor, state, expiry, holder = fields
        if (
            room_id != room
            or not valid_visitor(visitor)
            or state not in STATES
            or not expiry.isdigit()
            or int(expiry) <= now
            or not _HOLDER_RE.fullmatch(holder)
        ):
            return None
        return Pass(room_id, visitor, state, int(expiry), holder)


_signers: dict[bytes, CookieSigner] = {}


def signer_for(key: bytes) -> CookieSigner:
    """One signer per key, kept (keys change only when an operator rotates SECRET_KEY)."""
    signer = _signers.get(key)
    if signer is None:
        if len(_signers) > 16:
            _signers.clear()
        signer = _signers[key] = CookieSigner(key)
    return signer


def valid_room(room: Any) -> bool:
    """The shape of a room ID (64 lowercase hex characters); the namespace checks the rest."""
    return isinstance(room, str) and _ROOM_RE.fullmatch(room) is not None
