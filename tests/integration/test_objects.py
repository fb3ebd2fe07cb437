"""Objects on one node: uniqueness, the input gate, stubs and RPC rules."""

from __future__ import annotations

import asyncio

import pytest
import redis

from runtime import (
    DurableObject,
    InvalidObjectId,
    InvalidValue,
    NotCallable,
    ObjectOverloaded,
    ObjectReset,
    RpcError,
    rpc,
)
from runtime.host import departure
from runtime.storage.keyspace import ObjectKeys
from tests.support.objects import CONSTRUCTED


async def test_concurrent_first_requests_make_one_instance_and_one_epoch(
    make_node, sync_redis: redis.Redis
) -> None:
    node = await make_node()
    ns = node.namespace("probe")
    object_id = ns.new_unique_id()

    async def client(n: int) -> list[int]:
        # 50 tasks x 4 calls = 200 concurrent first requests for one fresh ID
        return [await ns.get(object_id).value() for _ in range(n)]

    results = await asyncio.gather(*(client(4) for _ in range(50)))
    assert sum(len(r) for r in results) == 200
    assert CONSTRUCTED[object_id.hex] == 1
    keys = ObjectKeys.of("do", "probe", object_id.hex)
    assert sync_redis.get(keys.epoch) == b"1"
    assert sync_redis.get(keys.lease).decode().endswith(":1")


async def test_input_gate_serialises_get_then_put(make_node) -> None:
    node = await make_node()
    stub = node.namespace("probe").get_by_name("gate")
    results = await asyncio.gather(*(stub.increment() for _ in range(1000)))
    assert await stub.value() == 1000
    assert sorted(results) == list(range(1, 1001))


async def test_a_to_b_to_a_completes(make_node) -> None:
    node = await make_node()
    ns = node.namespace("probe")
    await ns.get_by_name("a").increment(7)
    reply = await asyncio.wait_for(ns.get_by_name("a").ping_via("b", "a"), 5)
    assert reply == "pong:7"


async def test_only_rpc_methods_are_callable(make_node) -> None:
    node = await make_node()
    stub = node.namespace("probe").get_by_name("rpc-rules")
    for name in ("secret", "fetch", "alarm", "websocket_message", "nope", "__init__"):
        with pytest.raises(NotCallable):
            await stub.call(name)
    with pytest.raises(AttributeError):
        stub._private  # noqa: B018
    assert await stub.increment() == 1  # the object keeps working


async def test_rpc_arguments_and_results_must_be_plain_data(make_node) -> None:
    node = await make_node()
    stub = node.namespace("probe").get_by_name("plain")
    with pytest.raises(InvalidValue):
        await stub.put("k", {1, 2, 3})
    with pytest.raises(InvalidValue):
        await stub.put("k", object())
    await stub.put("k", {"tuple": (1, 2), "bytes": b"\x00\xff", "none": None, "f": 1.5})
    assert await stub.get("k") == {"tuple": [1, 2], "bytes": b"\x00\xff", "none": None, "f": 1.5}


async def test_exceptions_in_methods_reach_the_caller(make_node) -> None:
    node = await make_node()
    stub = node.namespace("probe").get_by_name("raises")
    with pytest.raises(RpcError) as info:
        await stub.increment("not a number")  # TypeError inside the method
    assert info.value.type_name == "TypeError"
    assert await stub.increment() == 1


async def test_ids_from_another_namespace_or_malformed_are_refused(make_node) -> None:
    node = await make_node()
    ns = node.namespace("probe")
    good_hex = ns.new_unique_id().hex
    tampered = good_hex[:-1] + ("1" if good_hex[-1] == "0" else "0")
    for bad in ("", "xyz", "A" * 64, "0" * 64, tampered):
        with pytest.raises(InvalidObjectId):
            ns.id_from_string(bad)
    with pytest.raises(InvalidObjectId):
        ns.get("0" * 64)  # type: ignore[arg-type]
    good = ns.new_unique_id()
    assert ns.id_from_string(good.hex) == good
    assert ns.id_from_name("x") == ns.id_from_name("x")


async def test_overload_is_refused_at_once(make_node) -> None:
    node = await make_node(max_queue=10)
    stub = node.namespace("probe").get_by_name("busy")
    results = await asyncio.gather(*(stub.increment() for _ in range(50)), return_exceptions=True)
    overloaded = [r for r in results if isinstance(r, ObjectOverloaded)]
    done = [r for r in results if isinstance(r, int)]
    assert overloaded and done
    assert len(overloaded) + len(done) == 50
    assert await stub.value() == len(done)


async def test_idle_objects_are_evicted_and_release_their_lease(
    make_node, sync_redis: redis.Redis
) -> None:
    node = await make_node(idle_timeout=0.3)
    ns = node.namespace("probe")
    stub = ns.get_by_name("idle")
    await stub.increment()
    assert await stub.bump_memory() == 1
    keys = ObjectKeys.of("do", "probe", stub.id.hex)
    assert sync_redis.exists(keys.lease)
    for _ in range(50):
        await asyncio.sleep(0.1)
        if node.stats.evictions:  # counted once the lease is given back, not when it leaves
            break
    assert node.stats.evictions == 1
    assert node.live_objects == 0
    assert not sync_redis.exists(keys.lease)  # released, not left to expire
    assert await stub.value() == 1  # state came back from Redis
    assert await stub.bump_memory() == 1  # memory did not


async def test_background_work_holds_off_eviction_until_it_ends(
    make_node, sync_redis: redis.Redis
) -> None:
    # ctx.wait_until's work must finish in this instance: evicting it midway would cancel
    # the work and lose its write.
    node = await make_node(idle_timeout=0.2)
    stub = node.namespace("probe").get_by_name("background")
    await stub.background_write(1.0)
    await asyncio.sleep(0.7)  # idle well past idle_timeout, the work still sleeping
    assert node.live_objects == 1 and node.stats.evictions == 0
    for _ in range(50):
        await asyncio.sleep(0.1)
        if node.stats.evictions:
            break
    assert node.stats.evictions == 1  # evicted once the work ended...
    keys = ObjectKeys.of("do", "probe", stub.id.hex)
    assert not sync_redis.exists(keys.lease)
    assert await stub.get("background") == "done"  # ...with its write kept


class Loader(DurableObject):
    """Loads state in its constructor with block_concurrency_while."""

    def __init__(self, ctx, env) -> None:
        super().__init__(ctx, env)
        self.loaded: int | None = None
        self.events: list[str] = []
        ctx.block_concurrency_while(self.load)

    async def load(self) -> None:
        await asyncio.sleep(0.05)  # no event may run before this finishes
        self.loaded = await self.storage.get("n", 0)

    @rpc
    async def read(self) -> int | None:
        return self.loaded

    @rpc
    async def critical(self, tag: str) -> list[str]:
        async def section() -> None:
            self.events.append(f"{tag}:start")
            # a call to another object would normally open the input gate; not in here
            await self.env.namespace("probe").get_by_name("elsewhere").value()
            self.events.append(f"{tag}:end")

        await self.ctx.block_concurrency_while(section)
        return self.events

    @rpc
    async def loose(self, tag: str) -> list[str]:
        self.events.append(f"{tag}:start")
        await self.env.namespace("probe").get_by_name("elsewhere").value()  # gate opens here
        self.events.append(f"{tag}:end")
        return self.events


async def test_block_concurrency_while_in_constructor_and_event(make_node) -> None:
    node = await make_node()
    ns = node.register("loader", Loader)
    await node.namespace("probe").get_by_name("n-setter").increment()
    stub = ns.get_by_name("l")
    assert await asyncio.gather(*(stub.read() for _ in range(20))) == [0] * 20
    results = await asyncio.gather(stub.critical("a"), stub.critical("b"))
    events = results[-1]
    # each section ran start..end with nothing interleaved
    assert events in (
        ["a:start", "a:end", "b:start", "b:end"],
        ["b:start", "b:end", "a:start", "a:end"],
    )
    # without it, a call to another object lets the next event in (no deadlock, by design)
    other = ns.get_by_name("loose")
    events = (await asyncio.gather(other.loose("a"), other.loose("b")))[-1]
    assert events == ["a:start", "b:start", "a:end", "b:end"]


async def test_events_arriving_during_an_eviction_move_to_a_fresh_record(make_node) -> None:
    node = await make_node()
    stub = node.namespace("probe").get_by_name("evicting")
    assert await stub.increment() == 1
    record = node.records[("probe", stub.id.hex)]
    record.last_active = 0  # long idle
    eviction = asyncio.create_task(departure.evict(record))
    await asyncio.sleep(0)  # the eviction holds the gate now
    results = await asyncio.gather(*(stub.increment() for _ in range(20)))
    assert await eviction is True
    assert sorted(results) == list(range(2, 22))  # none failed, none lost
    assert node.records[("probe", stub.id.hex)] is not record


async def test_an_event_whose_object_is_reset_midway_reports_it(make_node, sync_redis) -> None:
    node = await make_node()
    ns = node.namespace("probe")
    stub = ns.get_by_name("reset-midway")
    await stub.increment()
    record = node.records[("probe", stub.id.hex)]

    async def handler(instance) -> str:
        await instance.storage.put("value", 99)
        record.discard(ObjectReset("simulated lease loss"))
        return "must not be acknowledged"

    with pytest.raises(ObjectReset):
        await record.run(handler)
    assert await stub.value() == 1
