"""Many nodes (issue #4's figures): forwarding, tunnels, failover, scaling.

    .venv/bin/python bench/cluster_bench.py [--runs 5]

Everything runs on this machine: a Valkey (AOF, fsync always), node processes, and the load
in this process. Prints one table of medians over --runs runs:

- RPC on a hot object from a node that hosts it, and from a node that forwards to its owner
  over the node link (calls/s with 100 callers; p50 of one caller);
- WebSocket echo straight to the owner, and tunnelled through another node (messages/s with a
  window of 100 in flight; p50 of one message at a time);
- failover: kill -9 of an object's owner, until the first successful call through another
  node, with the default lease settings (TTL 2 s);
- 1,000 objects, one write per HTTP request, spread over one node and over three.

The table and a chart are kept under bench/results/ (cluster.txt, cluster.png).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import connect  # noqa: E402

from bench.common import start_node  # noqa: E402
from bench.objects import Bench  # noqa: E402
from bench.results import Panel, publish, table  # noqa: E402
from runtime import Node, Settings  # noqa: E402
from runtime.storage.embedded import ValkeyProcess, free_port  # noqa: E402

SECRET = "bench-cluster-secret"


class Http:
    """A tiny keep-alive HTTP/1.1 client: the load generator must not be the bottleneck."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        # (the node's Host check refuses names it does not serve: say the address)
        host = f"127.0.0.1:{self.port}"
        request = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n"
        self.writer.write(request.encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await self.reader.readexactly(length)
        return status


async def rate(call, tasks: int, seconds: float) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await call(w)
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(tasks)))
    return done / (time.perf_counter() - start)


async def p50(call, n: int = 1000) -> float:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        await call(i)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


async def rpc_figures(url: str, seconds: float) -> dict[str, float]:
    """Local vs forwarded RPC, both called from this process's own node."""
    port = free_port()
    remote = start_node(
        port, url, apps=["bench.objects:app"], suite=False, CLUSTER_SECRET=SECRET, NODE_ID="remote"
    )
    me = Node(Settings(node_id="bench", cluster_secret=SECRET, port=free_port()), url)
    ns = me.register("bench", Bench)
    await me.start()
    try:
        status = await Http(port).post("/bench/hot-remote/touch")  # lives on the other node
        assert status == 200, f"the other node answered {status}"
        local, forwarded = ns.get_by_name("hot-local"), ns.get_by_name("hot-remote")
        await local.noop()
        await forwarded.noop()
        assert ("bench", forwarded.id.hex) not in me.records
        return {
            "local_rate": await rate(lambda _: local.noop(), 100, seconds),
            "remote_rate": await rate(lambda _: forwarded.noop(), 100, seconds),
            "local_p50": await p50(lambda _: local.noop()),
            "remote_p50": await p50(lambda _: forwarded.noop()),
        }
    finally:
        await me.stop()
        remote.terminate()
        remote.wait(20)


async def tunnel_figures(url: str, seconds: float) -> dict[str, float]:
    ports = [free_port(), free_port()]
    procs = [
        start_node(
            p, url, apps=["bench.objects:app"], suite=False, CLUSTER_SECRET=SECRET, NODE_ID=f"t{i}"
        )
        for i, p in enumerate(ports)
    ]
    try:
        assert await Http(ports[0]).post("/bench/echo/touch") == 200  # the owner: the first node
        out: dict[str, float] = {}
        for label, port in (("direct", ports[0]), ("tunnel", ports[1])):
            ws = await connect(f"ws://127.0.0.1:{port}/bench/echo/ws", max_queue=None)
            count = 0
            stop = time.perf_counter() + seconds
            start = time.perf_counter()
            window = 100
            for _ in range(window):
                await ws.send("x")
            while time.perf_counter() < stop:
                await ws.recv()
                count += 1
                await ws.send("x")
            for _ in range(window):
                await ws.recv()
            out[f"{label}_rate"] = count / (time.perf_counter() - start)

            async def ping(_: int, ws=ws) -> None:
                await ws.send("p")
                await ws.recv()

            out[f"{label}_p50"] = await p50(ping)
            await ws.close()
        return out
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(20)


async def failover_time(url: str) -> float:
    ports = [free_port(), free_port()]
    procs = [
        start_node(
            p,
            url,
            apps=["bench.objects:app"],
            suite=False,
            CLUSTER_SECRET=SECRET,
            NODE_ID=f"f{i}{random.randrange(10**6)}",
        )
        for i, p in enumerate(ports)
    ]
    try:
        name = f"fail{random.randrange(10**9)}"
        assert await Http(ports[0]).post(f"/bench/{name}/touch") == 200
        survivor = Http(ports[1])
        assert await survivor.post(f"/bench/{name}/write") == 200  # forwarded to the owner
        procs[0].kill()
        killed = time.perf_counter()
        while True:
            try:
                if await survivor.post(f"/bench/{name}/write") == 200:
                    return time.perf_counter() - killed
            except (OSError, asyncio.IncompleteReadError):
                survivor = Http(ports[1])
            await asyncio.sleep(0.01)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(20)


async def scaling(url: str, nodes: int, seconds: float) -> float:
    ports = [free_port() for _ in range(nodes)]
    procs = [
        start_node(
            p, url, apps=["bench.objects:app"], suite=False, CLUSTER_SECRET=SECRET, NODE_ID=f"s{i}"
        )
        for i, p in enumerate(ports)
    ]
    try:
        clients = [Http(ports[i % nodes]) for i in range(60)]
        for i in range(1000):  # warm: activate every object somewhere
            assert await clients[i % len(clients)].post(f"/bench/o{i}/write") == 200

        async def one(w: int) -> None:
            assert await clients[w].post(f"/bench/o{random.randrange(1000)}/write") == 200

        return await rate(one, len(clients), seconds)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    rpc, tunnel, failover, one, three = [], [], [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        valkey = ValkeyProcess(tmp, appendfsync="always").start()
        try:
            for _ in range(args.runs):
                rpc.append(asyncio.run(rpc_figures(valkey.url, args.seconds)))
                tunnel.append(asyncio.run(tunnel_figures(valkey.url, args.seconds)))
                failover.append(asyncio.run(failover_time(valkey.url)))
                one.append(asyncio.run(scaling(valkey.url, 1, args.seconds)))
                three.append(asyncio.run(scaling(valkey.url, 3, args.seconds)))
        finally:
            valkey.stop()

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    lr, rr = med(rpc, "local_rate"), med(rpc, "remote_rate")
    lp, rp = med(rpc, "local_p50"), med(rpc, "remote_p50")
    dr, tr = med(tunnel, "direct_rate"), med(tunnel, "tunnel_rate")
    dp, tp = med(tunnel, "direct_p50"), med(tunnel, "tunnel_p50")
    s1, s3 = statistics.median(one), statistics.median(three)
    rows = [
        ("RPC on a hot object, local", f"{lr:,.0f}/s, p50 {lp:.3f} ms", ""),
        (
            "RPC on a hot object, forwarded",
            f"{rr:,.0f}/s ({rr / lr:.0%}), p50 {rp:.3f} ms (+{rp - lp:.3f})",
            ">= 50 % of local, +p50 <= 1 ms",
        ),
        ("WebSocket echo, direct", f"{dr:,.0f} msg/s, p50 {dp:.3f} ms", ""),
        (
            "WebSocket echo, tunnelled",
            f"{tr:,.0f} msg/s ({tr / dr:.0%}), p50 {tp:.3f} ms (+{tp - dp:.3f})",
            ">= 50 %, +p50 <= 1 ms",
        ),
        (
            "failover after kill -9 (TTL 2 s)",
            f"{statistics.median(failover):.2f} s "
            f"(runs: {', '.join(f'{f:.2f}' for f in failover)})",
            "<= 3 s",
        ),
        ("1,000 objects, 1 write/request, 1 node", f"{s1:,.0f} req/s", "report"),
        (
            "1,000 objects, 1 write/request, 3 nodes",
            f"{s3:,.0f} req/s ({s3 / s1:.2f}x)",
            "report + explain",
        ),
    ]
    text = (
        f"Many nodes, median of {args.runs} runs, {os.cpu_count()} cores, AOF fsync always\n"
        + table(rows, ("figure", "median", "target"))
    )
    panels = [
        Panel(
            "Throughput: straight to the owner, and through another node",
            "per second",
            ["RPC on a hot object (calls/s)", "WebSocket echo (msg/s)"],
            {"owner (local / direct)": [lr, dr], "through another node": [rr, tr]},
        ),
        Panel(
            "Latency of one call or message at a time, p50",
            "ms",
            ["RPC on a hot object", "WebSocket echo"],
            {"owner (local / direct)": [lp, dp], "through another node": [rp, tp]},
        ),
        Panel(
            "Failover after kill -9 of the owner (lease TTL 2 s)",
            "s",
            ["until the first success through another node"],
            {"runtime": [statistics.median(failover)]},
            [3],
        ),
        Panel(
            "1,000 objects, one write per HTTP request",
            "requests/s",
            ["spread over the nodes"],
            {"1 node": [s1], "3 nodes": [s3]},
        ),
    ]
    publish("cluster", text, panels)


if __name__ == "__main__":
    main()
