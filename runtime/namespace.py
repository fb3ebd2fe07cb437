"""Namespaces, IDs and stubs: how code reaches an object.

``ns.get(id)`` returns a :class:`Stub` at once; nothing is activated until the first call.
Through a stub: ``await stub.fetch(request)``, ``await stub.connect(websocket)``, and
``await stub.call("method", ...)`` or ``await stub.method(...)`` for ``@rpc`` methods.
Arguments and results are plain data and are copied, exactly as if the object were on another
node, so code behaves the same wherever its objects live.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from . import codec
from .errors import DurableObjectError, InvalidObjectId, InvalidValue, NotCallable, RpcError
from .gate import outbound
from .ids import IdFactory, ObjectId
from .object import DurableObject, alarm_takes_info, rpc_method
from .record import ObjectRecord, RecordGone
from .websocket import Connection, ObjectWebSocket, SocketRequest

if TYPE_CHECKING:
    from .config import Settings
    from .node import Node

log = logging.getLogger("runtime.namespace")

#: Parts of an HTTP scope an object's fetch() sees (plain data, so it can cross nodes).
_SCOPE_KEYS = (
    "type",
    "asgi",
    "http_version",
    "method",
    "scheme",
    "path",
    "raw_path",
    "root_path",
    "query_string",
    "headers",
    "client",
    "server",
    "path_params",
)


class Namespace:
    """One object class registered under a name."""

    def __init__(self, node: Node, name: str, cls: type[DurableObject]) -> None:
        if not (isinstance(cls, type) and issubclass(cls, DurableObject)):
            raise TypeError(f"namespace {name!r}: {cls!r} is not a DurableObject subclass")
        self.node = node
        self.name = name
        self.cls = cls
        self.alarm_takes_info = alarm_takes_info(cls)
        self.ids = IdFactory(name, node.settings.id_key.encode())
        self._rpc: dict[str, bool] = {}

    def is_rpc(self, method: str) -> bool:
        """Whether ``method`` is an ``@rpc`` method of the class (looked up once per name)."""
        known = self._rpc.get(method)
        if known is None:
            known = rpc_method(self.cls, method) is not None
            if len(self._rpc) < 1000:  # callers choose names: keep the memo bounded
                self._rpc[method] = known
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

    def get(self, object_id: ObjectId) -> Stub:
        if not isinstance(object_id, ObjectId):
            raise InvalidObjectId(
                f"get() takes an ObjectId (from id_from_name/new_unique_id/id_from_string), "
                f"not {type(object_id).__name__}"
            )
        if object_id.namespace != self.name:
            raise InvalidObjectId(
                f"this ID belongs to namespace {object_id.namespace!r}, not {self.name!r}"
            )
        return Stub(self, object_id)

    def get_by_name(self, name: str) -> Stub:
        return self.get(self.id_from_name(name))


class Stub:
    """A handle on one object. Cheap to make; safe to keep."""

    __slots__ = ("id", "namespace")

    def __init__(self, namespace: Namespace, object_id: ObjectId) -> None:
        self.namespace = namespace
        self.id = object_id

    def __repr__(self) -> str:
        return f"<Stub {self.namespace.name}:{self.id.hex[:12]}>"

    def __getattr__(self, method: str) -> Callable[..., Awaitable[Any]]:
        if method.startswith("_"):
            raise AttributeError(method)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self.call(method, *args, **kwargs)

        return call

    @property
    def _settings(self) -> Settings:
        return self.namespace.node.settings

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call the ``@rpc`` method ``method`` of the object."""
        if not self.namespace.is_rpc(method):
            raise NotCallable(
                f"{self.namespace.cls.__qualname__}.{method} is not an @rpc method; "
                "only methods marked @rpc can be called through a stub"
            )
        payload = codec.encode([list(args), kwargs])

        async def handler(instance: DurableObject) -> bytes:
            call_args, call_kwargs = codec.decode(payload)
            try:
                result = await getattr(instance, method)(*call_args, **call_kwargs)
            except DurableObjectError:
                raise
            except Exception as exc:
                log.debug("%s.%s raised", self.namespace.cls.__qualname__, method, exc_info=True)
                raise RpcError(type(exc).__name__, str(exc)) from None
            try:
                return codec.encode(result)
            except InvalidValue as exc:
                raise InvalidValue(
                    f"{self.namespace.cls.__qualname__}.{method} returned a value that is not "
                    f"plain data: {exc}"
                ) from None

        raw = await outbound(self.namespace.node.dispatch(self.namespace, self.id, handler))
        return codec.decode(raw)

    async def fetch(self, request: Request) -> Response:
        """Send an HTTP request to the object's ``fetch`` and return its response."""
        limit = self._settings.max_body_bytes
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise HTTPException(413, f"request body larger than {limit} bytes")
        scope = {k: request.scope[k] for k in _SCOPE_KEYS if k in request.scope}
        frozen = bytes(body)

        async def handler(instance: DurableObject) -> Response:
            sent = False

            async def receive() -> dict[str, Any]:
                nonlocal sent
                if sent:
                    return {"type": "http.disconnect"}
                sent = True
                return {"type": "http.request", "body": frozen, "more_body": False}

            try:
                response = await instance.fetch(Request(scope, receive))
            except (DurableObjectError, HTTPException):
                raise
            except Exception as exc:
                log.exception("%s.fetch raised", self.namespace.cls.__qualname__)
                raise RpcError(type(exc).__name__, str(exc)) from None
            if not isinstance(response, Response) or not hasattr(response, "body"):
                raise InvalidValue(
                    f"{self.namespace.cls.__qualname__}.fetch must return a Starlette Response "
                    "with a body (streaming responses are not supported)"
                )
            return response

        return await outbound(self.namespace.node.dispatch(self.namespace, self.id, handler))

    async def connect(self, websocket: WebSocket) -> None:
        """Hand a client WebSocket (not yet accepted) to the object; returns when it closes."""
        settings = self._settings
        conn = Connection(websocket, settings.max_send_buffer_bytes)
        ws = ObjectWebSocket(conn, SocketRequest.of(websocket), settings.max_attachment_bytes)

        async def on_connect(instance: DurableObject) -> None:
            await instance.websocket_connect(ws)

        try:
            try:
                await self.namespace.node.dispatch(self.namespace, self.id, on_connect)
            except DurableObjectError as exc:
                await conn.deny(503 if exc.retryable else 400, str(exc))
                return
            except Exception:
                log.exception("%s.websocket_connect raised", self.namespace.cls.__qualname__)
                await conn.deny(500, "the object failed to accept the connection")
                return
            if not ws.accepted:
                await conn.deny(403, "the object refused the connection")
                return
            await ws.open_transport()
            await _pump(ws, conn)
        finally:  # however it ended (even refused after accept_websocket), the socket is gone
            record = ws.record
            if record is not None:
                ws.closed = True
                record.forget_socket(ws)


async def _pump(ws: ObjectWebSocket, conn: Connection) -> None:
    """Deliver a socket's messages to its object, one event each, until it closes."""
    while True:
        received = await conn.receive()
        record = ws.record
        if record is None:
            return
        if received.kind == "close":
            cause = ws.close_cause
            ws.closed = True
            record.forget_socket(ws)
            if record.gone or cause in ("object", "discarded"):
                return  # the object closed it itself, or there is no instance to tell
            if cause == "runtime":  # closed by the runtime because of an error
                error = ws.error or ConnectionError("the runtime closed the socket")
                await _deliver(record, ws, partial(_on_error, ws, error))
            else:
                await _deliver(record, ws, partial(_on_close, ws, received.code, received.reason))
            return
        if not (ws.closed or record.gone):  # else drain until the close arrives
            await _deliver(record, ws, partial(_on_message, ws, received.data))


async def _on_message(ws: ObjectWebSocket, data: str | bytes, instance: DurableObject) -> None:
    await instance.websocket_message(ws, data)


async def _on_close(ws: ObjectWebSocket, code: int, reason: str, instance: DurableObject) -> None:
    await instance.websocket_close(ws, code, reason)


async def _on_error(ws: ObjectWebSocket, error: Exception, instance: DurableObject) -> None:
    await instance.websocket_error(ws, error)


async def _deliver(
    record: ObjectRecord, ws: ObjectWebSocket, handler: Callable[[DurableObject], Awaitable[None]]
) -> None:
    try:
        await record.run(handler, wait_output=False)
    except RecordGone:
        pass  # the object was discarded: its sockets are being closed
    except DurableObjectError as exc:
        if exc.retryable and not ws.closed:
            ws.abort(1013, "object busy, try again later", error=exc)
        log.warning("socket event for %s failed: %s", record.describe(), exc)
    except Exception:
        log.exception("socket handler of %s raised", record.describe())


class Env:
    """What every object gets as ``self.env``: the node's namespaces and settings."""

    def __init__(self, node: Node) -> None:
        self._node = node

    @property
    def settings(self) -> Settings:
        return self._node.settings

    def namespace(self, name: str) -> Namespace:
        return self._node.namespace(name)
