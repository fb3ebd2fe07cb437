"""An object's client sockets: the set it accepted, and serving one socket's events.

:class:`SocketSet` belongs to the object's record, so accepted sockets (their tags and
attachments) outlive the instance across hibernation.

:func:`serve_socket` runs the ``websocket_connect`` event; if the object accepted the socket,
it completes the handshake and delivers each message as a ``websocket_message`` event, in
order (the next message is read only when the previous event has run), until the socket
closes. The connection may be a local client socket or a tunnel from another node: both
look the same here.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextvars import Context
from functools import partial
from typing import Protocol

from ..base.errors import DurableObjectError, InvalidValue, Relocate, error_headers
from ..objects.object import DurableObject
from ..sockets.websocket import ObjectWebSocket, Received, SocketOwner, SocketRequest, Transport

log = logging.getLogger("runtime.sockets")


class SocketSet:
    """The sockets one object accepted, by id."""

    __slots__ = ("_sockets",)

    def __init__(self) -> None:
        self._sockets: dict[int, ObjectWebSocket] = {}

    def __len__(self) -> int:
        return len(self._sockets)

    def __iter__(self) -> Iterator[ObjectWebSocket]:
        return iter(list(self._sockets.values()))

    def accept(self, ws: ObjectWebSocket, tags: Iterable[str], owner: SocketOwner) -> None:
        if ws.accepted or ws.closed or ws.denial is not None:
            raise InvalidValue(f"{ws!r} was already accepted, closed or rejected")
        ws.tags = tags  # (checked here, before anything changes)
        ws.bind(owner)
        self._sockets[ws.id] = ws

    def open(self, tag: str | None = None) -> list[ObjectWebSocket]:
        """The accepted sockets not closed (nor being closed by the object), with ``tag``."""
        return [
            ws
            for ws in self._sockets.values()
            if not (ws.closed or ws.closing) and (tag is None or tag in ws.tags)
        ]

    def forget(self, ws: ObjectWebSocket) -> None:
        self._sockets.pop(ws.id, None)

    def abort_all(self, code: int, reason: str) -> None:
        """Close every socket now (the instance is gone or the node stops)."""
        for ws in list(self._sockets.values()):
            ws.abort(code, reason, cause="discarded")
        self._sockets.clear()


class SocketHost(Protocol):
    """What serving a socket needs from the object's record."""

    max_attachment_bytes: int
    log_fields: dict[str, str]

    def describe(self) -> str: ...
    def class_name(self) -> str: ...
    @property
    def gone(self) -> bool: ...
    async def run(
        self,
        handler: Callable[[DurableObject], Awaitable[None]],
        *,
        wait_output: bool = True,
        kind: str = "event",
    ) -> None: ...
    def forget_socket(self, ws: ObjectWebSocket) -> None: ...
    def socket_refused(self) -> None: ...
    def socket_received(self, data: str | bytes) -> None: ...


async def serve_socket(host: SocketHost, conn: Transport, request: SocketRequest) -> None:
    """Offer the socket to the object; serve it.

    A local client socket is served without a task of its own: once accepted, the transport
    hands each message to a :class:`Served` sink and this returns (the route's task and its
    frames are let go; an idle socket costs only its objects). A tunnelled socket is pumped
    by this coroutine until it closes.

    Raises what activation raises (``RecordGone``, ``HeldElsewhere``) before anything was
    accepted, so the router can take the socket elsewhere.
    """
    ws = ObjectWebSocket(conn, request, host.max_attachment_bytes)

    async def on_connect(instance: DurableObject) -> None:
        await instance.websocket_connect(ws)

    detached = False
    try:
        try:
            await host.run(on_connect, kind="connect")
        except Relocate:
            raise  # the router takes the socket elsewhere
        except DurableObjectError as exc:
            host.socket_refused()
            await conn.deny(503 if exc.retryable else 400, str(exc), error_headers(exc))
            return
        except Exception:
            log.exception("%s.websocket_connect raised", host.class_name(), extra=host.log_fields)
            host.socket_refused()
            await conn.deny(
                500, "the object failed to accept the connection", {"X-Outcome": "unknown"}
            )
            return
        if not ws.accepted:
            await _refuse(host, ws, conn)
            return
        try:
            await ws.open_transport()
        except OSError:  # (uvicorn's ClientDisconnected is one) gone before the handshake ended
            ws.closed = True
            host.forget_socket(ws)
            if not host.gone:  # the object counted this socket in: tell it it is gone
                await _deliver(host, ws, partial(_on_close, ws, 1006, ""), "close")
            return
        detached = conn.detach(Served(host, ws, conn))
        if not detached:
            while not await _handle(host, ws, await conn.receive()):
                pass
    finally:  # however it ended (even refused after accept_websocket), the socket is gone
        if not detached and ws.owner is not None:
            ws.closed = True
            host.forget_socket(ws)


async def _refuse(host: SocketHost, ws: ObjectWebSocket, conn: Transport) -> None:
    """The object did not accept: refuse the handshake with the status it chose."""
    host.socket_refused()
    if ws.denial is not None:
        await conn.deny(*ws.denial)  # (logged once, with its reason, by the transport)
    else:
        await conn.deny(403, "the object refused the connection")


#: The tasks delivering detached sockets' messages now (kept, so none is collected mid-run).
_serving: set[asyncio.Task[None]] = set()


def _served(task: asyncio.Task[None]) -> None:
    _serving.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.error("delivering a socket's messages failed", exc_info=task.exception())


class Served:
    """A detached socket's sink: its messages run as events one after the other, in order,
    in a task that exists only while there is something to deliver."""

    __slots__ = ("conn", "done", "host", "pending", "running", "ws")

    def __init__(self, host: SocketHost, ws: ObjectWebSocket, conn: Transport) -> None:
        self.host = host
        self.ws = ws
        self.conn = conn
        self.pending: deque[Received] | None = None
        self.running = False
        self.done = False

    def received(self, what: Received) -> None:
        if self.done:
            return
        if self.pending is None:
            self.pending = deque()
        self.pending.append(what)
        if what.kind == "close":
            self.done = True  # (a transport may report its end more than once)
        if not self.running:
            self.running = True
            # An empty context: the reader callback that got here may run in anyone's.
            task = asyncio.get_running_loop().create_task(self._run(), context=Context())
            _serving.add(task)
            task.add_done_callback(_served)

    async def _run(self) -> None:
        pending = self.pending
        try:
            while pending:
                received = pending.popleft()
                if not pending and not self.done:
                    # Read on while this one waits or runs: a pong, a close or the next
                    # message must not wait behind a slow event (uvicorn's keepalive would
                    # end the socket). The queue stays bounded: one read at a time.
                    self.conn.resume()
                if await _handle(self.host, self.ws, received):
                    return
        finally:
            self.running = False
            if pending is not None and not pending:
                self.pending = None  # (an idle socket keeps no queue)
            if not self.done:
                self.conn.resume()  # ready for the next message


async def _handle(host: SocketHost, ws: ObjectWebSocket, received: Received) -> bool:
    """Deliver one thing the client sent, as an event; True once the socket has ended."""
    if received.kind == "close":
        cause = ws.close_cause
        ws.closed = True
        host.forget_socket(ws)
        if host.gone or cause in ("object", "discarded"):
            return True  # the object closed it itself, or there is no instance to tell
        if cause == "runtime":  # closed by the runtime because of an error
            error = ws.error or ConnectionError("the runtime closed the socket")
            await _deliver(host, ws, partial(_on_error, ws, error), "error")
        else:
            on_close = partial(_on_close, ws, received.code, received.reason)
            await _deliver(host, ws, on_close, "close")
        return True
    host.socket_received(received.data)
    if not (ws.closed or ws.closing or host.gone):  # else drain until the close arrives
        await _deliver(host, ws, partial(_on_message, ws, received.data), "message")
    return False


async def _on_message(ws: ObjectWebSocket, data: str | bytes, instance: DurableObject) -> None:
    await instance.websocket_message(ws, data)


async def _on_close(ws: ObjectWebSocket, code: int, reason: str, instance: DurableObject) -> None:
    await instance.websocket_close(ws, code, reason)


async def _on_error(ws: ObjectWebSocket, error: Exception, instance: DurableObject) -> None:
    await instance.websocket_error(ws, error)


async def _deliver(
    host: SocketHost,
    ws: ObjectWebSocket,
    handler: Callable[[DurableObject], Awaitable[None]],
    kind: str,
) -> None:
    try:
        try:
            await host.run(handler, wait_output=False, kind=kind)
        except Relocate:
            if host.gone:
                return  # the object was discarded: its sockets are being closed
            # The instance changed while this event waited to start (it never ran): the
            # record lives on, so deliver it to the new instance rather than drop it.
            await host.run(handler, wait_output=False, kind=kind)
    except Relocate:
        pass
    except DurableObjectError as exc:
        if exc.retryable and not ws.closed:
            ws.abort(1013, "object busy, try again later", error=exc)
        log.warning("socket event for %s failed: %s", host.describe(), exc, extra=host.log_fields)
    except Exception:
        log.exception("socket handler of %s raised", host.describe(), extra=host.log_fields)
