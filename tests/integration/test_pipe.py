"""The batcher's own connections to a single Redis (runtime/storage/pipe.py), against a real
server: replies in order, errors per call, and a connection that fails is never used again."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator

import pytest
import redis

from runtime import Settings, StorageUnavailable
from runtime.storage.embedded import ValkeyProcess
from runtime.storage.store import RedisStore
from tests.conftest import TEST_SETTINGS


@pytest.fixture
def server(tmp_path) -> Iterator[tuple[ValkeyProcess, redis.Redis]]:
    valkey = ValkeyProcess(tmp_path / "v", appendonly=False).start()
    admin = redis.Redis.from_url(valkey.url)
    yield valkey, admin
    admin.close()
    valkey.stop()


@pytest.fixture
async def store(server) -> AsyncIterator[RedisStore]:
    valkey, _ = server
    store = RedisStore(valkey.url, Settings(**TEST_SETTINGS), "holder@1")
    await store.connect()
    yield store
    await store.close()


def batcher_clients(admin: redis.Redis) -> list[int]:
    """The IDs of the clients that ran EVALSHA last (the batcher's pipes)."""
    return [c["id"] for c in admin.client_list() if c["cmd"] == "evalsha"]


async def test_replies_come_back_in_order_each_to_its_own_call(store, server) -> None:
    _, admin = server
    batcher, scripts = store.batcher, store.scripts
    for i in range(0, 300, 3):  # (ZADD answers 0 for these, 1 for the others)
        admin.zadd(f"{{s{i}}}index", {f"m{i}": 0})
    trips = batcher.round_trips
    calls = [
        batcher.submit(scripts.index_alarm, [f"{{s{i}}}index"], [f"m{i}", i]) for i in range(300)
    ]
    assert await asyncio.gather(*calls) == [0 if i % 3 == 0 else 1 for i in range(300)]
    assert batcher.round_trips - trips == 1  # one write, 300 replies parsed in order
    for i in (0, 150, 299):
        assert admin.zscore(f"{{s{i}}}index", f"m{i}") == i


async def test_an_error_reply_fails_its_own_call_only(store, server) -> None:
    _, admin = server
    admin.hset("{w}lease", "not", "a string")  # commit.lua's GET on it: WRONGTYPE
    batcher, scripts = store.batcher, store.scripts
    keys = ["{w}lease", "{w}data", "{w}index", "{w}alarm"]
    bad = batcher.submit(scripts.commit, keys, ["h:1", "0", "", 0])
    good = batcher.submit(scripts.index_alarm, ["{g}index"], ["m", 7])
    after = batcher.submit(scripts.index_alarm, ["{g}index"], ["n", 8])
    with pytest.raises(StorageUnavailable, match="WRONGTYPE"):
        await bad
    assert await good == 1 and await after == 1
    assert await batcher.call(scripts.index_alarm, ["{g}index"], ["m", 9]) == 0  # (updated)


async def test_a_trip_without_a_reply_in_time_fails_and_its_connection_is_closed(
    store, server
) -> None:
    _, admin = server
    batcher, scripts = store.batcher, store.scripts
    await batcher.call(scripts.index_alarm, ["{t}index"], ["m", 1])
    (pipe,) = batcher_clients(admin)
    batcher.timeout = 0.3
    admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")
    with pytest.raises(StorageUnavailable, match=r"no reply within 0\.3 s"):
        await batcher.call(scripts.index_alarm, ["{t}index"], ["m", 2])
    await asyncio.sleep(1.6)  # the pause ends; the late reply (0) is never read as another's
    assert await batcher.call(scripts.index_alarm, ["{t}index"], ["new", 3]) == 1
    assert admin.zscore("{t}index", "new") == 3  # ("m", 2 was dropped with its connection)
    assert pipe not in batcher_clients(admin)  # a new connection served the last call


async def test_a_connection_the_server_closed_while_idle_is_not_used_again(store, server) -> None:
    _, admin = server
    batcher, scripts = store.batcher, store.scripts
    await asyncio.gather(
        *(batcher.submit(scripts.index_alarm, ["{k}index"], [f"m{i}", i]) for i in range(10))
    )
    for client in batcher_clients(admin):
        admin.client_kill_filter(_id=client)
    await asyncio.sleep(0.1)  # (the node sees the end of file on its next loop turn)
    assert await batcher.call(scripts.index_alarm, ["{k}index"], ["late", 1]) == 1
    assert admin.zscore("{k}index", "late") == 1


async def test_a_trip_waiting_for_its_connection_survives_the_garbage_collector(
    server,
) -> None:
    # A round trip that opens a connection first runs as a task; the loop holds tasks only
    # weakly, and while it connects nothing else reaches it: unless the batcher holds it, a
    # collection then destroys it, and its callers wait for ever.
    valkey, _ = server
    for _ in range(5):
        store = RedisStore(valkey.url, Settings(**TEST_SETTINGS), "holder@1")
        await store.connect()  # (through redis-py's pool: the batcher has no pipe yet)
        try:
            call = store.batcher.submit(store.scripts.index_alarm, ["{gc}index"], ["m", 1])
            for _ in range(20):
                await asyncio.sleep(0)
                gc.collect()
            assert await asyncio.wait_for(call, 5) in (0, 1)
        finally:
            await store.close()


async def test_an_argument_redis_cannot_take_is_refused_at_the_call_alone(store) -> None:
    batcher, scripts = store.batcher, store.scripts
    good = batcher.submit(scripts.index_alarm, ["{b}index"], ["m", 1])
    with pytest.raises(TypeError, match="str, bytes, int or float"):
        batcher.submit(scripts.index_alarm, ["{b}index"], ["n", True])
    assert await good == 1  # the same turn's other call went out as ever
    assert await batcher.call(scripts.index_alarm, ["{b}index"], ["n", 2]) == 1
