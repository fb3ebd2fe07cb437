"""Client sockets served over ASGI by uvicorn: the one module that knows uvicorn's insides.

:class:`FastWebSocketProtocol` is uvicorn's sans-I/O ``websockets`` protocol, unchanged but
for one thing: it puts itself into the connection's scope, so :class:`Connection` can write
pre-encoded frames (``frames.OutFrame``) straight to its transport. A broadcast then costs
one encoding and one ``transport.write`` per socket instead of an ASGI ``send`` each.
Receiving, handshakes, pings and closing stay exactly as uvicorn does them.

:class:`BoundedHttpToolsProtocol` is uvicorn's httptools HTTP protocol with a bound on each
request's head (request line and headers: ``max_header_bytes``, else 431) and on how long
it may take to arrive (``header_timeout``, else 408), so neither a huge header nor one sent a
byte at a time (slowloris) can hold a connection, memory or the event loop.

What is used of uvicorn (``tests/integration/test_asgi.py`` fails if it changes):
``WebSocketsSansIOProtocol.handle_connect`` and, on the protocol object, ``scope``,
``transport``, ``close_sent``, ``disconnected`` and ``conn.max_message_size``;
``HttpToolsProtocol``'s ``connection_made``, ``data_received``, ``on_message_complete``,
``handle_websocket_upgrade``, ``connection_lost`` and ``transport``. With any other ASGI
server, :class:`Connection` falls back to ASGI sends through a small writer task.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass
from typing import Any

from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
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


@dataclass(frozen=True)
class HeadLimits:
    """Bounds on one request's head: its size, and how long it may take to arrive."""

    max_bytes: int = 64 * 1024
    timeout: float = 10.0


_HEAD_END = b"\r\n\r\n"


class _Clock:
    """One timer per event loop for the deadlines of every HTTP connection on it (a head to
    finish, a kept-alive connection to say something), instead of two timers made and
    cancelled for every request. It ticks every quarter of the head timeout (at most once a
    second) while any connection is watched, so a deadline is met at most that late."""

    def __init__(self, loop: asyncio.AbstractEventLoop, every: float) -> None:
        self.loop = loop
        self.every = every
        self.watched: set[BoundedHttpToolsProtocol] = set()
        self.handle: asyncio.TimerHandle | None = None

    def watch(self, protocol: BoundedHttpToolsProtocol) -> None:
        self.watched.add(protocol)
        if self.handle is None:
            self.handle = self.loop.call_later(self.every, self.tick)

    def tick(self) -> None:
        now = self.loop.time()
        for protocol in [p for p in self.watched if p.deadline and now >= p.deadline]:
            protocol.lapsed()
        self.handle = self.loop.call_later(self.every, self.tick) if self.watched else None


_clocks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Clock] = weakref.WeakKeyDictionary()


class _Corked:
    """The transport as one HTTP response sees it: what it writes in one turn of the loop
    (the status line and headers, then the body, as two ASGI messages) goes out in one
    write — one system call, not two. A send to a peer on this machine costs a node several
    microseconds of kernel time, as much as a layer of middleware."""

    __slots__ = ("_buffer", "_loop", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._buffer: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._buffer:
            self._loop.call_soon(self.flush)
        self._buffer.append(data)

    def flush(self) -> None:
        if self._buffer:
            data = b"".join(self._buffer) if len(self._buffer) > 1 else self._buffer[0]
            self._buffer.clear()
            if not self.transport.is_closing():
                self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def is_closing(self) -> bool:
        return self.transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing request heads that are too big (431) or too
    slow (408), and closing a kept-alive connection that says nothing for uvicorn's
    keep-alive timeout.
    Bytes are counted as they arrive, before the parser keeps them, up to the blank line
    that ends the head; body bytes are not counted. Deadlines are kept by one clock per loop
    (_Clock), not by uvicorn's timer per request."""

    def __init__(self, *args: Any, limits: HeadLimits = HeadLimits(), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._head = 0  # bytes of the current head so far; -1 once it is complete
        self._tail = b""  # the last bytes seen, to find a head end split across reads
        #: When the head being waited for must be complete (loop time; 0: no deadline).
        self.deadline = 0.0
        self._refused = False
        clock = _clocks.get(self.loop)
        if clock is None:
            every = max(0.05, min(1.0, limits.timeout / 4))
            clock = _clocks[self.loop] = _Clock(self.loop, every)
        self._clock = clock

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.deadline = self.loop.time() + self.limits.timeout
        self._clock.watch(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._clock.watched.discard(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._head >= 0:
            later = self._head == 0 and data and self.cycle is not None
            if later and (self.cycle.response_complete or not self.deadline):
                # The first bytes of a later head: it has the head timeout from now (not
                # what is left of the keep-alive wait; a first head's clock started when
                # the connection was made).
                self.deadline = self.loop.time() + self.limits.timeout
            end = (self._tail + data).find(_HEAD_END)
            counted = len(data) if end < 0 else max(0, end + 4 - len(self._tail))
            self._head += counted
            if self._head > self.limits.max_bytes:
                self._refuse(431, "Request Header Fields Too Large")
                return
            if end >= 0:
                self._head = -1
                self.deadline = 0.0
            else:
                self._tail = (self._tail + data)[-3:]
        super().data_received(data)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and not isinstance(cycle.transport, _Corked):
            cycle.transport = _Corked(self.transport, self.loop)  # type: ignore[assignment]

    def on_message_complete(self) -> None:
        super().on_message_complete()
        # What comes next on this connection is another request's head; its clock starts
        # when this response is done (or at its first byte, if that comes sooner).
        self._head, self._tail, self.deadline = 0, b"", 0.0

    def on_response_complete(self) -> None:
        """uvicorn's, but the kept-alive connection's wait is on our clock, not a timer."""
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self._unset_keepalive_if_required()
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
        elif self._head == 0 and not self._refused:  # kept alive: it may now say nothing
            self.deadline = self.loop.time() + self.timeout_keep_alive  # for this long

    def handle_websocket_upgrade(self) -> None:
        self._clock.watched.discard(self)  # the WebSocket protocol owns the connection now
        self.deadline = 0.0
        super().handle_websocket_upgrade()

    def lapsed(self) -> None:
        """The deadline passed: a head begun and not finished (408), or a connection that
        said nothing (closed)."""
        self.deadline = 0.0
        if self._head > 0:
            self._refuse(408, "Request Timeout")
        elif self._head == 0 and (self.cycle is None or self.cycle.response_complete):
            self._refused = True
            self.transport.close()

    def _refuse(self, status: int, reason: str) -> None:
        self._refused = True
        self.deadline = 0.0
        body = f"{reason}\n".encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        log.info("refused a request from %s: %s", _peer(self.client), reason.lower())
        self.transport.write(head.encode() + body)
        self.transport.close()


def _peer(client: Any) -> str:
    return str(client[0]) if client else "?"


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

    async def deny(self, status: int, text: str) -> None:
        """Refuse the handshake with an HTTP response (or a plain 403 if unsupported)."""
        self.closed = True
        try:
            await self.websocket.send_denial_response(PlainTextResponse(text, status))
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
