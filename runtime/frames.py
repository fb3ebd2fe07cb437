"""Outgoing WebSocket frames, encoded once (sans I/O).

A broadcast to many sockets encodes its message into one server-to-client frame and writes
the same bytes to every transport (see ``asgi.Connection.write``), instead of one ASGI
``send`` and one encoding per socket.
"""

from __future__ import annotations

import struct

from .errors import InvalidValue


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
