"""One object on this node: its lease, storage, instance, sockets, and its events.

The record outlives the instance: while an object hibernates, the record keeps its lease and
its open sockets, and the next event builds a new instance. The record goes away when the
object is evicted (lease released), discarded after a failure (sockets closed with 1011) or
shut down with its node (sockets closed with 1012).

Each event runs in its caller's task, holding the record's input gate (gate.py); a caller
cancelled mid-event abandons it (its writes and outputs are dropped, the instance is rebuilt
from storage). What an event sends (socket messages, its RPC result or HTTP response, its
exception) is released only after the batch holding its writes is committed (output.py).

The record is the host of narrow interfaces: ``StorageHost``/``CommitHost`` for its storage,
``ContextHost`` for the instance's ``ctx``, ``SocketOwner``/``SocketHost`` for its sockets.
What it needs of the node is :class:`RecordHost`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from .background import BackgroundWork
from .batch import UNCHANGED, WriteBatch
from .errors import DurableObjectError, Fenced, ObjectReset, RecordGone
from .frames import CORK, OutFrame
from .gate import Event, InputGate, _current, current_event, run_blocking
from .keyspace import ObjectKeys
from .lease import Lease
from .object import DurableObject, ObjectContext
from .output import OutputGate
from .sockets import SocketSet
from .storage import Storage
from .websocket import CloseCode, ObjectWebSocket, Output

if TYPE_CHECKING:
    from .config import Settings
    from .ids import ObjectId
    from .namespace import Namespace
    from .stats import NodeStats
    from .store import RedisStore

log = logging.getLogger("runtime.record")
T = TypeVar("T")


class AlarmIndex(Protocol):
    """The alarm index of the object's store (alarms.AlarmService)."""

    async def index(self, member: str, due_ms: int) -> None: ...
    def committed(self, alarm: bytes | None) -> None: ...


class RecordHost(Protocol):
    """What a record needs from its node."""

    settings: Settings
    node_id: str
    stats: NodeStats

    def store_for(self, object_id: ObjectId) -> RedisStore: ...
    def alarms_for(self, object_id: ObjectId) -> AlarmIndex: ...
    async def acquire_lease(self, record: ObjectRecord) -> Lease: ...
    def forget(self, record: ObjectRecord) -> None: ...


@dataclass(slots=True)
class _Outcome(Generic[T]):
    result: T | None
    error: BaseException | None
    storage: Storage | None
    seq: int


class ObjectRecord:
    """The node's state for one object it owns."""

    def __init__(self, host: RecordHost, namespace: Namespace, object_id: ObjectId) -> None:
        self.host = host
        self.namespace = namespace
        self.id = object_id
        self.settings = host.settings
        self.max_attachment_bytes = host.settings.max_attachment_bytes
        self.keys = ObjectKeys.of(host.settings.key_prefix, namespace.name, object_id.hex)
        self.store = host.store_for(object_id)
        self.batcher = self.store.batcher
        self.scripts = self.store.scripts
        self.alarms = host.alarms_for(object_id)
        self.lease = Lease("", 0, 0.0)
        self.storage: Storage | None = None
        self.instance: DurableObject | None = None
        self.gate = InputGate(host.settings.max_queue)
        self.running = 0  # events started and not finished (some may be awaiting other objects)
        self.sockets = SocketSet()
        self.outputs = OutputGate(self._deliver)
        app = namespace.env.app
        #: The app the object belongs to: the label of its sockets' metrics.
        self.app_name = app.name if app is not None else "-"
        #: What its log lines carry (as JSON fields with LOG_FORMAT=json): never a whole
        #: ID, which may be a capability (a private room's).
        self.log_fields = {
            "object_class": namespace.cls.__qualname__,
            "namespace": namespace.name,
            "object_id": object_id.hex[:12],
        }
        self.background = BackgroundWork(self.describe(), self.log_fields, self._touched)
        self.stats = host.stats
        self.gone = False
        self.last_active = time.monotonic()
        self._init: list[tuple[Callable[[], Awaitable[Any]], asyncio.Future[Any]]] | None = None

    def describe(self) -> str:
        return f"{self.namespace.name}:{self.id.hex[:12]}"

    def class_name(self) -> str:
        return self.namespace.cls.__qualname__

    @property
    def node_id(self) -> str:
        return self.host.node_id

    # ----------------------------------------------------------- events

    async def run(
        self,
        handler: Callable[[DurableObject], Awaitable[T]],
        *,
        wait_output: bool = True,
        kind: str = "event",
    ) -> T:
        """Deliver one event (``_run``); while someone tails the node (tail.py), tell it how
        the event ended and how long it took."""
        tap = self.stats.tap
        if tap is None:
            return await self._run(handler, wait_output, kind)
        started = time.monotonic()
        try:
            result = await self._run(handler, wait_output, kind)
        except BaseException as exc:
            tap(self, kind, exc, time.monotonic() - started)
            raise
        tap(self, kind, None, time.monotonic() - started)
        return result

    async def _run(
        self, handler: Callable[[DurableObject], Awaitable[T]], wait_output: bool, kind: str
    ) -> T:
        """Deliver one event: wait for the gate, run it, then release its result once its
        writes are committed. ``kind`` labels it in the node's metrics."""
        if self.gone:
            raise RecordGone
        events = self.stats.events if self.stats.enabled else None
        try:
            await self.gate.enter(self.describe())
        except DurableObjectError:
            if events is not None:
                events[(kind, "overloaded")] += 1
            raise
        token = _current.set(None)  # activation runs outside any event
        try:
            outcome = await self._execute(handler)
        finally:
            _current.reset(token)
        storage = outcome.storage
        if storage is not None:
            commits = storage.commits
            if commits.failure is not None and wait_output:
                # What the event returns may rest on writes that will never be stored.
                if events is not None:
                    events[(kind, "reset")] += 1
                raise ObjectReset(
                    f"{self.describe()} was reset ({commits.failure}); retry the request"
                )
            if wait_output and outcome.seq > commits.committed_seq:
                await commits.wait_committed(outcome.seq)
        if outcome.error is not None:
            if events is not None:
                reset = isinstance(outcome.error, ObjectReset)
                events[(kind, "reset" if reset else "error")] += 1
            raise outcome.error
        if events is not None:
            events[(kind, "ok")] += 1
        return outcome.result  # type: ignore[return-value]

    async def _execute(self, handler: Callable[[DurableObject], Awaitable[T]]) -> _Outcome[T]:
        """The event itself, holding the gate taken by run()."""
        event = Event(self.gate, self, self._opening)
        try:
            if self.gone:
                raise RecordGone
            instance = await self._ready()
            storage = self.storage
            self.running += 1
            _current.set(event)
            result: T | None = None
            error: BaseException | None = None
            try:
                result = await handler(instance)
            except asyncio.CancelledError:
                self._abandon(instance)
                raise
            except Exception as exc:
                error = exc
            finally:
                self.running -= 1
                event.active = False
            seq = 0
            if storage is not None:
                if self.gone or storage.commits.failure is not None:
                    if event.writes:
                        self.host.stats.events_reset += 1
                        error = ObjectReset(
                            f"{self.describe()} was reset while this event ran; nothing it "
                            "wrote was stored"
                        )
                else:
                    storage.absorb(event.writes)
                    for ws, item in event.outputs:
                        self.output_now(ws, item)
                    storage.commits.flush()
                seq = storage.commits.latest_seq
            return _Outcome(result, error, storage, seq)
        finally:
            event.release_gate()
            event.end()
            self.last_active = time.monotonic()

    def _opening(self, event: Event) -> None:
        """The event lets other events in while it awaits another object: its writes so far
        go to storage first. Otherwise an event that ran meanwhile and wrote the same key
        would be overwritten by these older writes when this one ended (last written must
        win, as the code reads). So an event's writes are atomic up to each such call, as
        Cloudflare coalesces writes up to each await of I/O."""
        storage = self.storage
        ready = storage is not None and not self.gone and storage.commits.failure is None
        if event.writes and ready:
            assert storage is not None
            storage.absorb(event.writes)
            event.writes.reset()
            storage.commits.flush()

    def _abandon(self, instance: DurableObject) -> None:
        """The caller was cancelled mid-event (a timeout, a client gone, the node stopping).

        The event runs in its caller's task, so it stops where it was: its outputs and the
        writes it still held are dropped (writes made before it last called another object
        were handed to storage then), and so is the instance, whose memory may be
        half-updated; the next event rebuilds it from storage.
        Sockets, lease and other events' writes are untouched."""
        if self.instance is instance:
            self.instance = None
        log.info(
            "an event of %s was cancelled by its caller; rebuilding it",
            self.describe(),
            extra=self.log_fields,
        )

    # ----------------------------------------------------------- activation

    async def _ready(self) -> DurableObject:
        """The live instance, activating it (lease, constructor, init) when needed."""
        instance = self.instance
        if instance is not None:
            if not self.lease.live:
                await self._confirm_or_gone()
                if self.gone or self.instance is not instance:  # discarded meanwhile
                    raise RecordGone
            return instance
        if not self.lease.value:
            self.lease = await self.host.acquire_lease(self)
        elif not self.lease.live:
            await self._confirm_or_gone()
        if self.storage is None:
            self.storage = Storage(self)
        self._init = []
        try:
            instance = self.namespace.cls(ObjectContext(self), self.namespace.env)
        finally:
            init, self._init = self._init, None
        for fn, future in init:
            try:
                future.set_result(await fn())
            except Exception as exc:
                future.set_exception(exc)
                future.exception()  # retrieved: it is raised to the event instead
                raise
        self.instance = instance
        self.host.stats.activations += 1
        return instance

    async def _confirm_or_gone(self) -> None:
        try:
            await self.confirm_lease()
        except Fenced:
            raise RecordGone from None

    async def confirm_lease(self) -> None:
        """Renew the lease now (its local deadline passed); discard everything if it is lost."""
        if not await self.store.leases.renew(self.keys, self.lease):
            error = Fenced(f"{self.describe()} lost its lease; another node may own it now")
            self.discard(error)
            raise error

    # ------------------------------------------------ for the instance's ctx

    def block_concurrency_while(self, fn: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        if self._init is not None:  # called from the constructor: run before the first event
            future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            self._init.append((fn, future))
            return future
        return run_blocking(fn)

    def wait_until(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``work`` in the background (background.py), once the event asking for it (if
        any) has ended; hibernation and eviction wait for it."""
        event = current_event()
        spawner = event if event is not None and event.owner is self and event.active else None
        return self.background.start(work, spawner.when_ended() if spawner else None)

    def _touched(self) -> None:
        self.last_active = time.monotonic()  # (idle time counts from the work's end)

    def accept_websocket(self, ws: ObjectWebSocket, tags: Iterable[str]) -> None:
        self.sockets.accept(ws, tags, self)
        self.stats.sockets[(self.app_name, "accepted")] += 1

    def socket_refused(self) -> None:
        self.stats.sockets[(self.app_name, "refused")] += 1

    def socket_received(self, data: str | bytes) -> None:
        if self.stats.enabled:  # (bytes on the wire: a text frame's UTF-8)
            size = len(data.encode()) if isinstance(data, str) else len(data)
            self.stats.socket_bytes[(self.app_name, "in")] += size

    def get_websockets(self, tag: str | None = None) -> list[ObjectWebSocket]:
        return self.sockets.open(tag)

    def forget_socket(self, ws: ObjectWebSocket) -> None:
        self.sockets.forget(ws)
        self.last_active = time.monotonic()

    # ------------------------------------------------------- storage host

    def event_batch(self, create: bool) -> WriteBatch | None:
        """The write buffer of the event running now on this record, if any."""
        event = current_event()
        if event is None or event.owner is not self or not event.active:
            return None
        if event.writes is None and create:
            event.writes = WriteBatch()
        return event.writes

    def on_committed(self, batch: WriteBatch) -> None:
        with CORK:  # a batch of many messages: one write per socket
            self.outputs.release(batch.seq)
        if batch.alarm is not UNCHANGED:
            self.alarms.committed(batch.alarm if isinstance(batch.alarm, bytes) else None)
        if self.storage is not None:
            self.storage.commits.flush()

    def on_commit_failed(self, error: DurableObjectError) -> None:
        if isinstance(error, Fenced):
            self.host.stats.commits_fenced += 1
        log.warning(
            "commit failed for %s: %s; instance discarded",
            self.describe(),
            error,
            extra=self.log_fields,
        )
        self.discard(error)

    def commit_observed(self, seconds: float, keys: int) -> None:
        self.stats.committed(seconds, keys)

    async def index_alarm(self, due_ms: int) -> None:
        await self.alarms.index(self.keys.member, due_ms)

    # ------------------------------------------------------------ outputs

    def output(self, ws: ObjectWebSocket, item: Output) -> None:
        """A socket send or close by the object: held with the event, or gated now."""
        event = current_event()
        if event is not None and event.owner is self and event.active:
            event.outputs.append((ws, item))
        else:
            self.output_now(ws, item)

    def output_now(self, ws: ObjectWebSocket, item: Output) -> None:
        storage = self.storage
        if storage is not None and storage.has_uncommitted:
            self.outputs.send(ws, item, storage.commits.latest_seq)
        else:
            self.outputs.send(ws, item, None)

    def _deliver(self, ws: ObjectWebSocket, item: Output) -> None:
        ws.deliver(item)
        if self.stats.enabled and isinstance(item, OutFrame):
            self.stats.socket_bytes[(self.app_name, "out")] += item.size
        if ws.closed:
            self.sockets.forget(ws)

    # ------------------------------------------------------------ lifecycle

    @property
    def idle(self) -> bool:
        """No event running or waiting, nothing held for sockets, no background work."""
        return not (
            self.running or self.gate.waiting or self.gate.locked or self.outputs or self.background
        )

    def discard(self, error: DurableObjectError, code: int = CloseCode.INTERNAL_ERROR) -> None:
        """Drop the instance and everything held; close its sockets. Redis keeps the truth."""
        if self.gone:
            return
        self._leave()
        self.outputs.clear()
        if self.storage is not None:
            self.storage.commits.fail(error)
        self.sockets.abort_all(code, "object reset")

    def hibernate(self) -> bool:
        """Drop the instance and its cache, keeping lease and sockets. False if busy."""
        storage = self.storage
        if not self.idle or (storage is not None and storage.has_uncommitted):
            return False
        if self.instance is not None:
            self.host.stats.hibernations += 1
        self.instance = None
        self.storage = None
        return True

    async def evict(self) -> bool:
        """Leave memory and give the lease back (no events and no sockets for a while).

        Everything happens while holding the gate, so events arriving meanwhile queue up
        and then move to a fresh record, which finds the lease released."""
        if not self.idle or self.sockets:
            return False
        async with self.gate:
            quiet = time.monotonic() - self.last_active
            if (
                self.gone
                or self.running
                or self.gate.waiting
                or self.sockets
                or self.background
                or quiet < self.settings.idle_timeout
            ):
                return False
            if not await self._retire(CloseCode.SERVICE_RESTART, "evicted"):
                return False
        self.host.stats.evictions += 1
        return True

    async def shut_down(self, code: int, reason: str, timeout: float = 5.0) -> None:
        """Node is stopping: let running events and background work finish, commit what is
        pending, close the sockets, release the lease."""
        deadline = time.monotonic() + timeout
        # Events awaiting another object need the gate back to finish: wait for them first.
        while self.running and time.monotonic() < deadline:  # noqa: ASYNC110 (rare, short)
            await asyncio.sleep(0.02)
        await self.background.wait(max(0.01, deadline - time.monotonic()))
        try:
            await asyncio.wait_for(self.gate.reenter(), max(0.01, deadline - time.monotonic()))
            held = True
        except TimeoutError:
            held = False
            log.warning(
                "%s still busy after %.0fs; stopping it anyway",
                self.describe(),
                timeout,
                extra=self.log_fields,
            )
        try:
            await self._retire(code, reason)
        finally:
            if held:
                self.gate.leave()

    def _leave(self) -> None:
        """No more events here: the node forgets the record, the instance and background
        work go."""
        self.gone = True
        self.host.forget(self)
        self.instance = None
        self.background.cancel()

    async def _retire(self, code: int, reason: str) -> bool:
        """Leave for good in order (the gate held): no more events, commit what is pending,
        close the sockets with ``code``, release the lease. False if the commit failed (the
        record was discarded instead)."""
        self._leave()
        committed = True
        storage = self.storage
        if storage is not None and storage.has_uncommitted:
            try:
                await storage.commits.sync()
            except DurableObjectError as exc:
                log.warning(
                    "could not commit %s as it left: %s",
                    self.describe(),
                    exc,
                    extra=self.log_fields,
                )
                committed = False
        self.sockets.abort_all(code, reason)
        self.storage = None
        if self.lease.value:
            try:
                await self.store.leases.release(self.keys, self.lease)
            except DurableObjectError:
                pass  # it expires by itself
        return committed
