"""The live tail on one node: what an operator following an object, a namespace or the node
sees (events with their outcome and duration, errors, log lines), what they never see (a
whole ID), who may follow, and that nothing is kept once nobody follows."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from runtime.web.tail import Follower, Interest, TailHub
from tests.support.servers import LocalServer


class Tail:
    """A follower over a real HTTP stream, its lines gathered as they come."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.status = 0

    async def until(self, found: Callable[[list[dict[str, Any]]], bool], timeout: float = 10):
        async with asyncio.timeout(timeout):
            while not found(self.lines):
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def tail(server: LocalServer, headers: dict[str, str] | None = None, **params: str):
    follower = Tail()
    ready = asyncio.Event()

    async def read() -> None:
        async with (
            httpx.AsyncClient(base_url=server.http, timeout=30) as client,
            client.stream("GET", "/ops/api/tail", params=params, headers=headers) as answer,
        ):
            follower.status = answer.status_code
            ready.set()
            async for text in answer.aiter_lines():
                if text:
                    follower.lines.append(json.loads(text))
                    follower.changed.set()

    task = asyncio.create_task(read())
    await asyncio.wait_for(ready.wait(), 10)
    if follower.status == 200:  # following once the node says so
        await follower.until(lambda lines: any(line["type"] == "status" for line in lines))
    try:
        yield follower
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
            await task


def events(lines: list[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [
        line
        for line in lines
        if line["type"] == "event" and all(line.get(k) == v for k, v in match.items())
    ]


async def test_following_one_object_shows_its_events_errors_and_logs_and_no_whole_id(
    serve,
) -> None:
    server = await serve()
    probe = server.node.namespace("probe")
    watched = probe.id_from_name("watched").hex
    async with (
        tail(server, namespace="probe", name="watched") as follower,
        httpx.AsyncClient(base_url=server.http) as client,
    ):
        assert follower.lines[0] == {
            "type": "status",
            "node": "test-node",
            "state": "following",
            "namespace": "probe",
            "object": watched[:12],
        }
        await client.post("/probe/other/incr")  # another object: not shown
        await client.post("/probe/watched/incr")
        ws = await connect(f"{server.ws}/probe/watched/ws")
        assert await ws.recv() == "welcome"
        await ws.send("raise")  # the handler raises: an error, and the node's log line
        await ws.send("get")
        assert await ws.recv() == "value:1"
        await ws.close()
        await follower.until(lambda lines: len(events(lines, kind="close")) == 1)
        await follower.until(lambda lines: any(line["type"] == "log" for line in lines))
    [rpc] = events(follower.lines, kind="rpc")
    assert rpc["namespace"] == "probe" and rpc["object"] == watched[:12]
    assert rpc["outcome"] == "ok" and rpc["node"] == "test-node" and rpc["ms"] >= 0
    assert [e["kind"] for e in events(follower.lines)] == [
        "rpc",
        "connect",
        "message",
        "message",
        "close",
    ]
    [failed] = events(follower.lines, outcome="error")
    assert failed["kind"] == "message"
    assert failed["error"] == "RuntimeError: handler failed on purpose"
    [logged] = [line for line in follower.lines if line["type"] == "log"]
    assert logged["level"] == "ERROR" and logged["object"] == watched[:12]
    assert "socket handler of probe:" in logged["message"]
    assert all(line.get("object") in (None, watched[:12]) for line in follower.lines)
    text = json.dumps(follower.lines)
    assert watched not in text  # only ever its first 12 characters
    assert probe.id_from_name("other").hex[:12] not in text
    for _ in range(50):  # the last follower gone, the node keeps nothing for tails
        if server.node.stats.tap is None:
            break
        await asyncio.sleep(0.1)
    assert server.node.stats.tap is None


async def test_a_namespace_or_everything_and_an_id_as_the_object_name(serve) -> None:
    server = await serve()
    probe = server.node.namespace("probe")
    some = probe.id_from_name("some").hex
    async with (
        tail(server) as everything,
        tail(server, namespace="probe") as namespace,
        tail(server, namespace="probe", id=some) as one,
        httpx.AsyncClient(base_url=server.http) as client,
    ):
        for name in ("some", "thing"):
            await client.post(f"/probe/{name}/incr")
        await namespace.until(lambda lines: len(events(lines)) == 2)
        await one.until(lambda lines: len(events(lines)) == 1)
        await everything.until(lambda lines: len(events(lines)) == 2)
    assert events(one.lines)[0]["object"] == some[:12]


async def test_only_operators_follow_and_bad_questions_get_clear_answers(serve) -> None:
    server = await serve(ops_token="t0ken-for-tests")
    async with tail(server) as anonymous:
        assert anonymous.status == 401
    token = {"Authorization": "Bearer t0ken-for-tests"}
    async with tail(server, headers=token) as operator:
        assert operator.status == 200
    async with httpx.AsyncClient(base_url=server.http, headers=token) as client:
        nowhere = await client.get("/ops/api/tail", params={"namespace": "nope"})
        assert nowhere.status_code == 404 and "probe" in nowhere.json()["error"]
        bad = await client.get("/ops/api/tail", params={"namespace": "probe", "id": "xyz"})
        assert bad.status_code == 400 and "64 hex" in bad.json()["error"]
        loose = await client.get("/ops/api/tail", params={"name": "x"})
        assert loose.status_code == 400
        # Another node's endpoint wants the cluster secret, whatever else is presented.
        assert (await client.get("/_cluster/tail")).status_code == 403


class _Host:
    node_id = "unit"

    def __init__(self) -> None:
        from runtime.base.stats import NodeStats

        self.stats = NodeStats()


async def test_followers_and_what_waits_for_each_are_bounded() -> None:
    hub = TailHub(_Host(), max_followers=2)
    first = hub.follow(Interest())
    hub.follow(Interest("probe"))
    from runtime.base.errors import ObjectOverloaded

    with pytest.raises(ObjectOverloaded):
        hub.follow(Interest())
    slow = Follower(Interest(), limit=3)
    for i in range(10):
        slow.offer({"type": "event", "n": i})
    assert [line["n"] for line in slow.take()] == [0, 1, 2] and slow.dropped == 7
    hub.leave(first)
    assert hub.node.stats.tap is not None  # one follower left
    for follower in list(hub.followers):
        hub.leave(follower)
    assert hub.node.stats.tap is None
