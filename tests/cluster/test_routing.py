"""Any node answers for any object; one instance per ID; WebSockets tunnelled between nodes."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.cluster.conftest import live_ids


async def test_any_node_answers_and_each_object_lives_once(nodes) -> None:
    cluster = nodes(3)
    names = [f"obj{i}" for i in range(12)]
    samples: list[list[str]] = []
    stop = asyncio.Event()

    async def sample() -> None:
        while not stop.is_set():
            samples.append([oid for n in cluster for oid in await asyncio.to_thread(live_ids, n)])
            await asyncio.sleep(0.02)

    async def hit(client: httpx.AsyncClient, name: str, times: int) -> list[int]:
        out = []
        for _ in range(times):
            node = random.choice(cluster)
            r = await client.post(f"{node.http}/probe/{name}/incr", timeout=10)
            assert r.status_code == 200, r.text
            out.append(r.json()["value"])
        return out

    sampler = asyncio.create_task(sample())
    async with httpx.AsyncClient() as client:
        results = await asyncio.gather(*(hit(client, n, 10) for n in names for _ in range(3)))
        stop.set()
        await sampler
        for name in names:
            values = await asyncio.gather(
                *(client.get(f"{n.http}/probe/{name}/value") for n in cluster)
            )
            assert {v.json()["value"] for v in values} == {30}  # the same from every node
    flat = sorted(v for r in results[:3] for v in r)
    assert flat == list(range(1, 31))  # obj0's 30 increments: no value twice, none lost
    assert len(samples) >= 3
    for sample_ids in samples:
        counts = Counter(sample_ids)
        assert all(c == 1 for c in counts.values()), counts  # never two live instances
    hosts = {oid.split(":")[1]: n.node_id for n in cluster for oid in live_ids(n)}
    assert len(set(hosts.values())) >= 2  # placement spread objects over the nodes


async def test_a_socket_tunnelled_to_the_owner(nodes) -> None:
    first, second = nodes(2)
    async with httpx.AsyncClient() as client:  # the object lives on the second node
        assert (await client.post(f"{second.http}/probe/tunnel/incr")).json() == {"value": 1}
    assert any(i.startswith("probe:") for i in live_ids(second))
    ws = await connect(f"{first.ws}/probe/tunnel/ws?user=ada")
    assert await ws.recv() == "welcome"
    for i in range(20):  # text and binary, both ways, in order
        await ws.send(f"incr:{i}")
        await ws.send(bytes([i, 255 - i]))
    for i in range(20):
        assert await ws.recv() == f"value:{i + 2}"
        assert await ws.recv() == b"bin:" + bytes([i, 255 - i])
    await ws.send("who")
    assert await ws.recv() == "user:ada"
    assert not any(i.startswith("probe:") for i in live_ids(first))  # never activated there
    await ws.send("close")  # the object closes: the client sees its code and reason
    with pytest.raises(ConnectionClosed) as info:
        await ws.recv()
    assert info.value.rcvd is not None
    assert (info.value.rcvd.code, info.value.rcvd.reason) == (4000, "bye")

    ws = await connect(f"{first.ws}/probe/tunnel/ws")
    assert await ws.recv() == "welcome"
    await ws.close(4321, "client leaves")  # the client closes: the object sees the same
    async with httpx.AsyncClient() as client:
        for _ in range(50):
            closes = (await client.get(f"{second.http}/probe/tunnel/get/closes")).json()["value"]
            if closes:
                break
            await asyncio.sleep(0.05)
    assert closes == [[4321, "client leaves"]]


@pytest.mark.parametrize("command", ["flood", "stored-flood"])
async def test_a_tunnelled_client_that_reads_gets_a_big_release(nodes, command) -> None:
    # 2.5 MiB at once, to a client reading through another node's tunnel with a 1 MiB limit:
    # the link's backlog is compared to the client's limit, so what the cork holds for the
    # link must stay small (it hands big releases over in pieces).
    first, second = nodes(2, env={"MAX_SEND_BUFFER_BYTES": str(1024 * 1024)})
    async with httpx.AsyncClient() as client:  # the object lives on the second node
        assert (await client.post(f"{second.http}/probe/tun/incr")).json() == {"value": 1}
    ws = await connect(f"{first.ws}/probe/tun/ws", max_size=None)
    assert await ws.recv() == "welcome"
    await ws.send(f"{command}:40")
    frames = [await asyncio.wait_for(ws.recv(), 5) for _ in range(40)]
    assert all(len(frame) == 65536 for frame in frames)
    await ws.close()
