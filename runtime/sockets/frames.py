"""Outgoing WebSocket frames, encoded once and written once per socket per release.

A broadcast to many sockets encodes its message into one server-to-client frame and writes
the same bytes to every transport (see ``asgi.Connection.write``), instead of one ASGI
``send`` and one encoding per socket.

When a commit releases many messages at once (a busy room's batch), :data:`CORK` gathers
each socket's frames and writes them in one go: one system call here and one read for the
client per socket, not one per message. Nothing waits for it: the cork is let go before the
code that took it returns to the event loop.
"""

from __future__ import annotations

import struct
from typing import Any

from ..base.errors import InvalidValue


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
    def size(self) -> int:
        """Its length on the wire if encoded already, else its payload's (for metrics)."""
        return len(self._wire) if self._wire is not None else len(self.message)

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


class Cork:
    """While held (``with CORK:``), bytes written through it gather per transport; each
    transport gets them in one write when the outermost holder lets go. Only synchronous
    code may hold it, so no write is ever held across a turn of the event loop.

    A transport's bytes go out at once when they reach ``flush_at``: a release of megabytes
    is handed to the transport in pieces, as uncorked writes would be, so the system takes
    what it can and the send buffer counts only the rest. What is held still counts toward
    that buffer (:meth:`pending`), so a client that stopped reading is caught within one
    release, and one that reads is not taken for one that does not."""

    __slots__ = ("_depth", "_held", "_sizes", "flush_at")

    def __init__(self, flush_at: int = 64 * 1024) -> None:
        self.flush_at = flush_at
        self._depth = 0
        self._held: dict[Any, list[bytes]] = {}
        self._sizes: dict[Any, int] = {}

    def __enter__(self) -> None:
        self._depth += 1

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._held:
            held, self._held, self._sizes = self._held, {}, {}
            for transport, parts in held.items():
                if not transport.is_closing():
                    transport.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def write(self, transport: Any, data: bytes) -> None:
        """Write ``data`` to ``transport`` now, or when the cork is let go if it is held."""
        if not self._depth:
            transport.write(data)
            return
        parts = self._held.get(transport)
        if parts is None:
            parts = self._held[transport] = []
            self._sizes[transport] = 0
        parts.append(data)
        self._sizes[transport] += len(data)
        if self._sizes[transport] >= self.flush_at:
            del self._held[transport], self._sizes[transport]
            transport.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def pending(self, transport: Any) -> int:
        """Bytes held for ``transport``, not yet written."""
        return self._sizes.get(transport, 0)


#: The node's one cork (the event loop runs one callback at a time, so one is enough).
CORK = Cork()
