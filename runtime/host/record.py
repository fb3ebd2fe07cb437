"""One object on this node: its lease, storage, instance, sockets, and its events.

The record outlives the instance: while an object hibernates, the record keeps its lease and
its open sockets, and the next event builds a new instance. The record goes away when the
object is evicted (lease released), discarded after a failure (sockets closed with 1011) or
shut down with its node (sockets closed with 1012).

Each event runs in its caller's task, holding the record's input gate (gate.py); a caller
cancelled mid-event abandons it (its writes and outputs are dropped, the instance is rebuilt
from storage). What an event sends (socket messages, its RPC result or HTTP response, its
exception) is released only after the batch holding its writes is committed (output.py).

The record is the host of narrow interfaces: ``StateHost``/``CommitHost`` for its stored state,
``ContextHost`` for the instance's ``ctx``, ``SocketOwner``/``SocketHost`` for its sockets.
What it needs of the node is :class:`RecordHost`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from ..base.errors import DurableObjectError, Fenced, ObjectReset, ReadOnlyWrite, RecordGone
from ..objects.background import BackgroundWork
from ..objects.gate import Delivery, InputGate, _current, current_event, run_blocking
from ..objects.object import DurableObject
from ..objects.output import OutputGate
from ..sockets.frames import CORK, OutFrame
from ..sockets.websocket import CloseCode, ObjectWebSocket, Output
from ..storage.api import Storage
from ..storage.batch import UNCHANGED, WriteBatch
from ..storage.keyspace import ObjectKeys
from ..storage.lease import Lease
from ..storage.state import ObjectState
from . import activation
from .outcome import Outcome
from .socketset import SocketSet

if TYPE_CHECKING:
    from ..base.config import Settings
    from ..base.stats import NodeStats
    from ..objects.ids import ObjectId
    from ..objects.namespace import Namespace
    from ..storage.store import RedisStore

log = logging.getLogger("runtime.record")
T = TypeVar("T")
_Init = tuple[Callable[[], Awaitable[Any]], "asyncio.Future[Any]"]


class AlarmIndex(Protocol):
    """The alarm index of the object's store (alarms.AlarmService)."""

    async def index(self, member: str, due_ms: int) -> None: ...
    def committed(self, member: str, alarm: bytes | None) -> None: ...


class RecordHost(Protocol):
    """What a record needs from its node."""

    settings: Settings
    node_id: str
    stats: NodeStats

    def store_for(self, object_id: ObjectId) -> RedisStore: ...
    def alarms_for(self, object_id: ObjectId) -> AlarmIndex: ...
    async def acquire_lease(self, record: ObjectRecord) -> Lease: ...
    def forget(self, record: ObjectRecord) -> None: ...


class ObjectRecord:
    """The node's state for one object it owns."""

    def __init__(self, host: RecordHost, namespace: Namespace, object_id: ObjectId) -> None:
        self.host = host
        self.namespace = namespace
        self.id = object_id
        self.settings = host.settings
        self.max_attachment_bytes = host.settings.max_attachment_bytes
        prefix, replicated = host.settings.key_prefix, namespace.replicated
        self.keys = ObjectKeys.of(prefix, namespace.name, object_id.hex, replicated)
        self.store = host.store_for(object_id)
        self.batcher = self.store.batcher
        self.scripts = self.store.scripts
        self.alarms = host.alarms_for(object_id)
        self.lease = Lease("", 0, 0.0)
        #: The object's stored state here (cache, batches), and the face its instance sees.
        self.state: ObjectState | None = None
        self.storage: Storage | None = None
        self.instance: DurableObject | None = None
        self.gate = InputGate(host.settings.max_queue)
        self.running = 0  # events started and not finished (some may be awaiting other objects)
        self.sockets = SocketSet()
        self.outputs = OutputGate(self._deliver)
        app = namespace.env.app
        #: The app the object belongs to: the label of its sockets' metrics.
        self.app_name = app.name if app is not None else "-"
        #: Its log lines' JSON fields: never a whole ID (it may be a private room's key).
        self.log_fields = {
            "object_class": namespace.cls.__qualname__,
            "namespace": namespace.name,
            "object_id": object_id.hex[:12],
        }
        self.background = BackgroundWork(self.describe(), self.log_fields, self._touched)
        self.stats = host.stats
        self.gone = False
        self.last_active = time.monotonic()
        #: What the constructor asked to run before the first event (while it runs).
        self.pending_init: list[_Init] | None = None

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
        """Deliver one event: wait for the gate, run it, then release its result once its
        writes are committed. ``kind`` labels it in the node's metrics; while someone tails
        the node (tail.py), it is told how the event ended and how long it took."""
        tap = self.stats.tap
        started = time.monotonic() if tap is not None else 0.0
        try:
            result = await self._deliver_event(handler, wait_output, kind)
        except BaseException as exc:
            if tap is not None:
                tap(self, kind, exc, time.monotonic() - started)
            raise
        if tap is not None:
            tap(self, kind, None, time.monotonic() - started)
        return result

    async def _deliver_event(
        self, handler: Callable[[DurableObject], Awaitable[T]], wait_output: bool, kind: str
    ) -> T:
        """run() without the tail's timing."""
        if self.gone:
            raise RecordGone
        events = self.stats.events if self.stats.enabled else None
        if not self.gate.try_enter():
            try:
                await self.gate.enter(self.describe)
            except DurableObjectError:
                if events is not None:
                    events[(kind, "overloaded")] += 1
                raise
        token = _current.set(None)  # activation runs outside any event
        try:
            outcome = await self._execute(handler)
        finally:
            _current.reset(token)
        state = outcome.state
        if state is not None:
            commits = state.commits
            if commits.failure is not None and wait_output:
                # What the event returns may rest on writes that will never be stored.
                if events is not None:
                    events[(kind, "reset")] += 1
                raise ObjectReset(
                    f"{self.describe()} was reset ({commits.failure}); retry the request",
                    may_have_run=outcome.may_have_run(),
                )
            if wait_output and outcome.seq > commits.committed_seq:
                try:
                    await commits.wait_committed(outcome.seq)
                except DurableObjectError as exc:
                    raise exc.with_outcome(outcome.may_have_run()) from None
        error = outcome.error
        if error is not None:
            if events is not None:
                reset = isinstance(error, ObjectReset)
                events[(kind, "reset" if reset else "error")] += 1
            if isinstance(error, DurableObjectError) and not error.may_have_run:
                # Said by what failed inside the handler (a refused Redis read, say): true
                # only if the event did nothing else that may have lasted.
                raise error.with_outcome(outcome.may_have_run())
            raise error
        if events is not None:
            events[(kind, "ok")] += 1
        return outcome.result  # type: ignore[return-value]

    async def _execute(self, handler: Callable[[DurableObject], Awaitable[T]]) -> Outcome[T]:
        """The event itself, holding the gate taken by run()."""
        event = Delivery(self.gate, self, self._opening)
        try:
            if self.gone:
                raise RecordGone
            instance = self.instance
            if instance is None or not self.lease.live:
                try:
                    instance = await activation.ready(self)
                except DurableObjectError as exc:  # the event itself never started
                    raise exc.with_outcome(False) from None
            state = self.state
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
            touched = event.opened or event.ended is not None
            if state is not None:
                if self.gone or state.commits.failure is not None:
                    if event.writes:
                        self.host.stats.events_reset += 1
                        error = ObjectReset(
                            f"{self.describe()} was reset while this event ran; what it "
                            "wrote last was not stored",
                            may_have_run=touched or bool(event.wrote),
                        )
                else:
                    if event.writes:
                        state.absorb(event.writes)
                        self._handed(event, state.commits.latest_seq)
                    touched = self._send_held(event, state) or touched
                    state.commits.flush()
                seq = state.commits.latest_seq
            return Outcome(result, error, state, seq, event.wrote, event.sent, touched)
        finally:
            event.release_gate()
            event.end()
            self.last_active = time.monotonic()

    def _opening(self, event: Delivery) -> None:
        """The event lets other events in while it awaits another object: its writes so far
        go to storage first. Otherwise an event that ran meanwhile and wrote the same key
        would be overwritten by these older writes when this one ended (last written must
        win, as the code reads). So an event's writes are atomic up to each such call, as
        Cloudflare coalesces writes up to each await of I/O. Its socket messages go out then
        too, lest they follow those of events that ran meanwhile (a page left on old news)."""
        state = self.state
        if state is None or self.gone or state.commits.failure is not None:
            return
        if event.writes:
            state.absorb(event.writes)
            event.writes.reset()
            self._handed(event, state.commits.latest_seq)
            state.commits.flush()
        self._send_held(event, state)

    def _send_held(self, event: Delivery, state: ObjectState) -> bool:
        """The event's messages so far to the output gate; whether they went out at once."""
        held, event.outputs = event.outputs, []
        if held and state.has_uncommitted:
            event.sent = state.commits.latest_seq  # (they wait for the newest batch)
        for ws, item in held:
            self.output_now(ws, item)
        return bool(held) and not state.has_uncommitted

    @staticmethod
    def _handed(event: Delivery, seq: int) -> None:
        """The event's writes joined batch ``seq`` (the first such batch is what counts)."""
        if not event.wrote:
            event.wrote = seq

    def alarm_state(self) -> ObjectState:
        """The stored state an alarm event clears or retries its alarm in (activated)."""
        assert self.state is not None
        return self.state

    def handed_over(self, seq: int) -> None:
        """Storage took the running event's writes into batch ``seq`` (storage.sync)."""
        event = current_event()
        if event is not None and event.owner is self:
            self._handed(event, seq)

    def _abandon(self, instance: DurableObject) -> None:
        """The caller was cancelled mid-event (a timeout, a client gone, the node stopping).

        The event runs in its caller's task, so it stops where it was: its outputs and the
        writes it still held are dropped (those made before it last called another object
        were handed to storage and the output gate then), and so is the instance, whose
        memory may be half-updated; the next event rebuilds it from storage.
        Sockets, lease and other events' writes are untouched."""
        if self.instance is instance:
            self.instance = None
        log.info(
            "an event of %s was cancelled; rebuilding it", self.describe(), extra=self.log_fields
        )

    # ----------------------------------------------------------- activation

    async def confirm_lease(self) -> None:
        """Renew the lease now (its local deadline passed), or give the object up."""
        await activation.confirm(self)

    def fence(self, why: str) -> None:
        """Give the object up: this node cannot prove its lease (activation.fence)."""
        activation.fence(self, why)

    # ------------------------------------------------ for the instance's ctx

    def block_concurrency_while(self, fn: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        if self.pending_init is not None:  # called from the constructor: run before the first event
            future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            self.pending_init.append((fn, future))
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
        if create and event.readonly:  # (@rpc(readonly=True): nothing of it is stored)
            raise ReadOnlyWrite(f"{self.describe()}: a read-only method cannot write")
        if event.writes is None and create:
            event.writes = WriteBatch()
        return event.writes

    def on_committed(self, batch: WriteBatch) -> None:
        with CORK:  # a batch of many messages: one write per socket
            self.outputs.release(batch.seq)
        if batch.alarm is not UNCHANGED:
            alarm = batch.alarm if isinstance(batch.alarm, bytes) else None
            self.alarms.committed(self.keys.member, alarm)
        if self.state is not None:
            self.state.commits.flush()

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
        state = self.state
        after = state.commits.latest_seq if state is not None and state.has_uncommitted else None
        self.outputs.send(ws, item, after)

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
        self.leave()
        self.outputs.clear()
        if self.state is not None:
            self.state.commits.fail(error)
        self.sockets.abort_all(code, "object reset")

    def hibernate(self) -> bool:
        """Drop the instance and its cache, keeping lease and sockets. False if busy."""
        state = self.state
        if not self.idle or (state is not None and state.has_uncommitted):
            return False
        if self.instance is not None:
            self.host.stats.hibernations += 1
        self.instance = None
        self.state = self.storage = None
        return True

    def leave(self) -> None:
        """No more events here: the node forgets the record, the instance and background
        work go."""
        self.gone = True
        self.host.forget(self)
        self.instance = None
        self.background.cancel()
