"""The waiting room's status reads on read replicas (docs/waiting-room.md, "Read replicas"):
three in-process nodes on real sockets and a real Valkey (single, and a 3-master cluster).

The room's primary lives on the node that created it (A); ``GET /api/rooms/<room>`` through
B and C runs on those nodes' replicas and answers what the primary would, in the pinned
shape; a leave through A is never shown undone by a read through B that carries the version
the leave handed the browser (the ``wr_v_<room>`` cookie or the ``X-Room-Version`` header);
a malformed version is ignored. Waiting pages watch their node's replica: a page on B hears
its positions and its admission; its presence reaches the room by B's reports, so closing
the last page starts the visitor's absence, and a node whose reports stop loses its pages'
presence within the TTL (tests/cluster/test_waiting_room_nodes.py kills such a node -9).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from apps.waiting_room import WaitingRoomConfig, make_app
from apps.waiting_room.cookies import cookie_name
from apps.waiting_room.pages import MAX_PAGES
from apps.waiting_room.rules import ACTIVE
from apps.waiting_room.versions import HEADER, MAX_VERSION
from apps.waiting_room.versions import cookie_name as version_cookie
from tests.conftest import TEST_SETTINGS
from tests.support.servers import LinkedNodes, LocalServer

SECRET = "waiting-room-replica-secret-0123456789"
FAST = WaitingRoomConfig(
    push_interval=0.05, gate_cache_seconds=0.5, presence_interval=0.5, presence_ttl=2.0
)
JSON = {"Accept": "application/json"}
ROOM = {
    "total_active_users": 3,
    "new_users_per_minute": 1000,
    "session_duration": 60,
    "queueing_method": "fifo",
}
#: The pinned shape of GET /api/rooms/<room>: every key, and its type(s).
SHAPE: dict[str, tuple[type, ...]] = {
    "active": (int,),
    "queued": (int,),
    "admitted_last_minute": (int,),
    "admitted_total": (int,),
    "leased": (int,),
    "admitted_by_room": (int,),
    "admitted_by_shards": (int,),
    "total_active_users": (int,),
    "new_users_per_minute": (int,),
    "session_duration": (int,),
    "queueing_method": (str,),
    "name": (str,),
    "title": (str,),
    "message": (str,),
    "reject_message": (str,),
    "event_start": (float, int, type(None)),
    "prequeue_start": (float, int, type(None)),
    "shuffle_at_start": (bool,),
    "queue_all": (bool,),
    "gate_prefix": (str, type(None)),
    "slot_leasing": (bool,),
    "site_url": (str,),
    "admin_url": (str,),
}
#: A waiting page's message (pinned; "paused" only while the room is paused).
SHAPE_OF_STATUS = {"status", "position", "eta_s"}
Nodes = Callable[[int], Awaitable[list[LocalServer]]]


@pytest.fixture
async def nodes(redis_url: str) -> AsyncIterator[Nodes]:
    """start(n) -> n in-process nodes serving the waiting room, forwarding to each other."""
    linked = LinkedNodes(redis_url, [make_app(FAST)], TEST_SETTINGS, "w", SECRET)
    yield linked.start
    await linked.stop()


async def create(base: str, **changes: Any) -> str:
    async with httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/waiting-room/api/rooms", json={**ROOM, **changes})
        assert r.status_code == 201, r.text
        return str(r.json()["room"])


def reads(server: LocalServer) -> int:
    return server.node.stats.replica_reads


async def test_status_reads_run_on_each_nodes_replica_and_answer_as_the_primary(
    nodes: Nodes,
) -> None:
    a, b, c = await nodes(3)
    room = await create(a.http)
    url = f"/waiting-room/api/rooms/{room}"
    async with httpx.AsyncClient() as browser:
        for _ in range(4):  # 3 admitted, 1 queued, all decided by the primary on A
            browser.cookies.clear()
            r = await browser.get(f"{a.http}/waiting-room/r/{room}/", headers=JSON)
            assert r.status_code == 200 and int(r.headers[HEADER]) >= 1
        on_primary = (await browser.get(a.http + url)).json()
        assert (on_primary["active"], on_primary["queued"]) == (3, 1)
        assert on_primary["admitted_total"] == on_primary["admitted_last_minute"] == 3
        for server in (b, c):
            before = reads(server)
            for _ in range(10):
                r = await browser.get(server.http + url)
                assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
                got = r.json()
                assert got == on_primary  # (the figures of the last minute included)
                assert set(got) == set(SHAPE)
                assert all(isinstance(got[k], SHAPE[k]) for k in SHAPE), got
            assert reads(server) - before >= 8, server.node.stats.replica_forwards
            assert server.node.replicas.figures()["held"] == 1
        assert reads(a) == 0  # (the primary's node serves its reads from the primary)
        # the settings the pages show come from the replica too, and follow a change
        assert (await browser.get(f"{b.http}/waiting-room/admin/{room}")).status_code == 200


async def test_a_leave_through_one_node_shows_at_once_through_another(nodes: Nodes) -> None:
    a, b, c = await nodes(3)
    room = await create(a.http)
    url = f"/waiting-room/api/rooms/{room}"
    async with httpx.AsyncClient() as browser:
        await browser.get(b.http + url)  # (B's replica is loaded and current)
        served = reads(b)
        for i in range(40):
            writer, reader = (a, b) if i % 2 == 0 else (c, b)
            r = await browser.get(f"{writer.http}/waiting-room/r/{room}/", headers=JSON)
            assert r.json()["status"] == "admitted"
            # a visit hands back its version in the header only (the cookie would ride on
            # every request to the node); a program that reads next carries it
            assert not any("wr_v_" in c for c in r.headers.get_list("set-cookie"))
            visited = {HEADER: r.headers[HEADER]}
            assert (await browser.get(reader.http + url, headers=visited)).json()["active"] == 1
            r = await browser.post(f"{writer.http}/waiting-room/r/{room}/leave", headers=JSON)
            assert r.json() == {"left": True}
            assert browser.cookies.get(cookie_name(room)) is None  # (the visitor is gone)
            version = int(r.headers[HEADER])
            assert browser.cookies.get(version_cookie(room)) == str(version)
            assert (await browser.get(reader.http + url)).json()["active"] == 0, i
            # a program carries the header instead of the cookie
            program = {HEADER: str(version)}
            async with httpx.AsyncClient() as other:
                assert (await other.get(reader.http + url, headers=program)).json()["active"] == 0
    assert reads(b) - served >= 40, b.node.stats.replica_forwards  # (most on the replica)


async def test_a_change_of_settings_hands_back_its_version_and_reads_follow(
    nodes: Nodes,
) -> None:
    a, b = await nodes(2)
    async with httpx.AsyncClient() as http:
        made = (await http.post(f"{a.http}/waiting-room/api/rooms", json=ROOM)).json()
        room, auth = made["room"], {"Authorization": f"Bearer {made['admin_token']}"}
        url = f"/waiting-room/api/rooms/{room}"
        await http.get(b.http + url)
        for capacity in range(4, 14):
            r = await http.patch(a.http + url, json={"total_active_users": capacity}, headers=auth)
            assert r.status_code == 200 and int(r.headers[HEADER]) >= 1
            assert (await http.get(b.http + url)).json()["total_active_users"] == capacity


GARBAGE = ["abc", "-1", "0", "1e5", "0x10", "7.5", "+7", "7x", str(MAX_VERSION + 1), "9" * 40, ""]


async def test_a_malformed_version_is_ignored(nodes: Nodes) -> None:
    a, b = await nodes(2)
    room = await create(a.http)
    url = f"/waiting-room/api/rooms/{room}"
    async with httpx.AsyncClient() as http:
        expected = (await http.get(a.http + url)).json()
        for server in (a, b):
            for carried in GARBAGE:
                for headers in ({}, {HEADER: carried}):
                    cookie = {"Cookie": f"{version_cookie(room)}={carried}"}
                    r = await http.get(server.http + url, headers={**headers, **cookie})
                    assert r.status_code == 200, (carried, r.text)
                    assert r.json() == expected


async def test_a_version_from_the_future_costs_a_wait_not_an_error(nodes: Nodes) -> None:
    a, b = await nodes(2)
    room = await create(a.http)
    url = f"/waiting-room/api/rooms/{room}"
    async with httpx.AsyncClient() as http:
        await http.get(b.http + url)
        forwarded = b.node.stats.replica_forwards["behind"]
        r = await http.get(b.http + url, headers={HEADER: str(MAX_VERSION)})
        assert r.status_code == 200 and r.json()["active"] == 0  # (from the primary)
        assert b.node.stats.replica_forwards["behind"] == forwarded + 1
        (replica,) = b.node.replicas.table.values()
        assert replica._waiters == []  # (nothing of the made-up version stays behind)


async def test_reads_hand_back_their_version_and_never_go_back(nodes: Nodes) -> None:
    """Monotonic reads across nodes: a read's answer carries the version it read at, and
    a client that sends the newest one it saw never reads an older state."""
    a, b, c = await nodes(3)
    room = await create(a.http)
    url = f"/waiting-room/api/rooms/{room}"
    async with httpx.AsyncClient() as http:
        seen, total = 0, 0
        for i in range(30):
            async with httpx.AsyncClient() as visitor:
                await visitor.get(f"{a.http}/waiting-room/r/{room}/", headers=JSON)
            r = await http.get((b, c)[i % 2].http + url, headers={HEADER: str(seen)})
            assert r.status_code == 200
            assert r.json()["admitted_total"] >= total, i
            total = r.json()["admitted_total"]
            if HEADER in r.headers:
                assert int(r.headers[HEADER]) >= seen
                seen = int(r.headers[HEADER])
            assert not any("wr_v_" in c for c in r.headers.get_list("set-cookie"))


async def test_a_deleted_room_is_gone_at_once_through_another_node(nodes: Nodes) -> None:
    a, b = await nodes(2)
    async with httpx.AsyncClient() as http:
        for _ in range(5):
            made = (await http.post(f"{a.http}/waiting-room/api/rooms", json=ROOM)).json()
            room, auth = made["room"], {"Authorization": f"Bearer {made['admin_token']}"}
            url = f"/waiting-room/api/rooms/{room}"
            assert (await http.get(b.http + url)).status_code == 200  # (B holds a replica)
            gone = await http.delete(a.http + url, headers=auth)
            assert gone.status_code == 200 and int(gone.headers[HEADER]) >= 1
            assert http.cookies.get(version_cookie(room)) == gone.headers[HEADER]
            assert (await http.get(b.http + url)).status_code == 404


async def test_a_leasing_or_passthrough_rooms_figures_are_the_rooms_own(nodes: Nodes) -> None:
    """A replica counts admissions of the last minute only from when it loaded, exactly
    only where the stored rate window holds them: other rooms' figures come from the room."""
    a, b = await nodes(2)
    for changes in ({"queueing_method": "passthrough"}, {"slot_leasing": True}):
        room = await create(a.http, **changes)
        url = f"/waiting-room/api/rooms/{room}"
        async with httpx.AsyncClient() as http:
            for _ in range(3):
                async with httpx.AsyncClient() as visitor:
                    await visitor.get(f"{a.http}/waiting-room/r/{room}/", headers=JSON)
            on_primary = (await http.get(a.http + url)).json()
            assert on_primary["admitted_last_minute"] == on_primary["admitted_total"] >= 1
            for _ in range(3):
                assert (await http.get(b.http + url)).json() == on_primary, changes


# ---------------------------------------------------------------- waiting pages on replicas


def primary(server: LocalServer, room: str) -> Any:
    """The room's live instance on ``server`` (its primary)."""
    ns = server.node.namespaces["waiting_room"]
    record = server.node.record_of(ns, ns.id_from_string(room))
    assert record is not None and record.instance is not None
    return record.instance


async def until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def page(server: LocalServer, room: str, browser: httpx.AsyncClient) -> ClientConnection:
    cookie = {"Cookie": f"{cookie_name(room)}={browser.cookies[cookie_name(room)]}"}
    return await connect(f"{server.ws}/waiting-room/r/{room}/ws", additional_headers=cookie)


async def next_status(ws: ClientConnection) -> dict[str, Any]:
    return dict(json.loads(await asyncio.wait_for(ws.recv(), 5)))


async def test_a_page_on_another_nodes_replica_hears_positions_and_its_admission(
    nodes: Nodes,
) -> None:
    a, b, _ = await nodes(3)
    room = await create(a.http, total_active_users=1)
    browsers = [httpx.AsyncClient() for _ in range(3)]
    for http in browsers:
        await http.get(f"{a.http}/waiting-room/r/{room}/", headers=JSON)
    ws = await page(b, room, browsers[2])
    first = await next_status(ws)
    assert (first["status"], first["position"], set(first)) == ("queued", 2, SHAPE_OF_STATUS)
    assert b.node.replicas.figures()["held"] == 1  # (the page is B's replica's)
    room_ = primary(a, room)
    assert room_.pages == {}  # (none on the primary)
    visitor = next(iter(room_.rules.line))  # (the head of the line: browsers[1])
    await until(lambda: set(room_.rules.sockets) == set(room_.rules.line) - {visitor})
    await browsers[1].post(f"{a.http}/waiting-room/r/{room}/leave", headers=JSON)
    assert (await next_status(ws))["position"] == 1
    await browsers[0].post(f"{a.http}/waiting-room/r/{room}/leave", headers=JSON)
    assert (await next_status(ws))["status"] == "admitted"
    await ws.close()
    for http in browsers:
        await http.aclose()


async def one_in_line(
    a: LocalServer, room: str
) -> tuple[httpx.AsyncClient, httpx.AsyncClient, Any, str]:
    """A one-slot room's slot taken and one visitor in line, both through ``a`` (the
    room's node): (the taker's browser, the waiting one's, the room, the waiting visitor)."""
    taker, waiting = httpx.AsyncClient(), httpx.AsyncClient()
    await taker.get(f"{a.http}/waiting-room/r/{room}/", headers=JSON)
    await waiting.get(f"{a.http}/waiting-room/r/{room}/", headers=JSON)
    room_ = primary(a, room)
    [visitor] = list(room_.rules.line)
    return taker, waiting, room_, visitor


async def test_closing_the_last_page_on_a_replica_starts_the_visitors_absence(
    nodes: Nodes,
) -> None:
    a, b, c = await nodes(3)
    room = await create(a.http, total_active_users=1)
    taker, waiting, room_, visitor = await one_in_line(a, room)
    on_b, on_c = await page(b, room, waiting), await page(c, room, waiting)
    await until(lambda: room_.rules.sockets.get(visitor) == 2)  # (a page on each node)
    # a visitor's pages are counted per node: a fifth on one node is refused there
    more = [await page(b, room, waiting) for _ in range(MAX_PAGES - 1)]
    with pytest.raises(Exception, match="429"):
        await page(b, room, waiting)
    for ws in more:
        await ws.close()
    await on_b.close()
    await until(lambda: room_.rules.sockets.get(visitor) == 1)
    seen = room_.rules.last_seen[visitor]
    closed = time.time()
    await on_c.close()
    await until(lambda: visitor not in room_.rules.sockets)
    assert room_.rules.last_seen[visitor] >= max(seen, closed)  # its absence starts now
    for http in (taker, waiting):
        await http.aclose()


async def test_a_node_that_stops_reporting_loses_its_pages_presence_within_the_ttl(
    nodes: Nodes,
) -> None:
    a, b = await nodes(2)
    room = await create(a.http, total_active_users=1)
    taker, waiting, room_, visitor = await one_in_line(a, room)
    ws = await page(b, room, waiting)
    await until(lambda: room_.rules.sockets.get(visitor) == 1)
    # B is cut off from the room: its reports never arrive (the page itself stays open)
    instance = next(iter(b.node.replicas.table.values())).instance
    assert instance is not None

    class CutOff:
        async def page_report(self, *args: Any) -> bool:
            await asyncio.Event().wait()  # (never answers)
            return False

    instance.primary = CutOff  # type: ignore[method-assign]
    cut = time.time()
    await until(lambda: visitor not in room_.rules.sockets, timeout=FAST.presence_ttl + 2)
    # within the TTL of B's last report (sent at most presence_interval before the cut)
    assert time.time() - cut <= FAST.presence_ttl + 0.5
    assert room_.rules.last_seen[visitor] >= cut  # its absence starts then
    await ws.close()
    for http in (taker, waiting):
        await http.aclose()


async def replica_and_stub(server: LocalServer, room: str) -> tuple[Any, Any, Any]:
    """The room's replica on ``server`` (made by a status read there), its instance, and the
    room's stub that instance calls (for a test to stand in front of)."""
    async with httpx.AsyncClient() as http:
        await http.get(f"{server.http}/waiting-room/api/rooms/{room}")
    (replica,) = server.node.replicas.table.values()
    return replica, replica.instance, replica.instance.primary()


async def test_a_page_whose_visitor_is_admitted_while_it_connects_hears_it(
    nodes: Nodes,
) -> None:
    """The page's visit is answered "queued", and a commit admitting the visitor reaches
    the replica before that answer does: the page is told "admitted", not left in line."""
    a, b = await nodes(2)
    room = await create(a.http, total_active_users=1)
    taker, waiting, room_, visitor = await one_in_line(a, room)
    [holder] = [v for v in room_.rules.visitors if v != visitor]
    _, instance, stub = await replica_and_stub(b, room)

    class AnsweredLate:
        """The room's stub, but a visit's answer comes after the admission reached B."""

        async def visit(self, who: str, join: bool = True) -> dict[str, Any]:
            answer: dict[str, Any] = await stub.visit(who, join)
            assert answer["status"] == "queued"
            await stub.leave(holder)  # (the slot frees: the visitor is admitted)
            for _ in range(200):  # (each call opens the gate: the replica applies commits)
                if instance.rules.visitors[who].state == ACTIVE:
                    break
                await stub.primary_info()
            return answer  # (now older than what B's replica holds)

        def __getattr__(self, name: str) -> Any:
            return getattr(stub, name)

    instance.primary = AnsweredLate
    ws = await page(b, room, waiting)
    assert instance.rules.visitors[visitor].state == ACTIVE
    assert (await next_status(ws))["status"] == "admitted"
    await ws.close()
    for http in (taker, waiting):
        await http.aclose()


async def test_a_replica_loaded_again_after_a_gap_tells_its_pages_what_the_gap_held(
    nodes: Nodes,
) -> None:
    a, b = await nodes(2)
    room = await create(a.http, total_active_users=1)
    taker, waiting, room_, visitor = await one_in_line(a, room)
    ws = await page(b, room, waiting)
    assert (await next_status(ws))["position"] == 1
    (replica,) = b.node.replicas.table.values()
    replica.published = lambda commit: None  # B misses the commits that follow
    await taker.post(f"{a.http}/waiting-room/r/{room}/leave", headers=JSON)
    assert room_.rules.visitors[visitor].state == ACTIVE
    del replica.published
    replica.lost()  # (as the next commit's gap would find)
    assert (await next_status(ws))["status"] == "admitted"
    await ws.close()
    for http in (taker, waiting):
        await http.aclose()


async def test_a_page_connecting_while_the_replica_loads_again_is_the_new_copys(
    nodes: Nodes,
) -> None:
    """A replica loaded again (it missed a commit) while a page's connection was being
    decided: the connection is decided again by the new copy, which counts the page (the
    old one's count was lost with it, and a visitor could open pages past the limit)."""
    a, b = await nodes(2)
    room = await create(a.http, total_active_users=1)
    taker, waiting, _, visitor = await one_in_line(a, room)
    replica, old, stub = await replica_and_stub(b, room)

    class ReloadedMeanwhile:
        """The room's stub, but the replica loads again while a visit is answered."""

        async def visit(self, who: str, join: bool = True) -> dict[str, Any]:
            answer: dict[str, Any] = await stub.visit(who, join)
            replica.lost()
            for _ in range(200):  # (each call opens the gate: the replica loads)
                if replica.instance not in (None, old):
                    break
                await stub.primary_info()
            return answer

        def __getattr__(self, name: str) -> Any:
            return getattr(stub, name)

    old.primary = ReloadedMeanwhile
    ws = await page(b, room, waiting)
    assert (await next_status(ws))["status"] == "queued"
    assert replica.instance is not old and replica.loads == 2
    assert len(replica.instance.pages[visitor]) == 1  # (the new copy has the page)
    await ws.close()
    for http in (taker, waiting):
        await http.aclose()
