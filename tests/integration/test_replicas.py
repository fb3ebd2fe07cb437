"""Read replicas (docs/replicas.md): two in-process nodes on real sockets and a real Valkey
(single, and a 3-master cluster), the test app's ``Shelf`` (tests/support/replicated.py).

Node A hosts the primary (the first node that needs it); node B serves read-only calls and
watching sockets from its replica. Each guarantee is checked where it could fail: a read at B
right after a write at A (read-your-writes, the version carried by the client), reads that
never go back, a read-only method that writes (refused on both), the durable version across
activations, a gap and a lost feed (reload), the size bound (forward), and what /metrics says.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
import redis
from websockets.asyncio.client import connect

from runtime import Node, ReadOnlyWrite
from runtime.storage.keyspace import ObjectKeys
from tests.conftest import TEST_SETTINGS
from tests.support.objects import app as probe_app
from tests.support.replicated import SHELVES
from tests.support.replicated import app as shelf_app
from tests.support.servers import LinkedNodes, LocalServer

SECRET = "replica-test-secret-0123456789abcdef"
Pair = Callable[..., Awaitable[list[LocalServer]]]


@pytest.fixture
async def cluster(redis_url: str) -> AsyncIterator[Pair]:
    """start(n, **settings) -> n in-process nodes that forward to each other."""
    linked = LinkedNodes(redis_url, [shelf_app, probe_app], TEST_SETTINGS, "r", SECRET)
    yield linked.start
    await linked.stop()


def keys_of(node: Node, name: str) -> ObjectKeys:
    ns = node.namespace(SHELVES.name)
    return ObjectKeys.of("do", ns.name, ns.id_from_name(name).hex, True)


async def test_a_read_at_another_node_sees_the_write_the_client_made(cluster: Pair) -> None:
    a, b = await cluster(2)
    async with httpx.AsyncClient() as http:
        version = "0"
        for i in range(20):
            url = f"{a.http}/shelf/ryw/put/k?value={i}"
            put = await http.post(url, headers={"X-Version": version})
            assert put.status_code == 200 and put.json()["replica"] is False
            version = put.headers["x-version"]
            assert int(version) == i + 1  # one commit each: the version counts them
            # at once, at the other node, carrying the version as a browser carries a cookie
            got = await http.get(f"{b.http}/shelf/ryw/get/k", headers={"X-Version": version})
            assert got.json()["value"] == str(i), got.json()
            assert int(got.headers["x-version"]) >= i + 1
    stats = b.node.stats
    assert stats.replica_reads >= 15, (stats.replica_reads, stats.replica_forwards)
    assert b.node.replicas.figures()["held"] == 1


async def test_a_version_from_the_future_costs_one_wait_and_leaves_nothing_behind(
    cluster: Pair,
) -> None:
    """A client may send any version: one no commit reaches makes its own read wait briefly
    and go to the primary, and leaves no waiter on the replica (they would pile up)."""
    a, b = await cluster(2)
    writer = a.node.namespace(SHELVES.name).get_by_name("future")
    await writer.put("k", "v")
    await b.node.namespace(SHELVES.name).get_by_name("future").get("k")  # the replica loads
    (replica,) = b.node.replicas.table.values()
    behind = b.node.stats.replica_forwards["behind"]
    for _ in range(20):
        liar = b.node.namespace(SHELVES.name).get_by_name("future", after=2**52)
        assert (await liar.get("k"))["value"] == "v"  # answered, by the primary
    assert b.node.stats.replica_forwards["behind"] == behind + 20
    assert replica._waiters == []
    await writer.put("k", "w")  # and the replica still follows its commits
    fresh = b.node.namespace(SHELVES.name).get_by_name("future", after=writer.version)
    assert (await fresh.get("k"))["value"] == "w"


async def test_a_stub_reads_its_writes_and_never_goes_back(cluster: Pair) -> None:
    a, b = await cluster(2)
    writer = a.node.namespace(SHELVES.name).get_by_name("mono")
    reader = b.node.namespace(SHELVES.name).get_by_name("mono")
    seen = 0
    for i in range(30):
        await writer.append(f"line {i}")
        # a reader that knows nothing of the write may lag, but never goes back
        answer = await reader.count()
        assert answer["lines"] >= seen
        seen = answer["lines"]
        # one that carries the writer's version sees it, on the replica or the primary
        carried = b.node.namespace(SHELVES.name).get_by_name("mono", after=writer.version)
        assert (await carried.count())["lines"] == i + 1
        assert carried.version >= writer.version
    assert reader.version >= 1 and writer.version == 30


async def test_a_read_only_method_that_writes_is_refused_everywhere(
    cluster: Pair, sync_redis: redis.Redis
) -> None:
    a, b = await cluster(2)
    primary = a.node.namespace(SHELVES.name).get_by_name("sneaky")
    await primary.put("k", "v")
    with pytest.raises(ReadOnlyWrite):
        await primary.sneaky_put("k")  # on the primary
    remote = b.node.namespace(SHELVES.name).get_by_name("sneaky", after=primary.version)
    with pytest.raises(ReadOnlyWrite):
        await remote.sneaky_put("k")  # on the replica
    assert b.node.stats.replica_reads == 1  # (it did run there)
    keys = keys_of(a.node, "sneaky")
    assert sync_redis.hget(keys.data, "key:k") is not None
    assert (await remote.get("k"))["value"] == "v"  # nothing was stored
    assert int(sync_redis.get(keys.version) or 0) == 1


async def test_the_version_is_durable_across_activations(cluster: Pair) -> None:
    (a,) = await cluster(1, idle_timeout=0.3)
    stub = a.node.namespace(SHELVES.name).get_by_name("durable")
    await stub.put("k", 1)
    await stub.put("k", 2)
    assert stub.version == 2
    for _ in range(50):  # evicted: its lease released, its state gone from memory
        if a.node.record_of(stub.namespace, stub.id) is None:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("never evicted")
    fresh = a.node.namespace(SHELVES.name).get_by_name("durable")
    assert (await fresh.get("k"))["value"] == 2
    assert fresh.version == 2  # a read after activation knows the stored version
    await fresh.put("k", 3)
    assert fresh.version == 3


async def test_a_class_that_is_not_replicated_keeps_its_commits_as_they_were(
    cluster: Pair, sync_redis: redis.Redis
) -> None:
    (a,) = await cluster(1)
    probe = a.node.namespace("probe").get_by_name("plain")
    assert await probe.increment() == 1
    keys = ObjectKeys.of("do", "probe", probe.id.hex)
    assert sync_redis.exists(keys.version) == 0  # no version counted, nothing published
    assert keys.commit == (keys.lease, keys.data, keys.index, keys.alarm)


async def test_watchers_on_a_replica_hear_each_commit_and_cannot_write(cluster: Pair) -> None:
    a, b = await cluster(2)
    editor = a.node.namespace(SHELVES.name).get_by_name("board")
    await editor.append("first")
    async with connect(f"{b.ws}/shelf/board/watch") as watcher:
        hello = json.loads(await watcher.recv())
        assert hello == {"hello": 1, "replica": True, "node": "r2"}
        for i in range(5):
            await editor.append(f"line {i}")
            update = json.loads(await asyncio.wait_for(watcher.recv(), 5))
            assert update == {"lines": [f"line {i}"], "at": i + 1}
        await watcher.send("write")
        assert json.loads(await watcher.recv()) == {"error": "read_only"}
        await watcher.send("count")
        assert json.loads(await watcher.recv())["count"] == 6
    # the primary has no socket: it sent each update once, to Redis
    record = a.node.record_of(editor.namespace, editor.id)
    assert record is not None and len(record.sockets) == 0


async def test_what_a_primary_tells_its_replicas_reaches_their_watchers(cluster: Pair) -> None:
    a, b = await cluster(2)
    editor = a.node.namespace(SHELVES.name).get_by_name("told")
    await editor.append("first")
    async with connect(f"{b.ws}/shelf/told/watch") as watcher:
        assert json.loads(await watcher.recv())["replica"] is True
        await editor.shout("presence, not stored")
        heard = json.loads(await asyncio.wait_for(watcher.recv(), 5))
        assert heard == {"told": "presence, not stored"}
    assert (await editor.count())["lines"] == 1  # (nothing was stored)


async def test_a_gap_in_the_versions_reloads_the_replica(
    cluster: Pair, sync_redis: redis.Redis
) -> None:
    a, b = await cluster(2)
    writer = a.node.namespace(SHELVES.name).get_by_name("gappy")
    await writer.append("one")
    reader = b.node.namespace(SHELVES.name).get_by_name("gappy", after=writer.version)
    assert (await reader.count())["lines"] == 1
    keys = keys_of(a.node, "gappy")
    # A commit that did not happen (version + 5): the replica must not trust its copy.
    import msgpack

    sync_redis.publish(keys.channel, msgpack.packb([writer.version + 5, 0, b"0", b"", [], []]))
    for _ in range(50):
        if b.node.stats.replica_reloads:
            break
        await asyncio.sleep(0.05)
    assert b.node.stats.replica_reloads >= 1
    await writer.append("two")
    fresh = b.node.namespace(SHELVES.name).get_by_name("gappy", after=writer.version)
    assert (await fresh.count())["lines"] == 2


async def test_a_lost_feed_reloads_and_reads_stay_right(
    cluster: Pair, sync_redis: redis.Redis
) -> None:
    a, b = await cluster(2)
    writer = a.node.namespace(SHELVES.name).get_by_name("feed")
    await writer.put("k", 1)
    reader = b.node.namespace(SHELVES.name).get_by_name("feed", after=writer.version)
    assert (await reader.get("k"))["value"] == 1
    for node in sync_redis.get_nodes() if hasattr(sync_redis, "get_nodes") else [sync_redis]:
        client = node if isinstance(node, redis.Redis) else node.redis_connection
        if client is not None:
            client.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    await writer.put("k", 2)  # perhaps published to nobody
    answer = await b.node.namespace(SHELVES.name).get_by_name("feed", after=writer.version).get("k")
    assert answer["value"] == 2  # waited for the reload, or went to the primary
    for _ in range(50):
        if b.node.stats.replica_reloads:
            break
        await asyncio.sleep(0.05)
    assert b.node.stats.replica_reloads >= 1
    after = await b.node.namespace(SHELVES.name).get_by_name("feed", after=writer.version).get("k")
    assert after == {"value": 2, "replica": True, "node": "r2"}


async def test_an_object_over_the_size_bound_gets_no_replica(cluster: Pair) -> None:
    a, b = await cluster(2, replica_max_keys=3)
    writer = a.node.namespace(SHELVES.name).get_by_name("big")
    for i in range(5):
        await writer.put(f"k{i}", i)
    reader = b.node.namespace(SHELVES.name).get_by_name("big", after=writer.version)
    answer = await reader.get("k4")
    assert answer == {"value": 4, "replica": False, "node": "r1"}  # from the primary
    assert b.node.stats.replica_forwards["too_big"] >= 1
    assert b.node.replicas.figures()["held"] == 0


async def test_replicas_off_sends_every_read_to_the_primary(cluster: Pair) -> None:
    a, b = await cluster(2, replicas=False)
    writer = a.node.namespace(SHELVES.name).get_by_name("off")
    await writer.put("k", 1)
    reader = b.node.namespace(SHELVES.name).get_by_name("off")
    assert (await reader.get("k"))["replica"] is False
    assert reader.version == 1  # the version still comes back
    assert b.node.stats.replica_reads == 0 and len(b.node.replicas) == 0


async def test_metrics_and_ops_show_the_replicas(cluster: Pair) -> None:
    a, b = await cluster(2, ops_token="ops-token-for-tests")
    writer = a.node.namespace(SHELVES.name).get_by_name("seen")
    await writer.put("k", 1)
    reader = b.node.namespace(SHELVES.name).get_by_name("seen", after=writer.version)
    await reader.get("k")
    await writer.put("k", 2)
    await b.node.namespace(SHELVES.name).get_by_name("seen", after=writer.version).get("k")
    auth = {"Authorization": "Bearer ops-token-for-tests"}
    async with httpx.AsyncClient(headers=auth) as http:
        text = (await http.get(f"{b.http}/metrics")).text
        node = (await http.get(f"{b.http}/ops/api/node")).json()
    assert 'do_replicas{namespace="shelf"} 1.0' in text, text
    assert 'do_replica_events_total{event="read"}' in text
    assert "do_replica_lag_commits" in text and "do_replica_lag_ms" in text
    assert "do_replica_staleness_seconds_bucket" in text
    assert node["replicas"]["held"] == 1 and node["replicas"]["reads"] >= 2
