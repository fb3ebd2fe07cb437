"""Routing: where an event for an object runs, and getting it there.

An event reaching a node for object X runs here if X lives here. Otherwise: if X's lease is
free, this node takes it (placement: the first node that needs a free object hosts it); if a
live node holds it, the event is forwarded over the link to that node; if the holder is gone
(it died, its link stopped answering, or it said it no longer has X) and its lease has not
expired yet, the event waits for the lease, up to ``activation_timeout``. Objects of a
jurisdiction this node does not serve go to a node that serves it. A stopping node takes no
new objects and forwards what it does not hold.

The lease is the truth: who owns X is remembered no longer than the lease read from Redis
had left, so a paused or cut-off owner is looked up again within one lease TTL, and then
waited out. A node that cannot reach Redis takes no objects: it sends its own clients'
events to another node, and answers events forwarded to it with ``ObjectMoved``.

A forwarded event carries a hop count: a node may forward an event it received once more
(to the owner it knows), but no further, so a stale view of ownership cannot bounce events
around. An event that reaches a node that cannot host it comes back ``ObjectMoved``, and the
first node looks again. An event whose node vanished mid-way fails ``OutcomeUnknown``: only
the caller can know whether running it twice is safe.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..base.errors import (
    HeldElsewhere,
    ObjectMoved,
    ObjectUnavailable,
    RecordGone,
    StorageUnavailable,
)
from ..cluster.registry import NodeInfo, Registry
from ..objects.events import Event, RpcEvent
from ..storage.lease import Lease
from .record import ObjectRecord
from .replicas import Replicas
from .socketset import serve_socket

if TYPE_CHECKING:
    from ..base.config import Settings
    from ..base.stats import NodeStats
    from ..cluster.links import Links
    from ..objects.ids import ObjectId
    from ..objects.namespace import Namespace
    from ..sockets.websocket import SocketRequest, Transport

T = TypeVar("T")

#: How many times an event may be forwarded (client's node -> owner -> owner's successor).
MAX_HOPS = 2


class RouteHost(Protocol):
    """What routing needs from its node."""

    node_id: str
    settings: Settings
    stats: NodeStats
    stopping: bool
    registry: Registry
    links: Links
    replicas: Replicas

    def record_of(self, namespace: Namespace, object_id: ObjectId) -> ObjectRecord | None: ...
    def local_record(self, namespace: Namespace, object_id: ObjectId) -> ObjectRecord: ...
    def reaches_store(self, object_id: ObjectId | None) -> bool: ...


class Router:
    """Runs events where their object lives (a namespace.Dispatcher, a cluster.Forwarder)."""

    def __init__(self, node: RouteHost) -> None:
        self.node = node
        self.settings = node.settings
        #: (namespace, hex) -> its owner elsewhere, and until when (monotonic) to believe it:
        #: no longer than the lease it was read from had left.
        self._owners: dict[tuple[str, str], tuple[NodeInfo, float]] = {}
        #: (namespace, hex) -> a holder that said it no longer has the object (its lease may
        #: still stand in Redis: wait it out instead of asking that node again), and until when.
        self._disowned: dict[tuple[str, str], tuple[str, float]] = {}

    @property
    def forwarding(self) -> bool:
        """Only nodes that share a cluster secret talk to each other."""
        return bool(self.node.settings.cluster_secret)

    async def dispatch(
        self, namespace: Namespace, object_id: ObjectId, event: Event, hops: int = 0
    ) -> Any:
        """Run ``event`` on the object, here or where it lives; its result. A call of a
        replicated class answers ``[version, result]`` (the version it wrote or read at), and
        a read-only one runs on this node's replica when it can (replicas.py)."""
        versioned = namespace.replicated and isinstance(event, RpcEvent)
        record = self.node.record_of(namespace, object_id)
        if record is not None and record.instance is not None:
            # The common case, without the search below: the object is live here.
            handler = event.handler(record)
            try:
                result = await record.run(handler, wait_output=event.wait_output, kind=event.kind)
            except RecordGone:
                pass  # (nothing ran: look for it again below)
            except HeldElsewhere as held:
                assert isinstance(held.info, NodeInfo)
                self._remember(namespace, object_id, held.info, held.left, hops)
            else:
                return _with_version(record, result) if versioned else result
        elif (
            record is None
            and isinstance(event, RpcEvent)
            and versioned
            and event.readonly
            and not hops
            and not self.node.stopping
        ):
            served = await self.node.replicas.read(namespace, object_id, event)
            if served is not None:
                return served

        async def here(record: ObjectRecord) -> Any:
            handler = event.handler(record)
            result = await record.run(handler, wait_output=event.wait_output, kind=event.kind)
            return _with_version(record, result) if versioned else result

        async def there(info: NodeInfo) -> Any:
            return await self.node.links.to(info).request(
                event.kind, namespace.name, object_id.hex, hops + 1, event.wire()
            )

        return await self._route(namespace, object_id, hops, here, there)

    async def connect(
        self,
        namespace: Namespace,
        object_id: ObjectId,
        conn: Transport,
        request: SocketRequest,
        hops: int = 0,
    ) -> None:
        """Hand a client socket to the object, here or through a tunnel; returns once it is
        served (a local socket detached from its task), or at its end (a tunnel)."""

        async def here(record: ObjectRecord) -> None:
            await serve_socket(record, conn, request)

        async def there(info: NodeInfo) -> None:
            await self.node.links.to(info).tunnel(
                namespace.name, object_id.hex, hops + 1, request, conn
            )

        await self._route(namespace, object_id, hops, here, there)

    async def watch(
        self,
        namespace: Namespace,
        object_id: ObjectId,
        conn: Transport,
        request: SocketRequest,
    ) -> None:
        """Hand a watching socket to this node's replica, or (when it can have none) to the
        object, as ``connect`` does."""
        replicas = self.node.replicas
        if (
            namespace.replicated
            and not self.node.stopping
            and await replicas.watch(namespace, object_id, conn, request)
        ):
            return
        await self.connect(namespace, object_id, conn, request)

    async def _route(
        self,
        namespace: Namespace,
        object_id: ObjectId,
        hops: int,
        here: Callable[[ObjectRecord], Awaitable[T]],
        there: Callable[[NodeInfo], Awaitable[T]],
    ) -> T:
        """Find the object and act on it (``here`` on its record, ``there`` on its node),
        looking again after anything that guarantees nothing ran."""
        deadline = time.monotonic() + self.node.settings.activation_timeout
        attempt = 0
        key = (namespace.name, object_id.hex)
        try:
            while True:
                where = await self._where(namespace, object_id, hops)
                if isinstance(where, ObjectRecord):
                    try:
                        return await here(where)
                    except RecordGone:
                        attempt = await self._pause(attempt, deadline, namespace, object_id)
                    except HeldElsewhere as held:
                        assert isinstance(held.info, NodeInfo)
                        self._remember(namespace, object_id, held.info, held.left, hops)
                    continue
                try:
                    return await there(where)
                except ObjectMoved as moved:
                    if moved.may_have_run:  # (said of an event that may have run after all)
                        raise  # only the caller may send it again
                    # Nothing ran there: look again.
                    self._owners.pop(key, None)
                    if not self.node.reaches_store(object_id):
                        # Redis is out of reach here, and the other node could not take the
                        # event either: this node cannot take the object over. Say so now.
                        raise StorageUnavailable(
                            f"{namespace.name}:{object_id.hex[:12]} cannot be reached: this "
                            f"node has lost Redis and {where.node_id} did not take the event",
                            may_have_run=False,
                        ) from None
                    # It may still hold the lease in Redis: wait that out, do not ask again.
                    until = time.monotonic() + self.settings.lease_ttl
                    self._disowned[key] = (where.holder, until)
                    attempt = await self._pause(attempt, deadline, namespace, object_id)
        except ObjectMoved as exc:
            if hops:
                raise  # back to the node that forwarded it, saying whether anything ran
            raise ObjectUnavailable(str(exc), may_have_run=exc.may_have_run) from None

    async def _where(
        self, namespace: Namespace, object_id: ObjectId, hops: int
    ) -> ObjectRecord | NodeInfo:
        node = self.node
        key = (namespace.name, object_id.hex)
        record = node.record_of(namespace, object_id)
        if record is not None:
            return record
        jurisdiction = object_id.jurisdiction
        if jurisdiction is not None and jurisdiction not in node.settings.jurisdictions:
            return await self._elsewhere(hops, jurisdiction)
        known = self._owners.get(key)
        if known is not None:
            info, until = known
            if time.monotonic() < until and not node.links.is_unreachable(info.node_id):
                if hops >= MAX_HOPS:
                    raise ObjectMoved(f"{namespace.name}:{object_id.hex[:12]} lives elsewhere")
                return info
            del self._owners[key]
        if node.stopping:
            return await self._elsewhere(hops, None)
        if not node.reaches_store(object_id):
            # Redis is out of reach from here: this node can take no object. Its own
            # clients' events go to another node; events forwarded here go back.
            if hops or not self.forwarding:
                raise ObjectMoved(f"node {node.node_id} cannot reach Redis")
            return await self._elsewhere(hops, jurisdiction)
        return node.local_record(namespace, object_id)

    async def _elsewhere(self, hops: int, jurisdiction: str | None) -> NodeInfo:
        """Some other live node (serving ``jurisdiction``) to send the event to."""
        what = f"jurisdiction {jurisdiction!r}" if jurisdiction else "this object"
        if hops >= MAX_HOPS:
            raise ObjectMoved(f"this node cannot host {what}")
        if not self.forwarding:
            raise ObjectUnavailable(
                f"this node cannot host {what} and has no CLUSTER_SECRET to forward it"
            )
        registry = self.node.registry
        # (cut off from Redis, this node still knows who was alive a moment ago)
        known = await registry.alive() if self.node.reaches_store(None) else registry.last_alive
        candidates = [
            info
            for info in known
            if info.node_id != self.node.node_id
            and (jurisdiction is None or jurisdiction in info.jurisdictions)
            and not self.node.links.is_unreachable(info.node_id)
        ]
        if not candidates:
            raise ObjectUnavailable(f"no live node can host {what} right now")
        return random.choice(candidates)

    def _remember(
        self, namespace: Namespace, object_id: ObjectId, info: NodeInfo, left: float, hops: int
    ) -> None:
        """``info`` holds the object's lease, which had ``left`` seconds to run when read."""
        if hops >= MAX_HOPS:
            raise ObjectMoved(f"{namespace.name}:{object_id.hex[:12]} lives elsewhere")
        self._owners[(namespace.name, object_id.hex)] = (info, time.monotonic() + left)

    def forget_node(self, node_id: str) -> None:
        """A node's link broke: stop sending its objects' events there."""
        for key in [k for k, (info, _) in self._owners.items() if info.node_id == node_id]:
            del self._owners[key]

    def _disowns(self, key: tuple[str, str], holder: str) -> bool:
        """Whether ``holder`` said lately that it no longer has the object."""
        said = self._disowned.get(key)
        if said is None:
            return False
        if said[0] == holder and time.monotonic() < said[1]:
            return True
        del self._disowned[key]
        return False

    async def acquire_lease(self, record: ObjectRecord) -> Lease:
        """Take the record's lease (placement: the first node that needs a free object hosts
        it). If a live node holds it, raise HeldElsewhere (the event goes there); if its
        holder is gone, cannot be reached or said it no longer has the object, wait (up to
        activation_timeout) for the lease to expire."""
        node = self.node
        deadline = time.monotonic() + node.settings.activation_timeout
        key = (record.namespace.name, record.id.hex)
        delay = 0.02
        waited = False
        while True:
            if node.stopping:
                raise ObjectMoved(f"node {node.node_id} is stopping")
            try:  # (bounded: a Redis that stopped answering must not hold the event long)
                got = await asyncio.wait_for(
                    record.store.leases.acquire(record.keys), node.settings.lease_ttl / 2
                )
            except TimeoutError:
                raise StorageUnavailable(
                    f"{record.describe()} could not be activated: Redis did not answer in "
                    f"{node.settings.lease_ttl / 2:g}s",
                    may_have_run=False,
                ) from None
            if isinstance(got, Lease):
                node.stats.leases_acquired += 1
                self._disowned.pop(key, None)
                if waited:  # its holder was gone: this node took the object over
                    node.stats.lease_takeovers += 1
                return got
            waited = True
            if self.forwarding and not self._disowns(key, got.holder):
                info = await node.registry.lookup(got.holder.partition("@")[0])
                if (
                    info is not None
                    and info.holder == got.holder
                    and not node.links.is_unreachable(info.node_id)
                ):
                    record.discard(ObjectMoved(f"{record.describe()} lives on {info.node_id}"))
                    raise HeldElsewhere(info, got.left)
            if time.monotonic() + delay > deadline:
                hint = "" if self.forwarding else "; set CLUSTER_SECRET on every node"
                raise ObjectUnavailable(
                    f"{record.describe()} is held by {got.holder}, which did not release it "
                    f"within {node.settings.activation_timeout:.0f}s{hint}"
                )
            # (no sooner than the lease can have run out, and never a long nap past it)
            await asyncio.sleep(min(max(delay, got.left), 0.1))
            delay = min(delay * 2, 0.1)

    async def _pause(
        self, attempt: int, deadline: float, namespace: Namespace, object_id: ObjectId
    ) -> int:
        if time.monotonic() > deadline:
            raise ObjectUnavailable(
                f"{namespace.name}:{object_id.hex[:12]} could not be reached in "
                f"{self.node.settings.activation_timeout:.0f}s; retry"
            )
        await asyncio.sleep(min(0.02 * 2**attempt, 0.25))
        return attempt + 1


def _with_version(record: ObjectRecord, result: Any) -> list[Any]:
    """A replicated class's call result with the object's version: what the call read or
    wrote is committed by now, so this version has it."""
    state = record.state
    return [state.commits.version if state is not None else 0, result]
