"""The replicas this node holds, and when a read-only call or a watching socket is served by
one instead of the primary (docs/replicas.md has the model and its guarantees).

A read-only call (``@rpc(readonly=True)``) of a replicated class, made on a node that does not
host the object, runs on this node's replica when

- the replica has reached the least version the caller may read (``min_version``: the
  newest the caller's stub has seen, so it reads its own writes and never goes back); a
  replica behind waits up to ``replica_wait`` for the published commits, and
- it is within the staleness bound: at most ``replica_max_lag_commits`` versions behind what
  it knows exists, and known to have had everything as of at most ``replica_max_lag_ms``
  ago (the feed's answered pings say so, storage/feed.py).

Otherwise the call goes to the primary (``None`` here: the router forwards it), and is
counted with its reason. The first call for an object builds its replica (it waits for the
load, at most half a lease TTL). A watching socket (``stub.watch``) is handed to the replica
on the node it reached. A replica nobody used for ``idle_timeout`` and that no socket
watches is let go. One feed (one subscribed connection) per store serves them all.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from ..base.errors import ObjectMoved, RecordGone
from ..objects.object import DurableObject
from ..sockets.websocket import CloseCode
from ..storage.feed import Feed
from ..storage.replica import Published, decode_commit
from .replica import Replica, TooBig
from .socketset import serve_socket

if TYPE_CHECKING:
    from ..base.config import Settings
    from ..base.stats import NodeStats
    from ..objects.events import RpcEvent
    from ..objects.ids import ObjectId
    from ..objects.namespace import Namespace
    from ..sockets.websocket import SocketRequest, Transport
    from ..storage.store import RedisStore

log = logging.getLogger("runtime.replicas")

#: How long an object found over the size bounds is not tried as a replica again.
REFUSED_FOR = 30.0


class ReplicaHost(Protocol):
    """What the replicas need from their node."""

    settings: Settings
    stats: NodeStats
    node_id: str

    def store_for(self, object_id: ObjectId) -> RedisStore: ...
    def reaches_store(self, object_id: ObjectId | None) -> bool: ...


class Replicas:
    """Every replica of this node, by object; and their feeds, one per store."""

    def __init__(self, host: ReplicaHost) -> None:
        self.host = host
        self.settings = host.settings
        self.stats = host.stats
        self.node_id = host.node_id
        self.table: dict[tuple[str, str], Replica] = {}
        self._by_channel: dict[str, Replica] = {}
        self._feeds: dict[str, Feed] = {}
        self._refused: dict[tuple[str, str], float] = {}

    @property
    def enabled(self) -> bool:
        return self.settings.replicas

    def __len__(self) -> int:
        return len(self.table)

    # ------------------------------------------------------------ serving

    async def read(self, namespace: Namespace, object_id: ObjectId, event: RpcEvent) -> Any:
        """The call's result ``[version read at, result]`` from this node's replica, or None
        when it must go to the primary."""
        replica = await self._get(namespace, object_id, self.settings.lease_ttl / 2)
        if replica is None:
            return None
        needed = event.min_version
        if replica.version < needed and not await replica.reached(
            needed, self.settings.replica_wait
        ):
            self.stats.replica_forwards["behind"] += 1
            return None
        commits, ms = lag(replica, time.monotonic())
        if commits > self.settings.replica_max_lag_commits or ms > self.settings.replica_max_lag_ms:
            self.stats.replica_forwards["stale"] += 1
            return None
        at = 0

        async def handler(instance: DurableObject) -> Any:
            nonlocal at
            result = await event.run(instance)
            at = replica.version  # (at least what the call read: versions only grow)
            return result

        try:
            result = await replica.run(handler, kind="rpc")
        except RecordGone:  # (let go before the call started: nothing ran)
            self.stats.replica_forwards["gone"] += 1
            return None
        except BaseException:
            self.stats.replica_reads += 1  # (it ran here, and failed: its error is the answer)
            raise
        self.stats.replica_reads += 1
        return [at, result]

    async def watch(
        self,
        namespace: Namespace,
        object_id: ObjectId,
        conn: Transport,
        request: SocketRequest,
    ) -> bool:
        """Hand a watching socket to this node's replica; False when there can be none (it
        then goes to the primary, as an ordinary socket)."""
        replica = await self._get(namespace, object_id, self.settings.activation_timeout)
        for _ in range(3):  # (a connect that spanned a reload is run again on the new instance)
            try:
                if replica is None or replica.gone or not await replica.ready(1.0):
                    return False
                await serve_socket(replica, conn, request)
                return True
            except RecordGone:
                continue
            except TooBig:
                return False
        return False

    async def _get(self, namespace: Namespace, object_id: ObjectId, wait: float) -> Replica | None:
        """This node's loaded replica of the object (made now if needed, waiting up to
        ``wait`` for it to load), or None."""
        if not self.enabled or not self.host.reaches_store(object_id):
            if self.enabled:
                self.stats.replica_forwards["no_redis"] += 1
            return None
        key = (namespace.name, object_id.hex)
        replica = self.table.get(key)
        if replica is None:
            until = self._refused.get(key)
            if until is not None:
                if time.monotonic() < until:
                    self.stats.replica_forwards["too_big"] += 1
                    return None
                del self._refused[key]
            try:
                store = self.host.store_for(object_id)
            except ObjectMoved:  # (a jurisdiction this node does not serve)
                return None
            replica = Replica(self, namespace, object_id, store, self._feed(store))
            self.table[key] = replica
            self._by_channel[replica.keys.channel] = replica
            self._by_channel[replica.keys.tell] = replica
        replica.last_used = time.monotonic()
        try:
            loaded = await replica.ready(wait)
        except TooBig:
            self._refused[key] = time.monotonic() + REFUSED_FOR
            self._drop(replica)
            self.stats.replica_forwards["too_big"] += 1
            return None
        if not loaded:
            self.stats.replica_forwards["loading"] += 1
            return None
        return replica

    # ------------------------------------------------------------ the feeds

    def _feed(self, store: RedisStore) -> Feed:
        feed = self._feeds.get(store.url)
        if feed is None:
            interval = self.settings.replica_max_lag_ms / 4000
            feed = Feed(store.url, self, interval, max(4 * interval, self.settings.lease_ttl / 2))
            self._feeds[store.url] = feed
        return feed

    def published(self, channel: str, data: bytes) -> None:
        replica = self._by_channel.get(channel)
        if replica is None:
            return
        if channel == replica.keys.tell:
            replica.told(data)
            return
        try:
            commit = decode_commit(data)
        except ValueError as exc:
            log.warning("%s: %s; reloading", replica.describe(), exc)
            replica.lost()
            return
        replica.published(commit)

    def feed_lost(self, feed: Feed) -> None:
        """Commits on the feed may have been missed: its replicas load again."""
        for replica in list(self.table.values()):
            if replica.feed is feed:
                replica.lost()

    def applied(self, replica: Replica, commit: Published) -> None:
        """A replica applied a commit: how long after the primary made it."""
        self.stats.replica_applied += 1
        self.stats.replica_staleness(max(0.0, time.time() - commit.time_ms / 1000))

    # ------------------------------------------------------------ lifecycle

    def sweep(self) -> None:
        """Let go of replicas nobody used for idle_timeout and no socket watches; and of
        those that could not load for a lease TTL (Redis out of reach from here): their
        watchers reconnect, perhaps to a node that can serve them."""
        now = time.monotonic()
        self._refused = {k: until for k, until in self._refused.items() if until > now}
        for replica in list(self.table.values()):
            idle = now - replica.last_used >= self.settings.idle_timeout
            if (idle and not replica.sockets) or (
                replica.stale and now - replica.last_used >= self.settings.lease_ttl
            ):
                self._drop(replica)

    def _drop(self, replica: Replica, code: int = CloseCode.SERVICE_RESTART) -> None:
        key = (replica.namespace.name, replica.id.hex)
        if self.table.get(key) is replica:
            del self.table[key]
            for channel in (replica.keys.channel, replica.keys.tell):
                self._by_channel.pop(channel, None)
                replica.feed.unsubscribe(channel)
        replica.drop(code)

    async def stop(self) -> None:
        """Close every replica (their sockets with 1012: they reconnect) and the feeds."""
        for replica in list(self.table.values()):
            self._drop(replica)
        feeds, self._feeds = list(self._feeds.values()), {}
        await asyncio.gather(*(feed.close() for feed in feeds), return_exceptions=True)

    def figures(self) -> dict[str, Any]:
        """For /ops and /metrics: replicas held, the worst lag, the counters."""
        now = time.monotonic()
        lags = [lag(r, now) for r in self.table.values()]
        finite = [ms for _, ms in lags if ms != float("inf")]
        return {
            "held": len(self.table),
            "stale": sum(1 for r in self.table.values() if r.stale),
            "watchers": sum(len(r.sockets) for r in self.table.values()),
            "lag_commits_max": max((c for c, _ in lags), default=0),
            "lag_ms_max": round(max(finite, default=0.0), 1),
        }


def lag(replica: Replica, now: float) -> tuple[int, float]:
    """(commits, ms) a replica may be behind: the versions it knows exist and has not
    applied, and how long ago it was last known to have everything (docs/replicas.md)."""
    commits = max(0, replica.known - replica.version)
    confirmed = replica.feed.confirmed
    if replica.stale or not confirmed:
        return commits, float("inf")
    since = confirmed if not commits else min(confirmed, replica.behind_since or confirmed)
    return commits, max(0.0, now - since) * 1000
