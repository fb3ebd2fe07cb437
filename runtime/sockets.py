"""A client socket served by the object's own node: handshake, then one event per message.

``serve_socket`` runs the ``websocket_connect`` event; if the object accepted the socket,
it completes the handshake and delivers each message as a ``websocket_message`` event, in
order (the next message is read only when the previous event has run), until the socket
closes. The connection may be a local client socket or a tunnel from another node: both
look the same here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial

from .errors import DurableObjectError
from .object import DurableObject
from .record import HeldElsewhere, ObjectRecord, RecordGone
from .websocket import ObjectWebSocket, SocketRequest, Transport

log = logging.getLogger("runtime.sockets")


async def serve_socket(record: ObjectRecord, conn: Transport, request: SocketRequest) -> None:
    """Offer the socket to the object on ``record``; serve it until it closes.

    Raises ``RecordGone``/``HeldElsewhere`` (from activation) before anything was accepted,
    so the router can take the socket elsewhere.
    """
    ws = ObjectWebSocket(conn, request, record.settings.max_attachment_bytes)

    async def on_connect(instance: DurableObject) -> None:
        await instance.websocket_connect(ws)

    try:
        try:
            await record.run(on_connect)
        except (RecordGone, HeldElsewhere):
            raise
        except DurableObjectError as exc:
            await conn.deny(503 if exc.retryable else 400, str(exc))
            return
        except Exception:
            log.exception("%s.websocket_connect raised", record.namespace.cls.__qualname__)
            await conn.deny(500, "the object failed to accept the connection")
            return
        if not ws.accepted:
            await conn.deny(403, "the object refused the connection")
            return
        await ws.open_transport()
        await _pump(ws, conn)
    finally:  # however it ended (even refused after accept_websocket), the socket is gone
        owner = ws.record
        if owner is not None:
            ws.closed = True
            owner.forget_socket(ws)


async def _pump(ws: ObjectWebSocket, conn: Transport) -> None:
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
