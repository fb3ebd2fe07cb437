"""One waiting room across three node processes: 1,000 concurrent visitors spread over the
nodes never push the count above capacity and every admission is accounted for (with one
room object, and with slot leasing); a kill -9 of the room's node keeps the queue order."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import h11
import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from apps.waiting_room.cookies import cookie_name
from tests.cluster.conftest import live_ids
from tests.support.http1 import Browser, Reply
from tests.support.servers import NodeProcess

ENV = {"WAITING_ROOM_PUSH_INTERVAL": "0.1", "WAITING_ROOM_LEASE_SECONDS": "0.5"}
JSON = {"Accept": "application/json"}
VISITORS = 1000
ROOM_OF_ONE = {
    "total_active_users": 1,
    "new_users_per_minute": 1000,
    "session_duration": 300,
    "queueing_method": "fifo",
}


async def create(node: NodeProcess, **settings: Any) -> dict[str, Any]:
    async with httpx.AsyncClient() as http:
        r = await http.post(f"{node.http}/waiting-room/api/rooms", json=settings, timeout=15)
        assert r.status_code == 201, r.text
        return r.json()


async def retrying(call, attempts: int = 60) -> tuple[Reply, bool]:
    """Retry while the room moves to another node (503s, refused connections). Also says
    whether an earlier attempt may have been carried out (its connection broke mid-way)."""
    unsure = False
    for attempt in range(attempts):
        try:
            r = await call()
            if r.status != 503:
                return r, unsure
        except (OSError, TimeoutError, h11.ProtocolError):
            unsure = True
            if attempt == attempts - 1:
                raise
        await asyncio.sleep(0.25)
    return r, unsure


class Crowd:
    """Many visitors, each with its own cookies, each request on its own connection."""

    def __init__(self, cluster: list[NodeProcess], room: str) -> None:
        self.cluster = cluster
        self.room = room
        self.admitted: dict[int, float] = {}  # visitor -> when it learnt it was admitted
        self.left: dict[int, float] = {}  # visitor -> when it asked to leave
        self.errors: list[str] = []
        self.phase: dict[int, str] = {}  # visitor -> what it is doing (said if the crowd hangs)

    def node(self) -> NodeProcess:
        return random.choice(self.cluster)  # every request through any node

    async def visit(self, browser: Browser) -> dict[str, Any]:
        path = f"/waiting-room/r/{self.room}/"
        r, _ = await retrying(lambda: browser.request(self.node().http, "GET", path, JSON))
        assert r.status == 200, r.body
        return dict(r.json())

    async def wait_for_turn(self, i: int, browser: Browser) -> None:
        """A queued visitor's page: the socket until it says admitted."""
        name = cookie_name(self.room)
        headers = {"Cookie": f"{name}={browser.cookies[name]}"}
        while True:
            node = self.node()
            url = f"{node.ws}/waiting-room/r/{self.room}/ws"
            try:
                self.phase[i] = f"opening a page on {node.http}"
                async with connect(url, additional_headers=headers, open_timeout=30) as ws:
                    self.phase[i] = f"on a page on {node.http}"
                    async for text in ws:
                        self.phase[i] = f"on a page on {node.http}, last heard {text}"
                        if json.loads(text)["status"] == "admitted":
                            return
            except (ConnectionClosed, InvalidStatus, OSError):
                pass  # the room moved or a node restarted: reconnect like the page does
            if (await self.visit(browser))["status"] == "admitted":
                return

    async def visitor(self, i: int, hold: float) -> None:
        browser = Browser()
        try:
            self.phase[i] = "first visit"
            status = await self.visit(browser)
            if status["status"] != "admitted":
                await self.wait_for_turn(i, browser)
                self.phase[i] = "visit after the page said admitted"
                again = await self.visit(browser)  # the page moves on to the site
                assert again["status"] == "admitted", again
            self.admitted[i] = time.monotonic()
            await asyncio.sleep(hold)
            self.left[i] = time.monotonic()
            self.phase[i] = "leaving"
            path = f"/waiting-room/r/{self.room}/leave"
            r, unsure = await retrying(
                lambda: browser.request(self.node().http, "POST", path, JSON)
            )
            # (a retry after a broken connection may find the first attempt done)
            assert r.json() == {"left": True} or unsure, r.body
        except Exception as exc:  # reported below with the others
            self.errors.append(f"visitor {i}: {exc!r}")
        self.phase.pop(i, None)

    def most_at_once(self) -> int:
        """The most visitors that knew themselves admitted at one moment (a lower bound of
        what the room counted: each interval lies inside the visitor's real session)."""
        events = [(t, 1) for t in self.admitted.values()] + [(t, -1) for t in self.left.values()]
        inside = peak = 0
        for _, step in sorted(events, key=lambda e: (e[0], e[1])):
            inside += step
            peak = max(peak, inside)
        return peak


async def sample(cluster: list[NodeProcess], room: str, stop: asyncio.Event) -> list[int]:
    """The room's count of active users, read through every node in turn."""
    seen: list[int] = []
    async with httpx.AsyncClient(timeout=30) as http:
        while not stop.is_set():
            for node in cluster:
                try:
                    r = await http.get(f"{node.http}/waiting-room/api/rooms/{room}")
                except httpx.TransportError:
                    continue  # a kept-alive connection the node closed: next round
                if r.status_code == 200:
                    seen.append(r.json()["active"])
            await asyncio.sleep(0.05)
    return seen


async def room_as_seen(cluster: list[NodeProcess], room: str) -> list[Any]:
    """The room's status as each node's copy answers it (what a failure message shows)."""
    seen: list[Any] = []
    async with httpx.AsyncClient(timeout=10) as http:
        for node in cluster:
            try:
                seen.append((await http.get(f"{node.http}/waiting-room/api/rooms/{room}")).json())
            except (httpx.HTTPError, ValueError) as exc:
                seen.append(repr(exc))
    return seen


async def run_crowd(cluster: list[NodeProcess], room: str, visitors: int, capacity: int) -> Crowd:
    crowd = Crowd(cluster, room)
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample(cluster, room, stop))
    rng = random.Random(7)
    everyone = asyncio.gather(*(crowd.visitor(i, rng.uniform(0.02, 0.2)) for i in range(visitors)))
    try:
        async with asyncio.timeout(150):  # (a hang fails here, saying who waits on what)
            await everyone
    except TimeoutError:
        stuck = sorted(crowd.phase.items())
        seen = await room_as_seen(cluster, room)
        raise AssertionError(f"{len(stuck)} stuck: {stuck[:5]}; the room: {seen}") from None
    finally:
        stop.set()
    samples = await sampler
    assert not crowd.errors, crowd.errors[:5]
    assert len(crowd.admitted) == len(crowd.left) == visitors  # everyone got in, once
    assert samples and max(samples) <= capacity, max(samples)
    assert crowd.most_at_once() <= capacity
    assert max(samples) >= capacity // 2  # the room was really full at times
    return crowd


async def test_a_thousand_visitors_over_three_nodes_never_overfill_the_room(nodes) -> None:
    cluster = nodes(3, env=ENV, suite=True)
    capacity = 25
    made = await create(
        cluster[0],
        total_active_users=capacity,
        new_users_per_minute=100_000,
        session_duration=60,
        queueing_method="fifo",
    )
    await run_crowd(cluster, made["room"], VISITORS, capacity)
    # Read through another node, carrying no version: its replica may lag the last leaves by
    # milliseconds, never by more than the staleness bound (a second).
    deadline = time.monotonic() + 3.0
    async with httpx.AsyncClient() as http:
        while True:
            url = f"{cluster[1].http}/waiting-room/api/rooms/{made['room']}"
            info = (await http.get(url)).json()
            figures = (info["active"], info["queued"], info["admitted_total"])
            if figures == (0, 0, VISITORS) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
    assert figures == (0, 0, VISITORS)


async def test_slot_leasing_keeps_the_limits_exact_across_nodes(nodes) -> None:
    cluster = nodes(3, env=ENV, suite=True)
    capacity = 20
    made = await create(
        cluster[0],
        total_active_users=capacity,
        new_users_per_minute=100_000,
        session_duration=60,
        queueing_method="fifo",
        slot_leasing=True,
    )
    room = made["room"]
    await run_crowd(cluster, room, 400, capacity)
    # idle shards give their slots back and report their admissions
    deadline = time.monotonic() + 15
    async with httpx.AsyncClient() as http:
        while True:
            info = (await http.get(f"{cluster[2].http}/waiting-room/api/rooms/{room}")).json()
            if info["leased"] == 0 and info["admitted_total"] == 400:
                break
            assert time.monotonic() < deadline, info
            await asyncio.sleep(0.25)
    assert (info["active"], info["queued"]) == (0, 0)
    shards = [i for n in cluster for i in live_ids(n) if i.startswith("waiting_room_shard:")]
    assert len(shards) >= 2  # the nodes did admit on their own


async def test_kill_9_of_the_rooms_node_keeps_the_queue_order(nodes) -> None:
    cluster = nodes(3, env=ENV, suite=True)
    made = await create(
        cluster[0],
        total_active_users=1,
        new_users_per_minute=1000,
        session_duration=300,
        queueing_method="fifo",
    )
    room = made["room"]
    owner = next(n for n in cluster if any(i.startswith("waiting_room:") for i in live_ids(n)))
    survivors = [n for n in cluster if n is not owner]
    jars = [httpx.AsyncClient(timeout=30) for _ in range(6)]
    url = f"/waiting-room/r/{room}/"
    for i, http in enumerate(jars):
        r = await http.get(cluster[i % 3].http + url, headers=JSON)
        assert r.json()["status"] == ("admitted" if i == 0 else "queued")
        assert r.json().get("position") in (None, i)
    waiting = await connect(
        f"{survivors[0].ws}/waiting-room/r/{room}/ws",
        additional_headers={"Cookie": f"{cookie_name(room)}={jars[5].cookies[cookie_name(room)]}"},
    )
    assert json.loads(await waiting.recv())["position"] == 5
    owner.kill()  # kill -9: no drain, nothing released
    # (the page is watched on its own node's replica, on a survivor: it stays open through
    # the room's move, and hears the new primary's commits below)
    for i, http in enumerate(jars[1:], 1):
        r = await http.get(survivors[i % 2].http + url, headers=JSON)
        for _ in range(40):  # until the room is back on a survivor
            if r.status_code != 503:
                break
            await asyncio.sleep(0.25)
            r = await http.get(survivors[i % 2].http + url, headers=JSON)
        assert r.json() == {"status": "queued", "position": i, "eta_s": r.json()["eta_s"]}
    r = await jars[0].post(survivors[1].http + f"/waiting-room/r/{room}/leave", headers=JSON)
    assert r.json() == {"left": True}
    for i, http in enumerate(jars[1:], 1):
        r = await http.get(survivors[0].http + url, headers=JSON)
        assert r.json()["status"] == ("admitted" if i == 1 else "queued")
        assert r.json()["position"] == (None if i == 1 else i - 1)
    async with asyncio.timeout(20):  # (the page hears its new place from its replica)
        while (status := json.loads(await waiting.recv()))["position"] != 4:
            assert status["status"] == "queued", status
    await waiting.close()
    for http in jars:
        await http.aclose()


async def test_kill_9_of_a_pages_node_starts_its_visitors_absence_within_the_ttl(nodes) -> None:
    """A waiting page is watched on its node's replica, which reports it to the room; when
    that node dies, the room stops counting the page within the presence TTL, and the
    visitor's absence (QUEUE_TIMEOUT) starts then, not from their last visit."""
    env = {
        **ENV,
        "WAITING_ROOM_PRESENCE_INTERVAL": "0.5",
        "WAITING_ROOM_PRESENCE_TTL": "2",
        "WAITING_ROOM_QUEUE_TIMEOUT": "30",
    }
    cluster = nodes(3, env=env, suite=True)
    room = (await create(cluster[0], **ROOM_OF_ONE))["room"]
    owner = next(n for n in cluster if any(i.startswith("waiting_room:") for i in live_ids(n)))
    holder = next(n for n in cluster if n is not owner)
    taker, waiting = httpx.AsyncClient(timeout=30), httpx.AsyncClient(timeout=30)
    url, api = f"/waiting-room/r/{room}/", f"{owner.http}/waiting-room/api/rooms/{room}"
    assert (await taker.get(owner.http + url, headers=JSON)).json()["status"] == "admitted"
    joined = time.monotonic()
    assert (await waiting.get(owner.http + url, headers=JSON)).json()["status"] == "queued"
    page = await connect(
        f"{holder.ws}/waiting-room/r/{room}/ws",
        additional_headers={"Cookie": f"{cookie_name(room)}={waiting.cookies[cookie_name(room)]}"},
    )
    assert json.loads(await page.recv())["position"] == 1
    await asyncio.sleep(3)  # (reported: the page keeps the place past the last visit's 30 s)
    holder.kill()  # kill -9 of the page's node: no close, no last report
    killed = time.monotonic()
    await asyncio.sleep(max(0.0, joined + 32 - time.monotonic()))
    assert (await taker.get(api)).json()["queued"] == 1  # (30 s after the visit: still in line)
    while (await taker.get(api)).json()["queued"] == 1:
        # absence from the kill (give or take the TTL), not from the visit
        assert time.monotonic() < killed + 2 + 30 + 4, "the dead node's page kept the place"
        await asyncio.sleep(0.25)
    assert time.monotonic() >= killed + 30 - 0.5
    for http in (taker, waiting):
        await http.aclose()
