"""Client WebSockets as objects see them, and the transports under them.

An :class:`ObjectWebSocket` is what an object accepts with ``accept_websocket``. It belongs to
the object's record on the node, not to the instance, so it survives hibernation: its tags and
its attachment (small plain data, <= 16 KiB) are there when the instance is rebuilt.

``send`` never blocks: the message goes through the object's output gate (held until the
writes made before it are committed) and is then written to the transport. A socket's
transport is a local client connection (``asgi.Connection``) or a tunnel from the node the
client reached (``cluster.TunnelConnection``); objects cannot tell them apart.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

from starlette.websockets import WebSocket

from ..base import codec
from ..base.errors import InvalidValue, StorageLimitExceeded
from .frames import OutFrame

log = logging.getLogger("runtime.websocket")

_ids = itertools.count(1)


class CloseCode(IntEnum):
    """WebSocket close codes (RFC 6455 section 7.4.1) an app sends or meets."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    #: The connection ended without a close frame (never sent; seen in websocket_close).
    ABNORMAL = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    #: The node is restarting or went away: the client should reconnect (sent by the runtime).
    SERVICE_RESTART = 1012
    #: The object is busy or the client too slow: retry later (sent by the runtime).
    TRY_AGAIN_LATER = 1013


#: Close codes an object may send (1004-1006 and 1015 are reserved; 1012-1014 belong to the
#: runtime); 3000-4999 are the application's own.
_SENDABLE_CODES = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011})
MAX_TAGS = 10
MAX_TAG_LENGTH = 256

Output = OutFrame | tuple[int, str]


class SocketOwner(Protocol):
    """What a socket needs from the object's record: a way through its output gate."""

    def output(self, ws: ObjectWebSocket, item: Output) -> None: ...


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


class Sink(Protocol):
    """Where a detached transport hands what the client sends (sockets.py serves it)."""

    def received(self, what: Received) -> None: ...


class Transport(Protocol):
    """What carries one client socket: a local ASGI connection (asgi.Connection) or a tunnel
    from another node (cluster.TunnelConnection). Objects' sockets work the same over either."""

    accepted: bool
    closed: bool

    @property
    def gone(self) -> bool:
        """The other side has gone (as opposed to: it is too slow)."""
        ...

    async def accept(self, subprotocol: str | None = None) -> None: ...
    async def deny(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        """Refuse the handshake with an HTTP answer (``headers``: X-Error-Code, X-Outcome...)."""
        ...

    def write(self, frame: OutFrame) -> bool: ...
    def close(self, code: int, reason: str) -> None: ...
    async def receive(self) -> Received: ...
    def detach(self, sink: Sink) -> bool:
        """From now on hand what arrives to ``sink`` instead of ``receive()``, so no task
        waits per socket; False if this transport cannot (then keep calling receive())."""
        ...

    def resume(self) -> None:
        """The sink is ready for more (a detached transport reads one message at a time)."""
        ...


class ObjectWebSocket:
    """A client socket handed to an object."""

    __slots__ = (
        "__weakref__",
        "_attachment",
        "_conn",
        "_max_attachment",
        "_owner",
        "_pending",
        "_tags",
        "accepted",
        "close_cause",
        "closed",
        "closing",
        "denial",
        "error",
        "id",
        "request",
    )

    def __init__(self, conn: Transport, request: SocketRequest, max_attachment: int) -> None:
        self._conn = conn
        self.request = request
        self.id = next(_ids)
        self._tags: tuple[str, ...] = ()
        self.accepted = False  # accepted by the object
        self.closed = False
        #: The object called close(): the socket no longer counts as open for it, even while
        #: the close waits in the output gate.
        self.closing = False
        #: Who closed it from this side: "object", "runtime" (an error: see ``error``),
        #: "discarded" (the instance was reset or the node stops), or None (not closed by us).
        self.close_cause: str | None = None
        self.error: Exception | None = None
        #: (status, text) of a handshake the object refused with reject().
        self.denial: tuple[int, str] | None = None
        self._attachment: Any = None
        self._owner: SocketOwner | None = None
        self._pending: list[Output] | None = []  # until the handshake is done
        self._max_attachment = max_attachment

    def __repr__(self) -> str:
        return f"<ObjectWebSocket #{self.id} tags={list(self._tags)}>"

    # ---------------------------------------------------- what objects use

    def send(self, message: str | bytes) -> None:
        """Send a text (str) or binary (bytes) message, after this event's writes commit."""
        self.send_frame(OutFrame(message))

    def send_frame(self, frame: OutFrame) -> None:
        """Send a frame encoded once for many sockets (what ``broadcast`` does)."""
        if self._owner is None:
            raise InvalidValue("accept the socket with accept_websocket(ws) before sending on it")
        if not (self.closed or self.closing):  # a socket closing meanwhile is not an error
            self._owner.output(self, frame)

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close the socket (after this event's writes commit).

        Called in ``websocket_connect`` before ``accept_websocket``, it refuses the handshake
        (403, with ``reason`` as the body). To give a browser a close code it can read,
        accept the socket and then close it, in the same event.
        """
        if code not in _SENDABLE_CODES and not 3000 <= code <= 4999:
            raise InvalidValue(
                f"close code {code} cannot be sent; use 1000-1003, 1007-1009, 1011 or 3000-4999"
            )
        if len(reason.encode()) > 123:
            raise InvalidValue("a close reason is at most 123 bytes")
        if self.closed or self.closing:
            return
        self.closing = True
        if self._owner is None:  # not accepted: the handshake is refused
            self.denial = (403, reason or f"refused (close code {int(code)})")
            return
        self._owner.output(self, (int(code), reason))

    def reject(self, status: int = 403, reason: str = "") -> None:
        """Refuse the handshake with an HTTP status (in ``websocket_connect``, instead of
        accepting). Non-browser clients see the status and ``reason``; a browser sees only
        that the socket failed, so to tell a page why, accept the socket and close it with a
        code (4000-4999 are the app's own)."""
        if self.accepted:
            raise InvalidValue("reject() is for a socket not accepted yet; use close()")
        if not 400 <= status <= 599:
            raise InvalidValue("reject() takes an HTTP error status (400-599)")
        self.denial = (status, reason[:1000])

    @property
    def tags(self) -> tuple[str, ...]:
        """The socket's tags: ``get_websockets(tag)`` and ``broadcast(tag=...)`` select by
        them. Assign a new list to change them (a waiting visitor becomes admitted, say)."""
        return self._tags

    @tags.setter
    def tags(self, tags: Iterable[str]) -> None:
        tag_list = tuple(tags) if not isinstance(tags, str) else (tags,)
        if len(tag_list) > MAX_TAGS or not all(
            isinstance(t, str) and len(t) <= MAX_TAG_LENGTH for t in tag_list
        ):
            raise InvalidValue(
                f"a socket takes at most {MAX_TAGS} tags, each a str of at most "
                f"{MAX_TAG_LENGTH} characters"
            )
        self._tags = tag_list

    @property
    def attachment(self) -> Any:
        """Small plain data kept with the socket across hibernation. Treat what you read as
        read-only; assign a new value to change it (the value is checked and copied then)."""
        return self._attachment

    @attachment.setter
    def attachment(self, value: Any) -> None:
        data = codec.encode(value)
        if len(data) > self._max_attachment:
            raise StorageLimitExceeded(
                f"a socket attachment encodes to {len(data)} bytes; "
                f"the limit is {self._max_attachment}"
            )
        self._attachment = codec.decode(data)  # a private copy: later edits of value don't leak

    @property
    def is_open(self) -> bool:
        """Accepted, and neither closed nor being closed by the object."""
        return self.accepted and not (self.closed or self.closing)

    # ---------------------------------------------------- runtime side

    @property
    def owner(self) -> SocketOwner | None:
        return self._owner

    def bind(self, owner: SocketOwner) -> None:
        """Accepted by the object whose record is ``owner``."""
        self._owner = owner
        self.accepted = True

    def deliver(self, item: Output) -> None:
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
                CloseCode.TRY_AGAIN_LATER,
                "client is not reading fast enough",
                error=ConnectionError("the client did not read its messages; socket closed"),
            )

    async def open_transport(self) -> None:
        """Complete the handshake, then write what was sent (or a close) before it."""
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
