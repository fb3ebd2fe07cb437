"""The node registry: which nodes are alive, where they listen, what they serve.

Every node writes ``do:{nodes}:n:<node id>`` (JSON: lease holder name, URL, jurisdictions)
with a TTL of three heartbeats, every heartbeat, and adds its id to ``do:{nodes}:ids``. A
node that dies stops writing and its entry expires: it drops out. All registry keys share
the hash tag ``{nodes}``, so reading them together works on Redis Cluster too. The registry
lives in the store of objects without a jurisdiction, which every node uses.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis import exceptions as redis_errors

from ..storage.scripts import storage_error

log = logging.getLogger("runtime.registry")


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: str
    holder: str  # "node@incarnation": matches the holder part of the leases it owns
    url: str  # ws://host:port, where its node-to-node endpoint listens
    jurisdictions: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps(
            {"holder": self.holder, "url": self.url, "jurisdictions": list(self.jurisdictions)}
        )

    @classmethod
    def from_json(cls, node_id: str, raw: str | bytes) -> NodeInfo:
        data: dict[str, Any] = json.loads(raw)
        return cls(node_id, data["holder"], data["url"], tuple(data.get("jurisdictions", ())))


class Registry:
    """Heartbeats this node into Redis and answers "who is alive"."""

    def __init__(self, redis: Any, prefix: str, me: NodeInfo, interval: float) -> None:
        self.redis = redis
        self.me = me
        self.interval = interval
        self._ids = f"{prefix}:{{nodes}}:ids"
        self._prefix = f"{prefix}:{{nodes}}:n:"
        self._ttl_ms = int(interval * 3000)
        self._cache: dict[str, tuple[float, NodeInfo | None]] = {}
        #: The live nodes as last read (what a node cut off from Redis still knows).
        self.last_alive: list[NodeInfo] = []

    def _key(self, node_id: str) -> str:
        return self._prefix + node_id

    async def beat(self) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self._key(self.me.node_id), self.me.to_json(), px=self._ttl_ms)
        pipe.sadd(self._ids, self.me.node_id)
        await pipe.execute()

    async def run(self, stopped: asyncio.Event) -> None:
        """Heartbeat (and read who else is alive) until ``stopped`` is set."""
        while not stopped.is_set():
            try:
                await self.beat()
                await self.alive()  # (kept as last_alive: a node cut off from Redis needs it)
            except (redis_errors.RedisError, OSError) as exc:
                log.warning("registry heartbeat failed: %s", exc)
            try:
                await asyncio.wait_for(stopped.wait(), self.interval)
            except TimeoutError:
                pass

    async def leave(self) -> None:
        """Drop out at once (a draining node), so nobody forwards to it any more."""
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.delete(self._key(self.me.node_id))
            pipe.srem(self._ids, self.me.node_id)
            await pipe.execute()
        except (redis_errors.RedisError, OSError) as exc:
            log.warning("could not leave the registry (the entry expires by itself): %s", exc)

    async def lookup(self, node_id: str) -> NodeInfo | None:
        """The live node with this id, or None (cached for a fraction of a heartbeat)."""
        now = time.monotonic()
        cached = self._cache.get(node_id)
        if cached is not None and now - cached[0] < self.interval / 2:
            return cached[1]
        try:
            raw = await self.redis.get(self._key(node_id))
        except (redis_errors.RedisError, OSError) as exc:
            raise storage_error(exc) from None
        info = None if raw is None else NodeInfo.from_json(node_id, raw)
        self._cache[node_id] = (now, info)
        return info

    async def alive(self) -> list[NodeInfo]:
        """Every live node (ids of gone nodes are dropped from the set as they are seen)."""
        ids = sorted(
            m.decode() if isinstance(m, bytes) else m for m in await self.redis.smembers(self._ids)
        )
        if not ids:
            return []
        raws = await self.redis.mget([self._key(i) for i in ids])
        nodes = [NodeInfo.from_json(i, raw) for i, raw in zip(ids, raws, strict=True) if raw]
        self.last_alive = nodes
        gone = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
        if gone:
            await self.redis.srem(self._ids, *gone)
        return nodes
