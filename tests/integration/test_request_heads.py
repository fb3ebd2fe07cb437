"""Request heads are bounded in size and in time, and the node stays responsive meanwhile."""

from __future__ import annotations

import asyncio
import time

import httpx


async def raw_request(port: int, head: bytes, *, pause: float = 0.0, parts: int = 1) -> bytes:
    """Send ``head`` in ``parts`` pieces, ``pause`` s apart; what the server answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    step = max(1, len(head) // parts)

    async def send() -> None:
        try:
            for start in range(0, len(head), step):
                writer.write(head[start : start + step])
                await writer.drain()
                if pause:
                    await asyncio.sleep(pause)
        except ConnectionError:
            pass  # the server answered and closed before we were done: that is the point

    sender = asyncio.create_task(send())
    try:
        answer = b""
        while chunk := await asyncio.wait_for(reader.read(65536), 10):
            answer += chunk
        return answer
    except ConnectionError:
        return answer
    finally:
        sender.cancel()
        writer.close()


async def test_a_huge_header_is_refused_with_431_and_the_node_stays_up(serve) -> None:
    server = await serve(max_header_bytes=64 * 1024)
    big = (
        b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
        + b"a" * (8 * 1024 * 1024)
        + b"\r\n\r\n"
    )
    started = time.monotonic()
    answer = await raw_request(server.port, big, parts=64)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert time.monotonic() - started < 5
    fine = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Ok: " + b"a" * 60_000 + b"\r\n\r\n"
    assert (await raw_request(server.port, fine)).startswith(b"HTTP/1.1 200 ")
    async with httpx.AsyncClient(base_url=server.http) as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_a_head_sent_a_line_at_a_time_times_out(serve) -> None:
    server = await serve(header_timeout=1.0)
    lines = [b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n"] + [b"X-Slow: 1\r\n"] * 50
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    started = time.monotonic()

    async def dribble() -> None:
        for line in lines:  # slowloris: one header line every 0.3 s, never the blank line
            writer.write(line)
            await writer.drain()
            await asyncio.sleep(0.3)

    sender = asyncio.create_task(dribble())
    try:
        answer = await asyncio.wait_for(reader.read(), 5)
    finally:
        sender.cancel()
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert 0.9 < time.monotonic() - started < 3
    # Meanwhile the node answered others at once.
    async with httpx.AsyncClient(base_url=server.http) as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_a_head_begun_while_a_long_request_runs_still_has_a_deadline(serve) -> None:
    # The next head's clock once lapsed while the previous request was still running and
    # was never restarted: a slow head after a slow request could dribble on forever.
    server = await serve(header_timeout=1.0)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"POST /probe/heads/slow?seconds=2 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n"
    )
    await writer.drain()
    await asyncio.sleep(1.3)  # the request runs past header_timeout
    writer.write(b"GET /healthz HTTP/1.1\r\n")  # the next head begins, and never ends
    await writer.drain()
    began = time.monotonic()

    async def dribble() -> None:
        while True:
            await asyncio.sleep(0.25)
            writer.write(b"X")
            await writer.drain()

    sender = asyncio.create_task(dribble())
    try:
        answer = await asyncio.wait_for(reader.read(), 8)
    except ConnectionError:
        answer = b""
    finally:
        sender.cancel()
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200 ")  # the slow request was answered
    assert b"HTTP/1.1 408 " in answer  # then the dribbled head was refused in time
    assert time.monotonic() - began < 3


async def test_bodies_and_websocket_upgrades_are_not_heads(serve) -> None:
    from websockets.asyncio.client import connect

    server = await serve(max_header_bytes=4096, header_timeout=0.5)
    async with httpx.AsyncClient(base_url=server.http) as client:
        # A body far over the head limit, on a kept-alive connection, twice.
        for _ in range(2):
            r = await client.post("/probe/heads/fetch", content=b"x" * 100_000)
            assert r.status_code == 200
    ws = await connect(f"{server.ws}/probe/heads/ws")
    assert await asyncio.wait_for(ws.recv(), 5) == "welcome"
    await asyncio.sleep(1.0)  # past header_timeout: an upgraded socket is not a slow head
    await ws.send("incr")
    assert await asyncio.wait_for(ws.recv(), 5) == "value:1"
    await ws.close()
