"""Client sockets at the edges of their life, over real sockets: while a message waits
behind a slow event, before the handshake has finished, and when the client leaves during
it. (Found by review after sockets were detached from their ASGI task.)"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
import time

import httpx
from websockets.asyncio.client import connect

from runtime import Node, Settings
from tests.conftest import TEST_SETTINGS
from tests.support.objects import app as probe_app
from tests.support.servers import LocalServer


def frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame (payloads under 126 bytes)."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + mask + body


async def read_frame(reader: asyncio.StreamReader, timeout: float = 5.0) -> tuple[int, bytes]:
    head = await asyncio.wait_for(reader.readexactly(2), timeout)
    return head[0] & 0x0F, await reader.readexactly(head[1] & 0x7F)


def upgrade(port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def sockets_held(server: LocalServer) -> int:
    return sum(len(record.sockets) for record in server.node.records.values())


async def test_a_message_waiting_behind_a_slow_event_does_not_stop_pings(redis_url: str) -> None:
    # Reading must go on while a message waits: else the client's pong is not read, and
    # uvicorn's keepalive ends the socket with 1011 long before the event runs.
    node = Node(Settings(**TEST_SETTINGS), redis_url)
    server = LocalServer(node, [probe_app])
    server.server.config.ws_ping_interval = 0.5
    server.server.config.ws_ping_timeout = 0.5
    await server.start()
    try:
        async with (
            httpx.AsyncClient(timeout=30) as http,
            connect(f"{server.ws}/probe/pings/ws", ping_interval=None) as ws,
        ):
            assert await ws.recv() == "welcome"
            busy = asyncio.create_task(http.post(f"{server.http}/probe/pings/slow?seconds=3"))
            await asyncio.sleep(0.2)
            sent = time.monotonic()
            await ws.send("get")  # waits ~3 s in the object's input gate
            assert await asyncio.wait_for(ws.recv(), 10) == "value:0"
            assert time.monotonic() - sent > 2.0  # (it did wait behind the slow event)
            assert (await busy).status_code == 200
    finally:
        await server.stop()


async def test_frames_sent_before_the_handshake_ends_are_delivered_in_order(serve) -> None:
    # A client may (against RFC 6455) send before the 101: those frames are not lost, and
    # the socket goes on reading (later frames, and the close) afterwards.
    server = await serve()
    async with httpx.AsyncClient(timeout=30) as http:
        busy = asyncio.create_task(http.post(f"{server.http}/probe/early/slow?seconds=1"))
        await asyncio.sleep(0.2)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(upgrade(server.port, "/probe/early/ws"))
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.write(frame(1, b"early"))  # while the object is still busy
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101")
        assert await read_frame(reader) == (1, b"welcome")
        assert await read_frame(reader) == (1, b"echo:early")
        writer.write(frame(1, b"after"))
        assert await read_frame(reader) == (1, b"echo:after")
        writer.write(frame(8, struct.pack("!H", 1000)))
        assert (await read_frame(reader))[0] == 8  # the close is answered
        assert (await busy).status_code == 200
        writer.close()
        for _ in range(50):
            if not sockets_held(server):
                break
            await asyncio.sleep(0.05)
        assert sockets_held(server) == 0


async def test_a_client_leaving_during_the_handshake_is_closed_for_the_object(serve) -> None:
    # The object accepted it (after a slow event), but the client had gone: the object
    # hears websocket_close (1006), or its own count of who is connected leaks.
    server = await serve()
    async with httpx.AsyncClient(timeout=30) as http:
        busy = asyncio.create_task(http.post(f"{server.http}/probe/leaver/slow?seconds=1"))
        await asyncio.sleep(0.2)
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(upgrade(server.port, "/probe/leaver/ws"))
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.close()  # before the object could accept
        assert (await busy).status_code == 200
        closes = None
        for _ in range(50):
            await asyncio.sleep(0.05)
            closes = (await http.get(f"{server.http}/probe/leaver/get/closes")).json()["value"]
            if closes:
                break
        assert closes == [[1006, ""]]
