"""Interleavings and failures that once broke the gates (found in review); each is pinned."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from runtime import DurableObjectError
from runtime.storage.keyspace import ObjectKeys, alarm_shard_key, alarm_shard_of
from tests.support.objects import ALARMS


async def test_a_result_resting_on_a_failed_commit_is_not_released(
    make_node, sync_redis: redis.Redis
) -> None:
    node = await make_node(lease_ttl=30.0)
    ns = node.namespace("probe")
    a = ns.get_by_name("a")
    assert await a.increment() == 1
    keys = ObjectKeys.of("do", "probe", a.id.hex)
    reader = asyncio.create_task(a.read_then_call("b"))  # reads 1, then awaits b (gate opens)
    await asyncio.sleep(0.05)
    sync_redis.set(keys.lease, "thief@0:9", px=60_000)
    writer = asyncio.create_task(a.increment())  # reads 1, writes 2: fenced
    results = await asyncio.gather(reader, writer, return_exceptions=True)
    assert all(isinstance(r, DurableObjectError) for r in results), results
    assert sync_redis.hget(keys.data, "value") is not None  # still the old committed value


async def test_an_alarm_set_while_the_alarm_runs_is_kept(make_node) -> None:
    node = await make_node()
    ns = node.namespace("probe")
    stub = ns.get_by_name("alarm-race")
    await stub.set_alarm_calling(0.05, "sleeper")  # its alarm() naps 0.5 s in another object
    await asyncio.sleep(0.3)  # the alarm is running and waiting for "sleeper"
    assert len(ALARMS[stub.id.hex]) == 1
    new_time = time.time() + 1.0
    await stub.set_alarm_in(1.0)  # acknowledged while the alarm event is still running
    await asyncio.sleep(0.6)  # the alarm event has finished by now
    due = await stub.get_alarm()
    assert due is not None and abs(due - new_time) < 0.2
    for _ in range(100):
        if len(ALARMS[stub.id.hex]) >= 2:
            break
        await asyncio.sleep(0.05)
    assert len(ALARMS[stub.id.hex]) == 2  # and it fires


async def test_an_alarm_that_rearms_itself_fires_again(make_node, sync_redis) -> None:
    node = await make_node()
    stub = node.namespace("probe").get_by_name("rearming")
    await stub.rearm(2, 0.2)
    for _ in range(100):
        if len(ALARMS[stub.id.hex]) >= 3:
            break
        await asyncio.sleep(0.05)
    assert len(ALARMS[stub.id.hex]) == 3
    await asyncio.sleep(0.5)
    assert len(ALARMS[stub.id.hex]) == 3
    member = f"probe:{stub.id.hex}"
    assert sync_redis.zscore(alarm_shard_key("do", alarm_shard_of(member, 16)), member) is None


async def test_alarms_of_namespaces_a_node_does_not_serve_are_left_alone(
    make_node, sync_redis
) -> None:
    await make_node()
    member = "ghost:" + "ab" * 32
    shard = alarm_shard_key("do", alarm_shard_of(member, 16))
    due = int(time.time() * 1000) - 10
    sync_redis.zadd(shard, {member: due})
    await asyncio.sleep(0.5)  # several polls
    assert sync_redis.zscore(shard, member) == due  # not claimed, not dropped


async def test_a_to_b_to_a_through_gather_and_wait_for(make_node) -> None:
    node = await make_node()
    ns = node.namespace("probe")
    await ns.get_by_name("ga").increment(3)
    replies = await asyncio.wait_for(ns.get_by_name("ga").ping_via_gather("gb", "ga"), 5)
    assert replies == ["pong:3"] * 3


async def test_a_caller_giving_up_abandons_only_its_own_event(serve) -> None:
    server = await serve()
    ws = await connect(f"{server.ws}/probe/patient/ws")
    assert await ws.recv() == "welcome"
    await ws.send("memory")
    assert await ws.recv() == "memory:1"
    stub = server.node.namespace("probe").get_by_name("patient")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(stub.nap(0.5), 0.1)
    await ws.send("incr")
    assert await ws.recv() == "value:1"  # the socket was not closed with 1011
    await asyncio.sleep(0.5)
    assert await stub.get("napped") is None  # the abandoned event wrote nothing
    await ws.send("memory")
    assert await ws.recv() == "memory:1"  # its instance was rebuilt from storage
    await ws.close()


async def test_stopping_a_node_lets_a_slow_event_commit(redis_url, sync_redis) -> None:
    from runtime import Node, Settings
    from tests.conftest import TEST_SETTINGS
    from tests.support.objects import Probe

    node = Node(Settings(**{**TEST_SETTINGS, "lease_ttl": 1.2}), redis_url)
    node.register("probe", Probe)
    await node.start()
    stub = node.namespace("probe").get_by_name("slow")
    call = asyncio.create_task(stub.slow_write(2.0))  # longer than the lease TTL
    await asyncio.sleep(0.1)
    await node.stop()
    assert await call == "done"
    keys = ObjectKeys.of("do", "probe", stub.id.hex)
    assert sync_redis.hget(keys.data, "slow") is not None
    assert not sync_redis.exists(keys.lease)  # released at the end


async def test_a_bad_write_outside_an_event_does_not_stall_the_object(make_node) -> None:
    node = await make_node()
    stub = node.namespace("probe").get_by_name("stall")
    await stub.increment()
    storage = node.records[("probe", stub.id.hex)].storage
    with pytest.raises(DurableObjectError):
        await storage.put("k" * 5000, 1)  # outside any event, refused
    assert await asyncio.wait_for(stub.increment(), 2) == 2


async def test_a_socket_refused_after_accepting_is_forgotten(serve) -> None:
    server = await serve()
    with pytest.raises(InvalidStatus):
        await connect(f"{server.ws}/probe/crashy/ws?crash=1", open_timeout=5)
    ws = await connect(f"{server.ws}/probe/crashy/ws")
    assert await ws.recv() == "welcome"
    await ws.send("count:")
    assert await ws.recv() == "count:1"  # only this one
    await ws.close()


@pytest.mark.parametrize("command", ["flood", "stored-flood"])
async def test_a_client_that_stops_reading_is_closed_and_reported(serve, command) -> None:
    # "stored-flood" writes first, so its 400 frames wait for the commit and are released
    # together (frames.CORK): what the cork holds must count toward the send buffer too.
    server = await serve(max_send_buffer_bytes=256 * 1024)
    slow = await connect(f"{server.ws}/probe/flood/ws", max_queue=1, max_size=None)
    assert await slow.recv() == "welcome"
    await slow.send(f"{command}:400")  # 25 MiB the client will not read
    stub = server.node.namespace("probe").get_by_name("flood")
    for _ in range(100):
        errors = await stub.get("errors")
        if errors:
            break
        await asyncio.sleep(0.1)
    assert errors and "did not read" in errors[0]
    with pytest.raises(ConnectionClosed):
        while True:
            await asyncio.wait_for(slow.recv(), 5)


@pytest.mark.parametrize("command", ["flood", "stored-flood"])
async def test_a_reading_client_gets_a_release_bigger_than_its_buffer(serve, command) -> None:
    # 512 KiB at once against a 256 KiB limit, to a client that reads: held behind a commit
    # or not, it must all arrive (the cork hands big releases over in pieces).
    server = await serve(max_send_buffer_bytes=256 * 1024)
    ws = await connect(f"{server.ws}/probe/flood/ws", max_size=None)
    assert await ws.recv() == "welcome"
    await ws.send(f"{command}:8")
    frames = [await asyncio.wait_for(ws.recv(), 5) for _ in range(8)]
    assert all(len(frame) == 65536 for frame in frames)
    await ws.close()


async def test_background_work_does_not_join_the_event_that_started_it(make_node) -> None:
    # ctx.wait_until's task once inherited its spawner's event: its call to another object
    # opened that event's input gate, so other events ran in the middle of it.
    node = await make_node()
    stub = node.namespace("probe").get_by_name("spawner")
    await stub.value()  # active
    spawner = asyncio.create_task(stub.nap_with_background_call(0.5, "elsewhere"))
    await asyncio.sleep(0.1)  # the background call is under way
    other = asyncio.create_task(stub.add_op("during"))
    assert await spawner == []  # nothing ran inside the napping event
    assert await other == 1


@pytest.mark.parametrize("nap", [0.0, 0.2])
async def test_background_work_starts_once_its_event_has_ended(make_node, nap: float) -> None:
    # So a storage.sync() in it covers the event's writes (the lobby reports only what is
    # stored on that basis); and it starts even when the event ends before the loop turns.
    node = await make_node()
    stub = node.namespace("probe").get_by_name(f"after{nap}")
    await stub.background_after_nap(nap)
    for _ in range(20):
        if await stub.background_saw_event_over() is not None:
            break
        await asyncio.sleep(0.05)
    assert await stub.background_saw_event_over() is True


async def test_a_write_made_before_calling_out_does_not_land_on_a_newer_one(
    make_node, redis_url
) -> None:
    # Event A writes m=1, then awaits another object; event B runs meanwhile, writes m=2 and
    # is acknowledged. A's older write once landed on top when A ended: m read 1, for good.
    node = await make_node()
    stub = node.namespace("probe").get_by_name("ordered")
    first = asyncio.create_task(stub.put_then_call("m", 1, "elsewhere"))
    await asyncio.sleep(0.1)
    await stub.put("m", 2)
    await first
    assert await stub.get("m") == 2
    await node.stop()
    again = await make_node(node_id="after-restart")
    assert await again.namespace("probe").get_by_name("ordered").get("m") == 2


async def test_messages_sent_before_calling_out_go_before_those_of_events_run_meanwhile(
    serve,
) -> None:
    # Event A broadcasts, then awaits another object; event B runs meanwhile and broadcasts.
    # A's message was held to A's end, so sockets heard B's first and were left on A's older
    # news (a lobby page said "game on" after the game's result).
    server = await serve()
    first = await connect(f"{server.ws}/probe/ordered-sends/ws")
    second = await connect(f"{server.ws}/probe/ordered-sends/ws")
    assert await first.recv() == await second.recv() == "welcome"
    await first.send("say-then-call:older")
    await asyncio.sleep(0.1)  # (A awaits the other object for 0.3 s)
    await second.send("broadcast:newer")
    for ws in (first, second):
        heard = [await asyncio.wait_for(ws.recv(), 2) for _ in range(2)]
        assert heard == ["all:older", "all:newer"]
    await first.send("count:")
    assert await asyncio.wait_for(first.recv(), 2) == "count:2"
    for ws in (first, second):
        await ws.close()
