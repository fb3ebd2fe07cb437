"""Namespaces, IDs and stubs: how code reaches an object; and ``env``, the namespaces (and
settings, and signing keys) an object or route gets.

``ns.get(id)`` returns a :class:`Stub` at once; nothing is activated until the first call.
Through a stub: ``await stub.fetch(request)``, ``await stub.connect(websocket)``, and
``await stub.call("method", ...)`` or ``await stub.method(...)`` for ``@rpc`` methods.
Arguments and results are plain data and are copied, exactly as if the object were on another
node, so code behaves the same wherever its objects live.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from ..base import codec
from ..base.errors import ConfigurationError, InvalidObjectId, InvalidValue, NotCallable
from ..sockets.asgi import Connection
from ..sockets.websocket import SocketRequest, Transport
from .events import Event, FetchEvent, RpcEvent
from .gate import outbound
from .ids import IdFactory, ObjectId
from .object import DurableObject, alarm_takes_info, is_readonly, rpc_method

if TYPE_CHECKING:
    from ..base.config import BaseSettings, Settings

log = logging.getLogger("runtime.namespace")


class Dispatcher(Protocol):
    """Where stubs send events: the node's router (here or to the object's node)."""

    settings: Settings

    async def dispatch(self, namespace: Namespace, object_id: ObjectId, event: Event) -> Any: ...
    async def connect(
        self, namespace: Namespace, object_id: ObjectId, conn: Transport, request: SocketRequest
    ) -> None: ...
    async def watch(
        self, namespace: Namespace, object_id: ObjectId, conn: Transport, request: SocketRequest
    ) -> None: ...


class Namespace:
    """One object class registered under a name."""

    def __init__(
        self, dispatcher: Dispatcher, name: str, cls: type[DurableObject], env: Env
    ) -> None:
        self.dispatcher = dispatcher
        self.name = name
        self.cls = cls
        #: What the class's instances get as ``self.env`` (their app's, or the node's).
        self.env = env
        self.alarm_takes_info = alarm_takes_info(cls)
        self.ids = IdFactory(name, dispatcher.settings.id_key.encode())
        #: Whether read-only calls may run on replicas (docs/replicas.md): results of its
        #: calls then carry the version they were read at.
        self.replicated = bool(getattr(cls, "replicated", False))
        self._rpc: dict[str, bool] = {}
        self._readonly: dict[str, bool] = {}

    def is_rpc(self, method: str) -> bool:
        """Whether ``method`` is an ``@rpc`` method of the class (looked up once per name)."""
        known = self._rpc.get(method)
        if known is None:
            known = rpc_method(self.cls, method) is not None
            if len(self._rpc) < 1000:  # callers choose names: keep the memo bounded
                self._rpc[method] = known
        return known

    def is_readonly(self, method: str) -> bool:
        """Whether ``method`` is an ``@rpc(readonly=True)`` method of the class."""
        known = self._readonly.get(method)
        if known is None:
            found = rpc_method(self.cls, method)
            known = found is not None and is_readonly(found)
            if len(self._readonly) < 1000:
                self._readonly[method] = known
        return known

    def __repr__(self) -> str:
        return f"<Namespace {self.name} -> {self.cls.__qualname__}>"

    def id_from_name(self, name: str, jurisdiction: str | None = None) -> ObjectId:
        """The same ID for the same name, on every node."""
        return self.ids.from_name(name, jurisdiction)

    def new_unique_id(self, jurisdiction: str | None = None) -> ObjectId:
        """A random, unguessable ID for a new object."""
        return self.ids.new_unique(jurisdiction)

    def id_from_string(self, text: str) -> ObjectId:
        """Parse an ID received from outside; InvalidObjectId unless this namespace minted it."""
        return self.ids.from_string(text)

    def get(self, object_id: ObjectId, *, after: int = 0) -> Stub:
        """A stub of the object. ``after``: a version of the object the caller has already
        seen (``stub.version`` of an earlier request, carried by the client in a header or
        cookie): the stub's read-only calls never read an older state (docs/replicas.md)."""
        if not isinstance(object_id, ObjectId):
            raise InvalidObjectId(
                f"get() takes an ObjectId (from id_from_name/new_unique_id/id_from_string), "
                f"not {type(object_id).__name__}"
            )
        if object_id.namespace != self.name:
            raise InvalidObjectId(
                f"this ID belongs to namespace {object_id.namespace!r}, not {self.name!r}"
            )
        if not isinstance(after, int) or isinstance(after, bool) or after < 0:
            raise InvalidValue("get(after=...) takes a version: an int >= 0")
        return Stub(self, object_id, after)

    def get_by_name(self, name: str, *, after: int = 0) -> Stub:
        return self.get(self.id_from_name(name), after=after)


class Stub:
    """A handle on one object. Cheap to make; safe to keep.

    For a replicated class it remembers the newest version of the object its calls saw
    (``version``): a write's commit, or the state a read was served at. Its read-only calls
    ask for at least that version, so through one stub a caller reads its own writes and
    never goes back in time, wherever the read runs."""

    __slots__ = ("id", "namespace", "version")

    def __init__(self, namespace: Namespace, object_id: ObjectId, version: int = 0) -> None:
        self.namespace = namespace
        self.id = object_id
        self.version = version

    def __repr__(self) -> str:
        return f"<Stub {self.namespace.name}:{self.id.hex[:12]}>"

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        if method.startswith("_"):
            raise AttributeError(method)
        return functools.partial(self.call, method)

    @property
    def _settings(self) -> Settings:
        return self.namespace.dispatcher.settings

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call the ``@rpc`` method ``method`` of the object."""
        if not self.namespace.is_rpc(method):
            raise NotCallable(
                f"{self.namespace.cls.__qualname__}.{method} is not an @rpc method; "
                "only methods marked @rpc can be called through a stub"
            )
        namespace = self.namespace
        event = RpcEvent(namespace, method, codec.encode([list(args), kwargs]))
        dispatcher = namespace.dispatcher
        if not namespace.replicated:
            return codec.decode(await outbound(dispatcher.dispatch(namespace, self.id, event)))
        if event.readonly:
            event.min_version = self.version
        version, result = await outbound(dispatcher.dispatch(namespace, self.id, event))
        if version > self.version:
            self.version = version
        return codec.decode(result)

    async def fetch(self, request: Request) -> Response:
        """Send an HTTP request to the object's ``fetch`` and return its response."""
        limit = self._settings.max_body_bytes
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise HTTPException(413, f"request body larger than {limit} bytes")
        event = FetchEvent.of(self.namespace, request.scope, bytes(body))
        dispatcher = self.namespace.dispatcher
        result = await outbound(dispatcher.dispatch(self.namespace, self.id, event))
        return FetchEvent.response(result)

    async def connect(self, websocket: WebSocket) -> None:
        """Hand a client WebSocket (not yet accepted) to the object; returns once the object
        has taken it (a socket this node serves needs no task of its own after that)."""
        conn = Connection(websocket, self._settings.max_send_buffer_bytes)
        await self.namespace.dispatcher.connect(
            self.namespace, self.id, conn, SocketRequest.of(websocket)
        )

    async def watch(self, websocket: WebSocket) -> None:
        """Hand a client WebSocket that only watches to the object's replica on this node
        (a replicated class): its messages run read-only handlers there, and the replica's
        ``replica_update`` tells it of the primary's commits, so watchers cost the primary
        nothing. Where there can be no replica (replicas off, the object over their size
        bounds, a class not replicated), the socket goes to the primary as with
        ``connect``; the object tells the two apart with ``self.ctx.is_replica``."""
        if not self.namespace.replicated:
            await self.connect(websocket)
            return
        conn = Connection(websocket, self._settings.max_send_buffer_bytes)
        await self.namespace.dispatcher.watch(
            self.namespace, self.id, conn, SocketRequest.of(websocket)
        )


# ------------------------------------------------------------------ bindings


@dataclass(frozen=True, slots=True)
class Binding:
    """A namespace an app declares once, by name, and reaches through the handle::

        ROOMS = Binding("chat_room")                      # apps/chat/names.py
        App(objects={ROOMS: ChatRoom}, ...)               # the app binds it to its class
        env.namespace(ROOMS).get_by_name("lobby")         # and uses the handle, never the name

    A mistyped handle is a NameError when the module is imported, and a binding another app
    declares that no mounted app registers fails the node at start-up (``App(uses=...)``),
    not at the first call."""

    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _BINDING_RE.fullmatch(self.name):
            raise ConfigurationError(
                f"namespace name {self.name!r}: 1-64 characters, without ':', '{{' or '}}'"
            )

    def __str__(self) -> str:
        return self.name


_BINDING_RE = re.compile(r"[^:{}\s]{1,64}")


# ------------------------------------------------------------------ env

S = TypeVar("S", bound="BaseSettings")


class EnvHost(Protocol):
    """What an Env needs from its node."""

    settings: Settings
    node_id: str

    def namespace(self, name: str) -> Namespace: ...
    async def signing_key(self, purpose: str) -> bytes: ...


class AppInfo(Protocol):
    """The app an Env belongs to (an app.MountedApp)."""

    name: str

    def settings_as(self, kind: type[S]) -> S: ...


class Env:
    """What an object gets as ``self.env`` (and a route from ``env_of``): the node's
    namespaces and settings, and the settings of the app that registered the object."""

    def __init__(self, host: EnvHost, app: AppInfo | None = None) -> None:
        self._node = host
        self.app = app

    @property
    def settings(self) -> Settings:
        """The node's settings (limits such as ``max_value_bytes`` live there)."""
        return self._node.settings

    @property
    def node_id(self) -> str:
        """The node this code runs on."""
        return self._node.node_id

    def namespace(self, binding: Binding | str) -> Namespace:
        """The namespace declared by ``binding`` (or registered under that name), by any app
        of the node."""
        return self._node.namespace(binding if isinstance(binding, str) else binding.name)

    async def signing_key(self, purpose: str) -> bytes:
        """32 bytes to sign ``purpose``'s tokens with (cookies, seat tokens, share links):
        the same on every node, derived from SECRET_KEY or kept in Redis (keys.py)."""
        return await self._node.signing_key(purpose)

    def app_settings(self, kind: type[S]) -> S:
        """The settings of this object's (or route's) app, checked to be a ``kind``."""
        if self.app is None:
            raise ConfigurationError(
                f"no App with {kind.__name__} settings registered this namespace; "
                "mount the object with App(settings=...)"
            )
        return self.app.settings_as(kind)
