"""The input gate: one event at a time per object, in arrival order.

Each object has an :class:`InputGate`, a FIFO lock that an event holds while it runs. An
event that awaits its own storage keeps it, so no other event of the object sees a half-done
state. An event that awaits a call to *another* object opens it for the duration of the call
(:func:`outbound`) and queues to take it back afterwards, so A -> B -> A chains complete
instead of deadlocking. Code inside ``block_concurrency_while`` never opens it.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from ..base.errors import ObjectOverloaded

if TYPE_CHECKING:
    from ..sockets.websocket import ObjectWebSocket, Output
    from ..storage.batch import WriteBatch

T = TypeVar("T")


class InputGate:
    """A FIFO lock with a bounded queue, handed from one event to the next.

    ``try_enter`` takes a free gate without a coroutine (most events find it free: a handler
    that never waits for Redis runs through in one turn of the loop); ``enter`` waits in
    line, refusing at once when too many already wait. ``leave`` hands the gate to the first
    waiter still waiting (no newcomer can slip in between), or frees it."""

    __slots__ = ("_waiters", "locked", "max_queue")

    def __init__(self, max_queue: int) -> None:
        self.max_queue = max_queue
        self.locked = False
        # Made when someone first waits, dropped when the line empties: an idle object's
        # gate holds no queue (a deque is half a KiB; a node holds many idle objects).
        self._waiters: deque[asyncio.Future[None]] | None = None

    @property
    def waiting(self) -> int:
        return len(self._waiters) if self._waiters else 0

    def try_enter(self) -> bool:
        """Take the gate if nobody holds it or waits for it."""
        if self.locked or self._waiters:
            return False
        self.locked = True
        return True

    async def enter(self, what: str | Callable[[], str]) -> None:
        """Wait for our turn; refuse at once when too many events already wait. (``what``
        names the object in the refusal: a callable is asked only then.)"""
        if self.try_enter():
            return
        if self.waiting >= self.max_queue:
            name = what() if callable(what) else what
            raise ObjectOverloaded(
                f"{self.waiting} events are already queued for {name}; "
                "retry with backoff or spread the load over more objects"
            )
        await self._wait()

    async def reenter(self) -> None:
        """Take the gate back after a call to another object (no overload check: the event
        is already running)."""
        if not self.try_enter():
            await self._wait()

    async def _wait(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = deque()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.leave()  # handed the gate as we were cancelled: pass it on
            elif self._waiters and waiter in self._waiters:  # (leave() may have dropped it)
                self._waiters.remove(waiter)
            raise

    def leave(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the gate passes to it, held all along
                return
        self._waiters = None
        self.locked = False

    async def __aenter__(self) -> None:
        await self.reenter()

    async def __aexit__(self, *exc: object) -> None:
        self.leave()


class Delivery:
    """One event being delivered to an object (an events.Event is what is delivered): the
    gate it holds, what it wrote and sent."""

    __slots__ = (
        "active",
        "calls",
        "ended",
        "gate",
        "holding",
        "on_open",
        "opened",
        "outputs",
        "owner",
        "readonly",
        "sent",
        "writes",
        "wrote",
    )

    def __init__(
        self, gate: InputGate, owner: object, on_open: Callable[[Delivery], None] | None = None
    ) -> None:
        self.gate = gate
        #: Called just before the event opens the gate to await another object.
        self.on_open = on_open
        #: The object's record: storage and sockets ask "is this event mine?"
        self.owner = owner
        self.holding = True  # holds the gate
        self.active = True  # the handler has not returned yet
        self.calls = 0  # calls to other objects in flight
        self.opened = False  # it called another object (so it may have had effects there)
        self.readonly = False  # a read-only method: its writes are refused (ReadOnlyWrite)
        #: The first batch its writes joined (0: none yet), and the batch its socket
        #: messages wait for (0: none): what decides whether a failed event may have run.
        self.wrote = 0
        self.sent = 0
        self.writes: WriteBatch | None = None
        self.outputs: list[tuple[ObjectWebSocket, Output]] = []
        #: Made when background work waits for this event to end (see Record.wait_until).
        self.ended: asyncio.Future[None] | None = None

    def release_gate(self) -> None:
        if self.holding:
            self.holding = False
            self.gate.leave()

    def when_ended(self) -> asyncio.Future[None]:
        """A future set once the event is over (its writes handed to storage); asked for
        while the event is still active."""
        if self.ended is None:
            self.ended = asyncio.get_running_loop().create_future()
        return self.ended

    def end(self) -> None:
        if self.ended is not None and not self.ended.done():
            self.ended.set_result(None)


_current: ContextVar[Delivery | None] = ContextVar("durable_event", default=None)
_blocking: ContextVar[bool] = ContextVar("durable_blocking", default=False)


def current_event() -> Delivery | None:
    return _current.get()


def readonly_event() -> None:
    """The event running now is a read-only method's: a write in it is refused."""
    event = _current.get()
    if event is not None:
        event.readonly = True


def outbound(call: Awaitable[T]) -> Awaitable[T]:
    """``call`` (a call to another object), opening the caller's input gate while it is
    awaited when the caller is an event: what to await in its place. (A call from a route
    is awaited as it is: no wrapper.)

    Counted per event, so concurrent calls (``gather``, ``wait_for``, tasks) open the gate
    on the first and take it back after the last.
    """
    event = _current.get()
    if event is None or not event.active:
        return call
    return _from_event(event, call)


async def _from_event(event: Delivery, call: Awaitable[T]) -> T:
    event.opened = True
    if _blocking.get():  # (inside block_concurrency_while: the gate stays closed)
        return await call
    event.calls += 1
    if event.on_open is not None:
        event.on_open(event)
    event.release_gate()
    try:
        return await call
    finally:
        event.calls -= 1
        if event.calls == 0 and event.active and not event.holding:
            await event.gate.reenter()
            event.holding = True


def run_blocking(fn: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
    """Run ``fn()`` in a task whose calls to other objects keep the gate closed."""
    context = contextvars.copy_context()
    context.run(_blocking.set, True)
    coro: Any = fn()
    return asyncio.get_running_loop().create_task(coro, context=context)
