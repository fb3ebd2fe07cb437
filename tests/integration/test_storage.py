"""Storage against a real Valkey: API, ordering, limits, coalescing, fencing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import redis

from runtime import (
    DurableObject,
    Fenced,
    InvalidValue,
    Node,
    RpcError,
    Settings,
    StorageLimitExceeded,
    StorageUnavailable,
    rpc,
)
from runtime.storage.embedded import ValkeyProcess
from runtime.storage.keyspace import ObjectKeys
from runtime.storage.store import RedisStore
from tests.conftest import TEST_SETTINGS


class Store(DurableObject):
    """Exposes storage operations one RPC (= one event) each."""

    @rpc
    async def run(self, ops: list[list]) -> list:
        """Apply a list of [op, *args] in one event; returns each op's result."""
        out = []
        s = self.storage
        for op, *args in ops:
            if op == "put":
                out.append(await s.put(args[0], args[1]))
            elif op == "get":
                out.append(await s.get(args[0]))
            elif op == "put_many":
                out.append(await s.put_many(args[0]))
            elif op == "get_many":
                out.append(await s.get_many(args[0]))
            elif op == "delete":
                out.append(await s.delete(args[0]))
            elif op == "delete_many":
                out.append(await s.delete_many(args[0]))
            elif op == "delete_all":
                out.append(await s.delete_all())
            elif op == "list":
                out.append(list((await s.list(**args[0])).items()))
            elif op == "sync":
                out.append(await s.sync())
        return out

    @rpc
    async def txn(self, fail: bool, rollback: bool) -> dict:
        try:
            async with self.storage.transaction() as txn:
                await txn.put("t1", 1)
                seen = await txn.get("t1")
                await txn.put("t2", seen + 1)
                if rollback:
                    txn.rollback()
                if fail:
                    raise ValueError("abort")
        except ValueError:
            pass
        return await self.storage.get_many(["t1", "t2"])

    @rpc
    async def put_then_fail(self, key: str) -> None:
        await self.storage.put(key, "written before the exception")
        raise ValueError("after a write")


@pytest.fixture
async def store(make_node):
    node = await make_node()
    ns = node.register("store", Store)
    return node, ns


def evalsha_calls(client: redis.Redis) -> int:
    """EVALSHA calls so far, summed over every server (one, or a cluster's masters)."""
    if isinstance(client, redis.RedisCluster):
        per_server = client.info("commandstats", target_nodes=client.ALL_NODES).values()
    else:
        per_server = [client.info("commandstats")]
    return sum(s.get("cmdstat_evalsha", {}).get("calls", 0) for s in per_server)


def keys_of(stub) -> ObjectKeys:
    return ObjectKeys.of("do", stub.namespace.name, stub.id.hex)


async def test_put_get_delete_round_trip(store, sync_redis: redis.Redis) -> None:
    _node, ns = store
    stub = ns.get_by_name("basic")
    values = {
        "n": None,
        "b": True,
        "i": -5,
        "big": 2**62,
        "f": 0.25,
        "s": "héllo",
        "bytes": b"\x00\x01",
        "list": [1, [2, 3]],
        "dict": {"a": {"b": [None]}},
    }
    await stub.run([["put_many", values]])
    got = (await stub.run([["get_many", list(values)]]))[0]
    assert got == values
    assert await stub.run([["delete", "i"], ["delete", "i"], ["get", "i"]]) == [True, False, None]
    assert (await stub.run([["delete_many", ["s", "f", "zz"]]]))[0] == 2
    # what a fresh instance (another node, later) sees is what Redis holds
    assert sync_redis.hlen(keys_of(stub).data) == len(values) - 3
    assert sync_redis.zcard(keys_of(stub).index) == len(values) - 3


async def test_batches_larger_than_max_batch_keys_are_split_by_storage(
    store, sync_redis: redis.Redis
) -> None:
    _node, ns = store
    stub = ns.get_by_name("big-batches")
    values = {f"k{i:04d}": i for i in range(1000)}  # about 8 x max_batch_keys
    await stub.run([["put_many", values]])
    assert sync_redis.hlen(keys_of(stub).data) == 1000
    await stub.run([["sync"]])
    node = _node
    node.records[("store", stub.id.hex)].hibernate()  # no cache: every read goes to Redis
    got = (await stub.run([["get_many", list(values)]]))[0]
    assert got == values
    assert (await stub.run([["delete_many", list(values)[:900]]]))[0] == 900
    assert sync_redis.hlen(keys_of(stub).data) == 100


async def test_list_orders_by_key_bytes_with_all_options(store) -> None:
    _node, ns = store
    stub = ns.get_by_name("list")
    keys = ["a", "a/1", "a/2", "a/10", "b", "b/x", "c", "é", "z", "\u4e2d"]
    await stub.run([["put_many", {k: k.upper() for k in keys}]])
    ordered = sorted(keys, key=lambda k: k.encode())

    async def listed(**options) -> list[str]:
        return [k for k, _ in (await stub.run([["list", options]]))[0]]

    assert await listed() == ordered
    assert await listed(reverse=True) == ordered[::-1]
    assert await listed(prefix="a/") == ["a/1", "a/10", "a/2"]
    assert await listed(start="a/2", end="c") == ["a/2", "b", "b/x"]
    assert await listed(start="b", limit=2) == ["b", "b/x"]
    assert await listed(end="b", reverse=True, limit=2) == ["a/2", "a/10"]
    assert await listed(prefix="a", start="a/1", end="a/2") == ["a/1", "a/10"]
    assert await listed(prefix="nothing") == []
    assert await listed(start="z", end="a") == []


async def test_list_sees_the_events_own_uncommitted_writes(store) -> None:
    _node, ns = store
    stub = ns.get_by_name("overlay")
    await stub.run([["put_many", {f"k{i}": i for i in range(10)}]])
    result = await stub.run(
        [
            ["delete", "k0"],
            ["delete", "k1"],
            ["put", "k05", "new"],
            ["list", {"limit": 3}],
            ["list", {"reverse": True, "limit": 2}],
        ]
    )
    assert [k for k, _ in result[3]] == ["k05", "k2", "k3"]
    assert [k for k, _ in result[4]] == ["k9", "k8"]
    # delete_all then puts in the same event: only the new keys exist
    result = await stub.run([["delete_all"], ["put", "fresh", 1], ["list", {}]])
    assert result[2] == [("fresh", 1)] or result[2] == [["fresh", 1]]


async def test_list_pages_through_many_keys(store) -> None:
    node, ns = store
    stub = ns.get_by_name("many")
    for chunk in range(25):  # 2,500 keys, beyond one 1,000-key page
        await stub.run([["put_many", {f"{chunk:03d}-{i:03d}": i for i in range(100)}]])
    record = node.records[("store", stub.id.hex)]  # drop the instance and its cache
    record.hibernate()
    listed = (await stub.run([["list", {}]]))[0]
    assert len(listed) == 2500
    assert [k for k, _ in listed] == sorted(k for k, _ in listed)


async def test_transactions_are_all_or_nothing(store) -> None:
    _node, ns = store
    stub = ns.get_by_name("txn")
    assert await stub.txn(True, False) == {}
    assert await stub.txn(False, True) == {}
    assert await stub.txn(False, False) == {"t1": 1, "t2": 2}


async def test_writes_before_an_exception_are_kept(store) -> None:
    _node, ns = store
    stub = ns.get_by_name("exc")
    with pytest.raises(RpcError):
        await stub.put_then_fail("k")
    assert (await stub.run([["get", "k"]]))[0] == "written before the exception"


async def test_limits_give_clear_errors_and_change_nothing(store, sync_redis: redis.Redis) -> None:
    _node, ns = store
    stub = ns.get_by_name("limits")
    await stub.run([["put", "keep", 1]])
    cases = [
        (StorageLimitExceeded, [["put", "k" * 2049, 1]]),
        (StorageLimitExceeded, [["put", "k", "v" * (128 * 1024)]]),
        # a batch with one bad value writes none of the batch
        (StorageLimitExceeded, [["put_many", {"ok1": 1, "bad": "v" * (128 * 1024), "ok2": 2}]]),
        (InvalidValue, [["put", 5, 1]]),
        (InvalidValue, [["list", {"limit": 0}]]),
        (InvalidValue, [["list", {"prefix": 7}]]),
    ]
    for error, ops in cases:
        with pytest.raises(error):
            await stub.run(ops)
    assert sync_redis.hkeys(keys_of(stub).data) == [b"keep"]
    # the largest allowed key and value are fine
    await stub.run([["put", "k" * 2048, "v" * (128 * 1024 - 8)]])
    assert (await stub.run([["get", "k" * 2048]]))[0] == "v" * (128 * 1024 - 8)


async def test_one_event_of_100_puts_is_one_round_trip_and_one_script(
    make_node, sync_redis: redis.Redis
) -> None:
    # Nothing else may talk to Redis meanwhile: no alarm polls, no lease renewals.
    node = await make_node(alarm_poll_interval=60.0, lease_ttl=60.0)
    ns = node.register("store", Store)
    stub = ns.get_by_name("coalesce")
    await stub.run([["put", "warm", 0]])  # activation (lease acquire) happens here
    before = evalsha_calls(sync_redis)
    trips = node.store.batcher.round_trips
    await stub.run([["put", f"key{i:03d}", i] for i in range(100)])
    assert node.store.batcher.round_trips - trips == 1
    assert evalsha_calls(sync_redis) - before == 1
    assert sync_redis.hlen(keys_of(stub).data) == 101


async def test_a_fenced_holder_writes_nothing(make_node, sync_redis: redis.Redis) -> None:
    node = await make_node(activation_timeout=0.3)
    ns = node.register("store", Store)
    stub = ns.get_by_name("fenced")
    await stub.run([["put", "before", 1]])
    keys = keys_of(stub)
    record = node.records[("store", stub.id.hex)]
    stale_storage = record.storage
    stale_value = record.lease.value
    # another node takes the lease over (as after an expiry): new holder, higher epoch
    sync_redis.set(keys.lease, "other-node@beef:2", px=60_000)
    sync_redis.incr(keys.epoch)
    with pytest.raises(Fenced):
        await stub.run([["put", "after", 1], ["put_many", {"x": 1, "y": 2}]])
    # the stale instance's storage refuses every later write
    for attempt in range(3):
        with pytest.raises(Fenced):
            await stale_storage.put(f"again{attempt}", attempt)
            await stale_storage.sync()
    # and the fence is in Redis itself: the commit script with the old lease writes nothing
    for attempt in range(3):
        args = [stale_value, "0", "", 1, f"direct{attempt}", b"\xc0"]
        assert (
            await node.store.scripts.commit(
                keys=[keys.lease, keys.data, keys.index, keys.alarm], args=args
            )
            == 0
        )
    # new events cannot reach the object while the other holder has it (no forwarding yet)
    with pytest.raises(Exception) as info:
        await stub.run([["put", "later", 1]])
    assert not isinstance(info.value, AssertionError)
    assert sync_redis.hkeys(keys.data) == [b"before"]
    assert sync_redis.zrange(keys.index, 0, -1) == [b"before"]


async def test_a_fenced_holder_cannot_read_redis_either(store, sync_redis: redis.Redis) -> None:
    _node, ns = store
    stub = ns.get_by_name("fenced-read")
    await stub.run([["put", "a", 1]])
    keys = keys_of(stub)
    sync_redis.set(keys.lease, "other-node@beef:9", px=60_000)
    with pytest.raises(Fenced):
        await stub.run([["get", "not-cached"]])


async def test_an_expired_local_deadline_stops_cached_reads(
    make_node, sync_redis: redis.Redis
) -> None:
    node = await make_node(activation_timeout=0.3)
    ns = node.register("store", Store)
    stub = ns.get_by_name("deadline")
    await stub.run([["put", "a", 1]])
    record = node.records[("store", stub.id.hex)]
    storage = record.storage
    assert await storage.get("a") == 1  # served from the cache while the lease is live
    sync_redis.set(keys_of(stub).lease, "other-node@beef:9", px=60_000)
    assert await storage.get("a") == 1  # the local deadline has not passed yet
    record.lease.deadline = 0  # as if renewals had stopped reaching Redis
    with pytest.raises(Fenced):
        await storage.get("a")  # "a" is cached, yet not served
    with pytest.raises(Exception) as info:
        await stub.run([["get", "a"]])
    assert "other-node" in str(info.value)


async def test_sync_inside_an_event_commits_what_was_written(store, sync_redis) -> None:
    _node, ns = store
    stub = ns.get_by_name("sync")
    await stub.run([["put", "a", 1], ["sync"], ["put", "b", 2]])
    assert set(sync_redis.hkeys(keys_of(stub).data)) == {b"a", b"b"}


async def test_concurrent_events_coalesce_into_few_commits(store, sync_redis) -> None:
    node, ns = store
    stubs = [ns.get_by_name(f"co{i}") for i in range(20)]
    await asyncio.gather(*(s.run([["put", "w", 0]]) for s in stubs))
    trips = node.store.batcher.round_trips
    await asyncio.gather(*(s.run([["put", f"k{j}", j]]) for s in stubs for j in range(20)))
    assert node.store.batcher.round_trips - trips < 50  # 400 events, far fewer round trips
    for s in stubs:
        assert sync_redis.hlen(keys_of(s).data) == 21


async def test_scripts_flushed_from_redis_are_loaded_again(make_node, sync_redis) -> None:
    # SCRIPT FLUSH (or a restarted Redis without its data) forgets the scripts: the next
    # round trip hears NOSCRIPT, loads them and sends its calls again, on the batcher's own
    # connection as through redis-py's pipeline.
    node = await make_node()
    stub = node.register("store", Store).get_by_name("flushed")
    await stub.run([["put", "a", 1]])
    sync_redis.script_flush()
    assert await stub.run([["put", "b", 2], ["get", "a"]]) == [None, 1]
    assert sync_redis.hlen(keys_of(stub).data) == 2


@pytest.fixture
def own_valkey(tmp_path) -> Iterator[tuple[ValkeyProcess, redis.Redis]]:
    """A single server of the test's own (these tests count its clients or change its
    config), and a client to look at it with."""
    server = ValkeyProcess(tmp_path / "v", appendonly=False).start()
    admin = redis.Redis.from_url(server.url)
    yield server, admin
    admin.close()
    server.stop()


async def test_a_stopped_node_leaves_no_connection_to_redis(own_valkey) -> None:
    # The batcher keeps connections of its own (a single server's); stopping closes them.
    server, admin = own_valkey
    before = admin.info("clients")["connected_clients"]
    node = Node(Settings(**TEST_SETTINGS), server.url)
    stub = node.register("store", Store).get_by_name("closed")
    await node.start()
    await asyncio.gather(*(stub.run([["put", f"k{i}", i]]) for i in range(20)))
    assert admin.info("clients")["connected_clients"] > before
    await node.stop()
    for _ in range(50):  # the server sees each close a moment later
        if admin.info("clients")["connected_clients"] == before:
            break
        await asyncio.sleep(0.02)
    assert admin.info("clients")["connected_clients"] == before


async def test_a_round_trip_is_never_sent_twice(own_valkey) -> None:
    # The server runs the calls, then drops the connection (their replies overflow its
    # output buffer): the callers hear of it, and nothing is sent again, since not every
    # script may run twice (an acquire counts an epoch).
    server, admin = own_valkey
    store = RedisStore(server.url, Settings(**TEST_SETTINGS), "holder@1")
    try:
        await store.connect()
        admin.set("{o}lease", "x:1")
        admin.hset("{o}data", "big", b"v" * 200_000)
        admin.config_set("client-output-buffer-limit", "normal 65536 65536 0")
        stats = admin.info("commandstats").get("cmdstat_evalsha", {"calls": 0})
        batcher, scripts = store.batcher, store.scripts
        acquire = batcher.submit(scripts.acquire, ["{e}lease", "{e}epoch"], ["me@1", 10_000])
        read = batcher.submit(
            scripts.read, ["{o}lease", "{o}data", "{o}alarm"], ["x:1", "0", "big"]
        )
        for call in (acquire, read):
            with pytest.raises(StorageUnavailable):
                await call
        assert admin.info("commandstats")["cmdstat_evalsha"]["calls"] - stats["calls"] == 2
        assert admin.get("{e}epoch") == b"1"
    finally:
        await store.close()


async def test_closing_the_store_fails_a_trip_in_flight_and_keeps_nothing_open(
    own_valkey,
) -> None:
    server, admin = own_valkey
    store = RedisStore(server.url, Settings(**TEST_SETTINGS), "holder@1")
    await store.connect()
    batcher, scripts = store.batcher, store.scripts
    await batcher.call(scripts.index_alarm, ["{a}index"], ["member", 1])
    before = admin.info("clients")["connected_clients"]
    admin.execute_command("CLIENT", "PAUSE", 400, "ALL")  # the next trip waits on Redis
    in_flight = batcher.submit(scripts.index_alarm, ["{a}index"], ["member", 2])
    await asyncio.sleep(0.05)
    await store.close()  # as the node stops
    with pytest.raises(StorageUnavailable):
        await in_flight
    with pytest.raises(StorageUnavailable):  # and no trip after it opens a connection
        await batcher.call(scripts.index_alarm, ["{a}index"], ["member", 3])
    await asyncio.sleep(0.5)  # the pause is over: what is still connected shows now
    assert admin.info("clients")["connected_clients"] == before - 2  # the store's two
    assert admin.zscore("{a}index", "member") == 1
