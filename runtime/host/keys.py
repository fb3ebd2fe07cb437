"""Signing keys for apps: one per purpose, the same on every node, never in the code.

``await env.signing_key("waiting-room/cookies")`` returns 32 bytes an app signs its tokens
with (admission cookies, seat tokens, share links; itsdangerous does the signing).

- With ``SECRET_KEY`` set (what a deployment does), each purpose's key is derived from it
  (HMAC-SHA256 of the purpose), so nothing is stored and rotating the secret rotates every
  key.
- Without it (``make run``, tests), a :class:`KeyRing` object makes a random key per purpose
  on first use and stores it like any object's state; every node reads the same one. The
  node says so once in its log.

Each node caches keys for a minute, so one KeyRing object never becomes a hot spot.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from typing import Protocol

from ..base.errors import InvalidValue
from ..objects.object import DurableObject, rpc

log = logging.getLogger("runtime.keys")

#: The namespace of the KeyRing object every node registers.
KEYRING = "runtime_keys"
CACHE_SECONDS = 60.0
MAX_PURPOSE = 128


class KeyRing(DurableObject):
    """One object (named "signing") holding a random key per purpose."""

    @rpc
    async def key(self, purpose: str) -> str:
        """The key for ``purpose`` (hex), made on first use."""
        if not isinstance(purpose, str) or not 0 < len(purpose) <= MAX_PURPOSE:
            raise InvalidValue(f"a key purpose is 1-{MAX_PURPOSE} characters")
        stored = await self.storage.get(f"k/{purpose}")
        if stored is None:
            stored = secrets.token_hex(32)
            await self.storage.put(f"k/{purpose}", stored)
        return str(stored)


class KeySource(Protocol):
    """How a cache reaches the KeyRing object (an Env)."""

    async def keyring_key(self, purpose: str) -> str: ...


class SigningKeys:
    """A node's cache of signing keys (from SECRET_KEY, or from the KeyRing object)."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()
        self._cache: dict[str, tuple[float, bytes]] = {}
        self._told = False

    async def get(self, purpose: str, source: KeySource) -> bytes:
        if self._secret:
            return hmac.new(
                self._secret, b"signing-key\0" + purpose.encode(), hashlib.sha256
            ).digest()
        cached = self._cache.get(purpose)
        if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        if not self._told:
            self._told = True
            log.info(
                "no SECRET_KEY: signing keys are made once and kept in Redis (fine for one "
                "cluster; set SECRET_KEY to manage them yourself)"
            )
        key = bytes.fromhex(await source.keyring_key(purpose))
        if len(self._cache) < 1000:
            self._cache[purpose] = (time.monotonic(), key)
        return key
