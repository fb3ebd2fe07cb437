"""A bare WebSocket client over a TCP stream, for sending frames no library would send."""

from __future__ import annotations

import asyncio
import base64
import os
import struct


class RawSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int, path: str) -> RawSocket:
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.decode(errors="replace"))
        return cls(reader, writer)

    def frame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        """Write one masked client frame, whatever its content."""
        first = (0x80 if fin else 0) | opcode
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", first, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", first, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", first, 0x80 | 127, n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(head + mask + masked)

    def text(self, data: str | bytes) -> None:
        self.frame(0x1, data.encode() if isinstance(data, str) else data)

    def raw(self, data: bytes) -> None:
        self.writer.write(data)

    async def read(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame; (-1, b"") when the stream ends,
        (-2, b"") when nothing comes within ``timeout``."""
        try:
            head = await asyncio.wait_for(self.reader.readexactly(2), timeout)
            opcode, n = head[0] & 0x0F, head[1] & 0x7F
            if n == 126:
                n = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            return opcode, await self.reader.readexactly(n)
        except (asyncio.IncompleteReadError, ConnectionResetError):
            return -1, b""
        except TimeoutError:
            return -2, b""

    async def close_code(self, timeout: float = 5.0) -> int | None:
        """Read until a close frame (its code) or the end of the stream (None)."""
        while True:
            opcode, payload = await self.read(timeout)
            if opcode == -2:
                raise AssertionError("the server neither closed nor ended the stream")
            if opcode == -1:
                return None
            if opcode == 0x8:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005

    def close(self) -> None:
        self.writer.close()
