"""What the capacity benchmark drives nodes with: keep-alive HTTP requests counted against
the CPU time of every process involved, WebSocket echo and broadcast, and readings of a
node's /metrics and /healthz and of Valkey's INFO."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import redis
from websockets.asyncio.client import ClientConnection, connect

from bench.cluster_bench import Http

OPS_TOKEN = "bench-capacity-ops"
SECRET = "bench-capacity-secret"


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far, in nanoseconds' precision: the sum of its threads'
    run time from /proc/<pid>/task/*/schedstat (/proc/<pid>/stat counts 10 ms ticks,
    too coarse for a few thousand operations of tens of microseconds)."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
    return total / 1e9


@dataclass
class Spent:
    """CPU seconds each watched process used per operation, over one phase."""

    per_op: dict[int, float]
    #: This process's (the load generator's) CPU per operation.
    client: float
    ops: int
    seconds: float

    def of(self, pid: int) -> float:
        return self.per_op[pid]


class Watch:
    """CPU time of some processes (by pid) and of this one, between two readings."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.pids = list(pids)
        self.start = {p: cpu_seconds(p) for p in self.pids}
        self.client = time.process_time()
        self.wall = time.perf_counter()

    def done(self, ops: int) -> Spent:
        n = max(1, ops)
        return Spent(
            {p: (cpu_seconds(p) - self.start[p]) / n for p in self.pids},
            (time.process_time() - self.client) / n,
            ops,
            time.perf_counter() - self.wall,
        )

    def rates(self) -> dict[int, float]:
        """CPU seconds per second of each process since the start (idle costs)."""
        elapsed = time.perf_counter() - self.wall
        return {p: (cpu_seconds(p) - self.start[p]) / elapsed for p in self.pids}


async def requests(
    port: int, path_of: Callable[[int], str], count: int, connections: int, pids: Sequence[int]
) -> Spent:
    """``count`` POSTs (path_of(i) for the i-th) over ``connections`` keep-alive
    connections; every answer must be a 200, after at most 20 retries of a 503 (an object
    the node cannot serve right now, as when the machine is overloaded)."""
    clients = [Http(port) for _ in range(connections)]
    await asyncio.gather(*(c.post(path_of(0)) for c in clients))  # connected before timing
    next_i = 0
    watch = Watch(pids)

    async def worker(client: Http) -> None:
        nonlocal next_i
        while next_i < count:
            i = next_i
            next_i += 1
            status = await client.post(path_of(i))
            for _ in range(20):
                if status != 503:
                    break
                await asyncio.sleep(0.05)
                status = await client.post(path_of(i))
            if status != 200:
                raise RuntimeError(f"{path_of(i)} answered {status}")

    await asyncio.gather(*(worker(c) for c in clients))
    spent = watch.done(count)
    for c in clients:
        if c.writer is not None:
            c.writer.close()
    return spent


async def latencies(port: int, path: str, count: int, timeout: float = 10.0) -> list[float]:
    """Seconds of each of ``count`` requests made one at a time (TimeoutError past
    ``timeout`` for one)."""
    client = Http(port)
    await client.post(path)
    times = []
    try:
        for _ in range(count):
            t0 = time.perf_counter()
            status = await asyncio.wait_for(client.post(path), timeout)
            if status != 200:
                raise RuntimeError(f"{path} answered {status}")
            times.append(time.perf_counter() - t0)
    finally:
        if client.writer is not None:
            client.writer.close()
    return times


async def latency_p50(port: int, path: str, count: int = 400) -> float:
    """p50 seconds of one request at a time."""
    client = Http(port)
    await client.post(path)
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        await client.post(path)
        times.append(time.perf_counter() - t0)
    if client.writer is not None:
        client.writer.close()
    return statistics.median(times)


async def echo(port: int, name: str, count: int, pids: Sequence[int], window: int = 50) -> Spent:
    """``count`` messages echoed by object ``name`` over one socket, ``window`` in flight."""
    ws = await connect(f"ws://127.0.0.1:{port}/bench/{name}/ws", max_queue=None)
    await ws.send("x")
    await ws.recv()
    watch = Watch(pids)
    for _ in range(window):
        await ws.send("x")
    for _ in range(count - window):
        await ws.recv()
        await ws.send("x")
    for _ in range(window):
        await ws.recv()
    spent = watch.done(count)
    await ws.close()
    return spent


async def broadcast(
    port: int, name: str, listeners: int, count: int, pids: Sequence[int], window: int = 10
) -> Spent:
    """``count`` messages broadcast by object ``name`` to ``listeners`` + 1 sockets (the
    sender's own copy included); every socket reads every message."""
    url = f"ws://127.0.0.1:{port}/bench/{name}/ws"
    others = [await connect(url, max_queue=None) for _ in range(listeners)]
    sender = await connect(url, max_queue=None)
    for ws in [*others, sender]:  # every socket accepted before timing
        await ws.send("x")
        await ws.recv()

    async def drain(ws: ClientConnection) -> None:
        for _ in range(count):
            await ws.recv()

    readers = [asyncio.ensure_future(drain(ws)) for ws in others]
    watch = Watch(pids)
    for _ in range(window):
        await sender.send("b")
    for _ in range(count - window):
        await sender.recv()
        await sender.send("b")
    for _ in range(window):
        await sender.recv()
    await asyncio.gather(*readers)
    spent = watch.done(count)
    for ws in [*others, sender]:
        await ws.close()
    return spent


def metrics(port: int) -> dict[str, float]:
    """The node's counters of interest, from /metrics."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {OPS_TOKEN}"}
    )
    text = urllib.request.urlopen(request, timeout=10).read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        for name in ("do_commit_seconds_count", "do_redis_round_trip_seconds_count"):
            if line.startswith(name + " "):
                out[name] = float(line.split()[-1])
        if line.startswith('do_alarms_total{event="fired"}'):
            out["alarms_fired"] = float(line.split()[-1])
        if line.startswith('do_leases_total{event="renewed"}'):
            out["leases_renewed"] = float(line.split()[-1])
    return out


def healthz(port: int) -> dict[str, object]:
    raw = urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10).read()
    answer: dict[str, object] = json.loads(raw)
    return answer


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``check`` every 50 ms; the seconds it took."""
    start = time.perf_counter()
    while not check():
        if time.perf_counter() - start > timeout:
            raise RuntimeError(f"{what}: not within {timeout:g} s")
        time.sleep(0.05)
    return time.perf_counter() - start


def valkey_info(client: redis.Redis) -> dict[str, float]:
    """Valkey's CPU seconds, commands processed and memory used, from INFO."""
    info = client.info("all")
    calls = sum(
        float(v["calls"]) for k, v in info.items() if k.startswith("cmdstat_") and "calls" in v
    )
    return {
        "cpu": float(info["used_cpu_sys"]) + float(info["used_cpu_user"]),
        "calls": calls,
        "memory": float(info["used_memory"]),
    }


def node_env(**extra: str) -> dict[str, str]:
    """Settings every node of the capacity benchmark gets (and ``extra``)."""
    return {
        "CLUSTER_SECRET": SECRET,
        "OPS_TOKEN": OPS_TOKEN,
        "IDLE_TIMEOUT": "600",
        "HIBERNATE_AFTER": "600",
        **extra,
    }


def load_averages() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"
