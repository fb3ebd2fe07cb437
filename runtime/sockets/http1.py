"""HTTP/1.1 connections as a node serves them: uvicorn's httptools protocol, with a bound on
each request's head (431 too big, 408 too slow), one clock per event loop for the deadlines
of all connections (instead of timers made and cancelled for every request), and each
response written in one go (its head and body in one system call, not two).

This module, like asgi.py, knows uvicorn's insides; tests/integration/test_asgi.py and
test_request_heads.py check them on live sockets.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("runtime.asgi")


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
