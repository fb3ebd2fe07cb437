"""Client sockets served over ASGI by uvicorn (with http1.py, the modules that know
uvicorn's insides).

:class:`FastWebSocketProtocol` is uvicorn's sans-I/O ``websockets`` protocol, unchanged but
for one thing: it puts itself into the connection's scope, so :class:`Connection` can write
pre-encoded frames (``frames.OutFrame``) straight to its transport. A broadcast then costs
one encoding and one ``transport.write`` per socket instead of an ASGI ``send`` each.
Receiving, handshakes, pings and closing stay exactly as uvicorn does them.

:class:`~runtime.sockets.http1.BoundedHttpToolsProtocol` (http1.py) is uvicorn's httptools
HTTP protocol with a bound on each request's head (request line and headers:
``max_header_bytes``, else 431) and on how long it may take to arrive (``header_timeout``,
else 408), so neither a huge header nor one sent a byte at a time (slowloris) can hold a
connection, memory or the event loop; and each response written in one system call.

What is used of uvicorn (``tests/integration/test_asgi.py`` fails if it changes):
``WebSocketsSansIOProtocol.handle_connect`` and, on the protocol object, ``scope``,
``transport``, ``close_sent``, ``disconnected`` and ``conn.max_message_size``;
``HttpToolsProtocol``'s ``connection_made``, ``data_received``, ``on_headers_complete``,
``on_message_complete``, ``on_response_complete`` (replaced: it arms no keep-alive timer),
``handle_websocket_upgrade``, ``connection_lost``, ``transport``, ``cycle`` and the
cycle's ``transport``. With any other ASGI
server, :class:`Connection` falls back to ASGI sends through a small writer task.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from .frames import CORK, OutFrame
from .websocket import Received, Sink

log = logging.getLogger("runtime.asgi")

#: Scope extension under which FastWebSocketProtocol exposes itself.
TRANSPORT_EXTENSION = "runtime.transport"
#: Node links carry batches of up to 32 messages of up to a megabyte or so each.
LARGE_MAX_SIZE = 128 * 1024 * 1024


class _ToSink:
    """Stands in for a detached protocol's ASGI queue: what uvicorn would queue for the app
    goes to the runtime's sink at once, as a ``Received``."""

    __slots__ = ("sink",)

    def __init__(self, sink: Sink) -> None:
        self.sink = sink

    def put_nowait(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "websocket.receive":
            text = message.get("text")
            if text is not None:
                self.sink.received(Received("text", text))
            else:
                self.sink.received(Received("bytes", message.get("bytes") or b""))
        elif kind == "websocket.disconnect":
            code = int(message.get("code", 1005))
            self.sink.received(Received("close", b"", code, message.get("reason") or ""))

    def empty(self) -> bool:
        return True


class _KeepOpen:
    """A stand-in close timer: uvicorn closes a socket when its ASGI task ends unless a
    close timer is pending, and a detached socket's task ends at once, on purpose."""

    def cancel(self) -> None:
        pass


_KEEP_OPEN = _KeepOpen()


class _AlwaysWritable:
    """Stands in for a detached protocol's asyncio.Event "writable" (one per socket): its
    close frame is the only thing it still sends through uvicorn, and that may go at once."""

    def set(self) -> None:
        pass

    def clear(self) -> None:
        pass

    def is_set(self) -> bool:
        return True

    async def wait(self) -> bool:
        return True


_WRITABLE = _AlwaysWritable()


class FastWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's protocol, exposing its transport and able to detach from ASGI.

    ``large_paths``: paths whose sockets are not held to the clients' frame limit (the
    server passes the node link's)."""

    def __init__(self, *args: Any, large_paths: frozenset[str] = frozenset(), **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.large_paths = large_paths

    def detach(self, sink: Sink) -> None:
        """After the handshake: messages go to ``sink``, not to an ASGI task. The route's
        task may then end; uvicorn keeps the socket open (a pending "close timer"), and
        everything only the handshake needed (its request, headers and scope) is let go."""
        early, self.queue = self.queue, _ToSink(sink)  # type: ignore[assignment]
        while not early.empty():  # frames that came while the object was accepting
            self.queue.put_nowait(early.get_nowait())
        if self.close_timer is None:
            self.close_timer = _KEEP_OPEN  # type: ignore[assignment]
        # The handshake's headers: websockets' parser keeps its Request alive for the life
        # of the socket (a local of its generator), so empty it (SocketRequest has a copy).
        if getattr(self, "request", None) is not None:
            self.request.headers.clear()
        self.request = None  # type: ignore[assignment]
        self.response = None  # type: ignore[assignment]
        # Nothing waits on "writable" once detached (writes check the buffer themselves).
        if self.writable.is_set():
            self.writable = _WRITABLE  # type: ignore[assignment]
        self.scope = {"type": "websocket", "path": self.scope["path"]}  # type: ignore[typeddict-item]

    def resume(self) -> None:
        """Read again (uvicorn pauses reading after each message until it is taken)."""
        if self.read_paused and not self.disconnected:
            self.read_paused = False
            self.transport.resume_reading()

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][TRANSPORT_EXTENSION] = self
            if scope["path"] in self.large_paths:  # not the clients' frame limit
                self.conn.max_message_size = LARGE_MAX_SIZE

    async def send(self, message: Any) -> None:
        await super().send(message)
        if (
            message["type"] == "websocket.http.response.body"
            and not message.get("more_body", False)
            and self.initial_response is not None
        ):
            # uvicorn leaves a handshake answered with an HTTP response "incomplete", and
            # logs an error when the app returns; it is complete. (guards.Edge logs why it
            # was refused, its path shortened: a path may carry a capability.)
            self.handshake_complete = True


class Connection:
    """The transport of one client socket served by this node (see websocket.Transport)."""

    def __init__(self, websocket: WebSocket, max_buffer: int) -> None:
        self.websocket = websocket
        self.max_buffer = max_buffer
        self.fast: Any = websocket.scope.get("extensions", {}).get(TRANSPORT_EXTENSION)
        self._queue: asyncio.Queue[OutFrame | tuple[int, str]] | None = None
        self._writer: asyncio.Task[None] | None = None
        self.accepted = False
        self.closed = False

    async def accept(self, subprotocol: str | None = None) -> None:
        await self.websocket.accept(subprotocol)
        self.accepted = True

    @property
    def gone(self) -> bool:
        fast = self.fast
        if fast is None:
            return self.closed
        return bool(fast.disconnected or fast.close_sent or fast.transport.is_closing())

    def backlog(self) -> int:
        """Bytes written and not yet taken by the client's connection."""
        fast = self.fast
        if fast is None:
            return 0
        return int(fast.transport.get_write_buffer_size()) + CORK.pending(fast.transport)

    async def deny(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        """Refuse the handshake with an HTTP response (or a plain 403 if unsupported)."""
        self.closed = True
        try:
            await self.websocket.send_denial_response(PlainTextResponse(text, status, headers))
        except RuntimeError:
            await self._close(1008, "")

    def detach(self, sink: Sink) -> bool:
        """Hand messages to ``sink`` from now on (only with FastWebSocketProtocol): no task
        waits on the socket, and the Starlette WebSocket (its scope, headers) is let go."""
        fast = self.fast
        if fast is None or not self.accepted:
            return False
        fast.detach(sink)
        self.websocket = None  # type: ignore[assignment]
        return True

    def resume(self) -> None:
        if self.fast is not None:
            self.fast.resume()

    def write(self, frame: OutFrame) -> bool:
        """Queue one frame; False if the socket is gone or the client is not reading."""
        if self.closed:
            return False
        fast = self.fast
        if fast is not None:
            transport = fast.transport
            if fast.close_sent or fast.disconnected or transport.is_closing():
                return False
            if transport.get_write_buffer_size() + CORK.pending(transport) > self.max_buffer:
                return False
            CORK.write(transport, frame.wire)
            return True
        queue = self._ensure_writer()
        if queue.qsize() * 1024 > self.max_buffer:
            return False
        queue.put_nowait(frame)
        return True

    def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        fast = self.fast
        if fast is not None and self.backlog() > self.max_buffer:
            # The client stopped reading: a close frame would wait behind everything it did
            # not read, so drop the connection (the client sees it end, code 1006).
            fast.transport.abort()
            return
        if self.fast is None and self._queue is not None:
            self._queue.put_nowait((code, reason))
            return
        asyncio.get_running_loop().create_task(self._close(code, reason))

    async def close_now(self, code: int, reason: str) -> None:
        """Close and wait until the close frame is sent (before a handler returns)."""
        if not self.closed:
            self.closed = True
            await self._close(code, reason)

    async def _close(self, code: int, reason: str) -> None:
        try:
            if self.websocket is None:  # detached: straight to the protocol's ASGI send
                await self.fast.send({"type": "websocket.close", "code": code, "reason": reason})
            elif self.accepted:
                await self.websocket.close(code, reason)
            else:
                # Refuse the handshake: ASGI servers answer 403 to a close before accept.
                await self.websocket.close(code)
        except Exception:  # the client is already gone
            pass

    async def receive(self) -> Received:
        message = await self.websocket.receive()
        kind = message["type"]
        if kind == "websocket.receive":
            text = message.get("text")
            if text is not None:
                return Received("text", text)
            return Received("bytes", message.get("bytes") or b"")
        return Received("close", b"", int(message.get("code", 1005)), message.get("reason") or "")

    def _ensure_writer(self) -> asyncio.Queue[OutFrame | tuple[int, str]]:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._writer = asyncio.get_running_loop().create_task(self._write_loop(self._queue))
        return self._queue

    async def _write_loop(self, queue: asyncio.Queue[OutFrame | tuple[int, str]]) -> None:
        while True:
            item = await queue.get()
            try:
                if isinstance(item, tuple):
                    await self._close(*item)
                    return
                if isinstance(item.message, str):
                    await self.websocket.send_text(item.message)
                else:
                    await self.websocket.send_bytes(item.message)
            except Exception:
                self.closed = True
                return


class _QuietProtocolErrors(logging.Filter):
    """uvicorn logs a client's invalid UTF-8 with a full traceback; one bad client could
    fill the logs. The socket is closed with 1007 all the same: keep one line, no stack.
    Its line per WebSocket handshake ("[accepted]", "403") goes too: accepted sockets are
    not events worth a line, and refusals are logged once, with their reason, above."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Invalid UTF-8 sequence received from client"):
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        elif record.levelno == logging.INFO and ' - "WebSocket ' in message:
            return False
        return True


logging.getLogger("uvicorn.error").addFilter(_QuietProtocolErrors())
