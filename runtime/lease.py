"""Leases: who owns an object, for how long, and with which fencing epoch.

A node owns an object while the object's lease key in Redis holds ``holder:epoch`` for it.
The epoch comes from a counter that only grows, so every acquisition fences all earlier ones:
every write script compares the lease value first and writes nothing when it differs.

The node also keeps a *local deadline* per lease, on the monotonic clock, measured from the
moment it *sent* the last successful renewal: ``sent + ttl - margin``. Past it, the node stops
serving even cached reads until a renewal succeeds again, so a node that was paused or cut off
never answers from stale memory after another node may have taken over.

Renewals go out for every lease of the node in one pipelined batch per tick (every ttl / 3),
never one round trip per object.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from .keyspace import ObjectKeys
from .scripts import ScriptBatcher, Scripts


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

    async def acquire(self, keys: ObjectKeys) -> Lease | str:
        """Take the lease, or return the ``holder:epoch`` of whoever holds it now."""
        sent = time.monotonic()
        ok, value = await self.batcher.call(
            self.scripts.acquire, (keys.lease, keys.epoch), (self.holder, self._ttl_ms)
        )
        if not ok:
            return value.decode() if isinstance(value, bytes) else str(value)
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

    async def renew_many(self, items: Sequence[tuple[ObjectKeys, Lease]]) -> list[bool | None]:
        """Renew many leases in one pipeline. Per lease: True kept, False lost, None unknown
        (Redis failed: the local deadline simply is not moved)."""
        sent = time.monotonic()
        futures = [
            self.batcher.submit(
                self.scripts.renew, (k.lease, k.epoch), (lease.value, self._ttl_ms, lease.epoch)
            )
            for k, lease in items
        ]
        out: list[bool | None] = []
        for (_, lease), future in zip(items, futures, strict=True):
            try:
                result = await future
            except Exception:
                out.append(None)
                continue
            if result:
                lease.deadline = max(lease.deadline, sent + self.ttl - self.margin)
            out.append(bool(result))
        return out

    async def release(self, keys: ObjectKeys, lease: Lease) -> bool:
        lease.deadline = 0.0
        return bool(await self.batcher.call(self.scripts.release, (keys.lease,), (lease.value,)))

    @staticmethod
    def holder_of(value: str) -> str:
        """The holder part of a stored ``holder:epoch`` value."""
        return value.rpartition(":")[0]
