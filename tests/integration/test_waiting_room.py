"""The waiting room end to end on a real node: the JSON interface, cookies, the waiting
page's socket, sessions, pages, slot leasing, and the gate in front of the chat."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from typing import Any

import httpx
import pytest
from itsdangerous import Signer
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from apps.chat import ChatConfig
from apps.chat import make_app as make_chat
from apps.waiting_room import WaitingRoomConfig, make_app
from apps.waiting_room.admin import MAX_PENDING, PENDING_SECONDS, TOKEN_LATE
from apps.waiting_room.cookies import PURPOSE, CookieSigner, Pass, cookie_name
from apps.waiting_room.names import GATES
from apps.waiting_room.waiting_room import MAX_PAGES
from runtime.storage.embedded import ValkeyProcess

FAST = WaitingRoomConfig(push_interval=0.05, gate_cache_seconds=0.5)
JSON = {"Accept": "application/json"}
ROOM = {
    "total_active_users": 2,
    "new_users_per_minute": 1000,
    "session_duration": 60,
    "queueing_method": "fifo",
}


async def room_server(serve, config: WaitingRoomConfig = FAST, chat: bool = False, **settings):
    apps: tuple[Any, ...] = (make_app(config),)
    if chat:
        apps += (make_chat(ChatConfig(rate_limit=False)),)
    return await serve(apps=apps, **settings)


async def create(base: str, **changes: Any) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/waiting-room/api/rooms", json={**ROOM, **changes})
        assert r.status_code == 201, r.text
        return r.json()


class Visitor:
    """One browser: its own cookie jar."""

    def __init__(self, base: str, room: str) -> None:
        self.http = httpx.AsyncClient(base_url=base, follow_redirects=False)
        self.base = base
        self.room = room

    async def visit(self, page: str = "") -> dict[str, Any]:
        r = await self.http.get(f"/waiting-room/r/{self.room}/{page}", headers=JSON)
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        return r.json()

    async def leave(self) -> httpx.Response:
        return await self.http.post(f"/waiting-room/r/{self.room}/leave", headers=JSON)

    @property
    def cookie(self) -> str | None:
        return self.http.cookies.get(cookie_name(self.room))

    async def socket(self) -> ClientConnection:
        ws_base = self.base.replace("http://", "ws://")
        header = {"Cookie": f"{cookie_name(self.room)}={self.cookie}"}
        return await connect(f"{ws_base}/waiting-room/r/{self.room}/ws", additional_headers=header)

    async def close(self) -> None:
        await self.http.aclose()


async def next_status(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def until(ws: ClientConnection, predicate, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = await next_status(ws, max(0.01, deadline - time.monotonic()))
        if predicate(status):
            return status


# ---------------------------------------------------------------- the JSON interface


async def test_create_read_and_change_a_room(serve) -> None:
    server = await room_server(serve)
    async with httpx.AsyncClient(base_url=server.http) as http:
        r = await http.post("/waiting-room/api/rooms", json=ROOM)
        assert r.status_code == 201
        made = r.json()
        room, token = made["room"], made["admin_token"]
        assert len(room) == 64 and len(token) >= 32
        assert made["site_url"] == f"/waiting-room/r/{room}/"
        assert made["admin_url"] == f"/waiting-room/admin/{room}"
        got = (await http.get(f"/waiting-room/api/rooms/{room}")).json()
        assert {k: got[k] for k in ROOM} == ROOM
        assert (got["active"], got["queued"], got["queueing_method"]) == (0, 0, "fifo")
        url = f"/waiting-room/api/rooms/{room}"
        change = {"total_active_users": 5, "title": "Hold on"}
        r = await http.patch(url, json=change)
        assert r.status_code == 401 and "error" in r.json()
        assert r.headers["www-authenticate"] == "Bearer"
        r = await http.patch(url, json=change, headers={"Authorization": "Bearer nope"})
        assert r.status_code == 403 and "error" in r.json()
        r = await http.patch(url, json=change, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200
        assert (r.json()["total_active_users"], r.json()["title"]) == (5, "Hold on")
        assert (await http.get(url)).json()["total_active_users"] == 5


async def test_head_reads_a_room_like_get_and_changes_nothing(serve) -> None:
    server = await room_server(serve)
    made = await create(server.http)
    url = f"/waiting-room/api/rooms/{made['room']}"
    auth = {"Authorization": f"Bearer {made['admin_token']}"}
    async with httpx.AsyncClient(base_url=server.http) as http:
        for headers in ({}, auth):
            r = await http.head(url, headers=headers)
            assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        assert (await http.get(url)).json()["total_active_users"] == ROOM["total_active_users"]


async def test_bad_input_gets_a_clear_json_error_and_changes_nothing(serve) -> None:
    server = await room_server(serve)
    made = await create(server.http)
    room, auth = made["room"], {"Authorization": f"Bearer {made['admin_token']}"}
    url = f"/waiting-room/api/rooms/{room}"
    async with httpx.AsyncClient(base_url=server.http) as http:
        for body, status, field in (
            ({**ROOM, "total_active_users": 0}, 422, "total_active_users"),
            ({**ROOM, "queueing_method": "lifo"}, 422, "queueing_method"),
            ({"total_active_users": 3}, 422, "new_users_per_minute"),
            ({**ROOM, "surprise": 1}, 422, "surprise"),
            ({**ROOM, "gate_prefix": "/waiting-room"}, 422, "gate_prefix"),
            ({**ROOM, "gate_prefix": "/static"}, 422, "gate_prefix"),
            ({**ROOM, "gate_prefix": "/api"}, 422, "gate_prefix"),  # the node's /api/apps
            ({**ROOM, "gate_prefix": "/nothing-here"}, 422, "gate_prefix"),
            ([1, 2], 422, "settings"),
        ):
            r = await http.post("/waiting-room/api/rooms", json=body)
            assert (r.status_code, r.json().get("field")) == (status, field), r.text
        for raw, status in ((b"{nope", 400), (b"NaN", 400), (b"x" * 20_000, 413)):
            r = await http.post("/waiting-room/api/rooms", content=raw)
            assert r.status_code == status and "error" in r.json()
        for change, status in (
            ({"session_duration": -1}, 422),
            ({"slot_leasing": True}, 422),
            ({"gate_prefix": "/a/../b"}, 422),
            ("[", 400),
        ):
            kwargs = {"content": change} if isinstance(change, str) else {"json": change}
            r = await http.patch(url, headers=auth, **kwargs)
            assert r.status_code == status and "error" in r.json(), r.text
        # a wrong token is refused before the body is looked at, whatever the body is
        wrong = {"Authorization": "Bearer wrong-token"}
        for kwargs in (
            {"json": {"gate_prefix": "/waiting-room"}},
            {"json": {"bogus": 1}},
            {"content": b"{not json"},
            {"content": b"x" * 20_000},
        ):
            r = await http.patch(url, headers=wrong, **kwargs)
            assert r.status_code == 403 and r.json() == {"error": "wrong admin token"}, r.text
            r = await http.patch(url, **kwargs)
            assert r.status_code == 401 and "error" in r.json(), r.text
        assert (await http.get(url)).json()["session_duration"] == 60  # nothing changed
        for missing in ("ab" * 32, "0" * 64, "garbage", "x" * 100):
            r = await http.get(f"/waiting-room/api/rooms/{missing}")
            assert r.status_code == 404 and "error" in r.json()
            r = await http.patch(f"/waiting-room/api/rooms/{missing}", json={}, headers=auth)
            assert r.status_code == 404
            r = await http.get(f"/waiting-room/r/{missing}/", headers=JSON)
            assert r.status_code == 404 and "error" in r.json()
            assert (await http.post(f"/waiting-room/r/{missing}/leave")).status_code == 404
        # anything else under /api: JSON too, never plain text or a redirect
        for method, path, status, allow in (
            ("PUT", url, 405, "GET, PATCH, DELETE"),
            ("POST", url, 405, "GET, PATCH, DELETE"),
            ("GET", "/waiting-room/api/rooms", 405, "POST"),
            ("PUT", "/waiting-room/api/rooms", 405, "POST"),
            ("POST", "/waiting-room/api/rooms/", 404, None),
            ("GET", "/waiting-room/api/nothing", 404, None),
            ("GET", f"{url}/more", 404, None),
        ):
            r = await http.request(method, path)
            assert r.status_code == status and "error" in r.json(), (method, path, r.text)
            assert r.headers.get("allow") == allow
        assert (await http.get(f"/waiting-room/r/{room}/nope", headers=JSON)).status_code == 404
        r = await http.post(f"/waiting-room/r/{room}/leave")
        assert r.status_code == 400 and "cookie" in r.json()["error"]


async def test_admission_queue_leave_and_positions(serve) -> None:
    server = await room_server(serve)
    room = (await create(server.http))["room"]
    people = [Visitor(server.http, room) for _ in range(4)]
    got = [await p.visit() for p in people]
    assert got == [
        {"status": "admitted", "position": None, "eta_s": None},
        {"status": "admitted", "position": None, "eta_s": None},
        {"status": "queued", "position": 1, "eta_s": got[2]["eta_s"]},
        {"status": "queued", "position": 2, "eta_s": got[3]["eta_s"]},
    ]
    assert 0 < got[2]["eta_s"] <= got[3]["eta_s"]
    assert all(p.cookie for p in people)
    # a reload keeps the place; the site's pages renew an admitted visitor
    assert (await people[3].visit())["position"] == 2
    assert (await people[0].visit("tickets"))["status"] == "admitted"
    r = await people[0].leave()
    assert r.status_code == 200 and r.json() == {"left": True}
    assert people[0].cookie is None  # forgotten
    assert (await people[2].visit())["status"] == "admitted"
    assert (await people[3].visit())["position"] == 1
    info = (await people[0].http.get(f"/waiting-room/api/rooms/{room}")).json()
    assert (info["active"], info["queued"], info["admitted_total"]) == (2, 1, 3)
    back = await people[0].visit()  # a newcomer now: the back of the line
    assert back["status"] == "queued" and back["position"] == 2
    for p in people:
        await p.close()


async def test_the_answer_is_json_when_the_client_prefers_json(serve) -> None:
    server = await room_server(serve)
    room = (await create(server.http))["room"]
    async with httpx.AsyncClient(base_url=server.http) as http:
        for accept, json_wanted in (
            ("application/json", True),
            ("application/json, text/html;q=0.1", True),
            ("text/html;q=0.5, application/json;q=0.9", True),
            ("application/json, */*;q=0.5", True),
            ("application/*", True),
            ("text/html, application/json", False),  # a tie: HTML, as before
            ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", False),
            ("application/json;q=0, */*", False),
            ("*/*", False),
            ("", False),
        ):
            r = await http.get(f"/waiting-room/r/{room}/", headers={"Accept": accept})
            assert r.status_code == 200
            kind = r.headers["content-type"]
            assert kind.startswith("application/json" if json_wanted else "text/html"), accept


async def test_forged_expired_and_foreign_cookies_make_a_newcomer(serve) -> None:
    server = await room_server(serve)
    room = (await create(server.http, total_active_users=1))["room"]
    other = (await create(server.http, total_active_users=1))["room"]
    first = Visitor(server.http, room)
    assert (await first.visit())["status"] == "admitted"
    honest = first.cookie
    # the same visitor ID under a key we guessed, with the state and expiry we like
    payload, sig = honest.rsplit(".", 1)
    visitor = payload.split("|")[1]
    guessed = Signer(b"guess", key_derivation="none", digest_method=hashlib.sha256)
    forged = guessed.sign(f"{room}|{visitor}|admitted|{2**40}|").decode()
    outsider = Visitor(server.http, other)
    await outsider.visit()
    foreign = outsider.cookie
    real = CookieSigner(await server.node.signing_key(PURPOSE))
    expired = real.sign(Pass(room, visitor, "admitted", int(time.time()) - 1))
    assert real.read(honest, room, time.time()) is not None  # the node's key made the cookie
    for text in (forged, payload + "." + sig[::-1], foreign, expired, "x"):
        stranger = Visitor(server.http, room)
        stranger.http.cookies.set(cookie_name(room), text)
        status = await stranger.visit()
        assert status["status"] == "queued"  # a newcomer, never the admitted visitor
        await stranger.close()
    assert (await first.visit())["status"] == "admitted"  # the real one is untouched
    for v in (first, outsider):
        await v.close()


async def test_reject_turns_visitors_away_with_a_clear_answer(serve) -> None:
    server = await room_server(serve)
    room = (await create(server.http, total_active_users=1, queueing_method="reject"))["room"]
    a, b = Visitor(server.http, room), Visitor(server.http, room)
    assert (await a.visit())["status"] == "admitted"
    assert await b.visit() == {"status": "rejected", "position": None, "eta_s": None}
    page = await b.http.get(f"/waiting-room/r/{room}/")
    assert page.status_code == 200 and "Sorry, the site is full" in page.text
    await a.leave()
    assert (await b.visit())["status"] == "admitted"
    for v in (a, b):
        await v.close()


# ---------------------------------------------------------------- sockets and time


async def test_the_socket_pushes_positions_and_the_admission(serve) -> None:
    server = await room_server(serve)
    room = (await create(server.http, total_active_users=1))["room"]
    a, b, c = (Visitor(server.http, room) for _ in range(3))
    for v in (a, b, c):
        await v.visit()
    ws = await c.socket()
    assert await next_status(ws) == {"status": "queued", "position": 2, "eta_s": ANY_ETA}
    await b.leave()
    assert (await until(ws, lambda s: s["position"] == 1))["status"] == "queued"
    await a.leave()
    assert (await until(ws, lambda s: s["status"] == "admitted"))["position"] is None
    assert (await c.visit())["status"] == "admitted"
    await ws.close()
    for v in (a, b, c):
        await v.close()


class _AnyEta:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, int) and other > 0


ANY_ETA: Any = _AnyEta()


async def test_a_socket_without_a_valid_cookie_is_told_to_reload(serve) -> None:
    server = await room_server(serve)
    room = (await create(server.http))["room"]
    ws_base = server.ws
    async with connect(f"{ws_base}/waiting-room/r/{room}/ws") as ws:
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 4001
    with pytest.raises(InvalidStatus) as info:
        await connect(f"{ws_base}/waiting-room/r/{'ab' * 32}/ws")
    assert info.value.response.status_code == 404


async def test_the_socket_finds_the_cookie_among_any_others_as_http_does(serve) -> None:
    server = await room_server(serve)
    room = (await create(server.http, total_active_users=1))["room"]
    a, b = Visitor(server.http, room), Visitor(server.http, room)
    await a.visit()
    assert (await b.visit())["position"] == 1
    ours = f"{cookie_name(room)}={b.cookie}"
    for others in ('prefs={"theme": "dark"}', "greeting=hello world", "a=b;;c", "x=\\y"):
        header = {"Cookie": f"{others}; {ours}; after=1"}
        async with connect(
            f"{server.ws}/waiting-room/r/{room}/ws", additional_headers=header
        ) as ws:
            assert (await next_status(ws))["position"] == 1, others
        r = await b.http.get(f"/waiting-room/r/{room}/", headers={**JSON, **header})
        assert r.json()["position"] == 1
    for v in (a, b):
        await v.close()


async def test_a_visitor_keeps_a_few_pages_open_not_a_flood(serve) -> None:
    server = await room_server(serve)
    room = (await create(server.http, total_active_users=1))["room"]
    a, b = Visitor(server.http, room), Visitor(server.http, room)
    await a.visit()
    await b.visit()
    pages = [await b.socket() for _ in range(MAX_PAGES)]
    for ws in pages:
        assert (await next_status(ws))["position"] == 1
    with pytest.raises(InvalidStatus) as info:
        await b.socket()
    assert info.value.response.status_code == 429
    await pages[0].close()
    await asyncio.sleep(0.2)
    again = await b.socket()  # a page closed: room for another
    assert (await next_status(again))["position"] == 1
    for ws in (again, *pages[1:]):
        await ws.close()
    for v in (a, b):
        await v.close()


async def test_a_session_ends_after_its_last_request_and_the_next_in_line_gets_in(serve) -> None:
    server = await room_server(serve)
    room = (await create(server.http, total_active_users=1, session_duration=1))["room"]
    a, b = Visitor(server.http, room), Visitor(server.http, room)
    assert (await a.visit())["status"] == "admitted"
    assert (await b.visit())["status"] == "queued"
    ws = await b.socket()
    await next_status(ws)
    await asyncio.sleep(0.15)
    # a renewal too small to store: the alarm set for the first end finds the session
    # still running, and must be set again for the new end
    assert (await a.visit("about"))["status"] == "admitted"
    started = time.monotonic()
    assert (await until(ws, lambda s: s["status"] == "admitted", timeout=5))["status"]
    assert 0.5 < time.monotonic() - started < 3
    # b was admitted by the push but never came back: its slot ends too, and a newcomer gets in
    await ws.close()
    await asyncio.sleep(1.5)
    assert (await a.visit())["status"] == "admitted"
    for v in (a, b):
        await v.close()


async def test_raising_capacity_admits_waiting_pages_live(serve) -> None:
    server = await room_server(serve)
    made = await create(server.http, total_active_users=1)
    room = made["room"]
    people = [Visitor(server.http, room) for _ in range(4)]
    for p in people:
        await p.visit()
    sockets = [await p.socket() for p in people[1:]]
    for ws in sockets:
        await next_status(ws)
    async with httpx.AsyncClient(base_url=server.http) as http:
        r = await http.patch(
            f"/waiting-room/api/rooms/{room}",
            json={"total_active_users": 3},
            headers={"Authorization": f"Bearer {made['admin_token']}"},
        )
        assert r.status_code == 200
    for ws in sockets[:2]:
        assert (await until(ws, lambda s: s["status"] == "admitted"))["status"] == "admitted"
    assert (await until(sockets[2], lambda s: s["position"] == 1))["status"] == "queued"
    for ws in sockets:
        await ws.close()
    for p in people:
        await p.close()


# ---------------------------------------------------------------- pages


async def test_pages_for_people(serve) -> None:
    server = await room_server(serve)
    room = (await create(server.http, total_active_users=1, name="Tix & Co"))["room"]
    a, b = Visitor(server.http, room), Visitor(server.http, room)
    page = await a.http.get(f"/waiting-room/r/{room}/")
    assert page.status_code == 200 and 'id="site"' in page.text and "Tix &amp; Co" in page.text
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    about = await a.http.get(f"/waiting-room/r/{room}/about")
    assert 'data-page="about"' in about.text
    waiting = await b.http.get(f"/waiting-room/r/{room}/?return=/chat/")
    assert waiting.status_code == 200 and 'id="waiting"' in waiting.text
    assert '<meta http-equiv="refresh" content="20">' in waiting.text  # no scripts: reloads
    assert "waiting.js" in waiting.text and '"next": "/chat/"' in waiting.text
    evil = await b.http.get(f"/waiting-room/r/{room}/?return=//evil.example/")
    assert '"next": "/waiting-room/r/' in evil.text  # only local paths
    left = await a.http.post(f"/waiting-room/r/{room}/leave")
    assert left.status_code == 303 and left.headers["location"].endswith("/bye")
    back = await b.http.get(f"/waiting-room/r/{room}/?return=/chat/%23x")
    assert back.status_code == 303 and back.headers["location"] == "/chat/#x"
    index = await a.http.get("/waiting-room/")
    assert index.status_code == 200 and "index.js" in index.text
    admin = await a.http.get(f"/waiting-room/admin/{room}")
    assert admin.status_code == 200 and "admin.js" in admin.text
    assert (await a.http.get(f"/waiting-room/admin/{'ab' * 32}")).status_code == 404
    missing = await a.http.get(f"/waiting-room/r/{'ab' * 32}/")
    assert missing.status_code == 404 and "No such room" in missing.text
    for v in (a, b):
        await v.close()


async def test_the_admin_socket_needs_the_token_and_streams_figures(serve) -> None:
    server = await room_server(serve, WaitingRoomConfig(push_interval=0.05, sample_interval=0.2))
    made = await create(server.http)
    url = f"{server.ws}/waiting-room/admin/{made['room']}/ws"
    async with connect(url) as ws:
        await ws.send(json.dumps({"token": "wrong"}))
        await asyncio.wait_for(ws.wait_closed(), 5)
        assert ws.close_code == 4003
    async with connect(url) as ws:
        await ws.send(json.dumps({"token": made["admin_token"]}))
        hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert hello["type"] == "hello" and hello["settings"]["total_active_users"] == 2
        assert hello["figures"]["active"] == 0
        v = Visitor(server.http, made["room"])
        await v.visit()
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if msg["type"] == "sample" and msg["active"] == 1:
                break
        await v.close()


async def test_idle_admin_sockets_never_lock_the_admin_out(serve) -> None:
    server = await room_server(serve)
    made = await create(server.http)
    url = f"{server.ws}/waiting-room/admin/{made['room']}/ws"
    # anyone can open admin sockets (the room's ID is in every visitor's URL) and say nothing
    squatters = [await connect(url) for _ in range(MAX_PENDING)]
    async with connect(url) as admin:  # the oldest idle one makes room
        await admin.send(json.dumps({"token": made["admin_token"]}))
        assert json.loads(await asyncio.wait_for(admin.recv(), 5))["type"] == "hello"
    await asyncio.wait_for(squatters[0].wait_closed(), 5)
    assert squatters[0].close_code == TOKEN_LATE
    # and the others are closed once they have kept quiet for PENDING_SECONDS
    started = time.monotonic()
    for ws in squatters[1:]:
        await asyncio.wait_for(ws.wait_closed(), PENDING_SECONDS + 5)
        assert ws.close_code == TOKEN_LATE
    assert time.monotonic() - started < PENDING_SECONDS + 3


# ---------------------------------------------------------------- slot leasing


async def test_slot_leasing_on_one_node_keeps_capacity_and_sessions(serve) -> None:
    server = await room_server(serve)
    room = (await create(server.http, total_active_users=3, slot_leasing=True))["room"]
    people = [Visitor(server.http, room) for _ in range(5)]
    got = [(await p.visit())["status"] for p in people]
    assert got == ["admitted"] * 3 + ["queued"] * 2
    info = (await people[0].http.get(f"/waiting-room/api/rooms/{room}")).json()
    assert info["slot_leasing"] and info["active"] == 3 and info["queued"] == 2
    for p in people[:3]:
        assert (await p.visit("about"))["status"] == "admitted"  # renewed at the shard
    ws = await people[3].socket()
    await next_status(ws)
    await people[0].leave()
    assert (await until(ws, lambda s: s["status"] == "admitted"))["status"] == "admitted"
    assert (await people[3].visit())["status"] == "admitted"
    info = (await people[0].http.get(f"/waiting-room/api/rooms/{room}")).json()
    assert info["active"] <= 3 and info["queued"] == 1
    await ws.close()
    for p in people:
        await p.close()


# ---------------------------------------------------------------- in front of the chat


async def test_a_room_in_front_of_the_chat(serve) -> None:
    server = await room_server(serve, chat=True)
    made = await create(server.http, total_active_users=1, gate_prefix="/chat")
    room = made["room"]
    first = Visitor(server.http, room)
    second = Visitor(server.http, room)
    r = await first.http.get("/chat/")
    assert r.status_code == 200 and "chat.js" in r.text and first.cookie
    r = await second.http.get("/chat/?x=1")
    assert r.status_code == 303
    assert r.headers["location"] == f"/waiting-room/r/{room}/?return=/chat/%3Fx%3D1"
    assert (await second.http.get("/chat/static/chat.js")).status_code == 200  # assets pass
    r = await second.http.post("/chat/api/room")
    assert r.status_code == 503 and r.json()["waiting_room"].startswith("/waiting-room/r/")
    ws_url = f"{server.ws}/chat/api/room/lobby/websocket"
    with pytest.raises(InvalidStatus) as info:
        await connect(ws_url, additional_headers={"Cookie": f"{cookie_name(room)}={second.cookie}"})
    assert info.value.response.status_code == 403
    async with connect(
        ws_url, additional_headers={"Cookie": f"{cookie_name(room)}={first.cookie}"}
    ) as ws:
        await ws.send(json.dumps({"name": "ann"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["joined"] == "ann"
    await first.leave()
    r = await second.http.get("/chat/")
    assert r.status_code == 200  # the freed slot went to the head of the line
    # another room cannot take the same prefix; the owner can let it go
    async with httpx.AsyncClient(base_url=server.http) as http:
        r = await http.post("/waiting-room/api/rooms", json={**ROOM, "gate_prefix": "/chat"})
        assert r.status_code == 409
        r = await http.patch(
            f"/waiting-room/api/rooms/{room}",
            json={"gate_prefix": None},
            headers={"Authorization": f"Bearer {made['admin_token']}"},
        )
        assert r.status_code == 200 and r.json()["gate_prefix"] is None
    stranger = Visitor(server.http, room)
    assert (await stranger.http.get("/chat/")).status_code == 200  # no gate any more
    for v in (first, second, stranger):
        await v.close()


async def test_only_the_operator_puts_a_room_in_front_of_another_app(serve) -> None:
    server = await room_server(serve, chat=True, ops_token="the-operators-token")
    operator = {"Authorization": "Bearer the-operators-token"}
    gated = {**ROOM, "total_active_users": 1, "gate_prefix": "/chat"}
    async with httpx.AsyncClient(base_url=server.http) as http:
        r = await http.post("/waiting-room/api/rooms", json=gated)
        assert (r.status_code, r.json()["field"]) == (401, "gate_prefix")
        assert r.headers["www-authenticate"] == "Bearer"
        r = await http.post(
            "/waiting-room/api/rooms", json=gated, headers={"Authorization": "Bearer guess"}
        )
        assert (r.status_code, r.json()["field"]) == (403, "gate_prefix")
        assert await gate_directory(server) == {}  # nothing claimed, no room made
        assert (await http.get("/chat/")).status_code == 200
        # a room's admin cannot add a gate either, nor move one
        plain = await create(server.http)
        url, auth = f"/waiting-room/api/rooms/{plain['room']}", bearer(plain)
        r = await http.patch(url, json={"gate_prefix": "/chat"}, headers=auth)
        assert (r.status_code, r.json()["field"]) == (403, "gate_prefix")
        assert (await http.get(url)).json()["gate_prefix"] is None
        # the operator can
        r = await http.post("/waiting-room/api/rooms", json=gated, headers=operator)
        assert r.status_code == 201 and r.json()["gate_prefix"] == "/chat"
        room, auth = r.json()["room"], bearer(r.json())
        assert await gate_directory(server) == {"/chat": room}
        url = f"/waiting-room/api/rooms/{room}"
        r = await http.patch(url, json={"gate_prefix": "/chat/api"}, headers=auth)
        assert r.status_code == 403
        as_operator = {**auth, "Cookie": "ops_token=the-operators-token"}  # (logged in at /ops)
        r = await http.patch(url, json={"gate_prefix": "/chat/api"}, headers=as_operator)
        assert r.status_code == 200 and await gate_directory(server) == {"/chat/api": room}
        # the admin page sends the gate with every change: the same one needs no operator
        change = {"gate_prefix": "/chat/api", "total_active_users": 3}
        assert (await http.patch(url, json=change, headers=auth)).status_code == 200
        # and a room's admin may let the app go
        r = await http.patch(url, json={"gate_prefix": None}, headers=auth)
        assert r.status_code == 200 and r.json()["gate_prefix"] is None
        assert await gate_directory(server) == {}


async def test_the_nodes_own_paths_pass_whatever_the_directory_says(serve) -> None:
    server = await room_server(serve, chat=True)
    room = (await create(server.http, total_active_users=1))["room"]
    directory = server.node.namespaces[GATES.name].get_by_name("gates")
    for prefix in ("/api", "/healthz", "/waiting-room"):  # (claimed before this was checked)
        assert await directory.claim(prefix, room)
    taker = Visitor(server.http, room)
    assert (await taker.visit())["status"] == "admitted"  # the room is full
    async with httpx.AsyncClient(base_url=server.http) as http:
        await asyncio.sleep(FAST.gate_cache_seconds + 0.1)
        assert (await http.get("/api/apps")).status_code == 200
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/waiting-room/")).status_code == 200
    await taker.close()


async def test_a_node_that_cannot_read_the_gates_yet_lets_nothing_through(serve, tmp_path) -> None:
    own = ValkeyProcess(tmp_path / "valkey").start()  # (this test stops and restarts it)
    servers = []
    try:
        first = await room_server(serve, chat=True, url=own.url)
        made = await create(first.http, total_active_users=1, gate_prefix="/chat")
        async with httpx.AsyncClient(base_url=first.http) as taker:
            assert (await taker.get("/chat/")).status_code == 200  # the room is full now
        await first.stop()  # (hands its objects back)
        fresh = await room_server(serve, chat=True, url=own.url, node_id="fresh-node")
        servers = [fresh]
        own.stop()  # Valkey goes away before the fresh node has read the gates
        async with httpx.AsyncClient(base_url=fresh.http, timeout=30) as http:
            r = await http.get("/chat/")
            assert r.status_code == 503 and r.headers["retry-after"] == "1"
            assert (await http.get("/chat/static/chat.js")).status_code == 200
            assert (await http.get("/waiting-room/")).status_code == 200
            own.start()
            deadline = time.monotonic() + 15
            while (r := await http.get("/chat/")).status_code == 503:
                assert time.monotonic() < deadline, r.text
                await asyncio.sleep(0.5)
            assert r.status_code == 303  # read at last: gated as on any node
            assert made["room"] in r.headers["location"]
    finally:
        if not own.ping():
            own.start()  # (so the nodes stop cleanly)
        for server in servers:
            await server.stop()
        own.stop()


def bearer(made: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {made['admin_token']}"}


async def gate_directory(server) -> dict[str, str]:
    return dict(await server.node.namespaces[GATES.name].get_by_name("gates").gates())


async def test_concurrent_changes_keep_every_acknowledged_one(serve) -> None:
    server = await room_server(serve, chat=True)
    made = await create(server.http)
    room, url = made["room"], f"/waiting-room/api/rooms/{made['room']}"
    auth = {"Authorization": f"Bearer {made['admin_token']}"}
    async with httpx.AsyncClient(base_url=server.http) as http:

        async def patch(change: dict[str, Any]) -> httpx.Response:
            return await http.patch(url, json=change, headers=auth)

        for i, prefix in enumerate(["/chat", None, "/chat/api", None]):
            gating, sizing = await asyncio.gather(
                patch({"gate_prefix": prefix}), patch({"total_active_users": 10 + i})
            )
            assert (gating.status_code, sizing.status_code) == (200, 200)
            got = (await http.get(url)).json()
            assert (got["gate_prefix"], got["total_active_users"]) == (prefix, 10 + i)
            assert await gate_directory(server) == ({prefix: room} if prefix else {})
        # two changes of the gate at once: one is made, the other is told to retry
        one, two = await asyncio.gather(
            patch({"gate_prefix": "/chat"}), patch({"gate_prefix": "/chat/api"})
        )
        assert sorted((one.status_code, two.status_code)) == [200, 409]
        made_one = one if one.status_code == 200 else two
        prefix = made_one.json()["gate_prefix"]
        assert (await http.get(url)).json()["gate_prefix"] == prefix
        assert await gate_directory(server) == {prefix: room}
        assert (await patch({"gate_prefix": None})).status_code == 200
        assert await gate_directory(server) == {}  # nothing stranded


async def test_a_claim_that_outlived_its_room_does_not_block_the_prefix(serve) -> None:
    server = await room_server(serve, chat=True)
    directory = server.node.namespaces[GATES.name].get_by_name("gates")
    rooms = server.node.namespaces["waiting_room"]
    # a room whose creation failed after it claimed /chat, and one that no longer gates
    # /chat/api but whose release never reached the directory
    never_made = rooms.new_unique_id().hex
    assert await directory.claim("/chat", never_made)
    moved_on = (await create(server.http))["room"]
    assert await directory.claim("/chat/api", moved_on)
    made = await create(server.http, gate_prefix="/chat")
    other = await create(server.http, gate_prefix="/chat/api")
    assert await gate_directory(server) == {"/chat": made["room"], "/chat/api": other["room"]}
    # a room that does hold its prefix keeps it
    async with httpx.AsyncClient(base_url=server.http) as http:
        r = await http.post("/waiting-room/api/rooms", json={**ROOM, "gate_prefix": "/chat"})
        assert r.status_code == 409


def room_cookie(response: Any, room: str) -> str | None:
    """The value of the room's cookie a response (HTTP, or a handshake's) sets, if any."""
    for header in response.headers.get_all("set-cookie"):
        name, _, rest = header.partition("=")
        if name == cookie_name(room):
            return rest.split(";", 1)[0]
    return None


async def test_a_gated_handshake_carries_the_cookie_so_its_client_stays_one_visitor(
    serve,
) -> None:
    server = await room_server(serve, chat=True)
    made = await create(server.http, total_active_users=3, gate_prefix="/chat")
    room, ws_url = made["room"], f"{server.ws}/chat/api/room/lobby/websocket"
    async with connect(ws_url) as ws:  # no cookie: a newcomer, admitted
        cookie = room_cookie(ws.response, room)
    assert cookie is not None
    for _ in range(3):  # a client that keeps its cookie renews its one slot
        header = {"Cookie": f"{cookie_name(room)}={cookie}"}
        async with connect(ws_url, additional_headers=header) as ws:
            cookie = room_cookie(ws.response, room)
            assert cookie is not None
    async with httpx.AsyncClient(base_url=server.http) as http:
        assert (await http.get(f"/waiting-room/api/rooms/{room}")).json()["active"] == 1
        # and it is the same visitor over HTTP: leaving frees that slot
        http.cookies.set(cookie_name(room), cookie)
        r = await http.post(f"/waiting-room/r/{room}/leave", headers=JSON)
        assert r.json() == {"left": True}
        assert (await http.get(f"/waiting-room/api/rooms/{room}")).json()["active"] == 0


async def test_a_refused_handshake_queues_no_newcomer_and_keeps_a_queued_visitors_place(
    serve,
) -> None:
    server = await room_server(serve, chat=True)
    made = await create(server.http, total_active_users=1, gate_prefix="/chat")
    room, ws_url = made["room"], f"{server.ws}/chat/api/room/lobby/websocket"
    taker, waiting = Visitor(server.http, room), Visitor(server.http, room)
    assert (await taker.http.get("/chat/")).status_code == 200  # the only slot
    for _ in range(3):  # a client that cannot be shown the waiting page takes no ticket
        with pytest.raises(InvalidStatus) as refused:
            await connect(ws_url)
        assert refused.value.response.status_code == 403
    url = f"/waiting-room/api/rooms/{room}"
    assert (await taker.http.get(url)).json()["queued"] == 0
    # a visitor queued by a page keeps their place, and gets their cookie back
    assert (await waiting.http.get("/chat/")).status_code == 303
    header = {"Cookie": f"{cookie_name(room)}={waiting.cookie}"}
    with pytest.raises(InvalidStatus) as refused:
        await connect(ws_url, additional_headers=header)
    assert refused.value.response.status_code == 403
    assert room_cookie(refused.value.response, room) is not None
    figures = (await taker.http.get(url)).json()
    assert (figures["active"], figures["queued"]) == (1, 1)
    await taker.leave()  # the slot goes to the head of the line: the handshake gets in
    async with connect(ws_url, additional_headers=header) as ws:
        assert room_cookie(ws.response, room) is not None
    for v in (taker, waiting):
        await v.close()


async def test_a_gate_its_room_does_not_hold_lets_the_app_through(serve) -> None:
    server = await room_server(serve, chat=True)
    directory = server.node.namespaces[GATES.name].get_by_name("gates")
    # a room that moved its gate away but whose release never reached the directory
    room = (await create(server.http, total_active_users=1))["room"]
    assert await directory.claim("/chat", room)
    async with (
        httpx.AsyncClient(base_url=server.http) as one,
        httpx.AsyncClient(base_url=server.http) as two,
    ):
        assert (await one.get("/chat/")).status_code == 200
        assert (await two.get("/chat/")).status_code == 200  # not sent to a full room's line
        assert one.cookies.get(cookie_name(room)) is None
    assert (await one_room_figures(server, room))["active"] == 0
    await until_directory(server, {})  # the stale entry is cleared
    # a claim by a room that was never made: not a 503 for every request of the app
    ghost = server.node.namespaces["waiting_room"].new_unique_id().hex
    assert await directory.claim("/chat", ghost)
    await asyncio.sleep(FAST.gate_cache_seconds + 0.1)
    async with httpx.AsyncClient(base_url=server.http) as http:
        assert (await http.get("/chat/")).status_code == 200
    await until_directory(server, {})
    # a room that does stand in front of its prefix still gates it
    gated = await create(server.http, total_active_users=1, gate_prefix="/chat")
    async with (
        httpx.AsyncClient(base_url=server.http) as one,
        httpx.AsyncClient(base_url=server.http) as two,
    ):
        assert (await one.get("/chat/")).status_code == 200
        assert (await two.get("/chat/")).status_code == 303
    assert await gate_directory(server) == {"/chat": gated["room"]}


async def one_room_figures(server, room: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.http) as http:
        return dict((await http.get(f"/waiting-room/api/rooms/{room}")).json())


async def until_directory(server, expected: dict[str, str], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while (found := await gate_directory(server)) != expected:
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.05)


async def test_naming_the_gate_again_makes_good_a_lost_release(serve) -> None:
    server = await room_server(serve, chat=True)
    directory = server.node.namespaces[GATES.name].get_by_name("gates")
    made = await create(server.http)
    room, url = made["room"], f"/waiting-room/api/rooms/{made['room']}"
    assert await directory.claim("/chat", room)  # a release that never arrived
    async with httpx.AsyncClient(base_url=server.http) as http:
        r = await http.patch(url, json={"gate_prefix": None}, headers=bearer(made))
        assert r.status_code == 200 and r.json()["gate_prefix"] is None
        assert await gate_directory(server) == {}
        # again: nothing to release, still fine
        r = await http.patch(url, json={"gate_prefix": None}, headers=bearer(made))
        assert r.status_code == 200 and await gate_directory(server) == {}
        # a room that gates /chat/api, with /chat left behind by a move
        r = await http.patch(url, json={"gate_prefix": "/chat/api"}, headers=bearer(made))
        assert r.status_code == 200
        assert await directory.claim("/chat", room)
        r = await http.patch(
            url, json={"gate_prefix": "/chat/api", "total_active_users": 5}, headers=bearer(made)
        )
        assert r.status_code == 200 and r.json()["total_active_users"] == 5
        assert await gate_directory(server) == {"/chat/api": room}
        # a change that does not name the gate leaves the directory alone
        assert await directory.claim("/chat", room)
        r = await http.patch(url, json={"total_active_users": 6}, headers=bearer(made))
        assert r.status_code == 200
        assert await gate_directory(server) == {"/chat": room, "/chat/api": room}


async def test_a_waiting_page_that_talks_is_closed(serve) -> None:
    server = await room_server(serve)
    room = (await create(server.http, total_active_users=1))["room"]
    a, b = Visitor(server.http, room), Visitor(server.http, room)
    await a.visit()
    await b.visit()
    ws = await b.socket()
    await next_status(ws)
    await ws.send("hello?")
    await asyncio.wait_for(ws.wait_closed(), 5)
    assert ws.close_code == 1008
    assert (await b.visit())["position"] == 1  # the place is kept
    for v in (a, b):
        await v.close()


# ---------------------------------------------------------------- pause and delete


async def test_pausing_queues_everyone_new_and_resuming_serves_the_line(serve) -> None:
    server = await room_server(serve)
    made = await create(server.http, total_active_users=3)
    room, auth = made["room"], {"Authorization": f"Bearer {made['admin_token']}"}
    inside, waiting = Visitor(server.http, room), Visitor(server.http, room)
    assert (await inside.visit())["status"] == "admitted"
    async with httpx.AsyncClient(base_url=server.http) as http:
        r = await http.patch(f"/waiting-room/api/rooms/{room}", json={"queue_all": 1}, headers=auth)
        assert r.status_code == 422 and r.json()["field"] == "queue_all"  # checked: a bool
        r = await http.patch(
            f"/waiting-room/api/rooms/{room}", json={"queue_all": True}, headers=auth
        )
        assert r.status_code == 200 and r.json()["queue_all"] is True
        assert (await inside.visit())["status"] == "admitted"  # those on the site stay
        assert await waiting.visit() == {
            "status": "queued",
            "position": 1,
            "eta_s": None,
            "paused": True,
        }
        ws = await waiting.socket()
        assert (await next_status(ws))["paused"] is True
        r = await http.patch(
            f"/waiting-room/api/rooms/{room}", json={"queue_all": False}, headers=auth
        )
        assert r.status_code == 200
        assert (await until(ws, lambda s: s["status"] == "admitted"))["status"] == "admitted"
        assert "paused" not in await waiting.visit()
        await ws.close()
    for v in (inside, waiting):
        await v.close()


@pytest.mark.parametrize("leasing", [False, True])
async def test_deleting_a_room_takes_its_pages_gate_and_storage(serve, leasing) -> None:
    server = await room_server(serve, chat=True)
    made = await create(
        server.http, total_active_users=1, gate_prefix="/chat", slot_leasing=leasing
    )
    room, auth = made["room"], {"Authorization": f"Bearer {made['admin_token']}"}
    inside, waiting = Visitor(server.http, room), Visitor(server.http, room)
    assert (await inside.visit())["status"] == "admitted"
    assert (await waiting.visit())["status"] == "queued"
    assert (await waiting.http.get("/chat/")).status_code == 303  # gated
    ws = await waiting.socket()
    await next_status(ws)
    async with httpx.AsyncClient(base_url=server.http) as http:
        url = f"/waiting-room/api/rooms/{room}"
        assert (await http.delete(url)).status_code == 401
        wrong = {"Authorization": "Bearer not-the-token"}
        assert (await http.delete(url, headers=wrong)).status_code == 403
        assert (await http.get(url)).status_code == 200  # refusals changed nothing
        r = await http.delete(url, headers=auth)
        assert r.status_code == 200 and r.json() == {"deleted": True}
        with pytest.raises(Exception) as closed:
            await asyncio.wait_for(ws.recv(), 5)
        assert getattr(closed.value, "rcvd", None) is not None and closed.value.rcvd.code == 4004
        assert (await http.get(url)).status_code == 404
        assert (await http.delete(url, headers=auth)).status_code == 404
        r = await inside.http.get(f"/waiting-room/r/{room}/", headers=JSON)
        assert r.status_code == 404  # even the visitor who was in (a shard's, too)
        assert (await http.get(f"/waiting-room/admin/{room}")).status_code == 404
        # The gate went with it: the chat is open again.
        for _ in range(40):
            if (await waiting.http.get("/chat/")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert (await waiting.http.get("/chat/")).status_code == 200
    for v in (inside, waiting):
        await v.close()
