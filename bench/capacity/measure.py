"""Measuring every cost of tools/capacity/costs.py on real nodes and a real Valkey.

Each figure comes from a phase that does one kind of operation many times, divided by the
CPU time (from /proc) of the process that did the work: a node, Valkey, or this process
as the load generator. A cost that is a difference (an event = a request to an object
minus a request to a route without one) subtracts two phases of the same run. Costs that
depend on batching (a commit, its round trip) are solved from two phases with different
batch sizes (one caller; 32 callers over 1,000 objects), reading the node's own counts of
commits and round trips from /metrics.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import redis
from websockets.asyncio.client import connect

from bench.capacity import drive
from bench.common import fsync_floor, raise_open_files, rss_kib, start_node
from runtime.storage.embedded import ValkeyProcess, free_port
from runtime.storage.keyspace import ObjectKeys, alarm_shard_key
from runtime.storage.scripts import load_source
from tools.capacity.costs import Costs


@dataclass
class Scale:
    """How much each phase does (--quick divides it)."""

    requests: int = 6000
    objects: int = 10_000
    sockets: int = 2000
    messages: int = 6000
    activations: int = 3000

    def quick(self) -> Scale:
        return Scale(1500, 2000, 500, 1500, 800)


@dataclass
class Run:
    """One run's figures: cost name -> value, and what else was seen (batch sizes...)."""

    costs: dict[str, float] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)


def started(port: int, url: str, node_id: str, **env: str) -> Any:
    return start_node(
        port,
        url,
        apps=["bench.objects:app"],
        suite=False,
        NODE_ID=node_id,
        **drive.node_env(**env),
    )


def stop(process: Any) -> None:
    if process.poll() is None:
        process.terminate()
        process.wait(30)


async def http_and_links(url: str, vpid: int, scale: Scale, run: Run) -> None:
    """Requests, events, commits, activations, forwarding, sockets and tunnels."""
    pa, pb = free_port(), free_port()
    a = started(pa, url, "cap-a")
    b = started(pb, url, "cap-b")
    client = redis.Redis.from_url(url)
    c = run.costs
    try:
        n = scale.requests
        pids = [a.pid, b.pid, vpid]
        await drive.requests(pa, lambda i: "/bench/hot/touch", 200, 8, pids)  # warm, owner: a
        plain = await drive.requests(pa, lambda i: "/bench/x/plain", n, 16, pids)
        c["node_http"] = plain.of(a.pid)
        c["client_http"] = plain.client
        # One at a time, each request wakes the node from idle: the difference is a wake-up.
        alone = await drive.requests(pa, lambda i: "/bench/x/plain", n // 4, 1, pids)
        c["node_wakeup"] = max(0.0, alone.of(a.pid) - plain.of(a.pid))
        touch = await drive.requests(pa, lambda i: "/bench/hot/touch", n, 16, pids)
        c["node_event"] = touch.of(a.pid) - plain.of(a.pid)
        fetch = await drive.requests(pa, lambda i: "/bench/hot/fetch", n, 16, pids)
        c["node_fetch"] = fetch.of(a.pid) - plain.of(a.pid)

        # Commits: alone (one caller, one object), then batched (32 callers, 1,000 objects).
        touch1 = await drive.requests(pa, lambda i: "/bench/hot/touch", n // 4, 1, pids)
        m0, v0 = drive.metrics(pa), drive.valkey_info(client)
        write1 = await drive.requests(pa, lambda i: "/bench/hot/write", n // 4, 1, pids)
        m1, v1 = drive.metrics(pa), drive.valkey_info(client)
        await drive.requests(pa, lambda i: f"/bench/o{i}/touch", 1000, 32, pids)  # activate
        touch_n = await drive.requests(pa, lambda i: f"/bench/o{i % 1000}/touch", n, 32, pids)
        m2, v2 = drive.metrics(pa), drive.valkey_info(client)
        write_n = await drive.requests(pa, lambda i: f"/bench/o{i % 1000}/write", n, 32, pids)
        m3, v3 = drive.metrics(pa), drive.valkey_info(client)
        commits1 = m1["do_commit_seconds_count"] - m0["do_commit_seconds_count"]
        trips1 = m1["do_redis_round_trip_seconds_count"] - m0["do_redis_round_trip_seconds_count"]
        commits = m3["do_commit_seconds_count"] - m2["do_commit_seconds_count"]
        trips = m3["do_redis_round_trip_seconds_count"] - m2["do_redis_round_trip_seconds_count"]
        batch1 = commits1 / max(1.0, trips1)
        batch = commits / max(1.0, trips)
        run.seen["commits per round trip, 1 caller"] = batch1
        run.seen["commits per round trip, 32 callers"] = batch
        alone = write1.of(a.pid) - touch1.of(a.pid)  # commit + round trip / batch1
        shared = write_n.of(a.pid) - touch_n.of(a.pid)  # commit + round trip / batch
        c["node_round_trip"], c["node_commit"] = _solve(alone, batch1, shared, batch)
        r_alone = (v1["cpu"] - v0["cpu"]) / max(1.0, commits1)
        r_shared = (v3["cpu"] - v2["cpu"]) / max(1.0, commits)
        c["redis_round_trip"], c["redis_commit"] = _solve(r_alone, batch1, r_shared, batch)
        c["redis_commit_ops"] = (v3["calls"] - v2["calls"]) / max(1.0, commits)

        stamp = int(time.time() * 1000)
        fresh = await drive.requests(
            pa, lambda i: f"/bench/n{stamp}-{i}/touch", scale.activations, 32, pids
        )
        c["node_activation"] = fresh.of(a.pid) - touch_n.of(a.pid)
        c["redis_activation"] = fresh.of(vpid)

        # Forwarding: b hosts nothing of these; a owns "hot".
        fwd = await drive.requests(pb, lambda i: "/bench/hot/touch", n, 16, pids)
        c["node_forward_caller"] = fwd.of(b.pid) - plain.of(a.pid)
        c["node_forward_owner"] = fwd.of(a.pid) - (touch.of(a.pid) - plain.of(a.pid))
        direct = await drive.latency_p50(pa, "/bench/hot/touch")
        forwarded = await drive.latency_p50(pb, "/bench/hot/touch")
        c["link_rtt"] = max(0.0, forwarded - direct)

        # Sockets: an echo straight to the owner, then through b (tunnelled), a broadcast.
        m = scale.messages
        await drive.requests(pa, lambda i: "/bench/echo/touch", 1, 1, pids)  # owner: a
        mine = await drive.echo(pa, "echo", m, pids)
        c["node_socket_message"] = mine.of(a.pid)
        tunnelled = await drive.echo(pb, "echo", m, pids)
        c["node_tunnel_entry"] = tunnelled.of(b.pid) / 2  # a frame each way per echo
        c["node_tunnel_owner"] = (tunnelled.of(a.pid) - mine.of(a.pid)) / 2
        listeners = 49
        wide = await drive.broadcast(pa, "room", listeners, max(200, m // 10), pids)
        c["node_delivery"] = (wide.of(a.pid) - mine.of(a.pid)) / listeners
    finally:
        client.close()
        stop(a)
        stop(b)


def _solve(alone: float, b1: float, shared: float, bn: float) -> tuple[float, float]:
    """(round trip, per call) from two costs per call at batch sizes b1 and bn:
    cost = call + trip / batch."""
    if bn - b1 < 0.5:
        raise RuntimeError(f"batch sizes {b1:.2f} and {bn:.2f} too close to separate")
    trip = (alone - shared) / (1 / b1 - 1 / bn)
    return max(0.0, trip), max(0.0, alone - trip / b1)


async def idle_costs(url: str, vpid: int, scale: Scale, run: Run) -> None:
    """Lease renewal, memory per live object, per hibernated object and per socket, idle
    sockets, heartbeats and alarm polls of an idle node."""
    port = free_port()
    node = started(port, url, "cap-idle", HIBERNATE_AFTER="1")
    client = redis.Redis.from_url(url)
    c = run.costs
    sockets: list[Any] = []
    try:
        pids = [node.pid, vpid]
        time.sleep(2)
        idle = drive.Watch(pids)
        await asyncio.sleep(5)
        base = idle.rates()
        c["node_idle_per_s"] = base[node.pid]
        run.seen["idle Valkey CPU (one node), % of a core"] = base[vpid] * 100

        n = scale.objects
        rss0, mem0 = rss_kib(node.pid), drive.valkey_info(client)["memory"]
        await drive.requests(port, lambda i: f"/bench/L{i}/write", n, 32, pids)
        await asyncio.sleep(1)
        c["mem_live_object"] = (rss_kib(node.pid) - rss0) * 1024 / n
        c["redis_mem_object"] = (drive.valkey_info(client)["memory"] - mem0) / n
        await asyncio.sleep(1.5)
        held = drive.Watch(pids)
        await asyncio.sleep(5)
        rates = held.rates()
        renewals = n / 1.0  # every lease once per second (ttl / 2)
        c["node_renewal"] = max(0.0, rates[node.pid] - base[node.pid]) / renewals
        c["redis_renewal"] = max(0.0, rates[vpid] - base[vpid]) / renewals
        with_leases = {p: rates[p] for p in pids}
        # Requests one at a time over three rounds: the slowest waited behind the part of
        # a round that holds the loop in one go.
        times = await drive.latencies(port, "/bench/probe/touch", 3000)
        c["node_renewal_stall"] = max(0.0, max(times) - statistics.median(times)) / n

        # Sockets: one per object, then many on one object; all hibernated.
        s = scale.sockets
        raise_open_files(4 * s + 1000)
        rss1 = rss_kib(node.pid)
        opening = drive.Watch(pids)
        for start in range(0, s, 100):
            batch = await asyncio.gather(
                *(
                    connect(f"ws://127.0.0.1:{port}/bench/S{i}/ws")
                    for i in range(start, min(s, start + 100))
                )
            )
            for ws in batch:
                await ws.send("x")
            for ws in batch:
                await ws.recv()
            sockets.extend(batch)
        spent = opening.done(s)
        # (less what the node does anyway meanwhile, the n leases' renewal rounds; less
        # the object each socket activated, and the message each sent)
        background = with_leases[node.pid] * spent.seconds / s
        c["node_socket_open"] = max(
            0.0,
            spent.of(node.pid)
            - background
            - c.get("node_socket_message", 0.0)
            - c.get("node_activation", 0.0),
        )
        drive.wait_until(
            lambda: int(str(drive.healthz(port)["live_objects"])) <= n + 1, 30, "hibernation"
        )
        await asyncio.sleep(1.5)
        per_pair = (rss_kib(node.pid) - rss1) * 1024 / s
        quiet = drive.Watch(pids)
        await asyncio.sleep(5)
        q = quiet.rates()
        extra = q[node.pid] - with_leases[node.pid] - s * c["node_renewal"]
        c["node_idle_socket_per_s"] = max(0.0, extra / s)
        rss2 = rss_kib(node.pid)
        one = []
        for _ in range(0, s, 100):
            batch = await asyncio.gather(
                *(connect(f"ws://127.0.0.1:{port}/bench/one/ws") for _ in range(100))
            )
            for conn in batch:
                await conn.send("x")
            for conn in batch:
                await conn.recv()
            one.extend(batch)
        sockets.extend(one)
        await asyncio.sleep(2.5)  # hibernated again
        c["mem_socket"] = (rss_kib(node.pid) - rss2) * 1024 / len(one)
        c["mem_hibernated_object"] = max(0.0, per_pair - c["mem_socket"])
    finally:
        for ws in sockets:
            ws.transport.abort()
        client.close()
        stop(node)


async def alarm_and_eviction(url: str, vpid: int, scale: Scale, run: Run) -> None:
    """Alarms due together on one node; then objects left idle until evicted."""
    port = free_port()
    node = started(port, url, "cap-alarm", IDLE_TIMEOUT="4", SWEEP_INTERVAL="0.5")
    c = run.costs
    try:
        pids = [node.pid, vpid]
        time.sleep(6)  # (the keyring object activated at start is evicted first)
        idle = drive.Watch(pids)
        await asyncio.sleep(3)
        base = idle.rates()
        n = scale.activations
        stamp = int(time.time())
        await drive.requests(port, lambda i: f"/bench/al{stamp}-{i}/arm?in=3", n, 32, pids)
        before = drive.metrics(port).get("alarms_fired", 0.0)
        watch = drive.Watch(pids)
        drive.wait_until(
            lambda: drive.metrics(port).get("alarms_fired", 0.0) - before >= n, 60, "alarms"
        )
        spent = watch.done(n)
        # (the window's idle cost, and the renewals of the n leases, taken off)
        window = spent.seconds
        c["redis_alarm"] = max(0.0, spent.of(vpid) - base[vpid] * window / n)
        c["node_alarm"] = max(
            0.0, spent.of(node.pid) - base[node.pid] * window / n - window * c["node_renewal"]
        )
        # Every object now idles until evicted (IDLE_TIMEOUT=4).
        evicting = drive.Watch(pids)
        drive.wait_until(
            lambda: int(str(drive.healthz(port)["hosted_objects"])) == 0, 60, "eviction"
        )
        spent = evicting.done(n)
        window = spent.seconds
        c["node_eviction"] = max(
            0.0,
            spent.of(node.pid) - base[node.pid] * window / n - window / 2 * c["node_renewal"],
        )
    finally:
        stop(node)


def redis_direct(url: str, vpid: int, run: Run) -> None:
    """Redis' side of a heartbeat, an empty alarm-index claim and a poll of a held lease,
    sent as the node sends them (one pipeline per heartbeat, 16 claims per poll)."""
    from bench.capacity.drive import cpu_seconds

    client = redis.Redis.from_url(url)
    c = run.costs
    try:
        n = 4000
        t0 = cpu_seconds(vpid)
        for _ in range(n):
            pipe = client.pipeline(transaction=False)
            pipe.set("do:{nodes}:n:bench", '{"holder": "x", "url": "ws://x"}', px=3000)
            pipe.sadd("do:{nodes}:ids", "bench")
            pipe.execute()
        c["redis_heartbeat"] = (cpu_seconds(vpid) - t0) / n
        claim = client.script_load(load_source("claim_alarms"))
        t0 = cpu_seconds(vpid)
        for _ in range(n // 4):
            pipe = client.pipeline(transaction=False)
            for shard in range(16):
                now = int(time.time() * 1000)
                pipe.evalsha(claim, 1, alarm_shard_key("cap", shard), now, now + 30000, 100, "x")
            pipe.execute()
        c["redis_claim_empty"] = (cpu_seconds(vpid) - t0) / (n // 4 * 16)
        acquire = client.script_load(load_source("acquire"))
        keys = [ObjectKeys.of("cap", "bench", f"{i:064x}") for i in range(16)]
        for k in keys:
            client.set(k.lease, "other@x:1", px=600_000)
        t0 = cpu_seconds(vpid)
        for _ in range(n // 4):
            pipe = client.pipeline(transaction=False)
            for k in keys:
                pipe.evalsha(acquire, 2, k.lease, k.epoch, "me@y", 2000)
            pipe.execute()
        c["redis_lease_poll"] = (cpu_seconds(vpid) - t0) / (n // 4 * 16)
        client.delete(*[k.lease for k in keys], "do:{nodes}:n:bench", "do:{nodes}:ids")
    finally:
        client.close()


async def node_lease_poll(url: str, run: Run) -> None:
    """The node's side of polling a held lease: LeaseClient.acquire in this process."""
    from runtime import Node, Settings

    node = Node(Settings(node_id="cap-poll"), url)
    await node.start()
    try:
        keys = [ObjectKeys.of("cap", "bench", f"{i:064x}") for i in range(32)]
        for k in keys:
            await node.store.redis.set(k.lease, "other@x:1", px=600_000)
        rounds = 300
        t0 = time.process_time()

        async def poller(k: ObjectKeys) -> None:
            for _ in range(rounds):
                await node.store.leases.acquire(k)

        await asyncio.gather(*(poller(k) for k in keys))
        run.costs["node_lease_poll"] = (time.process_time() - t0) / (rounds * len(keys))
        await node.store.redis.delete(*[k.lease for k in keys])
        # A commit of one small put, as commit.lua makes it (its effects go to the AOF).
        commit = await node.store.redis.script_load(load_source("commit"))
        keys = ObjectKeys.of("cap", "aof", "0" * 64)
        await node.store.redis.set(keys.lease, "w@x:1")
        aof0 = await _aof_size(node.store.redis)
        for i in range(1000):
            await node.store.redis.evalsha(
                commit, 4, keys.lease, keys.data, keys.index, keys.alarm,
                "w@x:1", "0", "", "1", f"k{i % 10}", "a small value",
            )  # fmt: skip
        run.costs["aof_commit"] = (await _aof_size(node.store.redis) - aof0) / 1000
        # A renewal round of 20,000 leases, as the node's renewal loop makes it.
        from runtime.storage.lease import Lease

        held = [ObjectKeys.of("cap", "round", f"{i:064x}") for i in range(20_000)]
        value = f"{node.holder}:1"
        pipe = node.store.redis.pipeline(transaction=False)
        for k in held:
            pipe.set(k.lease, value, px=60_000)
        await pipe.execute()
        items = [(k, Lease(value, 1, 0.0)) for k in held]
        times = []
        aof0 = await _aof_size(node.store.redis)
        for _ in range(3):
            t0 = time.perf_counter()
            renewed = await node.store.leases.renew_many(items)
            times.append(time.perf_counter() - t0)
            assert all(renewed), "a renewal failed"
        run.costs["node_renewal_round"] = statistics.median(times) / len(items)
        run.costs["aof_renewal"] = (await _aof_size(node.store.redis) - aof0) / (3 * len(items))

        for start in range(0, len(held), 1000):
            await node.store.redis.delete(*[k.lease for k in held[start : start + 1000]])
    finally:
        await node.stop()


async def _aof_size(redis: Any) -> float:
    """Bytes of the append-only file so far (INFO persistence)."""
    info = await redis.info("persistence")
    return float(info.get("aof_current_size", 0))


def latency_floors(tmp: str, url: str, run: Run) -> None:
    """A round trip to Redis, and what an fsync'd write adds to it."""
    plain = ValkeyProcess(f"{tmp}/plain", appendonly=False).start()
    try:
        rtt, _ = fsync_floor(plain.url, 1500)
    finally:
        plain.stop()
    fsynced, _ = fsync_floor(url, 1500)
    run.costs["redis_rtt"] = rtt / 1000
    run.costs["fsync"] = max(0.0, fsynced - rtt) / 1000


def one_run(scale: Scale) -> Run:
    """Every cost once, against a fresh Valkey (AOF, fsync always, TCP)."""
    run = Run()
    with tempfile.TemporaryDirectory() as tmp:
        valkey = ValkeyProcess(tmp, appendfsync="always").start()
        assert valkey.process is not None
        vpid = valkey.process.pid
        try:
            alone = drive.Watch([vpid])
            time.sleep(3)
            run.costs["redis_idle_per_s"] = alone.rates()[vpid]
            asyncio.run(http_and_links(valkey.url, vpid, scale, run))
            asyncio.run(idle_costs(valkey.url, vpid, scale, run))
            asyncio.run(alarm_and_eviction(valkey.url, vpid, scale, run))
            redis_direct(valkey.url, vpid, run)
            asyncio.run(node_lease_poll(valkey.url, run))
            import os

            os.makedirs(f"{tmp}/plain", exist_ok=True)
            latency_floors(tmp, valkey.url, run)
        finally:
            valkey.stop()
    return run


def medians(runs: list[Run]) -> tuple[Costs, dict[str, tuple[float, float]], dict[str, float]]:
    """The median of every cost over the runs, each one's range, and the medians of what
    else was seen."""
    known = set(Costs.names())
    values: dict[str, list[float]] = {}
    for run in runs:
        for name, value in run.costs.items():
            if name in known:
                values.setdefault(name, []).append(value)
    # (a cost measured as a difference can come out below zero within the noise: it is 0)
    costs = Costs(**{k: max(0.0, statistics.median(v)) for k, v in values.items()})
    spread = {k: (min(v), max(v)) for k, v in values.items()}
    seen: dict[str, list[float]] = {}
    for run in runs:
        for name, value in run.seen.items():
            seen.setdefault(name, []).append(value)
    return costs, spread, {k: statistics.median(v) for k, v in seen.items()}
