"""The poll example (examples/poll.py) on one node, over real sockets: create, live counts on
two viewers, bad input refused with nothing changed, and the alarm that closes it."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from examples.poll import app as poll_app

GOOD = {"question": "Tea or coffee?", "option": ["tea", "coffee"], "seconds": "2"}
BAD = [  # each refused with a 400 that states the limits
    {},
    {**GOOD, "question": ""},
    {**GOOD, "question": "q" * 201},
    {**GOOD, "option": ["tea"]},
    {**GOOD, "option": [f"o{i}" for i in range(11)]},
    {**GOOD, "option": ["tea", "tea"]},
    {**GOOD, "option": ["tea", ""]},
    {**GOOD, "option": ["tea", "x" * 201]},
    {**GOOD, "seconds": "0"},
    {**GOOD, "seconds": "604801"},
    {**GOOD, "seconds": "1.5"},
    {**GOOD, "seconds": "-3"},
    {**GOOD, "seconds": "soon"},
    {**GOOD, "seconds": "0000006048010"},  # leading zeros do not hide a number too big
    {**GOOD, "seconds": "9" * 5000},
    {**GOOD, "seconds": "\u00b2"},  # a digit to str.isdigit, not to int()
]


async def recv(ws: ClientConnection) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return data


def stored(sync_redis: Any, suffix: str) -> list[bytes]:
    """The poll objects' keys of one kind in Valkey (d: data, a: alarm), on every shard."""
    return list(sync_redis.scan_iter(match=f"do:{{poll:*}}:{suffix}"))


async def test_a_poll_counts_live_refuses_bad_input_and_closes_once(serve, sync_redis) -> None:
    server = await serve(apps=(poll_app,))
    async with httpx.AsyncClient(base_url=server.http) as client:
        page = await client.get("/poll/")
        assert page.status_code == 200 and 'content="/poll/"' in page.text  # the app base
        assert (await client.get("/poll/static/poll.js")).status_code == 200

        for query in BAD:
            refused = await client.post("/poll/", params=query)
            assert refused.status_code == 400, query
            assert "2-10 distinct" in refused.json()["error"]
        assert stored(sync_redis, "d") == [] and stored(sync_redis, "a") == []  # nothing kept

        created = await client.post("/poll/", params=GOOD)
        assert created.status_code == 201
        poll_id = created.json()["id"]
        started = time.monotonic()
    assert len(stored(sync_redis, "d")) == 1 and len(stored(sync_redis, "a")) == 1

    a = await connect(f"{server.ws}/poll/{poll_id}")
    b = await connect(f"{server.ws}/poll/{poll_id}")
    fresh = {"question": "Tea or coffee?", "votes": {"tea": 0, "coffee": 0}}
    assert await recv(a) == fresh and await recv(b) == fresh

    await a.send("tea")  # a vote: both viewers see the new count
    one = {**fresh, "votes": {"tea": 1, "coffee": 0}}
    assert await recv(a) == one and await recv(b) == one

    await a.send("coffee")  # a second vote on the same socket
    assert await recv(a) == {"error": "voted already"}
    garbage: list[str | bytes] = ["milk", "", "TEA", b"tea", "x" * 10_000]
    for message in garbage:
        await b.send(message)
        assert await recv(b) == {"error": "no such option"}
    c = await connect(f"{server.ws}/poll/{poll_id}")
    assert await recv(c) == one  # the refused votes changed nothing

    await b.send("coffee")
    two = {**fresh, "votes": {"tea": 1, "coffee": 1}}
    assert await recv(a) == two and await recv(b) == two and await recv(c) == two

    # The alarm closes the poll at its closing time, once, and tells every viewer.
    closed = {**two, "closed": 1}
    assert await recv(a) == closed and await recv(b) == closed and await recv(c) == closed
    assert time.monotonic() - started >= 1.5  # not before it was due
    await c.send("tea")
    assert await recv(c) == {"error": "poll closed"}
    late = await connect(f"{server.ws}/poll/{poll_id}")
    assert await recv(late) == closed
    await late.send("tea")
    assert await recv(late) == {"error": "poll closed"}
    await asyncio.sleep(0.5)  # no second close arrives
    late_again = await connect(f"{server.ws}/poll/{poll_id}")
    assert await recv(late_again) == closed
    assert stored(sync_redis, "a") == []  # the alarm is gone with its effect
    for ws in (a, b, c, late, late_again):
        await ws.close()


@pytest.mark.parametrize("poll_id", ["nope", "0" * 64, "f" * 63 + "g"])
async def test_a_socket_for_a_poll_this_app_did_not_make_is_refused(serve, poll_id) -> None:
    server = await serve(apps=(poll_app,))
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{server.ws}/poll/{poll_id}")
    assert refused.value.response.status_code == 400
