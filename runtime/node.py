"""A node: one server process hosting objects, with its Redis connection and background loops.

The node keeps a table of the objects it owns (records), delivers events to them, renews
all their leases in one pipelined batch per tick, hibernates or evicts idle ones, and polls
alarms. ``start()``/``stop()`` bracket its life; ``stop()`` commits what is pending, closes
sockets with 1012 (service restart) and releases every lease at once, so another node can
take the objects over without waiting for a TTL.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from .alarms import AlarmService
from .config import Settings
from .errors import ConfigurationError, Fenced, ObjectUnavailable, UnknownNamespace
from .ids import ObjectId
from .lease import Lease, LeaseClient
from .namespace import Env, Namespace
from .object import DurableObject
from .record import ObjectRecord, RecordGone
from .scripts import SCRIPT_NAMES, ScriptBatcher, Scripts, load_source

log = logging.getLogger("runtime.node")
T = TypeVar("T")

_MAX_RETRIES = 5


@dataclass
class NodeStats:
    activations: int = 0
    hibernations: int = 0
    evictions: int = 0
    leases_lost: int = 0


class Node:
    """One runtime process: its objects, its leases, its loops."""

    def __init__(self, settings: Settings, redis_url: str | None = None) -> None:
        self.settings = settings.with_node_id()
        self.node_id = self.settings.node_id
        #: Lease holder name: the node id plus a per-process incarnation, so a restarted node
        #: never mistakes its predecessor's leases for its own.
        self.holder = f"{self.node_id}@{secrets.token_hex(4)}"
        url = redis_url or self.settings.redis_url
        if not url:
            raise ConfigurationError("no Redis URL: pass redis_url or start an embedded Valkey")
        self.redis_url = url
        self.redis: Redis = Redis.from_url(
            url, socket_timeout=5.0, socket_connect_timeout=5.0, max_connections=64
        )
        self.scripts = Scripts(self.redis)
        self.batcher = ScriptBatcher(self.redis)
        self.leases = LeaseClient(
            self.batcher,
            self.scripts,
            self.holder,
            self.settings.lease_ttl,
            self.settings.lease_margin,
        )
        self.alarms = AlarmService(self)
        self.env = Env(self)
        self.stats = NodeStats()
        self.namespaces: dict[str, Namespace] = {}
        self.records: dict[tuple[str, str], ObjectRecord] = {}
        self.stopping = False  # no new objects; loops other than lease renewal end
        self._closed = False  # every object is shut down; lease renewal ends too
        self.started = False
        self._tasks: list[asyncio.Task[None]] = []
        self._evictions: set[asyncio.Task[bool]] = set()

    # ------------------------------------------------------------ registry

    def register(self, name: str, cls: type[DurableObject]) -> Namespace:
        """Register an object class under a namespace name (the same on every node)."""
        if name in self.namespaces:
            if self.namespaces[name].cls is cls:
                return self.namespaces[name]
            raise ConfigurationError(f"namespace {name!r} is already registered")
        if not name or ":" in name or "{" in name or "}" in name or len(name) > 64:
            raise ConfigurationError(
                f"namespace name {name!r}: 1-64 characters, without ':', '{{' or '}}'"
            )
        namespace = Namespace(self, name, cls)
        self.namespaces[name] = namespace
        return namespace

    def namespace(self, name: str) -> Namespace:
        try:
            return self.namespaces[name]
        except KeyError:
            raise UnknownNamespace(
                f"no object class is registered as {name!r} "
                f"(registered: {sorted(self.namespaces) or 'none'})"
            ) from None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect to Redis, load the scripts, start the background loops."""
        deadline = time.monotonic() + 10
        while True:
            try:
                await self.redis.ping()
                break
            except (redis_errors.RedisError, OSError) as exc:
                if time.monotonic() > deadline:
                    raise ConfigurationError(f"cannot reach Redis: {exc}") from None
                await asyncio.sleep(0.2)
        for name in SCRIPT_NAMES:
            await self.redis.script_load(load_source(name))
        await self.leases.detect_native_cas()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._renew_loop(), name="lease-renewal"),
            loop.create_task(self._sweep_loop(), name="sweeper"),
            loop.create_task(self.alarms.run(), name="alarms"),
        ]
        self.started = True
        log.info("node %s started (holder %s)", self.node_id, self.holder)

    async def stop(self, code: int = 1012, reason: str = "service restart") -> None:
        """Drain: stop taking objects, let running events finish, commit, close sockets,
        release leases. Leases are renewed until the very end, so a slow event's last
        commit is not fenced by its own node's lease running out."""
        if self.stopping:
            return
        self.stopping = True
        renewal, others = self._tasks[0], self._tasks[1:]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await self.alarms.stop()
        await asyncio.gather(*self._evictions, return_exceptions=True)
        records = list(self.records.values())
        await asyncio.gather(*(r.shut_down(code, reason) for r in records))
        self.records.clear()
        self._closed = True
        renewal.cancel()
        await asyncio.gather(renewal, return_exceptions=True)
        await self.redis.aclose()
        log.info("node %s stopped; released %d objects", self.node_id, len(records))

    # ------------------------------------------------------------ events

    async def dispatch(
        self,
        namespace: Namespace,
        object_id: ObjectId,
        handler: Callable[[DurableObject], Awaitable[T]],
        *,
        wait_output: bool = True,
    ) -> T:
        """Deliver one event to an object, activating it here if needed."""
        for _ in range(_MAX_RETRIES):
            record = self._record(namespace, object_id)
            try:
                return await record.run(handler, wait_output=wait_output)
            except RecordGone:
                continue
        raise ObjectUnavailable(
            f"{namespace.name}:{object_id.hex[:12]} was reset {_MAX_RETRIES} times in a row"
        )

    def _record(self, namespace: Namespace, object_id: ObjectId) -> ObjectRecord:
        key = (namespace.name, object_id.hex)
        record = self.records.get(key)
        if record is None:
            if self.stopping:
                raise ObjectUnavailable(f"node {self.node_id} is stopping; retry elsewhere")
            record = ObjectRecord(self, namespace, object_id)
            self.records[key] = record
        return record

    def forget(self, record: ObjectRecord) -> None:
        key = (record.namespace.name, record.id.hex)
        if self.records.get(key) is record:
            del self.records[key]

    async def acquire_lease(self, record: ObjectRecord) -> Lease:
        """Take the record's lease, waiting (up to activation_timeout) for a gone holder's
        lease to expire."""
        deadline = time.monotonic() + self.settings.activation_timeout
        delay = 0.02
        while True:
            if self.stopping:
                raise ObjectUnavailable(f"node {self.node_id} is stopping; retry elsewhere")
            got = await self.leases.acquire(record.keys)
            if isinstance(got, Lease):
                return got
            if time.monotonic() + delay > deadline:
                raise ObjectUnavailable(
                    f"{record.describe()} is held by {LeaseClient.holder_of(got)}, which did "
                    f"not release it within {self.settings.activation_timeout:.0f}s"
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)

    # ------------------------------------------------------------ introspection

    @property
    def live_objects(self) -> int:
        """Instances in memory (hibernated objects do not count)."""
        return sum(1 for r in self.records.values() if r.instance is not None)

    def live_ids(self) -> list[str]:
        return [f"{ns}:{h}" for (ns, h), r in self.records.items() if r.instance is not None]

    # ------------------------------------------------------------ loops

    async def _renew_loop(self) -> None:
        interval = self.settings.lease_ttl / 2
        # The loops also watch their flag: a cancellation that arrives while redis-py is
        # mid-command can be turned into a connection error and swallowed.
        while not self._closed:
            started = time.monotonic()
            try:
                await self.renew_leases()
            except Exception:  # never let the loop die: the local deadlines protect reads
                log.exception("lease renewal round failed")
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))

    async def renew_leases(self) -> None:
        """Renew every lease of this node in one pipelined batch."""
        records = [r for r in self.records.values() if r.lease.value and not r.gone]
        if not records:
            return
        results = await self.leases.renew_many([(r.keys, r.lease) for r in records])
        for record, ok in zip(records, results, strict=True):
            if ok is False and not record.gone:
                self.stats.leases_lost += 1
                log.warning("lease of %s was lost; discarding it", record.describe())
                record.discard(Fenced(f"{record.describe()} lost its lease"))

    async def _sweep_loop(self) -> None:
        while not self.stopping:
            await asyncio.sleep(self.settings.sweep_interval)
            self.sweep()

    def sweep(self) -> None:
        """Hibernate objects whose only activity is open sockets; evict idle ones."""
        now = time.monotonic()
        settings = self.settings
        for record in list(self.records.values()):
            quiet = now - record.last_active
            if record.sockets:
                if record.instance is not None and quiet >= settings.hibernate_after:
                    record.hibernate()
            elif quiet >= settings.idle_timeout and record.idle:
                task = asyncio.get_running_loop().create_task(record.evict())
                self._evictions.add(task)
                task.add_done_callback(self._evictions.discard)
