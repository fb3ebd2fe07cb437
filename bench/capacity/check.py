"""The model and the simulation against reality: each prediction beside a measurement of the
same thing on this machine (1 and 3 nodes, 10^3-10^5 objects, the chat, waiting-room and
whiteboard workloads), with the error.

Predictions use only the measured costs (measure.py), the apps' own CPU measured on their
rules alone (apps.py), and the shape of each workload (counts, callers, sizes); where a
prediction needs the run's rate (CPU per delivery at that rate) it is given the rate the
run reached, and says so. This machine's cores are shared by every process (nodes,
Valkey, the load generator), so the deployment is modelled with ``shared_cores``.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from bench import cluster_bench
from bench.capacity import drive
from bench.capacity.measure import started, stop
from bench.chat_client import Load
from bench.common import raise_open_files, rss_kib, run_client, start_node
from runtime.storage.embedded import free_port
from tools.capacity import storm
from tools.capacity.costs import Costs
from tools.capacity.model import (
    Deployment,
    Workload,
    coalesced,
    commit_batch,
    commit_trip,
    evaluate,
    max_rate,
)
from tools.capacity.simulation import quantile

CORES = os.cpu_count() or 1
CHAT_PATH = "/chat/api/room/{room}/websocket"
CHAT_CLIENT = Path(__file__).resolve().parents[1] / "chat_client.py"


def _machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far (all cores, from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [float(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / TICK


def _ours() -> float:
    """CPU seconds of this process and everything it started: itself, its children that
    ended (counted into its own cutime/cstime when reaped), and the live ones."""
    me = os.getpid()
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        parents[pid] = int(fields[1])
        times[pid] = sum(float(x) for x in fields[11:15]) / TICK  # utime stime cutime cstime
    total = 0.0
    for pid in times:
        p = pid
        while p > 1 and p != me:
            p = parents.get(p, 0)
        if p == me:
            total += times[pid]
    return total


TICK = os.sysconf("SC_CLK_TCK")


class Others:
    """What other work on this machine took meanwhile: a shared machine's other tenants
    take cores the predictions must not count on."""

    def __init__(self) -> None:
        self.busy, self.ours, self.wall = _machine_busy(), _ours(), time.perf_counter()

    def free(self) -> float:
        """Cores left for this benchmark over the time since it was made (at least half)."""
        elapsed = time.perf_counter() - self.wall
        others = (_machine_busy() - self.busy) - (_ours() - self.ours)
        return max(0.5, CORES - max(0.0, others) / elapsed)


def measured_with_free(measure: Callable[[], dict[str, float]]) -> dict[str, float]:
    """``measure()``'s figures, and the cores other work left free while it ran."""
    others = Others()
    figures = measure()
    return {**figures, "free": others.free()}


def cluster_scaling(url: str, nodes: int, seconds: float) -> dict[str, float]:
    """cluster_bench.scaling as it is, with the cores other work left free read over its
    measured window only (its own ``rate`` call, wrapped): starting the nodes and warming
    them up is not part of the figure."""
    window: dict[str, float] = {}
    original = cluster_bench.rate

    async def timed(*args: Any) -> float:
        others = Others()
        result = await original(*args)
        window["free"] = others.free()
        return result

    cluster_bench.rate = timed  # type: ignore[assignment]
    try:
        rate = asyncio.run(cluster_bench.scaling(url, nodes, seconds))
    finally:
        cluster_bench.rate = original
    return {"rate": rate, "free": window["free"]}


@dataclass
class Check:
    """One figure: measured (median of the runs) beside predicted."""

    what: str
    unit: str
    measured: float
    predicted: float
    by: str  # "model" or "simulation"
    runs: list[float]
    #: Differences below this are within the machine's own jitter, whatever their ratio.
    tolerance: float = 0.0

    @property
    def miss(self) -> bool:
        """Off by more than 25 % and by more than the tolerance."""
        return abs(self.error) > 0.25 and abs(self.predicted - self.measured) > self.tolerance

    @property
    def error(self) -> float:
        """(predicted - measured) / measured."""
        return (self.predicted - self.measured) / self.measured if self.measured else float("nan")


@dataclass
class Apps:
    """The apps' own CPU per event (apps.py)."""

    chat: float
    waiting_room: float
    whiteboard: float


# ------------------------------------------------------------------ 1 and 3 nodes


def scaling_prediction(costs: Costs, nodes: int, cores: float = CORES) -> float:
    """Requests/s of cluster_bench.scaling: 60 keep-alive clients spread over the nodes,
    each request one write to one of 1,000 objects (placed evenly by the warm-up), on this
    machine's shared cores."""
    unit = Workload(
        requests=1.0, writes=1.0, live_objects=1000, writing_objects=1000, concurrency=60
    )
    return max_rate(unit, Deployment(nodes=nodes, shared_cores=cores), costs)


def failover_prediction(costs: Costs, cores: float = CORES, seeds: int = 5) -> float:
    """cluster_bench.failover_time: the object was activated (its lease taken) a request
    or two before the kill; one client retries through the survivor every 10 ms."""
    runs = []
    for seed in range(seeds):
        setup = storm.StormSetup(
            survivors=1,
            objects=1,
            shards=1,
            renewed_before_death=0.005,
            clients=1,
            client_pause=0.01,
            cores=max(1, round(cores)),
            horizon=10,
            seed=seed,
        )
        runs.append(storm.simulate(setup, costs).all_back)
    return statistics.median(runs)


# ------------------------------------------------------------------ live objects


async def idle_objects(url: str, vpid: int, count: int) -> dict[str, float]:
    """One node holding ``count`` live objects (one small key each), idle: the node's and
    Valkey's CPU (% of a core), the node's RSS growth per object, and the p99 of one
    request at a time to another object meanwhile (the renewal rounds stall the loop)."""
    port = free_port()
    node = started(port, url, f"chk-idle-{count}")
    try:
        pids = [node.pid, vpid]
        rss0 = rss_kib(node.pid)
        await drive.requests(port, lambda i: f"/bench/i{count}-{i}/write", count, 32, pids)
        await asyncio.sleep(2.5)
        watch = drive.Watch(pids)
        renewed = drive.metrics(port).get("leases_renewed", 0.0)
        t0 = time.perf_counter()
        await asyncio.sleep(6)
        per_second = (drive.metrics(port).get("leases_renewed", 0.0) - renewed) / (
            time.perf_counter() - t0
        )
        rates = watch.rates()
        rss = rss_kib(node.pid)
        times = await drive.latencies(port, "/bench/probe/touch", 3000)
        plain = await drive.latencies(port, "/bench/probe/plain", 500)
        return {
            "node": rates[node.pid] * 100,
            "valkey": rates[vpid] * 100,
            "rss_per_object": (rss - rss0) * 1024 / count,
            # (what queueing adds: the p99 less a request's own time, the plain route's p50)
            "p99_added": max(0.0, quantile(times, 0.99) - quantile(plain, 0.5)),
            # (every lease once a round: the round lasts leases / renewals a second, and
            # rounds start every second unless the last one took longer)
            "round": count / per_second if per_second else float("nan"),
        }
    finally:
        stop(node)


def idle_prediction(costs: Costs, count: int) -> dict[str, float]:
    report = evaluate(Workload(live_objects=count), Deployment(nodes=1), costs)
    return {
        "node": report.resource("node CPU (one process)").utilisation * 100,
        "valkey": report.resource("Redis CPU (busiest shard)").utilisation * 100,
        "rss_per_object": costs.mem_live_object,
        "p99_added": report.latency.p99,
        "round": max(1.0, report.resource("lease renewal round (one process)").parts["round"]),
    }


async def holding_limit(url: str, vpid: int, step: int = 5000, most: int = 150_000) -> float:
    """Live objects one node holds before it stops answering: objects are added ``step``
    at a time; after each step, a second of requests one at a time to another object must
    all answer, none slower than 1 s. The count of the last step that passed."""
    port = free_port()
    node = started(port, url, f"chk-hold-{random.randrange(10**6)}")
    tag = random.randrange(10**9)
    held = 0
    try:
        pids = [node.pid, vpid]
        while held < most:
            base = held
            try:
                await drive.requests(
                    port, lambda i, b=base: f"/bench/h{tag}-{b + i}/write", step, 32, pids
                )
                await asyncio.sleep(3)
                times = await drive.latencies(port, "/bench/probe/touch", 1500, timeout=1.0)
            except (RuntimeError, TimeoutError, OSError):
                break
            if max(times) > 1.0:
                break
            held += step
        return float(held)
    finally:
        stop(node)


def holding_prediction(costs: Costs) -> float:
    """The most live objects one node renews before a round outlasts the TTL (2 s): past
    it, leases expire in Redis between two renewals (with one node, nobody takes them, and
    each event revives its own, slowly)."""
    d = Deployment(nodes=1)
    lo, hi = 1000.0, 10_000_000.0
    while hi / lo > 1.01:
        mid = (lo * hi) ** 0.5
        report = evaluate(Workload(live_objects=mid), d, costs)
        if report.resource("lease renewal round (one process)").parts["round"] < d.lease_ttl:
            lo = mid
        else:
            hi = mid
    return lo


# ------------------------------------------------------------------ a node's death


async def storm_run(url: str, vpid: int, count: int) -> dict[str, float]:
    """Three nodes; the first holds ``count`` live objects; kill -9; 60 clients through the
    other two write every object once (retrying every 10 ms). Seconds from the kill until
    the last object answered, and how long its lease had left at the kill."""
    ports = [free_port() for _ in range(3)]
    names = [f"chk-storm{i}-{random.randrange(10**6)}" for i in range(3)]
    nodes = [started(p, url, name) for p, name in zip(ports, names, strict=True)]
    client = redis.Redis.from_url(url)
    try:
        pids = [n.pid for n in nodes] + [vpid]
        tag = f"s{random.randrange(10**9)}"
        await drive.requests(ports[0], lambda i: f"/bench/{tag}-{i}/write", count, 32, pids)
        await asyncio.sleep(2.5)  # every lease renewed by the node's rounds since
        left = lease_left(client, names[0])
        others = Others()
        nodes[0].kill()
        killed = time.perf_counter()
        queue = list(range(count))
        survivors = [cluster_bench.Http(ports[1 + w % 2]) for w in range(60)]

        async def worker(w: int) -> None:
            http = survivors[w]
            while queue:
                i = queue.pop()
                while True:
                    try:
                        if await http.post(f"/bench/{tag}-{i}/write") == 200:
                            break
                    except (OSError, asyncio.IncompleteReadError):
                        http = survivors[w] = cluster_bench.Http(http.port)
                    await asyncio.sleep(0.01)

        await asyncio.gather(*(worker(w) for w in range(60)))
        back = time.perf_counter() - killed
        return {"all_back": back, "left": left, "free": others.free()}
    finally:
        client.close()
        for n in nodes:
            stop(n)


def lease_left(client: redis.Redis, holder: str) -> float:
    """Seconds left on a lease ``holder`` (a node id) holds: its last renewal round set
    every one of them, so any will do."""
    for key in client.scan_iter(match="do:{bench:*}:l", count=1000):
        value = client.get(key)
        if value is not None and value.decode().startswith(holder + "@"):
            return float(client.pttl(key)) / 1000
    return float("nan")


def storm_prediction(costs: Costs, count: int, left: float, cores: float = CORES) -> float:
    setup = storm.StormSetup(
        survivors=2,
        objects=count,
        shards=1,
        renewed_before_death=2.0 - left,
        clients=60,
        client_pause=0.01,
        cores=max(1, round(cores)),
        batch=30 / 4,
        horizon=120,
    )
    return storm.simulate(setup, costs).all_back


# ------------------------------------------------------------------ the apps


def chat_run(url: str, load: Load) -> dict[str, float]:
    """bench/chat_client.py against a node serving the chat: deliveries and the node's CPU
    per delivery over the client's whole run (joining included), and the run's length."""
    port = free_port()
    node = start_node(port, url, CHAT_RATE_LIMIT="0", IDLE_TIMEOUT="600", HIBERNATE_AFTER="600")
    try:
        before = drive.cpu_seconds(node.pid)
        result = run_client(
            [sys.executable, str(CHAT_CLIENT), f"ws://127.0.0.1:{port}{CHAT_PATH}", *load.argv()],
            300,
        )
        used = drive.cpu_seconds(node.pid) - before
        return {
            "cpu_per_delivery": used / max(1.0, result["delivered"]),
            "joining": float(result["join_s"]),
            "sending": float(result["elapsed_s"]),
            "rate": float(result["deliveries_per_s"]),
        }
    finally:
        stop(node)


def chat_prediction(
    costs: Costs, load: Load, joining: float, sending: float, app_cpu: float
) -> float:
    """Node CPU per delivery of a chat run, joining included: every client opens a socket
    and names itself (the room tells those already named), over ``joining`` seconds; then
    the senders' messages, each stored, committed and broadcast to the room, over
    ``sending`` seconds. A paced sender's messages arrive at its rate; a burst's as fast as
    the node takes them, so a room's messages share commits (coalescing) at that pace."""
    per_room = load.clients
    messages = load.rooms * load.senders * load.messages
    joined = load.rooms * per_room * (per_room + 1) / 2  # "joined" to those named so far
    deliveries = messages * per_room
    joins = Workload(
        live_objects=load.rooms,
        sockets=load.rooms * per_room,
        socket_opens=load.rooms * per_room / joining,
        socket_messages=load.rooms * per_room / joining,
        deliveries=(joined - load.rooms * per_room) / joining,
    )
    d = Deployment(nodes=1)
    joining_cpu = evaluate(joins, d, costs).resource("node CPU (one process)").utilisation
    sends = Workload(
        live_objects=load.rooms,
        sockets=load.rooms * per_room,
        socket_messages=messages / sending,
        deliveries=messages * (per_room - 1) / sending,
        app_cpu=app_cpu,
    )
    sending_cpu = evaluate(sends, d, costs).resource("node CPU (one process)").utilisation
    # Commits: those of a room made while its commit is in flight share the next one.
    if load.rate:
        made = messages * coalesced(load.rate, commit_trip(costs, d)) / load.rate
    else:
        # A burst is in the room's socket at once: its first message commits alone, and the
        # rest are handled while that commit is in flight, so they share the next one.
        made = load.rooms * load.senders * min(2, load.messages)
    b = commit_batch(made / sending, costs, d, 0)
    commit_cpu = made * (costs.node_commit + costs.node_round_trip / b)
    return (joining_cpu * joining + sending_cpu * sending + commit_cpu) / deliveries


async def waiting_room_run(url: str, seconds: float) -> dict[str, float]:
    """waiting_room_bench.decisions on one room object, one node, 32 connections."""
    from bench import waiting_room_bench as wr

    port = free_port()
    node = start_node(port, url)
    try:
        room = await wr.create_room(port)
        await wr.decisions([port], room, 4, 1.0)
        before = drive.cpu_seconds(node.pid)
        t0 = time.perf_counter()
        others = Others()
        result = await wr.decisions([port], room, 32, seconds)
        free = others.free()
        elapsed = time.perf_counter() - t0
        used = drive.cpu_seconds(node.pid) - before
        done = result["rate"] * elapsed
        return {
            "rate": result["rate"],
            "cpu_per_decision": used / max(1.0, done),
            "free": free,
        }
    finally:
        stop(node)


def waiting_room_work(app_cpu: float) -> Workload:
    """One decision: a request, one RPC to the room object, a write (every decision of the
    benchmark's visitors changes the visitor's record), on one object."""
    return Workload(
        requests=1.0,
        writes=1.0,
        # A leave moves the room's earliest deadline, and the room re-arms its alarm to it
        # (room.py: rearm): an alarm-index entry for one decision in four.
        alarm_sets=0.25,
        live_objects=1,
        writing_objects=1,
        app_cpu=app_cpu,
        hot_events=1.0,
        concurrency=32,
    )


def waiting_room_prediction(
    costs: Costs, app_cpu: float, rate: float, cores: float = CORES
) -> dict[str, float]:
    unit = waiting_room_work(app_cpu)
    d = Deployment(nodes=1, shared_cores=cores)
    at = evaluate(unit.scaled(rate), Deployment(nodes=1), costs)
    return {
        "rate": max_rate(unit, d, costs),
        "cpu_per_decision": at.resource("node CPU (one process)").utilisation / rate,
    }


def whiteboard_run(url: str, vpid: int) -> dict[str, float]:
    """bench/node/fanout.mjs (20 stock Yjs clients x 20 updates/s on one board, 10 s): the
    node's and Valkey's CPU over the window, % of a core."""
    from bench import whiteboard_bench as wb

    server = wb.start_ours(url, IDLE_TIMEOUT="600")
    try:
        result = wb.fanout(server, 10.0, vpid)
        return {"node": result["cpu"], "valkey": result["valkey_cpu"]}
    finally:
        server.stop()


def whiteboard_prediction(costs: Costs, app_cpu: float) -> dict[str, float]:
    """20 clients x 20 updates/s on one board: each update one socket message, stored
    (one board: its writes share commits), relayed to the 19 other clients."""
    updates = 20 * 20.0
    work = Workload(
        live_objects=1,
        sockets=20,
        socket_messages=updates,
        deliveries=updates * 18,  # 19 receivers; the message's cost includes one send
        writes=updates,
        writing_objects=1,
        app_cpu=app_cpu,
    )
    report = evaluate(work, Deployment(nodes=1), costs)
    return {
        "node": report.resource("node CPU (one process)").utilisation * 100,
        "valkey": report.resource("Redis CPU (busiest shard)").utilisation * 100,
    }


# ------------------------------------------------------------------ all of it


Measure = Callable[[], dict[str, float]]


def repeat(runs: int, measure: Measure) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for _ in range(runs):
        for key, value in measure().items():
            out.setdefault(key, []).append(value)
    return out


def check_all(url: str, vpid: int, costs: Costs, apps: Apps, runs: int, quick: bool) -> list[Check]:
    """Every check; each measured figure the median of ``runs`` runs."""
    raise_open_files(20_000)
    checks: list[Check] = []

    def add(
        what: str, unit: str, values: list[float], predicted: float, by: str, tolerance: float = 0
    ) -> None:
        checks.append(
            Check(what, unit, statistics.median(values), predicted, by, values, tolerance)
        )
        print(
            f"  {what}: measured {statistics.median(values):.4g} {unit}, {by} {predicted:.4g}",
            file=sys.stderr,
        )

    seconds = 2.0 if quick else 3.0
    for n in (1, 3):
        got = repeat(
            runs,
            lambda n=n: cluster_scaling(url, n, seconds),
        )
        free = statistics.median(got["free"])
        # (each run predicted with the cores other work left it, then the median)
        predicted = [scaling_prediction(costs, n, f) for f in got["free"]]
        add(
            f"bench-cluster: 1,000 objects, 1 write/request, {n} node{'s' * (n > 1)} "
            f"({free:.1f} cores free)",
            "req/s",
            got["rate"],
            statistics.median(predicted),
            "model",
        )
    got = repeat(
        runs,
        lambda: measured_with_free(lambda: {"s": asyncio.run(cluster_bench.failover_time(url))}),
    )
    add(
        "bench-cluster: failover after kill -9",
        "s",
        got["s"],
        failover_prediction(costs, statistics.median(got["free"])),
        "simulation",
    )

    sizes = (1000, 10_000) if quick else (1000, 10_000, 40_000)
    for count in sizes:
        got = repeat(runs, lambda c=count: asyncio.run(idle_objects(url, vpid, c)))
        want = idle_prediction(costs, count)
        add(
            f"{count:,} idle live objects: Valkey CPU (renewals, polls, heartbeats)",
            "% core",
            got["valkey"],
            want["valkey"],
            "model",
        )
        add(f"{count:,} idle live objects: node CPU", "% core", got["node"], want["node"], "model")
        add(
            f"{count:,} live objects: node RSS per object",
            "B",
            got["rss_per_object"],
            want["rss_per_object"],
            "model",
        )
        add(
            f"{count:,} idle live objects: seconds between a lease's renewals",
            "s",
            got["round"],
            want["round"],
            "model",
        )
        add(
            f"{count:,} idle live objects: p99 added to a request (renewal stalls)",
            "ms",
            [v * 1000 for v in got["p99_added"]],
            want["p99_added"] * 1000,
            "model",
            # (an idle node's own p99 swings 0.1-1.5 ms run to run here: scheduling)
            tolerance=2.0,
        )
    if not quick:
        got = repeat(1, lambda: {"held": asyncio.run(holding_limit(url, vpid))})
        add(
            "live objects one node holds, requests still under 1 s (TTL 2 s)",
            "objects",
            got["held"],
            holding_prediction(costs),
            "model",
        )

    for count in (1000,) if quick else (1000, 10_000):
        got = repeat(
            runs,
            lambda c=count: asyncio.run(storm_run(url, vpid, c)),
        )
        left = statistics.median(got["left"])
        add(
            f"3 nodes, one killed holding {count:,} objects: until all are back",
            "s",
            got["all_back"],
            storm_prediction(costs, count, left, statistics.median(got["free"])),
            "simulation",
        )

    paced = Load(rooms=1, clients=20, senders=1, messages=1000, rate=170)
    rooms = Load(rooms=50, clients=4, senders=1, messages=50)
    for label, load in (
        ("chat paced, 1 room x 20, 170 msg/s", paced),
        ("chat burst, 50 rooms x 4", rooms),
    ):
        got = repeat(runs, lambda load=load: chat_run(url, load))
        predicted = chat_prediction(
            costs,
            load,
            statistics.median(got["joining"]),
            statistics.median(got["sending"]),
            apps.chat,
        )
        add(
            f"{label}: node CPU per delivery (at the run's rate)",
            "us",
            [v * 1e6 for v in got["cpu_per_delivery"]],
            predicted * 1e6,
            "model",
        )

    got = repeat(runs, lambda: asyncio.run(waiting_room_run(url, seconds)))
    free = statistics.median(got["free"])
    want = waiting_room_prediction(costs, apps.waiting_room, statistics.median(got["rate"]), free)
    want["rate"] = statistics.median(  # (each run with the cores it had)
        waiting_room_prediction(costs, apps.waiting_room, r, f)["rate"]
        for r, f in zip(got["rate"], got["free"], strict=True)
    )
    add(
        f"waiting room: decisions/s, one room, one node ({free:.1f} cores free)",
        "/s",
        got["rate"],
        want["rate"],
        "model",
    )
    add(
        "waiting room: node CPU per decision (at the run's rate)",
        "us",
        [v * 1e6 for v in got["cpu_per_decision"]],
        want["cpu_per_decision"] * 1e6,
        "model",
    )

    if not quick:
        got = repeat(runs, lambda: whiteboard_run(url, vpid))
        want = whiteboard_prediction(costs, apps.whiteboard)
        add(
            "whiteboard fan-out, 20 x 20 updates/s: node CPU",
            "% core",
            got["node"],
            want["node"],
            "model",
        )
        add(
            "whiteboard fan-out, 20 x 20 updates/s: Valkey CPU",
            "% core",
            got["valkey"],
            want["valkey"],
            "model",
        )
    return checks
