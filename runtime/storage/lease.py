"""Leases: who owns an object, for how long, and with which fencing epoch.

A node owns an object while the object's lease key in Redis holds ``holder:epoch`` for it.
The epoch comes from a counter that only grows, so every acquisition fences all earlier ones:
every write script compares the lease value first and writes nothing when it differs.

The node also keeps a *local deadline* per lease, on the monotonic clock, measured from the
moment it *sent* the last successful renewal: ``sent + ttl - margin``. Past it, the node stops
serving even cached reads until a renewal succeeds again, so a node that was paused or cut off
never answers from stale memory after another node may have taken over.

Renewals go out for every lease of the node in one round per tick (every ttl / 2, leaving
ttl / 2 - margin of slack for a slow round trip), pipelined in chunks of 2,500, never one
round trip per object.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis import exceptions as redis_errors

from .keyspace import ObjectKeys
from .scripts import ScriptBatcher, Scripts

#: Leases renewed per pipeline of a renewal round.
RENEW_CHUNK = 2500


def confirm_timeout(settings: Any) -> float:
    """How long an owner waits for a renewal past its local deadline before it gives the
    object up (a quarter of the TTL, and never less than the margin)."""
    return float(max(settings.lease_margin, settings.lease_ttl / 4))


@dataclass(frozen=True, slots=True)
class Held:
    """Someone else's lease: ``holder:epoch``, and how long (seconds) it had left when read."""

    value: str
    left: float

    @property
    def holder(self) -> str:
        return self.value.rpartition(":")[0]


@dataclass(slots=True)
class Lease:
    """A lease this node holds."""

    value: str  # "holder:epoch", as stored in Redis
    epoch: int
    deadline: float  # monotonic time after which this node must not serve from memory

    @property
    def live(self) -> bool:
        return time.monotonic() < self.deadline


class LeaseClient:
    """Acquire, renew and release leases under one holder name."""

    def __init__(
        self, batcher: ScriptBatcher, scripts: Scripts, holder: str, ttl: float, margin: float
    ) -> None:
        self.batcher = batcher
        self.scripts = scripts
        self.holder = holder
        self.ttl = ttl
        self.margin = margin
        self._ttl_ms = max(1, int(ttl * 1000))
        self.native_cas = False
        #: When Redis last answered a part of a renewal round (monotonic): a round that has
        #: answers coming back is slow, not cut off (node._renew_loop).
        self.answered_at = 0.0

    async def acquire(self, keys: ObjectKeys) -> Lease | Held:
        """Take the lease, or say who holds it now and for how long at most."""
        sent = time.monotonic()
        reply = await self.batcher.call(
            self.scripts.acquire, (keys.lease, keys.epoch), (self.holder, self._ttl_ms)
        )
        ok, value = reply[0], reply[1]
        if not ok:
            text = value.decode() if isinstance(value, bytes) else str(value)
            left_ms = int(reply[2]) if len(reply) > 2 else self._ttl_ms
            return Held(text, min(self.ttl, max(0.0, left_ms / 1000)))
        epoch = int(value)
        return Lease(f"{self.holder}:{epoch}", epoch, sent + self.ttl - self.margin)

    async def renew(self, keys: ObjectKeys, lease: Lease) -> bool:
        """Extend one lease; on success move its local deadline. False: the lease is lost."""
        sent = time.monotonic()
        result = await self.batcher.call(
            self.scripts.renew,
            (keys.lease, keys.epoch),
            (lease.value, self._ttl_ms, lease.epoch),
        )
        if result:
            lease.deadline = max(lease.deadline, sent + self.ttl - self.margin)
            return True
        return False

    async def detect_native_cas(self) -> bool:
        """Use ``SET key value IFEQ value PX ttl`` for renewals when the server has it
        (Valkey 8.1+): an atomic compare-and-set that costs Redis about 40 % less than the
        renew script. Servers without it keep using renew.lua."""
        probe = f"{self.holder}:cas-probe"
        try:
            await self.batcher.redis.execute_command(  # type: ignore[no-untyped-call]
                "SET", probe, "x", "IFEQ", "x", "PX", 1000
            )
            self.native_cas = True
        except redis_errors.ResponseError:
            self.native_cas = False
        finally:
            await self.batcher.redis.delete(probe)
        return self.native_cas

    async def renew_many(self, items: Sequence[tuple[ObjectKeys, Lease]]) -> list[bool | None]:
        """Renew many leases, pipelined in chunks of RENEW_CHUNK sent one after the other.
        Per lease: True kept, False lost, None unknown (Redis failed: the local deadline
        simply is not moved). Each chunk moves its leases' deadlines as soon as it is
        answered, from the moment it was sent: a big round's first leases are safe again
        long before its last, and the answers show the node that Redis is reachable."""
        out: list[bool | None] = [None] * len(items)
        for start in range(0, len(items), RENEW_CHUNK):
            chunk = items[start : start + RENEW_CHUNK]
            answers = await self._renew_chunk(chunk)
            out[start : start + len(chunk)] = answers
            if all(a is None for a in answers):
                break  # Redis failed: the rest would wait for it too
        return out

    async def _renew_chunk(self, items: Sequence[tuple[ObjectKeys, Lease]]) -> list[bool | None]:
        sent = time.monotonic()
        out: list[bool | None] = [None] * len(items)
        pending = list(range(len(items)))
        if self.native_cas:
            pipe = self.batcher.redis.pipeline(transaction=False)
            for keys, lease in items:
                pipe.execute_command(
                    "SET", keys.lease, lease.value, "IFEQ", lease.value, "PX", self._ttl_ms
                )
            try:
                replies = await pipe.execute(raise_on_error=False)
            except (redis_errors.RedisError, OSError):
                return out
            self.answered_at = time.monotonic()
            for i, reply in enumerate(replies):
                if reply is True:
                    out[i] = True
            # not equal, or expired: the script decides (it can revive an unclaimed lease)
            pending = [i for i in pending if out[i] is None]
        futures = [
            self.batcher.submit(
                self.scripts.renew,
                (items[i][0].lease, items[i][0].epoch),
                (items[i][1].value, self._ttl_ms, items[i][1].epoch),
            )
            for i in pending
        ]
        for i, future in zip(pending, futures, strict=True):
            try:
                out[i] = bool(await future)
                self.answered_at = time.monotonic()
            except Exception:
                out[i] = None
        for (_, lease), ok in zip(items, out, strict=True):
            if ok:
                lease.deadline = max(lease.deadline, sent + self.ttl - self.margin)
        return out

    async def release(self, keys: ObjectKeys, lease: Lease) -> bool:
        lease.deadline = 0.0
        released = await self.batcher.call(
            self.scripts.release, (keys.lease, keys.epoch), (lease.value,)
        )
        return bool(released)

    @staticmethod
    def holder_of(value: str) -> str:
        """The holder part of a stored ``holder:epoch`` value."""
        return value.rpartition(":")[0]
