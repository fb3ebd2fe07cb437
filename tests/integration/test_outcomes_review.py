"""Gray failures and outcomes, as a review of the first version found them wanting (each
test failed on it).

Each test says what it shows. "Not run" must never be said of an event whose effects may
have lasted; each test checks Redis (or the node's state) for the proof.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect

from runtime import (
    App,
    DurableObject,
    DurableObjectError,
    Node,
    ObjectWebSocket,
    Settings,
    env_of,
    rpc,
)
from runtime.storage.embedded import ValkeyProcess, free_port
from tests.conftest import TEST_SETTINGS
from tests.nemesis.proxy import Proxy
from tests.support.objects import Probe
from tests.support.objects import app as probe_app
from tests.support.servers import LocalServer


class Saver(DurableObject):
    """Writes and waits for the write to be stored (storage.sync(), as the lobby's create
    does), then fails."""

    @rpc
    async def save_then_bad_id(self, value: int) -> None:
        await self.storage.put("saved", value)
        await self.storage.sync()  # stored for good once this returns
        # ...then something raises an error whose class says "not run" by default
        self.env.namespace("saver").id_from_string("not-an-id")

    @rpc
    async def save_and_sync(self, value: int) -> None:
        await self.storage.put("saved", value)
        await self.storage.sync()

    @rpc
    async def saved(self) -> Any:
        return await self.storage.get("saved")

    @rpc
    async def call_blocking_then_bad_id(self, other: str) -> None:
        """Call another object holding the input gate (block_concurrency_while), then fail."""
        stub = self.env.namespace("probe").get_by_name(other)
        await self.ctx.block_concurrency_while(stub.increment)
        self.env.namespace("saver").id_from_string("not-an-id")


async def a_node(url: str, **overrides: object) -> Node:
    node = Node(Settings(**{**TEST_SETTINGS, **overrides}), url)
    node.register("probe", Probe)
    node.register("saver", Saver)
    await node.start()
    return node


async def test_a_write_stored_by_sync_makes_the_event_may_have_run(tmp_path: Path) -> None:
    """record._execute counts an event as having written only if ``event.writes`` is non-empty
    when the handler returns; storage.sync() hands the event's writes to storage and empties
    event.writes. So an event whose write was committed (sync returned) and which then raised
    an error whose class defaults to "not run" (InvalidObjectId here) is reported
    may_have_run False / X-Outcome: not-run, although its write is stored."""
    server = ValkeyProcess(tmp_path / "v", appendfsync="always").start()
    node = await a_node(server.url, lease_ttl=30.0)
    try:
        stub = node.namespace("saver").get_by_name("s")
        with pytest.raises(DurableObjectError) as info:
            await stub.save_then_bad_id(7)
        assert await stub.saved() == 7  # the write is stored...
        assert info.value.may_have_run is True, (  # ...so "not run" would be a lie
            f"{type(info.value).__name__} says {info.value.outcome} but its write was stored"
        )
    finally:
        await node.stop()
        server.stop()


async def test_a_synced_write_whose_commit_got_no_answer_is_unknown(tmp_path: Path) -> None:
    """The same hole under a real fault: the handler writes and calls storage.sync() (as
    apps/lobby/room.py create() does); the commit is sent into a frozen path to Valkey and
    gets no answer (batcher timeout): its outcome is unknown. The runtime answers ObjectReset
    with may_have_run False ("not-run"), because event.writes was emptied by sync(). Once the
    path thaws the commit lands: the event said "not run" did run."""
    server = ValkeyProcess(tmp_path / "v", appendfsync="always").start()
    proxy = await asyncio.to_thread(Proxy(free_port(), "127.0.0.1", server.port).start)
    node = await a_node(f"redis://127.0.0.1:{proxy.port}/0", lease_ttl=30.0)
    try:
        stub = node.namespace("saver").get_by_name("t")
        await stub.save_and_sync(1)
        proxy.freeze()
        try:
            with pytest.raises(DurableObjectError) as info:
                await stub.save_and_sync(2)
        finally:
            proxy.thaw()
        said = info.value
        stored = None
        for _ in range(100):  # the frozen commit goes through once the path thaws
            try:
                stored = await stub.saved()
                if stored == 2:
                    break
            except DurableObjectError:
                pass
            await asyncio.sleep(0.1)
        assert stored == 2, "the test expects the frozen commit to land after the thaw"
        assert said.may_have_run is True, (
            f"{type(said).__name__} ({said}) says {said.outcome}, but the write was stored"
        )
    finally:
        await node.stop()
        proxy.stop()
        server.stop()


async def test_a_record_fenced_while_an_event_confirms_its_lease_gets_no_instance(
    tmp_path: Path,
) -> None:
    """Race of the renewal loop's fence_overdue against an event's confirm_lease. A record
    that hibernated (instance None, lease kept) gets an event after its local deadline:
    _ready() calls confirm_lease (waits up to TTL/4). Meanwhile the renewal loop wakes at the
    deadline and fences the record (gone, forgotten by the node). Then Redis answers the
    renewal: kept. On the instance-None path _ready() does not look at ``self.gone`` after
    confirming (the instance path does), so it builds a new instance on the fenced record
    and runs the event there: an orphan instance outside node.records, unseen by the renewal
    loop, while the next event makes another record (a new epoch) for the same object on the
    same node -- two live instances of one object. (The renewal is held back here by a hook
    on LeaseClient.renew so the interleaving is deterministic; the Redis call is real.)"""
    server = ValkeyProcess(tmp_path / "v", appendfsync="always").start()
    node = await a_node(server.url, lease_ttl=30.0)  # the renewal loop sleeps ~15 s
    try:
        ns = node.namespace("probe")
        stub = ns.get_by_name("race")
        assert await stub.increment() == 1
        record = node.record_of(ns, stub.id)
        assert record is not None and record.hibernate()  # instance dropped, lease kept
        record.lease.deadline = time.monotonic() - 0.01  # its local deadline just passed

        leases = record.store.leases
        real_renew = leases.renew
        entered, go = asyncio.Event(), asyncio.Event()

        async def held_renew(keys: Any, lease: Any) -> bool:
            entered.set()
            await go.wait()
            return await real_renew(keys, lease)

        leases.renew = held_renew  # type: ignore[method-assign]
        event = asyncio.ensure_future(stub.value())
        await asyncio.wait_for(entered.wait(), 5)  # the event is in confirm_lease
        node.fence_overdue()  # the renewal loop's tick at the deadline
        assert record.gone and node.stats.self_fenced == 1
        go.set()
        try:  # served elsewhere (here, after a new activation), or refused as not run
            assert await asyncio.wait_for(event, 10) == 1
        except DurableObjectError as exc:
            assert exc.may_have_run is False, exc
        leases.renew = real_renew  # type: ignore[method-assign]
        assert record.instance is None, (
            "a record the node fenced (gone, not in node.records) was given a live instance "
            "and served the event"
        )
    finally:
        await node.stop()
        server.stop()


async def test_an_event_reading_on_an_owner_cut_off_from_valkey_fails_within_the_lease(
    tmp_path: Path,
) -> None:
    """An owner whose path to Valkey is frozen fences the object at its local deadline
    (TTL - margin = 1.75 s), but an event already waiting on a storage read is not told: the
    read's round trip waits for the batcher's own 5 s timeout (scripts.ScriptBatcher.timeout,
    unrelated to the lease). So the event -- and a peer that forwarded it, whose link to this
    live node keeps answering pings -- waits ~5 s, 2.5 TTLs, on an owner that gave the object
    up at 1.75 s (issue 20: "a node never waits on an owner longer than the lease lets that
    owner live")."""
    server = ValkeyProcess(tmp_path / "v", appendfsync="always").start()
    proxy = await asyncio.to_thread(Proxy(free_port(), "127.0.0.1", server.port).start)
    node = await a_node(f"redis://127.0.0.1:{proxy.port}/0")  # LEASE_TTL 2 s
    try:
        stub = node.namespace("probe").get_by_name("reader")
        assert await stub.increment() == 1
        proxy.freeze()
        frozen_at = time.monotonic()
        try:
            with pytest.raises(DurableObjectError):
                await stub.get("never-read-before")  # not cached: a read script call
            failed_after = time.monotonic() - frozen_at
        finally:
            proxy.thaw()
        assert node.stats.self_fenced >= 1  # the object was given up meanwhile...
        ttl = TEST_SETTINGS["lease_ttl"]
        assert failed_after < ttl + 0.5, (  # ...but the event went on waiting
            f"the event waited {failed_after:.1f}s on a node that cannot reach Redis "
            f"(LEASE_TTL {ttl}s)"
        )
    finally:
        await node.stop()
        proxy.stop()
        server.stop()


async def test_an_event_that_called_another_object_holding_its_gate_may_have_run(
    tmp_path: Path,
) -> None:
    """gate.outbound() marks an event ``opened`` (it called another object) only when the
    call is not made inside block_concurrency_while (``_blocking``); so an event that called
    another object that way, and then failed with an error whose class says "not run", is
    reported may_have_run False although the other object's increment happened."""
    server = ValkeyProcess(tmp_path / "v", appendfsync="always").start()
    node = await a_node(server.url, lease_ttl=30.0)
    try:
        callee = node.namespace("probe").get_by_name("callee")
        with pytest.raises(DurableObjectError) as info:
            await node.namespace("saver").get_by_name("c").call_blocking_then_bad_id("callee")
        assert await callee.value() == 1  # the call was made and its write stored
        assert info.value.may_have_run is True, (
            f"{type(info.value).__name__} says {info.value.outcome}, but the event called "
            "another object"
        )
    finally:
        await node.stop()
        server.stop()


class Talker(DurableObject):
    """Sockets, a write, and an event that speaks to its sockets and then fails."""

    async def websocket_connect(self, ws: ObjectWebSocket) -> None:
        self.accept_websocket(ws)
        ws.send("welcome")

    @rpc
    async def write(self, value: int) -> None:
        await self.storage.put("v", value)

    @rpc
    async def shout_then_bad_id(self) -> None:
        for ws in self.get_websockets():
            ws.send("shout")  # held by the output gate behind the commit in flight
        self.env.namespace("talker").id_from_string("not-an-id")


async def _talker_socket(websocket: WebSocket) -> None:
    ns = env_of(websocket).namespace("talker")
    await ns.get_by_name(websocket.path_params["name"]).connect(websocket)


talker_app = App(
    name="talker",
    title="Talker",
    objects={"talker": Talker},
    routes=[WebSocketRoute("/{name}/ws", _talker_socket)],
    listed=False,
)


async def test_an_event_whose_socket_message_was_released_may_have_run(
    tmp_path: Path,
) -> None:
    """record._execute counts an event's socket messages as an effect ("touched") only when
    they go out at once (nothing uncommitted). When another event's commit is in flight, the
    messages are held for that batch and released when it commits -- but the event is then
    judged by its own writes only (none), so if it raised an error whose class says "not
    run", the caller hears "not-run" while its message has reached the clients."""
    server = ValkeyProcess(tmp_path / "v", appendfsync="always").start()
    node = Node(Settings(**{**TEST_SETTINGS, "lease_ttl": 30.0}), server.url)
    web = await LocalServer(node, [talker_app]).start()
    direct = redis.Redis(port=server.port)
    try:
        stub = node.namespace("talker").get_by_name("t")
        await stub.write(0)
        async with connect(f"{web.ws}/talker/t/ws") as ws:
            assert await ws.recv() == "welcome"
            # Valkey holds write commands (commit.lua) for 0.7 s
            direct.execute_command("CLIENT", "PAUSE", 700, "WRITE")  # type: ignore[no-untyped-call]
            writer = asyncio.ensure_future(stub.write(1))  # its commit is now in flight
            await asyncio.sleep(0.2)
            with pytest.raises(DurableObjectError) as info:
                await stub.shout_then_bad_id()
            await writer
            assert await asyncio.wait_for(ws.recv(), 5) == "shout"  # released to the client
        assert info.value.may_have_run is True, (
            f"{type(info.value).__name__} says {info.value.outcome}, but its socket message "
            "was released"
        )
    finally:
        direct.close()
        await web.stop()
        server.stop()


async def test_one_lease_near_its_deadline_does_not_cut_the_others_renewal_short(
    tmp_path: Path,
) -> None:
    """renew_leases bounds a whole round by the *earliest* local deadline among its leases
    (at least the margin, 0.25 s), and on a timeout drops every result and marks the store
    unreachable. So one lease near its deadline (acquired slowly under load, or whose own
    renewal failed last round) leaves every other lease of the node 0.25 s for its renewal,
    not the TTL/2 - margin (0.75 s) docs/operations.md promises: a Redis answering in 0.5 s
    renews them all, yet the node discards the answers, counts Redis as out of reach (takes
    no objects, sends its clients' events away) and -- with the default TTL -- fences the
    healthy leases at their deadlines before the next round."""
    server = ValkeyProcess(tmp_path / "v", appendfsync="always").start()
    node = await a_node(server.url, lease_ttl=30.0)  # the loop sleeps; we run one round
    direct = redis.Redis(port=server.port)
    try:
        ns = node.namespace("probe")
        near, healthy = ns.get_by_name("near"), ns.get_by_name("healthy")
        await near.increment()
        await healthy.increment()
        near_record = node.record_of(ns, near.id)
        healthy_record = node.record_of(ns, healthy.id)
        assert near_record is not None and healthy_record is not None
        near_record.lease.deadline = time.monotonic() + 0.05  # about to run out locally
        before = healthy_record.lease.deadline
        # Valkey answers writes (the renewals) after 0.5 s: slow, not gone
        direct.execute_command("CLIENT", "PAUSE", 500, "WRITE")  # type: ignore[no-untyped-call]
        await node.renew_leases()
        await asyncio.sleep(0.6)
        assert direct.pttl(healthy_record.keys.lease) > 29_000  # Redis did renew it
        assert node.reaches_store(None), "a Redis that answered in 0.5 s counted as unreachable"
        assert healthy_record.lease.deadline > before, "the healthy lease's renewal was dropped"
    finally:
        direct.close()
        await node.stop()
        server.stop()


async def test_a_node_holding_no_lease_notices_it_lost_valkey(tmp_path: Path) -> None:
    """store.reachable is set False only by a renewal round that had leases to renew (and a
    store already unreachable is pinged); a store that is reachable and has no leases on this
    node is never probed. So a node that holds no object when its path to Valkey is cut
    never learns it: it keeps taking objects, each of its clients' events waits for the
    batcher's 5 s timeout on acquire.lua and fails, instead of going to another node
    (architecture.md: "While it is, the node takes no object of that store: it sends its own
    clients' events to another live node")."""
    server = ValkeyProcess(tmp_path / "v", appendfsync="always").start()
    proxy = await asyncio.to_thread(Proxy(free_port(), "127.0.0.1", server.port).start)
    node = await a_node(f"redis://127.0.0.1:{proxy.port}/0")  # LEASE_TTL 2 s, no object yet
    try:
        proxy.freeze()
        try:
            await asyncio.sleep(TEST_SETTINGS["lease_ttl"] + 1.0)  # a renewal round or two
            assert not node.reaches_store(None), (
                "a node with no lease still believes it reaches Valkey after a frozen path"
            )
        finally:
            proxy.thaw()
    finally:
        await node.stop()
        proxy.stop()
        server.stop()


async def test_every_error_response_says_x_outcome(tmp_path: Path) -> None:
    """Issue 20: "add a header X-Outcome: not-run or X-Outcome: unknown on every error
    response". The runtime's own refusals before anything ran -- a cross-site POST refused
    by guards.SameSite (403), a path that is not UTF-8 (400) -- carry none (only 5xx get a
    default), so a client cannot tell them from an unknown outcome (the nemesis workload
    counts such an answer as "info")."""
    server = ValkeyProcess(tmp_path / "v", appendfsync="always").start()
    node = Node(Settings(**TEST_SETTINGS), server.url)
    web = await LocalServer(node, [probe_app]).start()
    try:
        async with httpx.AsyncClient(base_url=web.http) as client:
            refused = await client.post("/probe/x/incr", headers={"Origin": "https://evil.example"})
            assert refused.status_code == 403
            assert refused.headers.get("x-outcome") == "not-run", dict(refused.headers)
    finally:
        await web.stop()
        server.stop()


async def test_an_apps_own_refusals_say_not_run(serve) -> None:
    """Issue 20 wants X-Outcome on every error response, the apps' own included: a 4xx an
    app answers without one is a refusal (nothing ran), so the node adds ``not-run``."""
    from apps.chat import make_app as chat_app

    server = await serve(apps=(chat_app(), probe_app))
    async with httpx.AsyncClient(base_url=server.http) as client:
        long_name = await client.get("/chat/api/room/" + "x" * 200 + "/websocket")
        assert long_name.status_code == 404
        assert long_name.headers.get("x-outcome") == "not-run", dict(long_name.headers)
        no_socket = await client.get("/chat/api/room/lobby/websocket")
        assert no_socket.status_code == 400
        assert no_socket.headers.get("x-outcome") == "not-run"
        unknown_path = await client.get("/chat/api/nothing-here")
        assert unknown_path.status_code == 404
        assert unknown_path.headers.get("x-outcome") == "not-run"
        ok = await client.get("/chat/")
        assert ok.status_code == 200 and "x-outcome" not in ok.headers
