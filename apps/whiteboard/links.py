"""Board names and share links: which object a room names, and whether it may write.

A room (the last segment of ``/whiteboard/ws/<room>`` and ``/whiteboard/b/<room>``) is one
of two things:

- an **edit name**: any string of 1-128 characters not starting with ``v-``. Stock
  y-websocket clients use these; boards made in the UI get 32 random hex characters, so
  the name is the capability, as in Excalidraw or y-websocket rooms.
- a **view token**: ``v-<digest>.<signature>``. ``digest`` is SHA-256 of the edit name, so a
  view link names the same board but cannot be turned back into its edit name; the
  signature is an HMAC under a key kept by the ``KeyRing`` object (made once, stored like
  any object's state, the same on every node; each node caches it for a minute), so only
  this server issues view links.

The board's object ID derives from the digest, never from the key: rotating the key
revokes view links without moving any board.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from runtime import DurableObject, Env, ObjectId, rpc

BOARDS = "whiteboard_board"
KEYS = "whiteboard_keys"
VIEW_PREFIX = "v-"
MAX_ROOM = 128

_VIEW_TOKEN = re.compile(r"v-([0-9a-f]{64})\.([A-Za-z0-9_-]{22})")


class InvalidRoom(ValueError):
    """The room names no board (too long, empty, or a view token that does not verify)."""


@dataclass(frozen=True, slots=True)
class Room:
    digest: str  # SHA-256 of the edit name, hex: the board's identity
    read_only: bool


class KeyRing(DurableObject):
    """Holds the key that signs view links: made on first use, then read from storage."""

    @rpc
    async def view_key(self) -> str:
        """The signing key (hex); the same for every caller on every node."""
        key = await self.storage.get("view")
        if key is None:
            key = secrets.token_hex(32)
            await self.storage.put("view", key)
        return str(key)


def new_edit_name() -> str:
    """A fresh, unguessable board name (hex, so it never looks like a view token)."""
    return secrets.token_hex(16)


def digest_of(edit_name: str) -> str:
    return hashlib.sha256(b"whiteboard:" + edit_name.encode()).hexdigest()


def _signature(key: str, digest: str) -> str:
    mac = hmac.new(bytes.fromhex(key), b"view:" + digest.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:16]).decode().rstrip("=")


#: The key, per node (its Env), and when it was fetched. Every view-link connect and
#: editor page needs it; caching it for a minute keeps one KeyRing object from becoming
#: every node's hot spot, and a rotated key still reaches every node within that minute.
_KEY_CACHE: WeakKeyDictionary[Env, tuple[float, str]] = WeakKeyDictionary()
KEY_TTL = 60.0


async def _key(env: Env) -> str:
    cached = _KEY_CACHE.get(env)
    if cached is not None and time.monotonic() - cached[0] < KEY_TTL:
        return cached[1]
    key = str(await env.namespace(KEYS).get_by_name("view-links").view_key())
    _KEY_CACHE[env] = (time.monotonic(), key)
    return key


async def parse(env: Env, room: str) -> Room:
    """The board a room names and its rights; InvalidRoom if it names none."""
    if not room or len(room) > MAX_ROOM:
        raise InvalidRoom(f"a board name has 1 to {MAX_ROOM} characters")
    if not room.startswith(VIEW_PREFIX):
        return Room(digest_of(room), read_only=False)
    match = _VIEW_TOKEN.fullmatch(room)
    if match is None:
        raise InvalidRoom("not a view link (names starting with 'v-' are view links)")
    digest, signature = match.groups()
    if not hmac.compare_digest(signature, _signature(await _key(env), digest)):
        raise InvalidRoom("this view link is not valid (it may have been revoked)")
    return Room(digest, read_only=True)


def board_id(env: Env, room: Room) -> ObjectId:
    return env.namespace(BOARDS).id_from_name(room.digest)


async def view_token(env: Env, edit_name: str) -> str:
    """The view-only room of the board ``edit_name`` names."""
    digest = digest_of(edit_name)
    return f"{VIEW_PREFIX}{digest}.{_signature(await _key(env), digest)}"
