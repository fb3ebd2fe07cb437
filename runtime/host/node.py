"""A node: one server process hosting objects, with its stores and background loops.

The node keeps a table of the objects it owns (records), renews all their leases in one
pipelined batch per tick, hibernates or evicts idle ones, polls alarms, heartbeats into the
registry, and routes events (routing.py) to the objects here or on other nodes (cluster.py).

``start()``/``stop()`` bracket its life. ``stop()`` drains: the node leaves the registry and
takes no new objects, lets running events finish, commits, closes sockets with 1012 (service
restart) and releases every lease at once, so other nodes take the objects over without
waiting for a TTL. Leases are renewed until the very end.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Collection, Iterable

from ..base.config import Settings
from ..base.errors import ConfigurationError, Fenced, ObjectMoved, UnknownNamespace
from ..base.stats import NodeStats
from ..cluster import auth
from ..cluster.links import Links
from ..cluster.registry import NodeInfo, Registry
from ..objects.ids import ObjectId
from ..objects.namespace import Env, Namespace
from ..objects.object import DurableObject
from ..sockets.websocket import CloseCode
from ..storage.embedded import ValkeySupervisor
from ..storage.lease import Lease
from ..storage.store import RedisStore
from . import departure
from .alarms import AlarmService
from .keys import KEYRING, KeyRing, SigningKeys
from .record import ObjectRecord
from .replicas import Replicas
from .routing import Router

log = logging.getLogger("runtime.node")


class Node:
    """One runtime process: its objects, its leases, its loops.

    The node is the host of the narrow interfaces its parts declare: ``RecordHost``
    (record.py), ``RouteHost`` (routing.py), ``LinkHost`` (cluster.py), ``AlarmHost``
    (alarms.py) and ``EnvHost`` (namespace.py).
    """

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
        self.stats = NodeStats(enabled=self.settings.metrics)
        self.store = RedisStore(url, self.settings, self.holder, observe=self.stats.round_trip)
        self.stores: dict[str | None, RedisStore] = {None: self.store}
        for name in self.settings.jurisdictions:
            self.stores[name] = RedisStore(
                self.settings.url_for(name),
                self.settings,
                self.holder,
                name,
                observe=self.stats.round_trip,
            )
        self.alarms = {j: AlarmService(self, s) for j, s in self.stores.items()}
        me = NodeInfo(
            self.node_id, self.holder, self.settings.public_url(), self.settings.jurisdictions
        )
        self.registry = Registry(
            self.store.redis, self.settings.key_prefix, me, self.settings.heartbeat_interval
        )
        self.router = Router(self)
        #: Read-only instances of objects whose primaries live elsewhere (replicas.py).
        self.replicas = Replicas(self)
        self.links = Links(self, self.stats.forwarded)
        #: Checks the handshakes of links and operator requests made to this node.
        self.verifier = auth.Verifier(self.settings.cluster_secret, self.node_id)
        self.env = Env(self)
        self.namespaces: dict[str, Namespace] = {}
        self.records: dict[tuple[str, str], ObjectRecord] = {}
        self.signing_keys = SigningKeys(self.settings.secret_key)
        #: The embedded Valkey's supervisor, when the node runs one (its state is shown).
        self.embedded: ValkeySupervisor | None = None
        self.register(KEYRING, KeyRing)
        self.stopping = False  # no new objects; loops other than lease renewal end
        self._drained = False  # every object is shut down (the node still forwards)
        self._closed = False  # lease renewal, links and stores are closed too
        self._stopped = asyncio.Event()
        self.started = False
        self._tasks: list[asyncio.Task[None]] = []
        self._evictions: set[asyncio.Task[bool]] = set()

    # ------------------------------------------------------------ registry

    def register(self, name: str, cls: type[DurableObject], env: Env | None = None) -> Namespace:
        """Register an object class under a namespace name (the same on every node).
        ``env`` is what its instances get as ``self.env`` (an app's; the node's by default)."""
        if not (isinstance(cls, type) and issubclass(cls, DurableObject)):
            raise ConfigurationError(f"namespace {name!r}: {cls!r} is not a DurableObject class")
        if name in self.namespaces:
            if self.namespaces[name].cls is cls and env in (None, self.namespaces[name].env):
                return self.namespaces[name]
            raise ConfigurationError(f"namespace {name!r} is already registered")
        if not name or ":" in name or "{" in name or "}" in name or len(name) > 64:
            raise ConfigurationError(
                f"namespace name {name!r}: 1-64 characters, without ':', '{{' or '}}'"
            )
        namespace = Namespace(self.router, name, cls, env or self.env)
        for jurisdiction in self.settings.all_jurisdictions:
            namespace.ids.add_jurisdiction(jurisdiction)
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

    def store_for(self, object_id: ObjectId) -> RedisStore:
        store = self.stores.get(object_id.jurisdiction)
        if store is None:  # the router sends such objects to a node that serves them
            raise ObjectMoved(f"this node does not serve jurisdiction {object_id.jurisdiction!r}")
        return store

    def alarms_for(self, object_id: ObjectId) -> AlarmService:
        return self.alarms[self.store_for(object_id).jurisdiction]

    async def signing_key(self, purpose: str) -> bytes:
        """The key apps sign ``purpose``'s tokens with (see keys.py)."""
        return await self.signing_keys.get(purpose, self)

    async def keyring_key(self, purpose: str) -> str:
        return str(await self.namespace(KEYRING).get_by_name("signing").key(purpose))

    def forget_node(self, node_id: str) -> None:
        """A link to ``node_id`` broke: its objects are looked up again (routing)."""
        self.router.forget_node(node_id)

    def link_refused(self, peer: str, why: str) -> None:
        self.links.refused(peer, why)

    def alarm_report(self, what: str, count: int = 1) -> None:
        """Alarms were claimed, or one fired, was retried or was dropped (for the metrics)."""
        name = f"alarms_{what}"
        setattr(self.stats, name, getattr(self.stats, name) + count)

    def alarms_waiting(self, count: int) -> None:
        """How many alarm-index entries were due at the last poll (for the metrics)."""
        self.stats.alarms_due = count

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect to every store, start the background loops, join the registry."""
        for store in self.stores.values():
            await store.connect()
        self.registry.redis = self.store.redis  # a cluster client may have replaced it
        await self.registry.beat()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._renew_loop(), name="lease-renewal"),
            loop.create_task(self._sweep_loop(), name="sweeper"),
            loop.create_task(self.registry.run(self._stopped), name="heartbeat"),
            *(loop.create_task(a.run(), name=f"alarms-{j}") for j, a in self.alarms.items()),
        ]
        self.started = True
        if "*" in self.settings.trusted_proxies:
            log.warning(
                "TRUSTED_PROXIES=* believes X-Forwarded-For from anyone: any client that "
                "reaches this port can claim any address. List your balancer's address instead"
            )
        if not self.settings.cluster_secret:
            others = [n.node_id for n in await self.registry.alive() if n.node_id != self.node_id]
            if others:
                log.warning(
                    "nodes %s share this Redis but this node has no CLUSTER_SECRET: it cannot "
                    "forward to them, so objects they hold (and their alarms) are unavailable "
                    "here. Give every node the same CLUSTER_SECRET",
                    ", ".join(sorted(others)),
                )
            else:
                log.info("no CLUSTER_SECRET: this node will not forward to other nodes")
        log.info(
            "node %s started (holder %s, %s)", self.node_id, self.holder, self.settings.public_url()
        )

    async def begin_drain(self) -> None:
        """Stop taking objects and leave the registry, so other nodes stop sending here."""
        if self.stopping:
            return
        self.stopping = True
        self._stopped.set()
        await self.registry.leave()

    async def drain(self, code: int = 1012, reason: str = "service restart") -> None:
        """Let running events finish, commit, close sockets with ``code``, release leases.
        Stores and links stay up: events still arriving are forwarded to other nodes."""
        if self._drained:
            return
        self._drained = True
        await self.begin_drain()
        others = self._tasks[1:]  # all but lease renewal, which goes on until stop()
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        for alarms in self.alarms.values():
            await alarms.stop()
        await asyncio.gather(*self._evictions, return_exceptions=True)
        await self.replicas.stop()
        records = list(self.records.values())
        await asyncio.gather(*(departure.shut_down(r, code, reason) for r in records))
        log.info("node %s drained; released %d objects", self.node_id, len(records))

    async def stop(self, code: int = 1012, reason: str = "service restart") -> None:
        """Drain, then stop renewing, close links and stores."""
        if self._closed:
            return
        await self.drain(code, reason)
        self.records.clear()
        self._closed = True
        renewal = self._tasks[0] if self._tasks else None
        if renewal is not None:
            renewal.cancel()
            await asyncio.gather(renewal, return_exceptions=True)
        await self.links.close()
        for store in self.stores.values():
            await store.close()
        log.info("node %s stopped", self.node_id)

    # ------------------------------------------------------------ objects

    def local_record(self, namespace: Namespace, object_id: ObjectId) -> ObjectRecord:
        """The record of an object to host here (made on first use)."""
        key = (namespace.name, object_id.hex)
        record = self.records.get(key)
        if record is None:
            if self.stopping:
                raise ObjectMoved(f"node {self.node_id} is stopping")
            record = ObjectRecord(self, namespace, object_id)
            self.records[key] = record
        return record

    def forget(self, record: ObjectRecord) -> None:
        key = (record.namespace.name, record.id.hex)
        if self.records.get(key) is record:
            del self.records[key]

    def all_records(self) -> Iterable[ObjectRecord]:
        return self.records.values()

    def tunnel_counts(self) -> dict[tuple[str, str], int]:
        return self.links.tunnels()

    def reaches_store(self, object_id: ObjectId | None) -> bool:
        """Whether this node can reach the Redis of ``object_id`` (None: the node's own) as
        far as it knows: a renewal round that got no answer says it cannot, until one does.
        (True for a jurisdiction this node does not serve: no Redis of its own is involved.)"""
        store = self.stores.get(None if object_id is None else object_id.jurisdiction)
        return store is None or store.reachable

    def record_of(self, namespace: Namespace, object_id: ObjectId) -> ObjectRecord | None:
        """The record of an object hosted here, if any."""
        return self.records.get((namespace.name, object_id.hex))

    async def acquire_lease(self, record: ObjectRecord) -> Lease:
        return await self.router.acquire_lease(record)

    # ------------------------------------------------------------ introspection

    @property
    def live_objects(self) -> int:
        """Instances in memory (hibernated objects do not count)."""
        return sum(1 for r in self.records.values() if r.instance is not None)

    def live_ids(self) -> list[str]:
        """Objects this node may serve now (a paused node whose lease deadline passed does
        not count its instances, whatever its memory still holds)."""
        return [
            f"{ns}:{h}"
            for (ns, h), r in self.records.items()
            if r.instance is not None and r.lease.live
        ]

    # ------------------------------------------------------------ loops

    async def _renew_loop(self) -> None:
        """Renew every lease each ``lease_ttl / 2``, the round in a task of its own; and wake
        at each local deadline meanwhile, so an object whose lease was not renewed in time
        is given up (fenced) at its own deadline, before the lease can run out in Redis,
        whatever the round in flight is waiting for -- unless that round's store has
        answered part of it since it was sent: Redis is then slow, not out of reach, and the
        lease waits for the round's answer (at most one renewal interval). Meanwhile nothing
        uses it unconfirmed: an event or a read past the deadline renews it first
        (activation.confirm). Otherwise a busy node whose round of 10,000 leases outlasted
        the deadline's slack would give up every object it holds."""
        interval = self.settings.lease_ttl / 2
        next_round = time.monotonic()
        renewing: asyncio.Task[None] | None = None
        started = 0.0  # when the round in flight was sent
        # The loops also watch their flag: a cancellation that arrives while redis-py is
        # mid-command can be turned into a connection error and swallowed.
        try:
            while not self._closed:
                now = time.monotonic()
                if now >= next_round and (renewing is None or renewing.done()):
                    next_round, started = now + interval, now
                    renewing = asyncio.get_running_loop().create_task(self._renew_round())
                in_flight = renewing is not None and not renewing.done()
                answering = (
                    {s for s in self.stores.values() if s.leases.answered_at >= started}
                    if in_flight
                    else set()
                )
                # A lease whose deadline passed before the round in flight was sent waits
                # for that round too (after a pause it may renew, or revive, every one).
                self.fence_overdue(spare_until=started if in_flight else 0.0, spare=answering)
                now = time.monotonic()
                wake = min(
                    [
                        next_round,
                        *(
                            r.lease.deadline
                            for r in self._leased()
                            if r.lease.deadline > now and r.store not in answering
                        ),
                    ]
                )
                waiting = {renewing} if renewing is not None and not renewing.done() else set()
                # (a round that ends wakes the loop: its answers may leave nothing overdue)
                if waiting:
                    await asyncio.wait(waiting, timeout=max(0.0, wake - now))
                else:
                    await asyncio.sleep(max(0.0, wake - now))
        finally:
            if renewing is not None:
                renewing.cancel()

    async def _renew_round(self) -> None:
        try:
            await self.renew_leases()
        except Exception:  # never let a round kill the loop: the local deadlines protect reads
            log.exception("lease renewal round failed")

    def _leased(self) -> list[ObjectRecord]:
        return [r for r in self.records.values() if r.lease.value and not r.gone]

    async def renew_leases(self) -> None:
        """Renew every lease of this node in one pipelined batch per store, waiting for the
        answer at most one renewal interval. A round that gets no answer (or a store with no
        lease here that does not answer a ping) makes the store count as out of reach until
        one does; leases it did not renew are given up at their own deadlines
        (fence_overdue)."""
        interval = self.settings.lease_ttl / 2
        for store in self.stores.values():
            records = [r for r in self._leased() if r.store is store]
            if not records:
                store.reachable = await self._answers(store)
                continue
            items = [(r.keys, r.lease) for r in records]
            results: list[bool | None]
            try:
                results = await asyncio.wait_for(store.leases.renew_many(items), interval)
            except TimeoutError:
                results = [None] * len(records)
            store.reachable = any(ok is not None for ok in results)
            self.stats.leases_renewed += sum(1 for ok in results if ok)
            for record, ok in zip(records, results, strict=True):
                if ok is False and not record.gone:
                    self.stats.leases_lost += 1
                    log.warning(
                        "lease of %s was lost; discarding it",
                        record.describe(),
                        extra=record.log_fields,
                    )
                    record.discard(
                        Fenced(f"{record.describe()} lost its lease", may_have_run=False),
                        CloseCode.SERVICE_RESTART,
                    )

    async def _answers(self, store: RedisStore) -> bool:
        """Whether ``store`` answers a PING within a quarter of the lease TTL."""
        try:
            await asyncio.wait_for(store.redis.ping(), self.settings.lease_ttl / 4)
        except (Exception, TimeoutError):
            return False
        return True

    def fence_overdue(self, spare_until: float = 0.0, spare: Collection[RedisStore] = ()) -> None:
        """Give up every object whose lease this node could not renew before its local
        deadline (record.fence): it may no longer be ours by the time Redis answers. Leases
        whose deadline is before ``spare_until`` are spared (a round sent since is renewing
        them), and so are those of the stores in ``spare`` (answering the round in flight)."""
        now = time.monotonic()
        overdue = [
            r
            for r in self._leased()
            if spare_until < r.lease.deadline <= now and r.store not in spare
        ]
        if not overdue:
            return
        for record in overdue:
            record.store.reachable = False  # (no renewal came back in time: until one does)
            record.fence("its lease could not be renewed before its deadline")
        log.warning(
            "gave up %d object%s: their leases could not be renewed in time (is Redis reachable "
            "from this node?); they are served again where they are taken next",
            len(overdue),
            "" if len(overdue) == 1 else "s",
        )

    async def _sweep_loop(self) -> None:
        while not self.stopping:
            await asyncio.sleep(self.settings.sweep_interval)
            self.sweep()

    def sweep(self) -> None:
        """Hibernate objects whose only activity is open sockets; evict idle ones; let
        unused replicas go."""
        self.replicas.sweep()
        now = time.monotonic()
        settings = self.settings
        for record in list(self.records.values()):
            quiet = now - record.last_active
            if record.sockets:
                after = record.namespace.cls.hibernate_after or settings.hibernate_after
                if record.instance is not None and quiet >= after:
                    record.hibernate()
            elif quiet >= settings.idle_timeout and record.idle:
                task = asyncio.get_running_loop().create_task(departure.evict(record))
                self._evictions.add(task)
                task.add_done_callback(self._evictions.discard)
