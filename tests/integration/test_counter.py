"""The tutorial's counter (examples/counter.py), step by step, over real sockets."""

from __future__ import annotations

import asyncio

import httpx
from websockets.asyncio.client import connect

from examples.counter import app as counter_app


async def test_rpc_http_websockets_and_alarm(serve) -> None:
    server = await serve(apps=(counter_app,))
    ns = server.node.namespace("counter")
    stub = ns.get_by_name("tutorial")
    results = await asyncio.gather(*(stub.increment() for _ in range(100)))
    assert sorted(results) == list(range(1, 101))  # step 1: the gate makes get+put safe

    async with httpx.AsyncClient(base_url=server.http) as client:  # step 2
        assert (await client.post("/counter/tutorial")).json()["value"] == 101
        assert (await client.get("/counter/tutorial")).json()["value"] == 101

    a = await connect(f"{server.ws}/counter/tutorial/ws")  # step 4
    b = await connect(f"{server.ws}/counter/tutorial/ws")
    assert await a.recv() == "101" and await b.recv() == "101"
    await a.send("+1")
    assert await a.recv() == "102" and await b.recv() == "102"
    await b.send("-1")
    assert await b.recv() == 'error: send "+1"'

    await stub.reset_in(0.2)  # step 5
    assert await asyncio.wait_for(a.recv(), 5) == "0"
    assert await b.recv() == "0"
    assert await stub.value() == 0
    await a.close()
    await b.close()
