"""One replica on this node: a read-only instance of an object whose primary may live on any
node, loaded whole from a snapshot and kept current by the primary's published commits.

Its channel subscribed first (no commit after the snapshot can be missed), it loads every key,
the alarm and the version in one ``snapshot.lua`` call and builds the instance over that copy.
Commits arrive in version order on the feed (storage/feed.py) and are applied one at a time,
holding the input gate, each followed by ``replica_update(changes)``: no event sees storage
and memory disagree. A gap, a version not newer than the one applied, or the feed lost makes
the replica *stale*: it reloads, and meanwhile serves nothing (calls go to the primary).

A replica hosts the seams an instance and its sockets need (``ContextHost``, ``SocketHost``,
``SocketOwner``), as a record does, but holds no lease and never writes (``ReadOnlyWrite``):
it acknowledges nothing, so fencing is untouched. ``replicas.py`` makes and serves them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from operator import methodcaller
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..base.errors import DurableObjectError, RecordGone, StorageUnavailable
from ..objects.gate import Delivery, InputGate, _current, run_blocking
from ..objects.object import Changes, DurableObject, ObjectContext
from ..sockets.frames import OutFrame
from ..sockets.websocket import CloseCode, ObjectWebSocket, Output
from ..storage.api import Storage
from ..storage.keyspace import ObjectKeys
from ..storage.replica import Published, ReplicaState
from .socketset import SocketSet

if TYPE_CHECKING:
    from ..base.config import Settings
    from ..base.stats import NodeStats
    from ..objects.ids import ObjectId
    from ..objects.namespace import Namespace
    from ..storage.feed import Feed
    from ..storage.store import RedisStore

log = logging.getLogger("runtime.replica")
T = TypeVar("T")
_Init = tuple[Callable[[], Awaitable[Any]], "asyncio.Future[Any]"]


class TooBig(Exception):
    """The object is over the replicas' size bounds: it gets none (reads go to the primary)."""


class ReplicaOwner(Protocol):
    """What a replica needs from the node's replicas (replicas.Replicas)."""

    settings: Settings
    stats: NodeStats
    node_id: str

    def applied(self, replica: Replica, commit: Published) -> None: ...


class Replica:
    """A read-only instance of one object on this node, and its copy of the object's state."""

    is_replica = True

    def __init__(
        self,
        owner: ReplicaOwner,
        namespace: Namespace,
        object_id: ObjectId,
        store: RedisStore,
        feed: Feed,
    ) -> None:
        self.owner = owner
        self.namespace = namespace
        self.id = object_id
        settings = owner.settings
        self.settings = settings
        self.keys = ObjectKeys.of(settings.key_prefix, namespace.name, object_id.hex, True)
        self.store = store
        self.feed = feed
        self.state = ReplicaState(settings, f"{namespace.name}:{object_id.hex[:12]}")
        self.storage: Storage | None = Storage(self.state)
        self.instance: DurableObject | None = None
        self.gate = InputGate(settings.max_queue)
        self.sockets = SocketSet()
        self.max_attachment_bytes = settings.max_attachment_bytes
        app = namespace.env.app
        self.app_name = app.name if app is not None else "-"
        self.log_fields = {
            "object_class": namespace.cls.__qualname__,
            "namespace": namespace.name,
            "object_id": object_id.hex[:12],
            "replica": "yes",
        }
        self.gone = False
        #: Not (yet, or no longer) a faithful copy: it serves nothing until it has loaded.
        self.stale = True
        self.loads = 0  # snapshots taken (the first, then reloads)
        self.too_big = False  # over the size bounds: it is let go, and its calls forwarded
        self.failing = False  # its last load failed (it tries again; calls go to the primary)
        self._fresh = asyncio.Event()  # set while not stale (or once found too big)
        #: The newest version heard of (a commit, or a caller that read or wrote it), and
        #: since when (monotonic) the replica has known it is behind.
        self.known = 0
        self.behind_since = 0.0
        self.last_used = time.monotonic()
        self._heard: dict[int, Published] = {}  # commits heard, not applied yet
        self._last_heard = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._loading: asyncio.Task[None] | None = None
        self._applying: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self.pending_init: list[_Init] | None = None
        self._hooked = namespace.cls.replica_update is not DurableObject.replica_update
        self._told = namespace.cls.replica_message is not DurableObject.replica_message

    def describe(self) -> str:
        return f"{self.namespace.name}:{self.id.hex[:12]} (replica)"

    def class_name(self) -> str:
        return self.namespace.cls.__qualname__

    @property
    def node_id(self) -> str:
        return self.owner.node_id

    @property
    def version(self) -> int:
        return self.state.version

    # ------------------------------------------------------------ loading

    def loading(self) -> None:
        """Start loading (again), unless a load is under way."""
        if self.gone or (self._loading is not None and not self._loading.done()):
            return
        self._loading = asyncio.get_running_loop().create_task(self._load_until_loaded())
        self._loading.add_done_callback(_retrieve)

    async def ready(self, timeout: float) -> bool:
        """Whether the replica is loaded (or loads within ``timeout``); TooBig: it cannot."""
        if not self.stale or self.failing:  # (failing: to the primary, without waiting)
            return not self.stale
        self.loading()
        try:  # (until it loads, or its first try fails: then the call goes to the primary)
            await asyncio.wait_for(self._fresh.wait(), timeout)
        except TimeoutError:
            return False
        if self.too_big:
            raise TooBig(f"{self.describe()} is over the replicas' size bounds")
        return not self.stale and not self.gone

    async def _load_until_loaded(self) -> None:
        """Load, and after a failure (Redis out of reach, commits missed) again, with backoff."""
        delay = 0.05
        while not self.gone:
            try:
                await self._load()
                return
            except TooBig:
                self.too_big = True
                self._fresh.set()
                return
            except Exception as exc:  # (its constructor too may fail: the same recovery)
                self.failing = True
                self._fresh.set()  # (whoever waits hears it now: stale, failing)
                self._fresh.clear()
                log.warning("%s could not load (%s); trying again", self.describe(), exc)
            await asyncio.sleep(delay)
            delay = min(2 * delay, 1.0)

    async def _load(self) -> None:
        await self.feed.subscribe(self.keys.channel)
        await self.feed.subscribe(self.keys.tell)
        k = self.keys
        settings = self.settings
        reply = await self.store.batcher.submit(
            self.store.scripts.snapshot,
            (k.data, k.alarm, k.version),
            (settings.replica_max_keys, settings.replica_max_bytes),
        )
        if len(reply) == 3 and reply[2] == -1:
            raise TooBig(f"{self.describe()} is over the replicas' size bounds")
        if self.gone:
            raise RecordGone
        await self.gate.reenter()  # (no event runs while everything changes)
        try:
            reloaded = self.loads > 0  # (not the instance: a failed try left it None)
            self.state.load(int(reply[0]), reply[1] or None, reply[2:])
            self.instance = None
            self.known = max(self.known, self.state.version)
            self._heard = {v: c for v, c in self._heard.items() if v > self.state.version}
            self._last_heard = max([self.state.version, *self._heard])
            if any(v not in self._heard for v in range(self.state.version + 1, self._last_heard)):
                self._heard.clear()  # (a gap already: load again)
                raise StorageUnavailable(f"{self.describe()} missed commits while loading")
            instance = await self._build()
            self.stale = self.failing = False
            self._fresh.set()
            self.loads += 1
            if reloaded:
                self.owner.stats.replica_reloads += 1
            if reloaded and self._hooked:
                changes = Changes(self.state.version, reloaded=True)
                await self._locked(instance, methodcaller("replica_update", changes))
        finally:
            self.gate.leave()
        self._caught_up()
        self._kick()

    async def _build(self) -> DurableObject:
        """The instance over the copy, with what its constructor asked to run first."""
        token = _current.set(None)
        try:
            self.pending_init = []
            try:
                instance = self.namespace.cls(ObjectContext(self), self.namespace.env)
            finally:
                init, self.pending_init = self.pending_init, None
            for fn, future in init:
                try:
                    future.set_result(await fn())
                except Exception as exc:
                    future.set_exception(exc)
                    future.exception()
                    raise
        finally:
            _current.reset(token)
        self.instance = instance
        return instance

    # ------------------------------------------------------------ commits

    def published(self, commit: Published) -> None:
        """A commit of the primary arrived on the feed (in version order, unless lost)."""
        if self.gone:
            return
        loading = self._loading is not None and not self._loading.done()
        if not loading and not self.stale and commit.version != self._last_heard + 1:
            # A gap (a message lost) or a version not newer (Redis lost its data): load again.
            log.info("%s missed commits; reloading", self.describe(), extra=self.log_fields)
            self.lost()
            return
        self._heard[commit.version] = commit
        self._last_heard = max(self._last_heard, commit.version)
        self.heard_of(commit.version)
        if not self.stale:
            self._kick()

    def told(self, message: bytes) -> None:
        """The primary told its replicas something (not stored): to the instance, in an
        event of its own (the gate keeps the order they came in)."""
        if not self.stale and not self.gone and self._told:
            task = asyncio.get_running_loop().create_task(
                self.run(methodcaller("replica_message", message), kind="message")
            )
            task.add_done_callback(_retrieve)

    def heard_of(self, version: int) -> None:
        """Version ``version`` exists (a commit heard, or a caller who saw it)."""
        if version > self.known:
            if self.known <= self.state.version:
                self.behind_since = time.monotonic()
            self.known = version

    def lost(self) -> None:
        """The copy may have missed commits: serve nothing until loaded again (a load under
        way may have read its snapshot before the loss: it starts over)."""
        if self.gone:
            return
        self.stale = True
        self._fresh.clear()
        self._heard.clear()
        if self._loading is not None and not self._loading.done():
            self._loading.cancel()
        self._loading = None
        self.loading()

    def _kick(self) -> None:
        if self._heard and (self._applying is None or self._applying.done()):
            self._applying = asyncio.get_running_loop().create_task(self._apply())
            self._applying.add_done_callback(_retrieve)

    async def _apply(self) -> None:
        """Apply the commits heard, in version order, each holding the gate."""
        while not self.stale and not self.gone:
            commit = self._heard.pop(self.state.version + 1, None)
            if commit is None:
                return
            await self.gate.reenter()
            try:
                if self.stale or self.gone:
                    return
                self.state.apply(commit)
                instance = self.instance
                if self._hooked and instance is not None:
                    alarm = commit.alarm != b""
                    changes = Changes(commit.version, commit.keys, commit.delete_all, alarm)
                    try:
                        await self._locked(instance, methodcaller("replica_update", changes))
                    except Exception:
                        log.exception(
                            "%s.replica_update raised; reloading the replica",
                            self.class_name(),
                            extra=self.log_fields,
                        )
                        self.lost()
                        return
            finally:
                self.gate.leave()
            self.owner.applied(self, commit)
            self._caught_up()

    def _caught_up(self) -> None:
        version = self.state.version
        if version >= self.known:
            self.behind_since = 0.0
        ready = [f for v, f in self._waiters if v <= version]
        self._waiters = [(v, f) for v, f in self._waiters if v > version]
        for future in ready:
            if not future.done():
                future.set_result(None)

    async def reached(self, version: int, timeout: float) -> bool:
        """Whether the replica reaches ``version`` within ``timeout`` seconds (a caller's version
        comes from a client: it must not make the replica think itself behind for everyone)."""
        if self.state.version >= version and not self.stale:
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(entry := (version, future))
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return False
        finally:  # (never left behind: each commit scans the list, and any version may come)
            if entry in self._waiters:
                self._waiters.remove(entry)
        return not self.stale

    # ------------------------------------------------------------ events

    async def run(
        self,
        handler: Callable[[DurableObject], Awaitable[T]],
        *,
        wait_output: bool = True,
        kind: str = "event",
    ) -> T:
        """Run one read-only event on the instance, holding the gate (calls to other objects
        open it, as on the primary). Nothing waits for a commit: a replica has none."""
        if self.gone or self.instance is None:
            raise RecordGone
        await self.gate.enter(self.describe())
        try:
            instance = self.instance
            if self.gone or instance is None:
                raise RecordGone
            self.last_used = time.monotonic()
            result = await self._locked(instance, handler)
            if kind == "connect" and self.instance is not instance:
                raise RecordGone  # (loaded again meanwhile: the new instance never saw it)
            return result
        finally:
            self.gate.leave()

    async def _locked(
        self, instance: DurableObject, handler: Callable[[DurableObject], Awaitable[T]]
    ) -> T:
        """``handler`` on ``instance``, the gate already held (and held again at the end)."""
        event = Delivery(self.gate, self)
        event.readonly = True
        token = _current.set(event)
        try:
            return await handler(instance)
        finally:
            event.active = False
            _current.reset(token)
            if not event.holding:  # (it opened the gate to await another object)
                await self.gate.reenter()
            event.end()

    # ------------------------------------------------ for the instance's ctx

    def block_concurrency_while(self, fn: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        if self.pending_init is not None:
            future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            self.pending_init.append((fn, future))
            return future
        return run_blocking(fn)

    def wait_until(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def accept_websocket(self, ws: ObjectWebSocket, tags: Iterable[str]) -> None:
        self.sockets.accept(ws, tags, self)
        self.owner.stats.sockets[(self.app_name, "accepted")] += 1

    def get_websockets(self, tag: str | None = None) -> list[ObjectWebSocket]:
        return self.sockets.open(tag)

    # ------------------------------------------------ for its sockets

    def forget_socket(self, ws: ObjectWebSocket) -> None:
        self.sockets.forget(ws)
        self.last_used = time.monotonic()

    def socket_refused(self) -> None:
        self.owner.stats.sockets[(self.app_name, "refused")] += 1

    def socket_received(self, data: str | bytes) -> None:
        if self.owner.stats.enabled:
            size = len(data.encode()) if isinstance(data, str) else len(data)
            self.owner.stats.socket_bytes[(self.app_name, "in")] += size

    def output(self, ws: ObjectWebSocket, item: Output) -> None:
        """A replica writes nothing, so nothing it sends waits for a commit."""
        ws.deliver(item)
        if self.owner.stats.enabled and isinstance(item, OutFrame):
            self.owner.stats.socket_bytes[(self.app_name, "out")] += item.size
        if ws.closed:
            self.sockets.forget(ws)

    # ------------------------------------------------------------ leaving

    def drop(self, code: int = CloseCode.SERVICE_RESTART, reason: str = "replica closed") -> None:
        """Let the replica go: its sockets close with ``code`` (they reconnect), its waiters
        and tasks end."""
        if self.gone:
            return
        self.gone = True
        self.instance = None
        self._fresh.set()
        self.sockets.abort_all(code, reason)
        waiters, self._waiters = self._waiters, []
        for future in (f for _, f in waiters if not f.done()):
            future.set_result(None)
        for task in (self._loading, self._applying, *self._background):
            if task is not None and not task.done():
                task.cancel()


def _retrieve(task: asyncio.Task[Any]) -> None:
    exc = None if task.cancelled() else task.exception()
    if exc is not None and not isinstance(exc, DurableObjectError | TooBig | RecordGone):
        log.error("a replica's work failed", exc_info=exc)
