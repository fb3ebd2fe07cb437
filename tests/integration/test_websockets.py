"""Client WebSockets handed to objects, over real sockets: gates, closes, hibernation."""

from __future__ import annotations

import asyncio

import pytest
import redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from runtime.storage.keyspace import ObjectKeys
from tests.support.objects import CONSTRUCTED


async def open_socket(server, name: str, query: str = "", **kwargs):
    ws = await connect(f"{server.ws}/probe/{name}/ws{query}", open_timeout=10, **kwargs)
    assert await ws.recv() == "welcome"
    return ws


async def test_text_and_binary_frames_attachments_and_broadcast(serve) -> None:
    server = await serve()
    a = await open_socket(server, "room", "?user=ann")
    b = await open_socket(server, "room", "?user=bob")
    await a.send("incr")
    assert await a.recv() == "value:1"
    await b.send(b"\x00\xffraw")
    assert await b.recv() == b"bin:\x00\xffraw"
    await a.send("who")
    assert await a.recv() == "user:ann"
    await b.send("broadcast:hi")
    assert await a.recv() == "all:hi"
    assert await b.recv() == "all:hi"
    await a.close()
    await b.close()


async def test_tags_and_attachment_limit(serve) -> None:
    server = await serve()
    red = [await open_socket(server, "tags", "?tag=red") for _ in range(2)]
    blue = await open_socket(server, "tags", "?tag=blue")
    await blue.send("count:red")
    assert await blue.recv() == "count:2"
    await blue.send("count:")
    assert await blue.recv() == "count:3"
    await red[0].send("attach:16000")
    assert await red[0].recv() == "attached"
    await red[0].send("attach:17000")
    reply = await red[0].recv()
    assert reply.startswith("error:") and "16384" in reply
    await red[0].send("who")
    assert await red[0].recv() == "user:" + "x" * 16000  # the failed set changed nothing
    for ws in [*red, blue]:
        await ws.close()


async def test_close_codes_both_ways(serve, sync_redis: redis.Redis) -> None:
    server = await serve()
    ws = await open_socket(server, "closing")
    await ws.send("close")
    with pytest.raises(ConnectionClosed) as info:
        await ws.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 4000
    assert info.value.rcvd.reason == "bye"

    ws = await open_socket(server, "closing")
    await ws.close(4321, "client leaves")
    stub = server.node.namespace("probe").get_by_name("closing")
    for _ in range(50):
        closes = await stub.get("closes")
        if closes:
            break
        await asyncio.sleep(0.05)
    assert closes == [[4321, "client leaves"]]  # the server-initiated close is not an event


async def test_refused_handshake_and_failing_handler(serve) -> None:
    server = await serve()
    with pytest.raises(InvalidStatus) as info:
        await connect(f"{server.ws}/probe/refuse/ws?refuse=1", open_timeout=5)
    assert info.value.response.status_code == 403
    ws = await open_socket(server, "raising")
    await ws.send("raise")
    await ws.send("incr")
    assert await ws.recv() == "value:1"  # the socket survived the handler's exception
    await ws.close()


async def test_origin_is_checked(serve) -> None:
    server = await serve()
    with pytest.raises(InvalidStatus) as info:
        await connect(f"{server.ws}/probe/o/ws", origin="http://evil.example", open_timeout=5)
    assert info.value.response.status_code == 403
    same = f"http://127.0.0.1:{server.port}"
    ws = await connect(f"{server.ws}/probe/o/ws", origin=same, open_timeout=5)
    assert await ws.recv() == "welcome"
    await ws.close()
    ws = await connect(f"{server.ws}/probe/o/ws", open_timeout=5)  # no Origin: not a browser
    assert await ws.recv() == "welcome"
    await ws.close()


async def test_allowed_origins_are_configurable(serve) -> None:
    server = await serve(allowed_origins=("https://app.example",))
    ws = await connect(f"{server.ws}/probe/o/ws", origin="https://app.example", open_timeout=5)
    assert await ws.recv() == "welcome"
    await ws.close()


async def test_oversized_frames_close_the_socket_and_nothing_else(serve) -> None:
    server = await serve(max_frame_bytes=64 * 1024)
    big = await open_socket(server, "big", max_size=None)
    other = await open_socket(server, "big")
    await big.send("x" * (64 * 1024 + 1))
    with pytest.raises(ConnectionClosed) as info:
        await big.recv()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    await other.send("incr")
    assert await other.recv() == "value:1"
    await other.close()


async def test_output_gate_drops_messages_of_a_failed_commit(
    serve, sync_redis: redis.Redis
) -> None:
    # a long lease so the renewer does not notice the takeover before the commit does
    server = await serve(lease_ttl=30.0, activation_timeout=0.5)
    ws = await open_socket(server, "gated")
    await ws.send("incr")
    assert await ws.recv() == "value:1"
    object_id = server.node.namespace("probe").id_from_name("gated")
    keys = ObjectKeys.of("do", "probe", object_id.hex)
    sync_redis.set(keys.lease, "thief@0000:99", px=60_000)
    await ws.send("incr")  # puts value 2 and sends "value:2": the commit is fenced
    with pytest.raises(ConnectionClosed) as info:
        while True:
            message = await ws.recv()
            assert message != "value:2", "a message of a failed commit reached the client"
    assert info.value.rcvd is not None and info.value.rcvd.code == 1011
    sync_redis.delete(keys.lease)  # the thief goes away
    again = await open_socket(server, "gated")
    await again.send("get")
    assert await again.recv() == "value:1"  # the state Redis holds
    await again.close()


async def test_a_thousand_idle_sockets_hibernate_and_wake_with_state(
    serve, sync_redis: redis.Redis
) -> None:
    server = await serve(hibernate_after=2.0, sweep_interval=0.2)
    node = server.node
    count = 1000
    sockets = []
    for start in range(0, count, 100):
        batch = await asyncio.gather(
            *(open_socket(server, f"h{i}", f"?user=u{i}") for i in range(start, start + 100))
        )
        sockets.extend(batch)

    async def ask(ws, message: str) -> str:
        await ws.send(message)
        return await ws.recv()

    async def ask_all(message: str) -> list[str]:
        return await asyncio.gather(*(ask(ws, message) for ws in sockets))

    assert await ask_all("incr") == ["value:1"] * count
    await ask_all("memory")
    assert await ask_all("memory") == ["memory:2"] * count  # all instances stayed in memory
    ids = [node.namespace("probe").id_from_name(f"h{i}").hex for i in range(count)]
    constructed = [CONSTRUCTED[h] for h in ids]
    hibernated = node.stats.hibernations
    assert node.live_objects == count
    for _ in range(100):
        await asyncio.sleep(0.1)
        if node.live_objects == 0:
            break
    assert node.live_objects == 0  # every instance left memory...
    assert len(node.records) == count  # ...while its record (lease, sockets) stayed
    assert node.stats.hibernations - hibernated == count
    assert await ask_all("get") == ["value:1"] * count  # state intact
    assert await ask_all("who") == [f"user:u{i}" for i in range(count)]  # attachments intact
    assert await ask_all("memory") == ["memory:1"] * count  # new instances
    assert [CONSTRUCTED[h] for h in ids] == [c + 1 for c in constructed]
    await asyncio.gather(*(ws.close() for ws in sockets))


async def test_a_class_can_hibernate_later_than_the_node_default(serve) -> None:
    """``hibernate_after`` on the class overrides the node's setting for its instances."""
    from dataclasses import replace

    from tests.support.objects import Probe
    from tests.support.objects import app as probe_app

    sticky = type("StickyProbe", (Probe,), {"hibernate_after": 30.0})
    server = await serve(
        apps=(replace(probe_app, objects={"probe": sticky}),),
        hibernate_after=0.2,
        sweep_interval=0.1,
    )
    ws = await open_socket(server, "sticky")
    await ws.send("memory")
    assert await ws.recv() == "memory:1"
    before = server.node.stats.hibernations
    await asyncio.sleep(1.0)  # five times the node's hibernate_after
    assert server.node.live_objects == 1
    assert server.node.stats.hibernations == before
    await ws.send("memory")
    assert await ws.recv() == "memory:2"  # the same instance: never hibernated
    await ws.close()
