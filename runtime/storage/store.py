"""One Redis the node talks to: a single server or a Redis Cluster, and what runs on it.

A node has one store for objects without a jurisdiction and one per jurisdiction it serves
(``REDIS_URL_EU`` for "eu", ...): an object's keys only ever go to its jurisdiction's store.
Each store has its own scripts, script batcher and lease client. Whether the URL names a
cluster is asked of the server itself (``INFO cluster``) unless ``REDIS_CLUSTER`` says so;
with a cluster, redis-py's ``RedisCluster`` routes every script by its keys, which share one
hash tag per object, so nothing else changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster

from ..base.config import Settings
from ..base.errors import ConfigurationError
from .lease import LeaseClient
from .scripts import SCRIPT_NAMES, ScriptBatcher, Scripts, load_source

log = logging.getLogger("runtime.store")

_CLIENT_OPTIONS: dict[str, Any] = {"socket_timeout": 5.0, "socket_connect_timeout": 5.0}


class RedisStore:
    """A Redis connection and the runtime's machinery on it."""

    def __init__(
        self,
        url: str,
        settings: Settings,
        holder: str,
        jurisdiction: str | None = None,
        observe: Callable[[float], None] | None = None,
    ) -> None:
        self.url = url
        self.observe = observe
        self.settings = settings
        self.holder = holder
        self.jurisdiction = jurisdiction
        self.cluster = False
        #: Whether the node reaches this Redis, as its lease renewals last found (node.py):
        #: while it does not, the node takes no new objects of this store.
        self.reachable = True
        # A blocking pool: a burst of direct commands (alarm deliveries' reads, say) waits
        # for a free connection instead of failing with "Too many connections".
        pool = BlockingConnectionPool.from_url(
            url, max_connections=64, timeout=_CLIENT_OPTIONS["socket_timeout"], **_CLIENT_OPTIONS
        )
        self.redis: Any = Redis.from_pool(pool)
        self._wire()

    def _wire(self) -> None:
        self.scripts = Scripts(self.redis)
        self.batcher = ScriptBatcher(
            self.redis,
            observe=self.observe,
            max_inflight=self.settings.redis_pipelines,
            timeout=_CLIENT_OPTIONS["socket_timeout"],
        )
        self.leases = LeaseClient(
            self.batcher,
            self.scripts,
            self.holder,
            self.settings.lease_ttl,
            self.settings.lease_margin,
        )

    def describe(self) -> str:
        kind = "Redis Cluster" if self.cluster else "Redis"
        return f"{kind} for {self.jurisdiction or 'objects without a jurisdiction'}"

    async def connect(self, timeout: float = 10.0) -> None:
        """Reach the server, switch to a cluster client if it is one, load the scripts."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                await self.redis.ping()
                break
            except (redis_errors.RedisError, OSError) as exc:
                if time.monotonic() > deadline:
                    raise ConfigurationError(f"cannot reach {self.describe()}: {exc}") from None
                await asyncio.sleep(0.2)
        wanted = self.settings.redis_cluster
        if wanted == "auto":
            info = await self.redis.info("cluster")
            self.cluster = bool(int(info.get("cluster_enabled", 0)))
        else:
            self.cluster = wanted == "yes"
        if self.cluster:
            await self.batcher.aclose()
            await self.redis.aclose()
            self.redis = RedisCluster.from_url(self.url, **_CLIENT_OPTIONS)
            await self.redis.initialize()
            self._wire()
        for name in SCRIPT_NAMES:
            await self.redis.script_load(load_source(name))
        await self.leases.detect_native_cas()
        log.info("connected to %s", self.describe())

    async def close(self) -> None:
        await self.batcher.aclose()
        await self.redis.aclose()
