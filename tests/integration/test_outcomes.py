"""Errors say whether the event may have run, and a node that cannot renew fences itself.

"Not run" (``may_have_run`` False, ``X-Outcome: not-run``) is only said when nothing of the
event can have lasted: each test here checks Redis afterwards for the proof.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from runtime import DurableObjectError, Node, Settings
from runtime.storage.embedded import ValkeyProcess, free_port
from runtime.storage.keyspace import ObjectKeys
from tests.conftest import TEST_SETTINGS
from tests.nemesis.proxy import Proxy
from tests.support.objects import Probe
from tests.support.objects import app as probe_app
from tests.support.servers import LocalServer


async def a_node(url: str, **overrides: object) -> Node:
    node = Node(Settings(**{**TEST_SETTINGS, **overrides}), url)
    node.register("probe", Probe)
    await node.start()
    return node


async def test_a_commit_redis_refused_is_not_run(tmp_path: Path) -> None:
    server = ValkeyProcess(tmp_path / "v", appendfsync="always").start()
    node = await a_node(server.url, lease_ttl=30.0)
    try:
        stub = node.namespace("probe").get_by_name("refused")
        assert await stub.increment() == 1  # live, with its value cached
        server.stop()  # a clean stop: the next connection is refused, nothing is sent
        with pytest.raises(DurableObjectError) as info:
            await stub.increment()  # runs on the cache; its commit cannot be sent
        assert info.value.retryable and info.value.may_have_run is False, info.value
        assert info.value.outcome == "not-run"
        server = ValkeyProcess(tmp_path / "v", port=server.port, appendfsync="always").start()
        for _ in range(100):
            try:
                assert await stub.increment() == 2  # the refused one was indeed not stored
                break
            except DurableObjectError:
                await asyncio.sleep(0.1)
        else:
            pytest.fail("never served again")
    finally:
        await node.stop()
        server.stop()


async def test_an_event_that_called_another_object_may_have_run(tmp_path: Path) -> None:
    server = ValkeyProcess(tmp_path / "v", appendfsync="always").start()
    node = await a_node(server.url, lease_ttl=30.0)
    try:
        ns = node.namespace("probe")
        caller = ns.get_by_name("caller")
        await caller.increment()
        await ns.get_by_name("callee").increment()
        server.stop()
        with pytest.raises(DurableObjectError) as info:
            # writes, then calls the other object: whatever failed after, the call happened
            await caller.put_then_call("k", 1, "callee")
        assert info.value.may_have_run is True, info.value
    finally:
        await node.stop()
        server.stop()


async def test_an_event_for_an_object_that_cannot_be_activated_is_not_run(
    tmp_path: Path,
) -> None:
    server = ValkeyProcess(tmp_path / "v", appendfsync="always").start()
    node = await a_node(server.url)
    try:
        server.stop()
        with pytest.raises(DurableObjectError) as info:
            await node.namespace("probe").get_by_name("cold").increment()
        assert info.value.may_have_run is False, info.value
    finally:
        await node.stop()
        server.stop()


async def test_error_answers_carry_x_outcome(tmp_path: Path) -> None:
    server = ValkeyProcess(tmp_path / "v", appendfsync="always").start()
    node = Node(Settings(**{**TEST_SETTINGS, "lease_ttl": 30.0}), server.url)
    web = await LocalServer(node, [probe_app]).start()
    try:
        async with httpx.AsyncClient(base_url=web.http) as client:
            assert (await client.post("/probe/h/incr")).json() == {"value": 1}
            crash = await client.get("/probe/h/crash")
            assert crash.status_code == 500 and crash.headers["x-outcome"] == "unknown"
            server.stop()
            refused = await client.post("/probe/h/incr")
            assert refused.status_code == 503, refused.text
            assert refused.headers["x-error-code"] in ("storage_unavailable", "reset")
            assert refused.headers["x-outcome"] == "not-run"
            assert refused.headers["retry-after"] == "1"
            cold = await client.post("/probe/cold/incr")
            assert cold.status_code == 503 and cold.headers["x-outcome"] == "not-run"
        # A socket's handshake refused for the same reason says the same (a client that is
        # not a browser reads them before trying again).
        with pytest.raises(InvalidStatus) as refused_socket:
            await connect(f"{web.ws}/probe/cold-socket/ws")
        answer = refused_socket.value.response
        assert answer.status_code == 503
        assert answer.headers["X-Outcome"] == "not-run"
        assert answer.headers["X-Error-Code"] in ("storage_unavailable", "reset")
        assert answer.headers["Retry-After"] == "1"
    finally:
        await web.stop()
        server.stop()


async def test_an_owner_that_cannot_renew_gives_its_objects_up_before_the_ttl(
    tmp_path: Path,
) -> None:
    """The node's only path to Valkey is frozen (bytes go nowhere, nothing is reset): at its
    local deadline (before the lease can run out in Redis) it fences itself: sockets close
    with 1012, events get a definite error, and once the path is back it serves again."""
    server = ValkeyProcess(tmp_path / "v", appendfsync="always").start()
    proxy = await asyncio.to_thread(Proxy(free_port(), "127.0.0.1", server.port).start)
    node = Node(Settings(**TEST_SETTINGS), f"redis://127.0.0.1:{proxy.port}/0")
    web = await LocalServer(node, [probe_app]).start()
    direct = redis.Redis(port=server.port)
    try:
        async with httpx.AsyncClient(base_url=web.http) as client:
            assert (await client.post("/probe/f/incr")).json() == {"value": 1}
            ws = await connect(f"{web.ws}/probe/f/ws")
            assert await ws.recv() == "welcome"
            stub = node.namespace("probe").get_by_name("f")
            keys = ObjectKeys.of("do", "probe", stub.id.hex)
            proxy.freeze()
            frozen_at = time.monotonic()
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 5)
            fenced_after = time.monotonic() - frozen_at
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
            assert fenced_after < TEST_SETTINGS["lease_ttl"], fenced_after
            # ...before the lease could run out in Redis: it is still there, ours
            assert direct.pttl(keys.lease) > 0
            assert node.stats.self_fenced >= 1
            assert not node.reaches_store(None)
            refused = await client.post("/probe/f/incr", timeout=10)
            assert refused.status_code == 503
            assert refused.headers["x-outcome"] == "not-run", refused.headers
            proxy.thaw()
            for _ in range(100):
                answer = await client.post("/probe/f/incr", timeout=10)
                if answer.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert answer.json() == {"value": 2}, answer.text  # refused means not stored
    finally:
        direct.close()
        await web.stop()
        proxy.stop()
        server.stop()


async def test_a_healthy_owner_never_fences_itself(tmp_path: Path) -> None:
    server = ValkeyProcess(tmp_path / "v", appendfsync="always").start()
    node = await a_node(server.url, lease_ttl=1.2)
    try:
        stubs = [node.namespace("probe").get_by_name(f"busy{i}") for i in range(50)]
        until = time.monotonic() + 3.5  # several TTLs of renewals under a steady load
        while time.monotonic() < until:
            await asyncio.gather(*(s.increment() for s in stubs))
        assert node.stats.self_fenced == 0 and node.stats.leases_lost == 0
        assert node.reaches_store(None)
    finally:
        await node.stop()
        server.stop()
