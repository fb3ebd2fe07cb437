"""What application code subclasses: :class:`DurableObject`, the ``@rpc`` marker, the context.

An object handles one event at a time: an HTTP request (``fetch``), a client WebSocket being
handed over (``websocket_connect``) and its messages (``websocket_message``/``_close``/``_error``),
an ``@rpc`` method call, or its ``alarm``. It keeps durable state in ``self.storage``.

The instance may be dropped from memory at any time when idle (eviction) or when its only
activity is open sockets (hibernation), and rebuilt from storage and socket attachments on the
next event. Keep what must survive in storage; keep per-socket facts in attachments.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, overload

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from ..sockets.frames import OutFrame
from .events import AlarmInfo

if TYPE_CHECKING:
    from ..sockets.websocket import ObjectWebSocket
    from ..storage.api import Storage
    from .ids import ObjectId
    from .namespace import Env

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
T = TypeVar("T")

_RPC_MARK = "__durable_rpc__"
_READONLY = "readonly"


@overload
def rpc(method: F, /) -> F: ...
@overload
def rpc(*, readonly: bool = False) -> Callable[[F], F]: ...
def rpc(method: F | None = None, /, *, readonly: bool = False) -> F | Callable[[F], F]:
    """Mark a coroutine method as callable through a stub (``stub.method(...)``).

    Only marked methods can be called from outside the object; arguments and results must
    be plain data (msgpack types) and are copied, so caller and callee never share objects.

    ``@rpc(readonly=True)`` promises the method only reads: a write in it is a
    ``ReadOnlyWrite`` error wherever it runs, and on a class with ``replicated = True`` it
    may run on a replica of the object on the caller's node (docs/replicas.md).
    """

    def mark(fn: F) -> F:
        target: Any = fn  # (not narrowed: the decorator returns the method unchanged)
        if not inspect.iscoroutinefunction(target):
            raise TypeError(f"@rpc needs an 'async def' method; {fn.__qualname__} is not one")
        setattr(fn, _RPC_MARK, _READONLY if readonly else True)
        return fn

    return mark if method is None else mark(method)


def rpc_method(cls: type, name: str) -> Callable[..., Awaitable[Any]] | None:
    """The ``@rpc`` method ``name`` of ``cls``, or None if there is no such method."""
    if not isinstance(name, str) or not name or name.startswith("_"):
        return None
    method: Callable[..., Awaitable[Any]] | None = inspect.getattr_static(cls, name, None)
    if method is None or not getattr(method, _RPC_MARK, False):
        return None
    return method


def is_readonly(method: Callable[..., Awaitable[Any]]) -> bool:
    """Whether an ``@rpc`` method was marked ``readonly=True``."""
    return getattr(method, _RPC_MARK, None) == _READONLY


@dataclass(frozen=True, slots=True)
class Changes:
    """What a replica's instance is told after it applied a commit of the primary
    (``replica_update(changes)``): the keys the commit wrote or deleted, the version it brought
    the replica to, and ``reloaded`` when the replica was loaded whole again instead (after a
    gap: every key may have changed; ``keys`` is then empty and the instance is a new one)."""

    version: int
    keys: frozenset[str] = frozenset()
    deleted_all: bool = False
    alarm_changed: bool = False
    reloaded: bool = False


class ContextHost(Protocol):
    """What a context needs from the object's record on the node."""

    id: ObjectId
    storage: Storage | None

    @property
    def node_id(self) -> str: ...
    def block_concurrency_while(self, fn: Callable[[], Awaitable[T]]) -> asyncio.Future[T]: ...
    def wait_until(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]: ...
    def accept_websocket(self, ws: ObjectWebSocket, tags: Iterable[str]) -> None: ...
    def get_websockets(self, tag: str | None = None) -> list[ObjectWebSocket]: ...


class ObjectContext:
    """The runtime's side of one instance: ``self.ctx`` in an object."""

    def __init__(self, host: ContextHost) -> None:
        self._host = host

    @property
    def id(self) -> ObjectId:
        """This object's ID (``str(ctx.id)`` is its 64 hex characters)."""
        return self._host.id

    @property
    def node_id(self) -> str:
        """The node this instance lives on (it may live elsewhere after it leaves memory)."""
        return self._host.node_id

    @property
    def is_replica(self) -> bool:
        """Whether this instance is a replica: read-only, on a node other than the primary's,
        kept current by the primary's commits (``replica_update``). (A replica's host says
        so; a record, the primary's, has no such attribute.)"""
        return bool(getattr(self._host, "is_replica", False))

    @property
    def storage(self) -> Storage:
        storage = self._host.storage
        assert storage is not None
        return storage

    def tell_replicas(self, message: bytes) -> None:
        """(The primary of a replicated class.) Send ``message`` to every replica of the
        object now loaded, for what is not stored but watchers see (presence, say): each
        replica's ``replica_message`` gets it. Not stored, not held for any commit, and in
        no promised order; a replica loaded later never hears it. A replica's own call does
        nothing (to tell the primary, a replica calls one of its methods)."""
        state = getattr(self._host, "state", None)
        if not self.is_replica and state is not None and hasattr(state, "tell_replicas"):
            state.tell_replicas(message)

    def wait_until(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``work`` in the background, outside any event, starting once the event that
        asks for it has ended (so ``storage.sync()`` in it covers that event's writes). The
        object does not hibernate or leave memory until it finishes; if the instance is
        reset, it is cancelled. Its writes commit on their own and its sends pass the
        output gate as usual."""
        return self._host.wait_until(work)

    def block_concurrency_while(self, fn: Callable[[], Awaitable[T]]) -> asyncio.Future[T]:
        """Run ``fn()`` with no other event delivered to this object until it finishes.

        Called from ``__init__`` it runs before the first event (the usual way to load state);
        called during an event, await the returned future. Calls to other objects made inside
        it do not open the input gate, so keep it short.
        """
        return self._host.block_concurrency_while(fn)


class DurableObject:
    """Base class of every object. Override the handlers you need."""

    #: Seconds of quiet after which an instance whose only activity is open sockets
    #: hibernates; None takes the node's ``hibernate_after`` setting. An object that keeps
    #: short-lived state in memory (presence, say) sets it above that state's lifetime.
    hibernate_after: ClassVar[float | None] = None
    #: True lets read-only calls (``@rpc(readonly=True)``) and watching sockets
    #: (``stub.watch``) run on a replica of the object on the caller's node, kept current
    #: by the primary's commits (docs/replicas.md). Its commits then count a version and are
    #: published, at some cost per commit: leave it False unless reads are the load.
    replicated: ClassVar[bool] = False

    def __init__(self, ctx: ObjectContext, env: Env) -> None:
        self.ctx = ctx
        self.env = env

    @property
    def id(self) -> ObjectId:
        return self.ctx.id

    @property
    def storage(self) -> Storage:
        return self.ctx.storage

    # ----------------------------------------------------------- handlers

    async def fetch(self, request: Request) -> Response:
        """Handle an HTTP request sent with ``stub.fetch(request)``."""
        return PlainTextResponse(f"{type(self).__name__} does not handle HTTP requests", 501)

    async def websocket_connect(self, ws: ObjectWebSocket) -> None:
        """A client WebSocket was handed over with ``stub.connect``: accept it or refuse it.

        Call ``self.accept_websocket(ws, tags=...)`` to keep it. To refuse it, call
        ``ws.reject(status, reason)`` (an HTTP error instead of the handshake: clients
        other than browsers read it), or accept it and ``ws.close(code, reason)`` at once
        (what a browser can read). A socket neither accepted nor refused gets 403.
        """

    async def websocket_message(self, ws: ObjectWebSocket, message: str | bytes) -> None:
        """A text (str) or binary (bytes) message arrived on an accepted socket."""

    async def websocket_close(self, ws: ObjectWebSocket, code: int, reason: str) -> None:
        """The client closed the socket (or its connection dropped: code 1006). Exactly one
        of websocket_close and websocket_error comes for each accepted socket the object did
        not close itself."""

    async def websocket_error(self, ws: ObjectWebSocket, error: Exception) -> None:
        """The socket failed (for example, the client stopped reading and its buffer filled)."""

    async def alarm(self, info: AlarmInfo) -> None:
        """The alarm set with ``storage.set_alarm`` is due. Raise to have it retried."""

    async def replica_message(self, message: bytes) -> None:
        """(Replicas only.) The primary told its replicas ``message``
        (``ctx.tell_replicas``). Runs like an event, read-only."""

    async def replica_update(self, changes: Changes) -> None:
        """(Replicas only.) A commit of the primary was applied to this replica's storage:
        bring what the instance keeps in memory up to date, and tell the sockets watching
        it here (``self.broadcast``). Runs like an event, read-only, in version order."""

    # ------------------------------------------------------------ helpers

    def accept_websocket(self, ws: ObjectWebSocket, tags: Iterable[str] = ()) -> None:
        """Keep ``ws``: its events come to this object, across hibernation. (The one way to
        accept a socket; the context keeps no second one.)"""
        self.ctx._host.accept_websocket(ws, tags)

    def get_websockets(self, tag: str | None = None) -> list[ObjectWebSocket]:
        """The accepted, open sockets of this object (with ``tag``, if given)."""
        return self.ctx._host.get_websockets(tag)

    def broadcast(
        self,
        message: str | bytes,
        *,
        tag: str | None = None,
        exclude: ObjectWebSocket | None = None,
    ) -> int:
        """Send one message to every open accepted socket (with ``tag``, but not ``exclude``),
        encoding it once. Returns how many sockets it was sent to."""
        frame = OutFrame(message)
        sent = 0
        for ws in self.get_websockets(tag):
            if ws is not exclude:
                ws.send_frame(frame)
                sent += 1
        return sent


def alarm_takes_info(cls: type[DurableObject]) -> bool:
    """Whether ``cls.alarm`` accepts the AlarmInfo argument (``alarm(self)`` is fine too)."""
    params = list(inspect.signature(cls.alarm).parameters.values())[1:]
    return any(
        p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in params
    )
