"""The browser edge: security headers on every response, cross-site state changes and
sockets refused, and only configured Host names answered (no DNS rebinding)."""

from __future__ import annotations

import asyncio

import httpx
from websockets.asyncio.client import connect

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
