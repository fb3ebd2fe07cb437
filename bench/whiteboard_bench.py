"""Whiteboard: our node against the reference y-websocket server, with stock Yjs clients.

    .venv/bin/python bench/whiteboard_bench.py [--runs 5] [--seconds 10]

Starts a Valkey configured like `make run`'s embedded one (append-only file, fsync always), a
node serving the whiteboard app, and the peer: the reference Node.js server of the npm
package y-websocket@2 (its `y-websocket` bin, no persistence: documents live in its memory
only). The Node tooling lives in bench/node and is installed here (`npm ci`) when its
node_modules is missing. Prints one table of medians over --runs runs, ours beside the peer:

- initial sync of a 5,000-stroke board to a new client, and propagation of small updates
  between two clients, one every 5 ms: the shared client ../shared/bench/yjs_bench.mjs (the
  one that set the targets), copied into bench/node and run as it is;
- the server's side of that initial sync (bench/node/sync.mjs): the same board, and raw
  sockets that time the sync step 2 without decoding it into a Yjs document;
- 20 clients on one board, each appending a few points to its own stroke 20 times a second
  (bench/node/fanout.mjs): propagation p50/p99 over every receiver, and the server process's
  CPU over that window (for ours, Valkey's too);
- cold activation (socket opened to sync step 2 received) of a board whose log holds 10,000
  updates, written through a node with compaction off, then of the same board once a node
  with low thresholds has compacted it (ours only: the peer stores nothing);
- node RSS per idle loaded board (200 boards, a small drawing each, sockets closed) and per
  connected client (500 sockets on one board).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from pycrdt import Array, Doc, Map  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from apps.whiteboard import protocol  # noqa: E402
from apps.whiteboard.links import BOARDS, digest_of  # noqa: E402
from bench.common import start_node, start_server  # noqa: E402
from runtime.config import DEFAULT_ID_KEY  # noqa: E402
from runtime.embedded import ValkeyProcess, free_port  # noqa: E402
from runtime.ids import IdFactory  # noqa: E402
from runtime.keyspace import ObjectKeys  # noqa: E402

NODE_DIR = ROOT / "bench" / "node"
SHARED_CLIENT = ROOT.parent / "shared" / "bench" / "yjs_bench.mjs"
PEER_BIN = NODE_DIR / "node_modules" / "y-websocket" / "bin" / "server.cjs"
LOG_UPDATES = 10_000
NO_COMPACTION = {
    "WHITEBOARD_COMPACT_UPDATES": "10000000",
    "WHITEBOARD_COMPACT_FORCE_UPDATES": "10000000",
    "WHITEBOARD_COMPACT_BYTES": str(2**50),
}


# ------------------------------------------------------------------ servers


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    #: The provider's serverUrl: a room's socket is base + "/" + room.
    base: str

    def url(self, room: str) -> str:
        return f"{self.base}/{room}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def node_tools() -> None:
    """bench/node's packages (npm ci from its lock file), and the shared client beside them."""
    if not (NODE_DIR / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True)
    shutil.copyfile(SHARED_CLIENT, NODE_DIR / "yjs_bench.mjs")


def start_ours(redis_url: str, **env: str) -> Server:
    port = free_port()
    process = start_node(port, redis_url, apps=["apps.whiteboard:app"], suite=False, **env)
    return Server("ours", process, port, f"ws://127.0.0.1:{port}/whiteboard/ws")


def start_peer() -> Server:
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    process = start_server(["node", str(PEER_BIN)], port, env)
    return Server("peer", process, port, f"ws://127.0.0.1:{port}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def hosted_objects(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        return int(json.load(response)["hosted_objects"])


async def until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


# ------------------------------------------------------------------ Node clients


def run_node(script: str, server: Server, timeout: float) -> str:
    """Run a client in bench/node against ``server``; what it printed."""
    return subprocess.run(
        ["node", script, server.base],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=timeout,
    ).stdout


def yjs_bench(server: Server) -> dict[str, float]:
    """The shared client: initial sync of 5,000 strokes, then propagation p50/p99."""
    out = run_node("yjs_bench.mjs", server, timeout=180)
    sync = re.search(r"initial_sync_5000_strokes_ms=(\S+)", out)
    prop = re.search(r"propagation_ms p50=(\d+) p99=(\d+) n=(\d+)", out)
    if sync is None or prop is None:
        raise RuntimeError(f"yjs_bench.mjs printed {out!r}")
    if sync[1] == "timeout" or prop[3] != "200":
        print(f"  ! {server.name}: yjs_bench.mjs printed {out!r}", file=sys.stderr)
    return {
        "sync_ms": float(sync[1]) if sync[1].isdigit() else float("nan"),
        "prop_p50": float(prop[1]),
        "prop_p99": float(prop[2]),
    }


def server_sync(server: Server) -> dict[str, float]:
    """bench/node/sync.mjs: the same board, step 2 timed on raw sockets (nothing decoded)."""
    out = run_node("sync.mjs", server, timeout=120)
    return dict(json.loads(out.strip().splitlines()[-1]))


def fanout(server: Server, seconds: float, valkey_pid: int | None) -> dict[str, float]:
    """bench/node/fanout.mjs, with the server's (and Valkey's) CPU read over its window."""
    process = subprocess.Popen(
        ["node", "fanout.mjs", server.base, "--seconds", str(seconds)],
        cwd=NODE_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )
    marks: dict[str, tuple[float, float, float]] = {}
    result: dict[str, float] | None = None
    assert process.stdout is not None
    for line in process.stdout:
        line = line.strip()
        if line in ("window_start", "window_end"):
            valkey = cpu_seconds(valkey_pid) if valkey_pid else 0.0
            marks[line] = (time.perf_counter(), cpu_seconds(server.process.pid), valkey)
        elif line.startswith("{"):
            result = json.loads(line)
    if process.wait(60) != 0 or result is None:
        raise RuntimeError(f"fanout.mjs failed against {server.name}")
    (t0, c0, v0), (t1, c1, v1) = marks["window_start"], marks["window_end"]
    result["cpu"] = (c1 - c0) / (t1 - t0) * 100
    result["valkey_cpu"] = (v1 - v0) / (t1 - t0) * 100
    if result["delivered"] != result["expected"]:
        print(
            f"  ! {server.name}: fan-out delivered {result['delivered']} of {result['expected']}",
            file=sys.stderr,
        )
    return result


# ------------------------------------------------------------------ a y-websocket client


def drawing(updates: int, points: int = 3) -> list[bytes]:
    """``updates`` small Yjs updates as a pen makes them: a few points appended to a stroke
    (a Y.Array in the Y.Map 'strokes') each time, a new stroke every 100 updates."""
    doc: Doc[Any] = Doc()
    strokes = doc.get("strokes", type=Map)
    made: list[bytes] = []
    subscription = doc.observe(lambda event: made.append(event.update))
    for i in range(updates):
        xy = [float(v) for k in range(points) for v in (i + k, 2 * (i + k))]
        key = f"s{i // 100}"
        if i % 100 == 0:
            strokes[key] = Array(xy)
        else:
            strokes[key].extend(xy)
    doc.unobserve(subscription)
    return made


def small_drawing() -> bytes:
    """One update holding a small drawing: three strokes of 40 points."""
    doc: Doc[Any] = Doc()
    doc.get("strokes", type=Map)
    for update in drawing(3 * 14):
        doc.apply_update(update)
    return doc.get_update()


async def open_synced(url: str) -> tuple[ClientConnection, bytes]:
    """Open a socket, send our (empty) sync step 1, return at the server's step 2."""
    ws = await connect(url, max_size=None)
    await ws.send(protocol.sync(protocol.STEP1, b"\x00"))
    while True:
        message = protocol.decode(await ws.recv())  # type: ignore[arg-type]
        if isinstance(message, protocol.Sync) and message.step == protocol.STEP2:
            return ws, message.data


async def time_to_sync(url: str) -> tuple[float, bytes]:
    t0 = time.perf_counter()
    ws, state = await open_synced(url)
    elapsed = (time.perf_counter() - t0) * 1000
    await ws.close()
    return elapsed, state


# ------------------------------------------------------------------ activation


def board_keys(room: str) -> ObjectKeys:
    object_id = IdFactory(BOARDS, DEFAULT_ID_KEY.encode()).from_name(digest_of(room))
    return ObjectKeys.of("do", BOARDS, object_id.hex)


async def activations(redis_url: str, runs: int, reps: int = 3) -> list[dict[str, float]]:
    """Per run: a new board with a LOG_UPDATES-long log, written through a node with
    compaction off, and its cold activation there (median of ``reps``, evicted in between);
    then a node with low thresholds activates and compacts it, and its cold activation
    there. Both nodes evict a board a second after its last socket closes. They run one
    after the other: alarms are claimed by any node, and these two have no CLUSTER_SECRET
    to forward one to the node that holds the board."""
    evict = {"IDLE_TIMEOUT": "1", "SWEEP_INTERVAL": "0.2"}
    client = redis.Redis.from_url(redis_url)
    updates = drawing(LOG_UPDATES)
    results = []

    async def cold(server: Server, room: str) -> tuple[float, int]:
        times, sizes = [], set()
        for _ in range(reps):
            await until(lambda: hosted_objects(server.port) == 0, 30, "the board's eviction")
            elapsed, state = await time_to_sync(server.url(room))
            times.append(elapsed)
            sizes.add(len(state))
        assert len(sizes) == 1, sizes
        return statistics.median(times), sizes.pop()

    try:
        for run in range(runs):
            room = f"log{run}-{os.urandom(4).hex()}"
            index = board_keys(room).index

            def log_entries(index: str = index) -> int:
                return int(client.zlexcount(index, "[log/", "(log0"))

            plain = start_ours(redis_url, **NO_COMPACTION, **evict)
            try:
                ws, _ = await open_synced(plain.url(room))
                t0 = time.perf_counter()
                for update in updates:
                    await ws.send(protocol.sync(protocol.UPDATE, update))
                await until(lambda: log_entries() >= LOG_UPDATES, 300, "the log to be written")
                write_s = time.perf_counter() - t0
                await ws.close()
                log_ms, log_size = await cold(plain, room)
            finally:
                plain.stop()

            # Compacts through the quiet path (log >= 500 updates, 0.5 s quiet); the forced
            # path (log >= WHITEBOARD_COMPACT_FORCE_UPDATES) is kept out of the way so the
            # figure always measures the same thing.
            compacting = start_ours(
                redis_url,
                WHITEBOARD_COMPACT_QUIET="0.5",
                WHITEBOARD_COMPACT_FORCE_UPDATES=str(10 * LOG_UPDATES),
                **evict,
            )
            try:
                t0 = time.perf_counter()
                ws, _ = await open_synced(compacting.url(room))
                await until(lambda: log_entries() == 0, 60, "compaction")
                compact_s = time.perf_counter() - t0
                await ws.close()
                snap_ms, snap_size = await cold(compacting, room)
            finally:
                compacting.stop()
            if snap_size != log_size:
                print(f"  ! the compacted board syncs {snap_size} bytes, not {log_size}")
            results.append(
                {
                    "log_ms": log_ms,
                    "snap_ms": snap_ms,
                    "write_s": write_s,
                    "compact_s": compact_s,
                    "state_bytes": log_size,
                }
            )
    finally:
        client.close()
    return results


# ------------------------------------------------------------------ memory


async def memory(server: Server, boards: int = 200, clients: int = 500) -> dict[str, float]:
    """KiB of server RSS per idle loaded board, and per client connected to one board."""
    pid = server.process.pid
    update = protocol.sync(protocol.UPDATE, small_drawing())
    tag = os.urandom(3).hex()

    async def draw(room: str) -> None:
        ws, _ = await open_synced(server.url(room))
        await ws.send(update)
        await ws.close()

    for i in range(10):  # warm every code path first
        await draw(f"warm{tag}-{i}")
    await asyncio.sleep(1)
    before = rss_kib(pid)
    for start in range(0, boards, 20):
        await asyncio.gather(*(draw(f"idle{tag}-{i}") for i in range(start, start + 20)))
    await asyncio.sleep(2)
    idle = rss_kib(pid)

    room = f"crowd{tag}"
    await draw(room)
    await asyncio.sleep(1)
    alone = rss_kib(pid)
    sockets: list[ClientConnection] = []
    for _ in range(0, clients, 50):
        batch = await asyncio.gather(*(open_synced(server.url(room)) for _i in range(50)))
        sockets += [ws for ws, _ in batch]
    await asyncio.sleep(2)
    crowded = rss_kib(pid)
    await asyncio.gather(*(ws.close() for ws in sockets))
    return {"per_board": (idle - before) / boards, "per_client": (crowded - alone) / clients}


# ------------------------------------------------------------------ the table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0, help="fan-out window")
    args = parser.parse_args()
    if not SHARED_CLIENT.exists():
        sys.exit(f"the shared client is missing: {SHARED_CLIENT}")
    node_tools()

    runs: dict[str, list[dict[str, float]]] = {
        "yjs ours": [],
        "yjs peer": [],
        "sync ours": [],
        "sync peer": [],
        "fanout ours": [],
        "fanout peer": [],
        "memory ours": [],
        "memory peer": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        valkey = ValkeyProcess(tmp, unix_socket=True, appendfsync="always").start()
        assert valkey.process is not None
        try:
            ours = start_ours(valkey.url)
            try:
                peer = start_peer()
                try:
                    for run in range(args.runs):
                        print(f"run {run + 1}/{args.runs}: shared client, fan-out", file=sys.stderr)
                        # Alternate who goes first: the machine's noise comes and goes.
                        both = (ours, peer) if run % 2 == 0 else (peer, ours)
                        for server in both:
                            runs[f"yjs {server.name}"].append(yjs_bench(server))
                        for server in both:
                            runs[f"sync {server.name}"].append(server_sync(server))
                        for server in both:
                            pid = valkey.process.pid if server is ours else None
                            runs[f"fanout {server.name}"].append(fanout(server, args.seconds, pid))
                finally:
                    peer.stop()
            finally:
                ours.stop()
            print("activation of a 10,000-update log, before and after compaction", file=sys.stderr)
            runs["activation"] = asyncio.run(activations(valkey.url, args.runs))
            for run in range(args.runs):
                print(f"run {run + 1}/{args.runs}: memory", file=sys.stderr)
                for name in ("ours", "peer"):
                    server = (
                        start_ours(valkey.url, IDLE_TIMEOUT="600")
                        if name == "ours"
                        else start_peer()
                    )
                    try:
                        runs[f"memory {server.name}"].append(asyncio.run(memory(server)))
                    finally:
                        server.stop()
        finally:
            valkey.stop()

    def med(group: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[group])

    def each(group: str, key: str, fmt: str = "{:.0f}") -> str:
        return ", ".join(fmt.format(r[key]) for r in runs[group])

    fo, fp = "fanout ours", "fanout peer"
    rows = [
        ("figure", "ours", "peer (y-websocket@2, Node)", "target"),
        (
            "initial sync, 5,000-stroke board, new client",
            f"{med('yjs ours', 'sync_ms'):.0f} ms",
            f"{med('yjs peer', 'sync_ms'):.0f} ms",
            "<= 90 ms (peer ~91)",
        ),
        (
            "  server side: raw socket to sync step 2",
            f"{med('sync ours', 'median_ms'):.1f} ms",
            f"{med('sync peer', 'median_ms'):.1f} ms",
            "",
        ),
        (
            "propagation, 2 clients, 1 update / 5 ms",
            f"p50 {med('yjs ours', 'prop_p50'):.0f} / p99 {med('yjs ours', 'prop_p99'):.0f} ms",
            f"p50 {med('yjs peer', 'prop_p50'):.0f} / p99 {med('yjs peer', 'prop_p99'):.0f} ms",
            "p99 <= 3 ms (peer 1/2)",
        ),
        (
            "20 clients x 20 updates/s, propagation",
            f"p50 {med(fo, 'p50_ms'):.1f} / p99 {med(fo, 'p99_ms'):.1f} ms",
            f"p50 {med(fp, 'p50_ms'):.1f} / p99 {med(fp, 'p99_ms'):.1f} ms",
            "p99 <= 20 ms",
        ),
        (
            "  server CPU meanwhile (% of one core)",
            f"{med(fo, 'cpu'):.0f} % (+ Valkey {med(fo, 'valkey_cpu'):.0f} %)",
            f"{med(fp, 'cpu'):.0f} %",
            "report",
        ),
        (
            f"cold activation, {LOG_UPDATES:,}-update log",
            f"{med('activation', 'log_ms'):.0f} ms",
            "n/a (stores nothing)",
            "report",
        ),
        (
            "cold activation, same board compacted",
            f"{med('activation', 'snap_ms'):.1f} ms",
            "n/a",
            "report",
        ),
        (
            "RSS per idle loaded board (200)",
            f"{med('memory ours', 'per_board'):.1f} KiB",
            f"{med('memory peer', 'per_board'):.1f} KiB",
            "report",
        ),
        (
            "RSS per connected client (500, one board)",
            f"{med('memory ours', 'per_client'):.1f} KiB",
            f"{med('memory peer', 'per_client'):.1f} KiB",
            "report",
        ),
    ]
    print(f"\nWhiteboard, median of {args.runs} runs, {os.cpu_count()} cores, AOF fsync always")
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, row in enumerate(rows):
        print(" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
        if i == 0:
            print("-|-".join("-" * w for w in widths))

    delivered = sum(r["delivered"] for r in runs[fo] + runs[fp])
    expected = sum(r["expected"] for r in runs[fo] + runs[fp])
    act = runs["activation"]
    one = "{:.1f}"
    print("\nper run (ours | peer):")
    for label, ours_runs, peer_runs in (
        ("initial sync ms", each("yjs ours", "sync_ms"), each("yjs peer", "sync_ms")),
        (
            "server side of it, ms",
            each("sync ours", "median_ms", one),
            each("sync peer", "median_ms", one),
        ),
        ("2 clients, p50 ms", each("yjs ours", "prop_p50"), each("yjs peer", "prop_p50")),
        ("2 clients, p99 ms", each("yjs ours", "prop_p99"), each("yjs peer", "prop_p99")),
        ("fan-out p50 ms", each(fo, "p50_ms", one), each(fp, "p50_ms", one)),
        ("fan-out p99 ms", each(fo, "p99_ms", one), each(fp, "p99_ms", one)),
        ("fan-out CPU %", each(fo, "cpu"), each(fp, "cpu")),
        ("fan-out Valkey CPU %", each(fo, "valkey_cpu"), ""),
        ("fan-out client CPU %", each(fo, "client_cpu"), each(fp, "client_cpu")),
        (
            "client loop delay p99 ms",
            each(fo, "client_loop_delay_p99_ms", one),
            each(fp, "client_loop_delay_p99_ms", one),
        ),
        ("activation, log ms", each("activation", "log_ms"), ""),
        ("activation, compacted ms", each("activation", "snap_ms", one), ""),
        (
            "KiB per idle board",
            each("memory ours", "per_board", one),
            each("memory peer", "per_board", one),
        ),
        (
            "KiB per client",
            each("memory ours", "per_client", one),
            each("memory peer", "per_client", one),
        ),
    ):
        print(f"  {label:26} {ours_runs}" + (f" | {peer_runs}" if peer_runs else ""))
    print(f"  fan-out updates delivered: {delivered:,} of {expected:,}")
    print(
        f"  writing the {LOG_UPDATES:,}-update log took {each('activation', 'write_s', one)} s, "
        f"compacting it {each('activation', 'compact_s', one)} s; the board syncs "
        f"{act[0]['state_bytes']:,.0f} bytes"
    )


if __name__ == "__main__":
    main()
