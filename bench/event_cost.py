"""Where one event's time goes, from the socket to the fsync and back, measured.

    python bench/event_cost.py [--runs 5] [--requests 20000]      (make bench-events)

One node (Valkey on a Unix socket, the append-only file fsync'd on every write) serves the
bench app's routes, each one step longer than the last; a bare Starlette route answers the
same shape as the baseline. For each, the node's CPU per request (its /proc counters over
the run: steadier than a rate on a busy machine) under 32 connections, the rate, and the
latency of one request at a time (one connection):

    bare Starlette route                     what the framework costs alone
    route (node): parse, guards, route, respond
    + one RPC: stub, input gate, object, copies of arguments and result
    + one write: storage, commit round trip, the output gate's wait
    fsync'd SET, one at a time               the physical floor of any durable answer

The differences between rows are the stages' costs. The last lines say what the machine
allows: the least latency of an answer that waits for its fsync (network round trip +
fsync), and the most requests per second two cores give at the measured CPU costs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import cpu_seconds, fsync_floor, start_node, start_server  # noqa: E402
from bench.results import Panel, publish, table  # noqa: E402
from bench.waiting_room_bench import Conn  # noqa: E402
from runtime.storage.embedded import ValkeyProcess, free_port  # noqa: E402

STAGES = (
    ("bare Starlette route (baseline)", None),
    ("route on a node: parse, guards, route, respond", "plain"),
    ("+ one RPC: stub, gate, object, copies", "touch"),
    ("+ one write: storage, commit, output gate", "write"),
)


async def drive(port: int, method: str, path: str, n: int, conns: int) -> tuple[float, list[float]]:
    """``n`` requests over ``conns`` connections: (rate, latencies in ms)."""
    done = 0
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal done
        conn = Conn(port)
        try:
            while done < n:
                done += 1
                started = time.perf_counter()
                status, _, _ = await conn.request(method, path)
                latencies.append((time.perf_counter() - started) * 1000)
                if status != 200:
                    raise RuntimeError(f"{path} answered {status}")
        finally:
            conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conns)))
    return n / (time.perf_counter() - started), latencies


async def measure(url: str, stage: str | None, n: int) -> dict[str, float]:
    port = free_port()
    if stage is None:
        script = str(ROOT / "bench" / "baselines" / "starlette_waiting_room.py")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        process = start_server([sys.executable, script, str(port)], port, env)
        method, path = "GET", "/waiting-room/r/x/"
    else:
        process = start_node(port, url, apps=["bench.objects:app"], suite=False)
        method, path = "POST", f"/bench/hot/{stage}"
    try:
        await drive(port, method, path, 2000, 8)  # warm up: the object, caches
        cpu = cpu_seconds(process.pid)
        rate, _ = await drive(port, method, path, n, 32)
        used = cpu_seconds(process.pid) - cpu
        _, alone = await drive(port, method, path, 2000, 1)
        return {
            "cpu_us": used / n * 1e6,
            "rate": rate,
            "p50_ms": statistics.median(alone),
            "p99_ms": statistics.quantiles(alone, n=100)[98],
        }
    finally:
        process.terminate()
        process.wait(30)


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {label: [] for label, _ in STAGES}
    with tempfile.TemporaryDirectory() as tmp:
        valkey = ValkeyProcess(tmp, unix_socket=True, appendfsync="always").start()
        try:
            for run in range(args.runs):
                for label, stage in STAGES:  # interleaved: the machine's drift hits all alike
                    results[label].append(await measure(valkey.url, stage, args.requests))
                print(f"  run {run + 1} of {args.runs} done", file=sys.stderr)
            floor_p50, floor_p99 = fsync_floor(valkey.url, writes=2000)
        finally:
            valkey.stop()

    def med(label: str, key: str) -> float:
        return statistics.median(r[key] for r in results[label])

    rows = []
    previous = None
    for label, _ in STAGES:
        cpu = med(label, "cpu_us")
        step = "" if previous is None else f"{cpu - previous:+.1f}"
        rows.append(
            (
                label,
                f"{cpu:.1f}",
                step,
                f"{med(label, 'rate'):,.0f}",
                f"{med(label, 'p50_ms'):.3f}",
                f"{med(label, 'p99_ms'):.3f}",
            )
        )
        previous = cpu
    rows.append(
        (
            "fsync'd SET, one at a time (the durable floor)",
            "",
            "",
            "",
            f"{floor_p50:.3f}",
            f"{floor_p99:.3f}",
        )
    )
    header = ("stage", "CPU/req us", "step us", "req/s (32 conns)", "p50 ms (1 conn)", "p99 ms")
    base = med(STAGES[0][0], "cpu_us")
    write = med(STAGES[-1][0], "cpu_us")
    notes = [
        f"Where an event's time goes, one node, medians of {args.runs} runs, "
        f"{os.cpu_count()} cores, AOF fsync always",
        table(rows, header),
        f"physical limits: an answer that waits for its write is no faster than one fsync'd SET "
        f"({floor_p50:.3f} ms p50 here) plus the HTTP round trip of the bare route "
        f"({med(STAGES[0][0], 'p50_ms'):.3f} ms); the write path costs the node {write:.1f} us "
        f"of CPU per request against the bare route's {base:.1f} ({base / write:.0%}): CPU, not "
        "the disk, "
        "bounds its throughput when requests are concurrent (their commits share fsyncs)",
    ]
    panel = Panel(
        "Node CPU per request, stage by stage",
        "us",
        [label for label, _ in STAGES],
        {"CPU per request": [med(label, "cpu_us") for label, _ in STAGES]},
    )
    publish("event_cost", "\n\n".join(notes), [panel])


if __name__ == "__main__":
    asyncio.run(main())
