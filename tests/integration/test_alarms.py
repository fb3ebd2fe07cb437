"""Alarms: once when due, retried with backoff, surviving the death of their node."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx
import pytest
import redis

from runtime.storage import commits as commits_module
from runtime.storage.keyspace import ObjectKeys, alarm_shard_key, alarm_shard_of
from runtime.web.metrics import render
from tests.support.objects import ALARMS
from tests.support.servers import NodeProcess


async def wait_for(predicate, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_alarm_fires_once_when_due(make_node, sync_redis: redis.Redis) -> None:
    node = await make_node()
    stub = node.namespace("probe").get_by_name("once")
    start = time.time()
    await stub.set_alarm_in(0.3)
    due = await stub.get_alarm()
    assert due is not None and abs(due - (start + 0.3)) < 0.1
    await wait_for(lambda: len(ALARMS[stub.id.hex]) >= 1, 5)
    fired_at, retry = ALARMS[stub.id.hex][0]
    assert fired_at >= start + 0.3 - 0.005 and fired_at < start + 0.3 + 0.5
    assert retry == 0
    await asyncio.sleep(1.0)
    assert len(ALARMS[stub.id.hex]) == 1  # once, not again
    assert await stub.get_alarm() is None
    member = f"probe:{stub.id.hex}"
    shard = alarm_shard_key("do", alarm_shard_of(member, 16))
    assert sync_redis.zscore(shard, member) is None  # the index entry is gone too


async def test_an_alarm_pushed_later_fires_then_although_its_early_entry_was_kept(
    make_node, sync_redis: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A turn timer pushed back on every move keeps the index entry written for the first
    # due time (one round trip saved per move); claimed then, it must not fire the alarm
    # early, and the alarm must still fire at its new time. (The margin, normally seconds,
    # is 0 here so the test takes one.)
    monkeypatch.setattr(commits_module, "INDEX_MARGIN_MS", 0)
    node = await make_node()
    stub = node.namespace("probe").get_by_name("pushed")
    member = f"probe:{stub.id.hex}"
    shard = alarm_shard_key("do", alarm_shard_of(member, 16))
    start = time.time()
    await stub.set_alarm_in(0.6)
    first = sync_redis.zscore(shard, member)
    assert first is not None and abs(first / 1000 - (start + 0.6)) < 0.1
    await stub.set_alarm_in(1.2)  # later: committed without re-pointing the entry
    assert sync_redis.zscore(shard, member) == first
    due = await stub.get_alarm()
    assert due is not None and due > start + 1.1
    await wait_for(lambda: len(ALARMS[stub.id.hex]) >= 1, 5)
    fired_at, _ = ALARMS[stub.id.hex][0]
    assert fired_at >= due - 0.005  # not when the early entry was claimed
    await asyncio.sleep(0.8)
    assert len(ALARMS[stub.id.hex]) == 1
    assert sync_redis.zscore(shard, member) is None


async def test_a_burst_of_alarms_set_at_once_all_commit_and_all_fire(make_node) -> None:
    # Each index entry once took a connection of its own: past the pool's 64, commits
    # failed with "Too many connections" and their objects were reset.
    node = await make_node()
    stubs = [node.namespace("probe").get_by_name(f"burst{i}") for i in range(200)]
    await asyncio.gather(*(stub.value() for stub in stubs))
    results = await asyncio.gather(*(s.set_alarm_in(0.5) for s in stubs), return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    await wait_for(lambda: all(ALARMS[s.id.hex] for s in stubs), 15)


async def test_alarms_nobody_delivers_show_as_due_in_the_metrics(
    make_node, sync_redis: redis.Redis
) -> None:
    # Entries of a namespace no node serves stay due: the backlog an operator alerts on.
    node = await make_node()
    past = int((time.time() - 60) * 1000)
    members = [f"retired:{i:064x}" for i in range(3)]
    for member in members:
        sync_redis.zadd(alarm_shard_key("do", alarm_shard_of(member, 16)), {member: past})
    await wait_for(lambda: node.stats.alarms_due == 3, 5)
    assert b"do_alarms_due 3.0" in render(node)
    for member in members:  # delivered or removed: the backlog goes back to nothing
        sync_redis.zrem(alarm_shard_key("do", alarm_shard_of(member, 16)), member)
    await wait_for(lambda: node.stats.alarms_due == 0, 5)


async def test_a_raising_alarm_is_retried_with_exponential_backoff(make_node) -> None:
    node = await make_node(alarm_retry_base=0.05, alarm_max_retries=6)
    stub = node.namespace("probe").get_by_name("retry")
    await stub.set_failing_alarms(100)  # fail every time
    await stub.set_alarm_in(0.05)
    await wait_for(lambda: len(ALARMS[stub.id.hex]) >= 7, 15)
    await asyncio.sleep(4.0)  # a 7th retry would come 3.2 s after the 6th
    calls = ALARMS[stub.id.hex]
    assert [retry for _, retry in calls] == [0, 1, 2, 3, 4, 5, 6]
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(calls)]
    for n, gap in enumerate(gaps):
        expected = 0.05 * 2**n
        assert expected * 0.9 <= gap <= expected + 0.4, (n, gap)
    assert await stub.get_alarm() is None  # gave up, as documented


async def test_a_retried_alarm_stops_once_it_succeeds(make_node) -> None:
    node = await make_node(alarm_retry_base=0.05)
    stub = node.namespace("probe").get_by_name("recover")
    await stub.set_failing_alarms(2)
    await stub.set_alarm_in(0.05)
    await wait_for(lambda: len(ALARMS[stub.id.hex]) >= 3, 10)
    await asyncio.sleep(0.8)
    assert [retry for _, retry in ALARMS[stub.id.hex]] == [0, 1, 2]
    assert len(await stub.alarm_log()) == 3  # each attempt's writes were committed


def test_alarm_survives_the_death_of_its_node(redis_url: str, tmp_path) -> None:
    env = {"LEASE_TTL": "2", "ALARM_POLL_INTERVAL": "0.1"}
    first = NodeProcess(
        redis_url=redis_url, node_id="alarm-a", env=env, log_path=tmp_path / "a.log"
    ).start()
    try:
        r = httpx.post(f"{first.http}/probe/doomed/alarm?in=1.5", timeout=5)
        assert r.status_code == 200
    finally:
        first.kill()  # kill -9: no drain, the lease is left to expire
    set_at = time.time()
    second = NodeProcess(
        redis_url=redis_url, node_id="alarm-b", env=env, log_path=tmp_path / "b.log"
    ).start()
    try:
        deadline = time.monotonic() + 15
        while True:
            body = httpx.get(f"{second.http}/probe/doomed/alarm", timeout=10).json()
            if body["log"]:
                break
            assert time.monotonic() < deadline, "the alarm never fired"
            time.sleep(0.2)
        assert len(body["log"]) == 1
        assert body["log"][0][0] >= set_at
        assert body["alarm"] is None
    finally:
        second.stop()


@pytest.mark.parametrize("when", [float("nan"), "soon", True])
async def test_bad_alarm_times_are_refused(make_node, when) -> None:
    node = await make_node()
    ns = node.namespace("probe")
    record_stub = ns.get_by_name("badalarm")
    await record_stub.increment()
    storage = node.records[("probe", record_stub.id.hex)].storage
    with pytest.raises(Exception) as info:
        await storage.set_alarm(when)
    assert type(info.value).__name__ == "InvalidValue"
    assert await record_stub.get_alarm() is None


def test_alarm_keys_share_one_slot_per_object() -> None:
    keys = ObjectKeys.of("do", "probe", "ab" * 32)
    tags = {
        k.split("{")[1].split("}")[0]
        for k in (keys.lease, keys.epoch, keys.data, keys.index, keys.alarm)
    }
    assert tags == {f"probe:{'ab' * 32}"}


async def test_an_alarm_falling_due_here_claims_its_own_shard_only(make_node) -> None:
    # Every shard is claimed on the periodic poll; an alarm this node committed is claimed
    # when due in its own shard alone (a game's results go out by an alarm due at once:
    # 16 claim scripts for each was most of Valkey's extra work per round).
    node = await make_node(alarm_poll_interval=30.0)
    stub = node.namespace("probe").get_by_name("one-shard")
    service = node.alarms_for(stub.id)
    claim, submit = service.store.scripts.claim_alarms, service.store.batcher.submit
    claimed: list[str] = []

    def counting(script, keys, args):
        if script is claim:
            claimed.append(keys[0])
        return submit(script, keys, args)

    service.store.batcher.submit = counting
    await asyncio.sleep(0.3)  # (the start's poll of every shard is over)
    claimed.clear()
    await stub.set_alarm_in(0.05)
    await wait_for(lambda: len(ALARMS[stub.id.hex]) >= 1, 5)
    member = f"probe:{stub.id.hex}"
    assert claimed == [alarm_shard_key("do", alarm_shard_of(member, 16))]


def two_in_one_shard(node: Any, prefix: str) -> list[Any]:
    """Stubs of two probes whose alarms share an index shard (17 names always hold two)."""
    by_shard: dict[int, list[Any]] = {}
    for i in range(17):
        stub = node.namespace("probe").get_by_name(f"{prefix}-{i}")
        group = by_shard.setdefault(alarm_shard_of(f"probe:{stub.id.hex}", 16), [])
        group.append(stub)
        if len(group) == 2:
            return group
    raise AssertionError("17 names in 16 shards: two share one")


async def test_two_alarms_committed_here_in_one_shard_each_fire_on_time(make_node) -> None:
    # The poller keeps the earliest few due times per shard of the alarms committed here,
    # not just the earliest: the second alarm of a shard is claimed when it falls due, not
    # at the next periodic poll (30 s here).
    node = await make_node(alarm_poll_interval=30.0)
    first, second = two_in_one_shard(node, "same-shard")
    await asyncio.sleep(0.3)  # (the start's poll of every shard is over)
    await second.set_alarm_in(0.8)
    await first.set_alarm_in(0.1)
    asked = time.time()
    await wait_for(lambda: len(ALARMS[second.id.hex]) >= 1, 5)
    # (far from the 30 s poll, with room for a loaded machine)
    assert ALARMS[first.id.hex][0][0] - asked < 3
    assert ALARMS[second.id.hex][0][0] - asked < 4


async def test_an_alarm_moved_again_and_again_keeps_one_local_time(make_node) -> None:
    # An object that keeps moving its alarm later holds one of its shard's local due times,
    # not one per commit: else its stale times filled the shard's list, and another
    # object's alarm in that shard waited for the periodic poll (30 s here).
    node = await make_node(alarm_poll_interval=30.0)
    mover, other = two_in_one_shard(node, "crowded")
    await asyncio.sleep(0.3)  # (the start's poll of every shard is over)
    for step in range(20):  # 20 commits, each moving the alarm later
        await mover.set_alarm_in(1.0 + 0.02 * step)
    await other.set_alarm_in(2.0)
    asked = time.time()
    await wait_for(lambda: len(ALARMS[other.id.hex]) >= 1, 8)
    assert ALARMS[other.id.hex][0][0] - asked < 5
