"""Read replicas across real node processes (the test app's Shelf, tests/support/replicated.py):
watchers on the other nodes outlive their primary's death, and a browser's POST then GET
through different nodes reads its write."""

from __future__ import annotations

import asyncio
import json

import httpx
from websockets.asyncio.client import connect

from tests.cluster.conftest import StartNodes, node_stats

APPS = ("tests.support.objects:app", "tests.support.replicated:app")


async def test_watchers_on_replicas_outlive_a_killed_primary(nodes: StartNodes) -> None:
    primary, b, c = nodes(3, apps=APPS)
    async with httpx.AsyncClient() as http:
        made = await http.post(f"{primary.http}/shelf/stage/append?line=one", timeout=10)
        assert made.status_code == 200, made.text
        async with (
            connect(f"{b.ws}/shelf/stage/watch") as on_b,
            connect(f"{c.ws}/shelf/stage/watch") as on_c,
        ):
            for watcher, node in ((on_b, "n2"), (on_c, "n3")):
                assert json.loads(await watcher.recv()) == {
                    "hello": 1,
                    "replica": True,
                    "node": node,
                }
            primary.kill()  # kill -9: the replicas neither know nor care
            deadline = asyncio.get_running_loop().time() + 15
            while True:  # the next append activates the object on b or c (after the TTL)
                reply = await http.post(f"{b.http}/shelf/stage/append?line=two", timeout=10)
                if reply.status_code == 200:
                    break
                assert asyncio.get_running_loop().time() < deadline, reply.text
                await asyncio.sleep(0.2)
            for watcher in (on_b, on_c):
                update = json.loads(await asyncio.wait_for(watcher.recv(), 10))
                assert update == {"lines": ["two"], "at": 1}
    assert node_stats(b)["replica_reloads"] == 0  # versions went on from where they were


async def test_a_post_then_a_get_through_other_nodes_reads_the_write(nodes: StartNodes) -> None:
    cluster = nodes(3, apps=APPS)
    async with httpx.AsyncClient() as http:
        version = "0"
        for i in range(30):
            writer, reader = cluster[i % 3], cluster[(i + 1) % 3]
            put = await http.post(
                f"{writer.http}/shelf/cookie/put/k?value={i}", headers={"X-Version": version}
            )
            assert put.status_code == 200, put.text
            version = put.headers["x-version"]
            url = f"{reader.http}/shelf/cookie/get/k"
            got = await http.get(url, headers={"X-Version": version})
            assert got.json()["value"] == str(i), (i, got.json())
            version = got.headers["x-version"]
    served = sum(node_stats(n)["replica_reads"] for n in cluster)
    assert served >= 10, served  # most reads ran on a replica, not the primary
