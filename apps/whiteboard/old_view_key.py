"""View links signed before the whiteboard used the runtime's keys: honoured until
``SECRET_KEY`` is next rotated, then refused for good.

Until this version the whiteboard signed view links with a random key of its own, kept by
an object of its own (namespace ``whiteboard_keys``, one object named ``"view-links"``,
the key stored under ``"view"``), so rotating ``SECRET_KEY`` revoked every token but those.
Links are now signed with the runtime's key for the purpose (links.py). Links already
shared keep working: a token that does not verify under the runtime's key is checked
against the old key, for as long as the old key is *bound* to the runtime key in force
when the new code first ran:

- :class:`OldViewKey` is that same object, under the same namespace and name, so it reads
  the key where the old code stored it. Asked with the fingerprint of the asking node's
  view-link key (a SHA-256 of it; the key itself never leaves the node), it binds the old
  key to the first fingerprint it sees and hands the key out to that fingerprint only.
- The first fingerprint it sees is taken when a node of this version starts (the app's
  lifespan asks, retrying in the background until Redis answers), so the binding is made
  at the upgrade, not at the first old link somebody happens to open.
- A node whose fingerprint differs (it was started with another ``SECRET_KEY``; or with one
  for the first time, where keys came from Redis) retires the old key: it is deleted and
  the object remembers, for good, that it is retired. Old links are refused from then on,
  like every token signed under the old ``SECRET_KEY``.

Each node keeps the answer for a minute (a popular old link should not make one object a
hot spot), so a node still running with the old ``SECRET_KEY`` during a rolling restart
may accept an old link up to a minute after another node retired the key; it accepts
links signed under its old ``SECRET_KEY`` until it restarts anyway.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from weakref import WeakKeyDictionary

from runtime import DurableObject, DurableObjectError, Env, rpc

from .names import OLD_VIEW_KEYS

log = logging.getLogger("apps.whiteboard")

#: The one object's name (as the old code named it).
NAME = "view-links"
#: How long a node keeps the old key (or the news that there is none to honour).
CACHE_SECONDS = 60.0


def fingerprint(key: bytes) -> str:
    """What OldViewKey is told of a node's view-link key: a hash, never the key."""
    return hashlib.sha256(b"whiteboard-view-key\0" + key).hexdigest()


class OldViewKey(DurableObject):
    """The key view links were signed with before, bound to the runtime key of the upgrade.

    Stored: ``view`` the old key (hex, written by the old code), ``bound`` the fingerprint
    it is honoured for, ``retired`` once a node with another key has asked."""

    @rpc
    async def honour(self, fingerprint: str) -> str | None:
        """The old key (hex) if links signed with it are honoured for a node whose key has
        this fingerprint; None if there is no old key, or it was retired (now, if the
        fingerprint is not the one it is bound to)."""
        if not isinstance(fingerprint, str) or len(fingerprint) != 64:
            raise ValueError("a fingerprint is 64 hex characters")
        stored = await self.storage.get_many(["view", "bound", "retired"])
        key = stored.get("view")
        if stored.get("retired") or key is None:
            return None  # retired, or no link was ever signed the old way
        bound = stored.get("bound")
        if bound is None:
            await self.storage.put("bound", fingerprint)
            log.info("view links signed before the upgrade are honoured until SECRET_KEY changes")
            return str(key)
        if bound != fingerprint:
            await self.storage.delete("view")
            await self.storage.put("retired", True)
            log.info("SECRET_KEY changed: view links signed before the upgrade are now refused")
            return None
        return str(key)

    @rpc
    async def status(self) -> str:
        """For operators and tests: "none" (no old key), "unbound" (not asked since the
        upgrade), "honoured" or "retired"."""
        stored = await self.storage.get_many(["view", "bound", "retired"])
        if stored.get("retired"):
            return "retired"
        if stored.get("view") is None:
            return "none"
        return "honoured" if stored.get("bound") else "unbound"


_CACHE: WeakKeyDictionary[Env, tuple[float, str, bytes | None]] = WeakKeyDictionary()


async def honoured(env: Env, key: bytes) -> bytes | None:
    """The old key, if links signed with it are honoured on this node (whose view-link key
    is ``key``); None if not."""
    mine = fingerprint(key)
    cached = _CACHE.get(env)
    if cached is not None and cached[1] == mine and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[2]
    answer = await env.namespace(OLD_VIEW_KEYS).get_by_name(NAME).honour(mine)
    old = bytes.fromhex(answer) if isinstance(answer, str) else None
    _CACHE[env] = (time.monotonic(), mine, old)
    return old


async def bind(env: Env, purpose: str) -> None:
    """Bind the old key (if any) to this node's view-link key (the signing key for
    ``purpose``), or retire it if it is bound to another: retried with backoff until the
    object answers. Run at start, so that the binding is the runtime key in force at the
    upgrade, whether or not an old link is opened before the next rotation."""
    delay = 0.5
    while True:
        try:
            await honoured(env, await env.signing_key(purpose))
            return
        except DurableObjectError as exc:
            log.warning("old view links: could not reach their key (%s); retrying", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
