"""The browser edge: security headers on every response, cross-site state changes and
sockets refused, and only configured Host names answered (no DNS rebinding)."""

from __future__ import annotations

import asyncio
import logging
import re

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from apps.chat import make_app as chat_app
from examples.counter import app as counter_app

EVIL = "http://evil.example"


async def test_pages_and_files_carry_security_headers(serve) -> None:
    server = await serve(apps=(counter_app, chat_app()))
    async with httpx.AsyncClient(base_url=server.http) as client:
        for path in ("/", "/chat/", "/counter/", "/static/css/site.css", "/healthz"):
            r = await client.get(path)
            assert r.status_code == 200, path
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["referrer-policy"] == "same-origin"
            csp = r.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]


async def test_cross_site_state_changes_are_refused_and_change_nothing(serve) -> None:
    server = await serve(apps=(counter_app, chat_app()))
    same = f"http://127.0.0.1:{server.port}"
    async with httpx.AsyncClient(base_url=server.http) as client:
        refused = await client.post("/counter/csrf", headers={"Origin": EVIL})
        assert refused.status_code == 403
        assert refused.text == "cross-site request refused (Origin http://evil.example)"
        sneaky = await client.post("/counter/csrf", headers={"Sec-Fetch-Site": "cross-site"})
        assert sneaky.status_code == 403
        assert (await client.post("/chat/api/room", headers={"Origin": EVIL})).status_code == 403
        assert (await client.get("/counter/csrf")).json()["value"] == 0  # nothing happened
        assert (await client.get("/counter/csrf", headers={"Origin": EVIL})).status_code == 200
        ok = await client.post("/counter/csrf", headers={"Origin": same})  # the page itself
        assert ok.json()["value"] == 1
        assert (await client.post("/counter/csrf")).json()["value"] == 2  # tools: no Origin


async def test_only_configured_hosts_are_answered(serve) -> None:
    server = await serve(apps=(counter_app,), allowed_hosts=("chat.example.org",))
    async with httpx.AsyncClient(base_url=server.http) as client:
        rebound = await client.get("/counter/x", headers={"Host": "evil.example"})
        assert rebound.status_code == 400
        assert (await client.get("/", headers={"Host": "chat.example.org"})).status_code == 200
        assert (await client.get("/", headers={"Host": "localhost:8000"})).status_code == 200
    # DNS rebinding against a socket: the attacker's page is same-origin with its own Host.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"GET /counter/x/ws HTTP/1.1\r\nHost: evil.example\r\nOrigin: http://evil.example\r\n"
        b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    writer.close()
    assert head.startswith(b"HTTP/1.1 400 ")
    ws = await connect(f"{server.ws}/counter/x/ws", open_timeout=5)
    assert await ws.recv() == "0"
    await ws.close()


async def test_refused_requests_log_paths_without_the_capabilities_they_carry(
    serve, caplog
) -> None:
    # A private room's ID, a board's edit name, its view token and a waiting room's ID are
    # capabilities: whoever reads one in a node's log could use it. Refusals name the path
    # with its parameters shortened, as log lines show object IDs.
    from apps.waiting_room import make_app as waiting_app
    from apps.whiteboard import make_app as board_app

    server = await serve(apps=(chat_app(), board_app(), waiting_app()))
    async with httpx.AsyncClient(base_url=server.http) as client:
        room = (await client.post("/chat/api/room")).text.strip()
        board = (await client.post("/whiteboard/api/boards")).json()["room"]
        page = (await client.get(f"/whiteboard/b/{board}")).text
        view = re.search(r'"viewUrl": "/whiteboard/b/(v-[^"]+)"', page)
        assert view is not None
        view_token = view.group(1)
        settings = {
            "total_active_users": 2,
            "new_users_per_minute": 60,
            "session_duration": 60,
            "queueing_method": "fifo",
        }
        line = (await client.post("/waiting-room/api/rooms", json=settings)).json()["room"]
        name = "our-secret-board"  # an edit name may be any text: short ones are capabilities
        capabilities = [room, board, view_token, line, name]
        assert len(room) == 64 and len(board) == 32 and len(line) == 64
        caplog.set_level(logging.INFO)
        evil = {"Origin": EVIL}
        for path in (
            f"/chat/api/room/{room}/websocket",
            f"/waiting-room/r/{line}/leave",
            f"/whiteboard/b/{board}",
        ):
            assert (await client.post(path, headers=evil)).status_code == 403
    for path, headers in (
        (f"/chat/api/room/{room}/websocket", evil),  # cross-site
        (f"/whiteboard/ws/{board}", evil),
        (f"/whiteboard/ws/{view_token}", evil),
        (f"/whiteboard/ws/{name}", evil),
        (f"/waiting-room/admin/{line}/ws", evil),
        (f"/whiteboard/ws/v-{board}.forged", {}),  # a view token that does not verify: 404
    ):
        with pytest.raises(InvalidStatus):
            await connect(f"{server.ws}{path}", additional_headers=headers, open_timeout=5)
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused")]
    assert len(refusals) == 9, refusals  # each refusal is still logged, once
    text = "\n".join(refusals)
    for capability in capabilities:
        assert capability not in text
    assert f"/chat/api/room/{room[:12]}…/websocket: 403" in text  # enough to find it
    assert "/whiteboard/ws/…: 403" in text  # the short name, hidden whole


async def test_two_host_headers_are_answered_400_and_never_reach_the_checks(serve) -> None:
    # RFC 9112: a request with two Host lines gets 400. Otherwise the Host allow-list (which
    # reads the first) and the Origin check (which read the last) judge different hosts: an
    # attacker's page, same-origin with its own Host, passed both.
    server = await serve(apps=(counter_app,))
    handshake = (
        "GET /counter/x/ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\n"
        "Origin: http://evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    post = (
        "POST /counter/x HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: evil.example\r\n"
        "Origin: http://evil.example\r\nContent-Length: 0\r\n\r\n"
    )
    plain = "GET /counter/x HTTP/1.1\r\nHost: localhost\r\nHost: localhost\r\n\r\n"
    for request in (handshake, post, plain):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request.format(port=server.port).encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        body = await asyncio.wait_for(reader.read(200), 5)
        writer.close()
        assert head.startswith(b"HTTP/1.1 400 "), head
        assert b"more than one Host header" in body
    async with httpx.AsyncClient(base_url=server.http) as client:
        assert (await client.get("/counter/x")).json()["value"] == 0  # nothing happened
