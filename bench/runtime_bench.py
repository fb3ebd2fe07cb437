"""Runtime benchmarks on one node with the embedded Valkey (issue #2's figures).

    .venv/bin/python bench/runtime_bench.py [--runs 5] [--seconds 3]

Prints one table: the raw Redis ceilings measured by redis-benchmark in the same run (when it
is installed: Debian's redis-tools), then the runtime's own figures, each the median of
--runs runs, next to its target, and keeps the table and a chart under bench/results/
(runtime.txt, runtime.png). Everything runs on this machine: the Valkey server, the node and
the load generator share its cores, as they would on a laptop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from bench.common import rss_kib, start_node  # noqa: E402
from bench.objects import Bench  # noqa: E402
from bench.results import Panel, publish, table  # noqa: E402
from runtime import Node, Settings  # noqa: E402
from runtime.storage.embedded import ValkeyProcess, free_port  # noqa: E402
from runtime.storage.keyspace import ObjectKeys  # noqa: E402
from runtime.storage.scripts import load_source  # noqa: E402


def redis_benchmark(server: ValkeyProcess, args: list[str], requests: int = 200_000) -> float:
    """Requests/s that redis-benchmark reports (50 clients), or NaN when it is missing."""
    binary = shutil.which("redis-benchmark") or shutil.which("valkey-benchmark")
    if binary is None:
        return float("nan")
    where = ["-s", str(server.socket_path)] if server.socket_path else ["-p", str(server.port)]
    out = subprocess.run(
        [binary, *where, "-c", "50", "-n", str(requests), "-q", "--csv", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    last = [line for line in out.splitlines() if line.strip()][-1]
    return float(last.split(",")[1].strip('"'))


def raw_ceilings(server: ValkeyProcess) -> dict[str, float]:
    client = redis.Redis.from_url(server.url)
    sha = client.script_load(load_source("commit"))
    keys = ObjectKeys.of("do", "bench", "0" * 64)
    client.set(keys.lease, "bench@x:1")
    fenced = [
        "EVALSHA",
        sha,
        "4",
        keys.lease,
        keys.data,
        keys.index,
        keys.alarm,
        "bench@x:1",
        "0",
        "",
        "1",
        "k:__rand_int__",
        "v",
    ]
    figures = {
        "SET": redis_benchmark(server, ["-r", "100000", "SET", "k:__rand_int__", "v"]),
        "fenced Lua write": redis_benchmark(server, ["-r", "100000", *fenced]),
        "pipelined SET (-P 16)": redis_benchmark(
            server, ["-r", "100000", "-P", "16", "SET", "k:__rand_int__", "v"], 1_000_000
        ),
    }
    client.flushall()
    client.close()
    return figures


async def throughput(call: Callable[[int], Awaitable[object]], tasks: int, seconds: float) -> float:
    """Completed calls per second with ``tasks`` concurrent callers looping for ``seconds``."""
    done = 0
    stop = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done
        i = 0
        while time.perf_counter() < stop:
            await call(w * 1_000_000 + i)
            i += 1
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(tasks)))
    return done / (time.perf_counter() - start)


async def runtime_figures(url: str, seconds: float, metrics: bool = True) -> dict[str, float]:
    settings = Settings(node_id="bench", idle_timeout=600, hibernate_after=600, metrics=metrics)
    node = Node(settings, url)
    ns = node.register("bench", Bench)
    await node.start()
    try:
        stubs = [ns.get_by_name(f"w{i}") for i in range(50)]
        await asyncio.gather(*(s.noop() for s in stubs))  # activate first

        async def write(i: int) -> object:
            return await stubs[i // 1_000_000 % 50].write(i)

        writes = await throughput(write, 50 * 20, seconds)

        hot = ns.get_by_name("hot")
        await hot.noop()
        rpc = await throughput(lambda i: hot.noop(), 100, seconds)

        latencies = []
        for _ in range(1000):
            stub = ns.get(ns.new_unique_id())
            t0 = time.perf_counter()
            await stub.noop()
            latencies.append((time.perf_counter() - t0) * 1000)
        latencies.sort()
        return {
            "writes": writes,
            "rpc": rpc,
            "cold_p50": latencies[len(latencies) // 2],
            "cold_p99": latencies[int(len(latencies) * 0.99)],
        }
    finally:
        await node.stop()


async def instance_memory(url: str, count: int) -> tuple[float, float]:
    """Bytes Python allocates per live instance (with one cached key) and per hibernated
    record, measured with tracemalloc in this process (sockets excluded)."""
    import gc
    import tracemalloc

    # tracemalloc slows this process several times over: a long lease keeps a busy machine's
    # late renewals from fencing the objects being measured (memory, not leases, is the point).
    settings = Settings(node_id="mem", idle_timeout=600, hibernate_after=600, lease_ttl=30.0)
    node = Node(settings, url)
    ns = node.register("bench", Bench)
    await node.start()
    try:
        stubs = [ns.get_by_name(f"mem{i}") for i in range(count)]
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        for start in range(0, count, 500):
            await asyncio.gather(*(s.write(1) for s in stubs[start : start + 500]))
        gc.collect()
        live = tracemalloc.get_traced_memory()[0]
        for record in node.records.values():
            record.hibernate()
        gc.collect()
        hibernated = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        return (live - base) / count, (hibernated - base) / count
    finally:
        await node.stop()


async def renewal_cpu(url: str, count: int, seconds: float) -> float:
    """Percent of one core Redis spends renewing the leases of ``count`` live objects."""
    node = Node(Settings(node_id="leases", idle_timeout=600, hibernate_after=600), url)
    ns = node.register("bench", Bench)
    await node.start()
    client = redis.asyncio.Redis.from_url(url)
    try:
        stubs = [ns.get_by_name(f"lease{i}") for i in range(count)]
        for start in range(0, count, 1000):
            await asyncio.gather(*(s.noop() for s in stubs[start : start + 1000]))
        await asyncio.sleep(node.settings.lease_ttl)

        async def cpu() -> float:
            info = await client.info("cpu")
            return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])

        c0, t0 = await cpu(), time.perf_counter()
        await asyncio.sleep(seconds)
        c1, t1 = await cpu(), time.perf_counter()
        assert node.live_objects == count
        return (c1 - c0) / (t1 - t0) * 100
    finally:
        await client.aclose()
        await node.stop()


async def hibernated_memory(url: str, sockets: int) -> tuple[float, float]:
    """KiB of node RSS per object held only by one open socket, hibernated; and per socket
    before hibernation (instance in memory)."""
    port = free_port()
    node = start_node(
        port,
        url,
        apps=["bench.objects:app"],
        suite=False,
        HIBERNATE_AFTER="2",
        SWEEP_INTERVAL="0.5",
        IDLE_TIMEOUT="600",
    )
    try:
        for _ in range(200):
            try:
                await asyncio.sleep(0.05)
                probe = await connect(f"ws://127.0.0.1:{port}/bench/warm/ws")
                await probe.send("x")
                await probe.recv()
                await probe.close()
                break
            except OSError:
                continue
        await asyncio.sleep(1)
        before = rss_kib(node.pid)
        clients = []
        for start in range(0, sockets, 200):
            batch = await asyncio.gather(
                *(
                    connect(f"ws://127.0.0.1:{port}/bench/m{i}/ws")
                    for i in range(start, min(start + 200, sockets))
                )
            )
            for ws in batch:
                await ws.send("x")
            for ws in batch:
                await ws.recv()
            clients.extend(batch)
        live = rss_kib(node.pid)
        await asyncio.sleep(4)  # hibernate_after = 2 s, sweep every 0.5 s
        hibernated = rss_kib(node.pid)
        await asyncio.gather(*(ws.close() for ws in clients))
        return (hibernated - before) / sockets, (live - before) / sockets
    finally:
        node.terminate()
        node.wait(20)


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument(
        "--metrics-off",
        action="store_true",
        help="also measure with METRICS=0, run for run, and print on/off ratios",
    )
    parser.add_argument(
        "--appendfsync",
        choices=["always", "everysec"],
        default="always",
        help="the embedded Valkey's AOF fsync policy (make run uses always)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        server = ValkeyProcess(tmp, unix_socket=True, appendfsync=args.appendfsync).start()
        try:
            ceilings = [raw_ceilings(server) for _ in range(args.runs)]
            runs, off = [], []
            for _ in range(args.runs):  # (with and without metrics in turn: same conditions)
                runs.append(asyncio.run(runtime_figures(server.url, args.seconds)))
                if args.metrics_off:
                    off.append(asyncio.run(runtime_figures(server.url, args.seconds, False)))
            memory = asyncio.run(hibernated_memory(server.url, args.sockets))
            per_instance = asyncio.run(instance_memory(server.url, 5000))
            renew = [asyncio.run(renewal_cpu(server.url, 10_000, 10.0)) for _ in range(3)]
        finally:
            server.stop()

    ceiling = {k: median([c[k] for c in ceilings]) for k in ceilings[0]}
    fig = {k: median([r[k] for r in runs]) for k in runs[0]}
    spread = {k: (min(r[k] for r in runs), max(r[k] for r in runs)) for k in runs[0]}
    fenced = ceiling["fenced Lua write"]
    share = fig["writes"] / fenced * 100 if fenced == fenced else float("nan")

    rows = [
        ("raw SET (redis-benchmark, 50 clients)", f"{ceiling['SET']:,.0f}/s", "", ""),
        ("raw fenced Lua write (GET+HSET+ZADD)", f"{fenced:,.0f}/s", "", ""),
        ("raw pipelined SET (-P 16)", f"{ceiling['pipelined SET (-P 16)']:,.0f}/s", "", ""),
        (
            "committed writes/s, 50 objects, 1 put/event",
            f"{fig['writes']:,.0f}/s ({share:.0f}% of fenced)",
            f"{spread['writes'][0]:,.0f}-{spread['writes'][1]:,.0f}",
            ">= 20,000/s and >= 25%",
        ),
        (
            "hot local RPC on one object (no storage)",
            f"{fig['rpc']:,.0f}/s",
            f"{spread['rpc'][0]:,.0f}-{spread['rpc'][1]:,.0f}",
            ">= 30,000/s",
        ),
        (
            "cold activation p50",
            f"{fig['cold_p50']:.2f} ms",
            f"{spread['cold_p50'][0]:.2f}-{spread['cold_p50'][1]:.2f}",
            "<= 2 ms",
        ),
        (
            "cold activation p99",
            f"{fig['cold_p99']:.2f} ms",
            f"{spread['cold_p99'][0]:.2f}-{spread['cold_p99'][1]:.2f}",
            "<= 10 ms",
        ),
        (
            f"node RSS per object held by one open socket ({args.sockets})",
            f"{memory[0]:.1f} KiB",
            f"(before hibernating: {memory[1]:.1f})",
            "report",
        ),
        (
            "Python heap per hibernated record (no socket)",
            f"{per_instance[1] / 1024:.2f} KiB",
            f"(live instance: {per_instance[0] / 1024:.2f})",
            "report",
        ),
        (
            "Redis CPU renewing 10,000 leases (3 runs)",
            f"{median(renew):.1f}% of a core",
            f"{min(renew):.1f}-{max(renew):.1f}",
            "well under 10%",
        ),
    ]
    if off:
        for key, label in (("writes", "committed writes/s"), ("rpc", "hot local RPC/s")):
            ratios = [on[key] / o[key] for on, o in zip(runs, off, strict=True)]
            quiet = median([o[key] for o in off])
            rows.append(
                (
                    f"{label}: metrics on / off (same run)",
                    f"{median(ratios):.3f}",
                    f"off: {quiet:,.0f}/s; ratios {min(ratios):.3f}-{max(ratios):.3f}",
                    ">= 0.95",
                )
            )
    text = (
        f"Runtime benchmark: embedded Valkey (unix socket, AOF fsync {args.appendfsync}), "
        f"median of {args.runs} runs, {os.cpu_count()} cores\n"
        + table(rows, ("figure", "median", "range", "target"))
    )
    panels = [
        Panel(
            "Writes per second: Valkey's raw ceilings (redis-benchmark) and the runtime",
            "writes/s",
            ["50 clients / 50 objects"],
            {
                "raw SET": [ceiling["SET"]],
                "raw fenced Lua write (GET+HSET+ZADD)": [fenced],
                "runtime: committed writes, 1 put/event": [fig["writes"]],
            },
            [20_000],
        ),
        Panel(
            "Hot local RPC on one object (no storage)",
            "calls/s",
            ["100 callers"],
            {"runtime": [fig["rpc"]]},
            [30_000],
        ),
        Panel(
            "Cold activation (new ID to first RPC result)",
            "ms",
            ["p50", "p99"],
            {"runtime": [fig["cold_p50"], fig["cold_p99"]]},
            [2, 10],
        ),
        Panel(
            "Memory",
            "KiB",
            [
                f"node RSS per object held by one open socket ({args.sockets})",
                "Python heap per hibernated record",
                "Python heap per live instance",
            ],
            {"runtime": [memory[0], per_instance[1] / 1024, per_instance[0] / 1024]},
        ),
        Panel(
            "Valkey CPU renewing 10,000 leases",
            "% of one core",
            ["median of 3 runs"],
            {"runtime": [median(renew)]},
            [10],
        ),
    ]
    publish("runtime", text, panels)


if __name__ == "__main__":
    main()
