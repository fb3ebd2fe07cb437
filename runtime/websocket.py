"""Client WebSockets as objects see them, and the transports under them.

An :class:`ObjectWebSocket` is what an object accepts with ``accept_websocket``. It belongs to
the object's record on the node, not to the instance, so it survives hibernation: its tags and
its attachment (small plain data, <= 16 KiB) are there when the instance is rebuilt.

``send`` never blocks: the message goes through the object's output gate (held until the
writes made before it are committed) and is then written to the transport. A message is
encoded into a WebSocket frame once (:class:`OutFrame`), so a broadcast to many sockets costs
one encoding and a ``transport.write`` per socket when the node serves the socket itself.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket

from . import codec
from .errors import InvalidValue, StorageLimitExceeded

if TYPE_CHECKING:
    from .record import ObjectRecord

log = logging.getLogger("runtime.websocket")

#: Scope extension under which FastWebSocketProtocol exposes itself (see wsprotocol.py).
TRANSPORT_EXTENSION = "runtime.transport"

_ids = itertools.count(1)
#: Close codes a server may send (RFC 6455 section 7.4.1; 1004-1006 and 1015 are reserved,
#: 1012-1014 belong to the runtime: restart, try again later, bad gateway).
_SENDABLE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011})


class OutFrame:
    """One outgoing message, encoded to wire bytes at most once."""

    __slots__ = ("_wire", "message")

    def __init__(self, message: str | bytes) -> None:
        if not isinstance(message, str | bytes):
            raise InvalidValue(
                f"a WebSocket message is str (text) or bytes (binary), not {type(message).__name__}"
            )
        self.message = message
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        """The unmasked server-to-client frame (RFC 6455 section 5.2)."""
        if self._wire is None:
            if isinstance(self.message, str):
                first, payload = 0x81, self.message.encode()
            else:
                first, payload = 0x82, self.message
            n = len(payload)
            if n < 126:
                head = bytes((first, n))
            elif n < 65536:
                head = struct.pack("!BBH", first, 126, n)
            else:
                head = struct.pack("!BBQ", first, 127, n)
            self._wire = head + payload
        return self._wire


def encode_frame(message: str | bytes) -> OutFrame:
    return OutFrame(message)


@dataclass(frozen=True, slots=True)
class SocketRequest:
    """The handshake of a client socket, as plain data."""

    url: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: tuple[tuple[str, str], ...]
    client: str | None
    path_params: tuple[tuple[str, str], ...] = ()

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def wire(self) -> list[Any]:
        """As plain data, to open a tunnel to the object's node."""
        return [self.url, self.path, self.query, self.headers, self.client, self.path_params]

    @classmethod
    def from_wire(cls, data: Any) -> SocketRequest:
        try:
            url, path, query, headers, client, params = data
            return cls(
                url=str(url),
                path=str(path),
                query=tuple((str(k), str(v)) for k, v in query),
                headers=tuple((str(k), str(v)) for k, v in headers),
                client=None if client is None else str(client),
                path_params=tuple((str(k), str(v)) for k, v in params),
            )
        except (TypeError, ValueError):
            raise InvalidValue("malformed socket request from another node") from None

    def query_param(self, name: str, default: str | None = None) -> str | None:
        for key, value in self.query:
            if key == name:
                return value
        return default

    @classmethod
    def of(cls, websocket: WebSocket) -> SocketRequest:
        return cls(
            url=str(websocket.url),
            path=websocket.url.path,
            query=tuple(websocket.query_params.multi_items()),
            headers=tuple((k.lower(), v) for k, v in websocket.headers.items()),
            client=websocket.client.host if websocket.client else None,
            path_params=tuple((k, str(v)) for k, v in websocket.path_params.items()),
        )


@dataclass(frozen=True, slots=True)
class Received:
    """What came from the client: a message, or the end of the socket."""

    kind: str  # "text", "bytes" or "close"
    data: str | bytes = b""
    code: int = 1000
    reason: str = ""


class Transport(Protocol):
    """What carries one client socket: a local ASGI connection or a tunnel from another
    node (cluster.TunnelConnection). Objects' sockets work the same over either."""

    accepted: bool
    closed: bool

    @property
    def gone(self) -> bool:
        """The other side has gone (as opposed to: it is too slow)."""
        ...

    async def accept(self, subprotocol: str | None = None) -> None: ...
    async def deny(self, status: int, text: str) -> None: ...
    def write(self, frame: OutFrame) -> bool: ...
    def close(self, code: int, reason: str) -> None: ...
    async def receive(self) -> Received: ...


class Connection:
    """The transport of one client socket served by this node (over ASGI).

    Writes go straight to the transport when the node runs FastWebSocketProtocol; with any
    other ASGI server they go through a small writer task.
    """

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

    async def deny(self, status: int, text: str) -> None:
        """Refuse the handshake with an HTTP response (or a plain 403 if unsupported)."""
        self.closed = True
        try:
            await self.websocket.send_denial_response(PlainTextResponse(text, status))
        except RuntimeError:
            await self._close(1008, "")

    def write(self, frame: OutFrame) -> bool:
        """Queue one frame; False if the socket is gone or the client is not reading."""
        if self.closed:
            return False
        fast = self.fast
        if fast is not None:
            transport = fast.transport
            if fast.close_sent or fast.disconnected or transport.is_closing():
                return False
            if transport.get_write_buffer_size() > self.max_buffer:
                return False
            transport.write(frame.wire)
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
        if fast is not None and fast.transport.get_write_buffer_size() > self.max_buffer:
            # The client stopped reading: a close frame would wait behind everything it did
            # not read, so drop the connection (the client sees it end, code 1006).
            fast.transport.abort()
            return
        if self.fast is None and self._queue is not None:
            self._queue.put_nowait((code, reason))
            return
        asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        try:
            if self.accepted:
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


class ObjectWebSocket:
    """A client socket handed to an object."""

    __slots__ = (
        "__weakref__",
        "_attachment",
        "_conn",
        "_max_attachment",
        "_pending",
        "_record",
        "accepted",
        "close_cause",
        "closed",
        "error",
        "id",
        "request",
        "tags",
    )

    def __init__(self, conn: Transport, request: SocketRequest, max_attachment: int) -> None:
        self._conn = conn
        self.request = request
        self.id = next(_ids)
        self.tags: tuple[str, ...] = ()
        self.accepted = False  # accepted by the object
        self.closed = False
        #: Who closed it from this side: "object", "runtime" (an error: see ``error``),
        #: "discarded" (the instance was reset or the node stops), or None (not closed by us).
        self.close_cause: str | None = None
        self.error: Exception | None = None
        self._attachment: bytes | None = None
        self._record: ObjectRecord | None = None
        self._pending: list[OutFrame | tuple[int, str]] | None = []  # until the handshake is done
        self._max_attachment = max_attachment

    def __repr__(self) -> str:
        return f"<ObjectWebSocket #{self.id} tags={list(self.tags)}>"

    def send(self, message: str | bytes) -> None:
        """Send a text (str) or binary (bytes) message, after this event's writes commit."""
        self.send_frame(OutFrame(message))

    def send_frame(self, frame: OutFrame) -> None:
        if self._record is None:
            raise InvalidValue("accept the socket with accept_websocket(ws) before sending on it")
        if not self.closed:  # a socket closing meanwhile is not the sender's error
            self._record.output(self, frame)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket (after this event's writes commit)."""
        if code not in _SENDABLE_CODES and not 3000 <= code <= 4999:
            raise InvalidValue(
                f"close code {code} cannot be sent; use 1000-1003, 1007-1009, 1011 or 3000-4999"
            )
        if len(reason.encode()) > 123:
            raise InvalidValue("a close reason is at most 123 bytes")
        if self.closed:
            return
        if self._record is None:  # not accepted: the handshake will be refused
            self.closed = True
            return
        self._record.output(self, (code, reason))

    @property
    def attachment(self) -> Any:
        """Small plain data kept with the socket across hibernation (a copy on each read)."""
        return None if self._attachment is None else codec.decode(self._attachment)

    @attachment.setter
    def attachment(self, value: Any) -> None:
        data = codec.encode(value)
        if len(data) > self._max_attachment:
            raise StorageLimitExceeded(
                f"a socket attachment encodes to {len(data)} bytes; "
                f"the limit is {self._max_attachment}"
            )
        self._attachment = data

    # ---------------------------------------------------- runtime side

    @property
    def record(self) -> ObjectRecord | None:
        return self._record

    def bind(self, record: ObjectRecord) -> None:
        self._record = record

    def deliver(self, item: OutFrame | tuple[int, str]) -> None:
        """Write what the output gate released (a frame, or a (code, reason) close)."""
        if self._pending is not None:
            self._pending.append(item)
            return
        if isinstance(item, tuple):
            self.abort(*item, cause="object")
        elif not self._conn.write(item):
            if self._conn.gone:  # the client left: its close event is on its way
                self.closed = True
                return
            self.abort(
                1013,
                "client is not reading fast enough",
                error=ConnectionError("the client did not read its messages; socket closed"),
            )

    async def open_transport(self) -> None:
        """Complete the handshake, then write what was sent before it."""
        await self._conn.accept()
        pending, self._pending = self._pending or [], None
        for item in pending:
            self.deliver(item)

    def abort(
        self, code: int, reason: str, *, cause: str = "runtime", error: Exception | None = None
    ) -> None:
        """Close now, bypassing the output gate (used by the runtime itself)."""
        if self.closed:
            return
        self.closed = True
        self.close_cause = cause
        self.error = error
        self._pending = None
        self._conn.close(code, reason)
