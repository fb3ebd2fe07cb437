"""Board names and share links: which board a room names, and whether it may write.

A room (the last segment of ``/whiteboard/ws/<room>`` and ``/whiteboard/b/<room>``) is one
of two things:

- an **edit name**: any string of 1-128 characters not starting with ``v-``. Stock
  y-websocket clients use these; boards made in the UI get 32 random hex characters, so
  the name is the capability, as in Excalidraw or y-websocket rooms.
- a **view token**: ``v-<digest>.<signature>``. ``digest`` is SHA-256 of the edit name, so a
  view link names the same board but cannot be turned back into its edit name; the
  signature is an HMAC under the runtime's signing key for view links
  (``env.signing_key("whiteboard/view-links")``: derived from ``SECRET_KEY``, the same on
  every node), so only this server issues view links, and rotating ``SECRET_KEY`` revokes
  them. A link signed under the key the whiteboard kept itself before (old_view_key.py) is
  honoured until ``SECRET_KEY`` is next rotated.

The board's object ID derives from the digest, never from a key: rotating the key revokes
view links without moving any board.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

from runtime import Env, MountedApp, ObjectId

from . import old_view_key
from .names import BOARDS

#: The purpose of the runtime's signing key that signs view links.
PURPOSE = "whiteboard/view-links"
VIEW_PREFIX = "v-"
MAX_ROOM = 128

_VIEW_TOKEN = re.compile(r"v-([0-9a-f]{64})\.([A-Za-z0-9_-]{22})")


class InvalidRoom(ValueError):
    """The room names no board (too long, empty, or a view token that does not verify)."""


@dataclass(frozen=True, slots=True)
class BoardLink:
    """What a room names: a board (SHA-256 of its edit name, hex) and the rights it gives."""

    digest: str
    read_only: bool


def new_edit_name() -> str:
    """A fresh, unguessable board name (hex, so it never looks like a view token)."""
    return secrets.token_hex(16)


def digest_of(edit_name: str) -> str:
    return hashlib.sha256(b"whiteboard:" + edit_name.encode()).hexdigest()


def signature(key: bytes, digest: str) -> str:
    """The view token's signature of ``digest`` under ``key`` (128 bits, base64url)."""
    mac = hmac.new(key, b"view:" + digest.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:16]).decode().rstrip("=")


async def parse(env: Env, room: str) -> BoardLink:
    """The board a room names and its rights; InvalidRoom if it names none."""
    if not room or len(room) > MAX_ROOM:
        raise InvalidRoom(f"a board name has 1 to {MAX_ROOM} characters")
    if not room.startswith(VIEW_PREFIX):
        return BoardLink(digest_of(room), read_only=False)
    match = _VIEW_TOKEN.fullmatch(room)
    if match is None:
        raise InvalidRoom("not a view link (names starting with 'v-' are view links)")
    digest, signed = match.groups()
    key = await env.signing_key(PURPOSE)
    if hmac.compare_digest(signed, signature(key, digest)):
        return BoardLink(digest, read_only=True)
    old = await old_view_key.honoured(env, key)  # a link shared before the change?
    if old is not None and hmac.compare_digest(signed, signature(old, digest)):
        return BoardLink(digest, read_only=True)
    raise InvalidRoom("this view link is not valid (it may have been revoked)")


def board_id(env: Env, link: BoardLink) -> ObjectId:
    return env.namespace(BOARDS).id_from_name(link.digest)


async def view_token(env: Env, edit_name: str) -> str:
    """The view-only room of the board ``edit_name`` names."""
    digest = digest_of(edit_name)
    return f"{VIEW_PREFIX}{digest}.{signature(await env.signing_key(PURPOSE), digest)}"


@contextlib.asynccontextmanager
async def keep_old_links(mounted: MountedApp) -> AsyncIterator[None]:
    """The app's lifespan: at start, bind the key of links signed before the upgrade to this
    node's key, or retire it (old_view_key.py), in the background."""
    task = asyncio.get_running_loop().create_task(old_view_key.bind(mounted.env, PURPOSE))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
