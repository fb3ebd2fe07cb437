"""Whiteboard: our node against the reference y-websocket server, with stock Yjs clients.

    .venv/bin/python bench/whiteboard_bench.py [--runs 5] [--seconds 10] [--cross-check]

Starts a Valkey configured like `make run`'s embedded one (append-only file, fsync always), a
node serving the whiteboard app, and the peer: the reference Node.js server of the npm
package y-websocket@2 (its `y-websocket` bin, no persistence: documents live in its memory
only), and for the propagation rows the same server with its own persistence on
(`YPERSISTENCE`: y-leveldb, which stores each update after broadcasting it). The Node
tooling lives in bench/node and is installed here (`npm ci`) when its node_modules is
missing. Prints one table of medians over --runs runs, ours beside the peer,
and keeps it with a chart under bench/results/ (whiteboard.txt, whiteboard.png):

- initial sync of a 5,000-stroke board to a new client (in a fresh Node process, and warm),
  and propagation of small updates between two clients, one every 5 ms: the stock Yjs client
  (bench/node/stock_client.mjs);
- the server's side of that initial sync (bench/node/sync.mjs): the same board, and raw
  sockets that time the sync step 2 without decoding it into a Yjs document;
- 20 clients on one board, each appending a few points to its own stroke 20 times a second
  (bench/node/fanout.mjs): propagation p50/p99 over every receiver, and the server process's
  CPU over that window (for ours, Valkey's too);
- cold activation (socket opened to sync step 2 received) of a board whose log holds 10,000
  updates, written through a node with compaction off, then of the same board once a node
  with low thresholds has compacted it (ours only: the peer stores nothing);
- node RSS per idle loaded board (200 boards, a small drawing each, sockets closed) and per
  connected client (500 sockets on one board);
- what one pen update costs the board's rules on a big board (50,000 strokes, a tenth of them
  erased), in this process with no I/O: time per update and bytes stored per update (ours
  only: the peer relays each transaction's bytes and stores nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402
from pycrdt import Array, Doc, Map  # noqa: E402
from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from apps.whiteboard import protocol  # noqa: E402
from apps.whiteboard.config import WhiteboardConfig  # noqa: E402
from apps.whiteboard.effects import Persist  # noqa: E402
from apps.whiteboard.links import digest_of  # noqa: E402
from apps.whiteboard.names import BOARDS  # noqa: E402
from apps.whiteboard.rules import BoardRules  # noqa: E402
from bench import crosscheck  # noqa: E402
from bench.common import (  # noqa: E402
    NODE_DIR,
    Server,
    fsync_floor,
    node_tools,
    rss_kib,
    run_client,
    start_node,
    start_peer,
)
from bench.results import Panel, publish, table  # noqa: E402
from runtime.base.config import DEFAULT_ID_KEY  # noqa: E402
from runtime.objects.ids import IdFactory  # noqa: E402
from runtime.storage.embedded import ValkeyProcess, free_port  # noqa: E402
from runtime.storage.keyspace import ObjectKeys  # noqa: E402

LOG_UPDATES = 10_000
NO_COMPACTION = {
    "WHITEBOARD_COMPACT_UPDATES": "10000000",
    "WHITEBOARD_COMPACT_FORCE_UPDATES": "10000000",
    "WHITEBOARD_COMPACT_BYTES": str(2**50),
}


# ------------------------------------------------------------------ servers


def start_ours(redis_url: str, **env: str) -> Server:
    port = free_port()
    process = start_node(port, redis_url, apps=["apps.whiteboard:app"], suite=False, **env)
    return Server("ours", process, port, f"ws://127.0.0.1:{port}/whiteboard/ws")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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


def run_node(script: str, server: Server, timeout: float) -> dict[str, Any]:
    """Run a client in bench/node against ``server``; the JSON it printed last."""
    return run_client(["node", script, server.base], timeout, cwd=NODE_DIR)


def stock_client(server: Server) -> dict[str, float]:
    """bench/node/stock_client.mjs: initial sync of 5,000 strokes, then propagation p50/p99."""
    result = run_node("stock_client.mjs", server, timeout=180)
    if result["sync_ms"] is None or result["delivered"] != result["updates"]:
        print(f"  ! {server.name}: stock_client.mjs printed {result}", file=sys.stderr)
    # (JSON has no NaN: the client writes a sync that timed out as null)
    return {k: float("nan") if v is None else float(v) for k, v in result.items()}


def server_sync(server: Server) -> dict[str, float]:
    """bench/node/sync.mjs: the same board, step 2 timed on raw sockets (nothing decoded)."""
    return run_node("sync.mjs", server, timeout=120)


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


async def open_synced(url: str, **options: Any) -> tuple[ClientConnection, bytes]:
    """Open a socket, send our (empty) sync step 1, return at the server's step 2.
    ``options`` go to websockets' connect()."""
    ws = await connect(url, max_size=None, **options)
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
    object_id = IdFactory(BOARDS.name, DEFAULT_ID_KEY.encode()).from_name(digest_of(room))
    return ObjectKeys.of("do", BOARDS.name, object_id.hex)


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


# ------------------------------------------------------------------ rules on a big board


def pen_update_cost(runs: int, strokes: int = 50_000, updates: int = 400) -> list[dict[str, float]]:
    """A page's document of ``strokes`` strokes of 40 points, every tenth one erased (a delete
    set of strokes / 10 ranges), and ``updates`` pen updates it made (a point appended to a
    stroke each); per run, a new board's rules (no I/O) load the document and take those
    updates as a browser sends them: microseconds per update (p50, p99) and bytes stored per
    update. (The document is built once: that takes most of the time.)"""
    page: Doc[Any] = Doc()
    board: Array[Any] = page.get("strokes", type=Array)
    with page.transaction():  # (inserted at the front: appending makes Yrs walk the array)
        for i in range(strokes):
            board.insert(0, Map({"color": "#123456", "pts": Array(list(range(i, i + 40)))}))
    with page.transaction():  # every tenth stroke erased, as people erase: here and there
        for i in reversed(range(0, strokes, 10)):
            del board[i]
    drawn = page.get_update()
    sent: list[bytes] = []
    subscription = page.observe(lambda event: sent.append(event.update))
    pen = board[len(board) - 1]["pts"]
    for k in range(updates):
        pen.append(k)
    page.unobserve(subscription)
    config = WhiteboardConfig(max_board_bytes=2**31, max_update_bytes=2**30)
    results = []
    for _ in range(runs):
        rules = BoardRules(config)
        rules.load([drawn])
        rules.connect(1, read_only=False)
        rules.connect(2, read_only=False)
        times, stored = [], []
        for update in sent:
            message = protocol.sync(protocol.UPDATE, update)
            t0 = time.perf_counter()
            effects = rules.receive(1, message, 0.0)
            times.append((time.perf_counter() - t0) * 1e6)
            stored.append(sum(len(e.update) for e in effects if isinstance(e, Persist)))
        times.sort()
        results.append(
            {
                "p50_us": times[len(times) // 2],
                "p99_us": times[int(len(times) * 0.99)],
                "stored_bytes": statistics.median(stored),
                "sent_bytes": statistics.median(len(u) for u in sent),
            }
        )
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
    parser.add_argument("--cross-check", action="store_true", help=crosscheck.HELP)
    args = parser.parse_args()
    if args.cross_check and (why := crosscheck.missing(crosscheck.YJS)):
        parser.error(why)
    node_tools()

    groups = ["stock", "shared", "sync", "fanout", "memory"]
    runs: dict[str, list[dict[str, float]]] = {
        f"{group} {name}": [] for group in groups for name in ("ours", "peer")
    }
    runs["stock peerdb"], runs["fanout peerdb"], runs["fsync"] = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        valkey = ValkeyProcess(tmp, unix_socket=True, appendfsync="always").start()
        assert valkey.process is not None
        try:
            ours = start_ours(valkey.url)
            try:
                peer = start_peer()
                # The peer again with its own store (y-leveldb), which writes each update
                # after broadcasting it: the storage-backed peer row.
                peerdb = start_peer(persist_dir=Path(tmp) / "yleveldb")
                try:
                    for run in range(args.runs):
                        print(f"run {run + 1}/{args.runs}: stock client, fan-out", file=sys.stderr)
                        # Alternate who goes first: the machine's noise comes and goes.
                        both = (ours, peer) if run % 2 == 0 else (peer, ours)
                        three = (*both, peerdb) if run % 2 == 0 else (peerdb, *both)
                        for server in three:
                            runs[f"stock {server.name}"].append(stock_client(server))
                        for server in both if args.cross_check else ():
                            runs[f"shared {server.name}"].append(crosscheck.yjs(server))
                        for server in both:
                            runs[f"sync {server.name}"].append(server_sync(server))
                        for server in three:
                            pid = valkey.process.pid if server is ours else None
                            runs[f"fanout {server.name}"].append(fanout(server, args.seconds, pid))
                        # One fsync'd SET at a time at the fan-out's pace (20 x 20 updates/s):
                        # what each of our broadcasts waits for, and the peer's never does.
                        p50, p99 = fsync_floor(valkey.url, writes=2000, rate=400)
                        runs["fsync"].append({"p50_ms": p50, "p99_ms": p99})
                finally:
                    peer.stop()
                    peerdb.stop()
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
    print("pen updates on a 50,000-stroke board (rules only)", file=sys.stderr)
    runs["pen"] = pen_update_cost(args.runs)
    report(runs, args)


def report(runs: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    """The table of medians, every run's figures under it, and the chart."""

    def med(group: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[group])

    def each(group: str, key: str, fmt: str = "{:.0f}") -> str:
        return ", ".join(fmt.format(r[key]) for r in runs[group])

    def both(group: str, key: str, fmt: str) -> tuple[str, str]:
        return fmt.format(med(f"{group} ours", key)), fmt.format(med(f"{group} peer", key))

    def p50_p99(group: str) -> tuple[str, str]:
        ours, peer = (
            f"p50 {med(f'{group} {name}', 'p50_ms'):.1f} / "
            f"p99 {med(f'{group} {name}', 'p99_ms'):.1f} ms"
            for name in ("ours", "peer")
        )
        return ours, peer

    def db(group: str) -> str:
        name = f"{group} peerdb"
        return f"p50 {med(name, 'p50_ms'):.1f} / p99 {med(name, 'p99_ms'):.1f} ms"

    fo, fp = "fanout ours", "fanout peer"
    rows = [
        (
            "initial sync, 5,000-stroke board, new client",
            *both("stock", "sync_ms", "{:.0f} ms"),
            "<= 90 ms (peer ~91)",
        ),
        ("  the same, a warm client process", *both("stock", "sync_warm_ms", "{:.0f} ms"), ""),
        ("  server side: raw socket to sync step 2", *both("sync", "median_ms", "{:.1f} ms"), ""),
        ("propagation, 2 clients, 1 update / 5 ms", *p50_p99("stock"), "p99 <= 3 ms (peer 1/2)"),
        ("  peer with YPERSISTENCE (y-leveldb)", "", db("stock"), ""),
        ("20 clients x 20 updates/s, propagation", *p50_p99("fanout"), "p99 <= 20 ms"),
        ("  peer with YPERSISTENCE (y-leveldb)", "", db("fanout"), ""),
        (
            "  fan-out p99, ours / peer's",
            f"{med(fo, 'p99_ms') / med(fp, 'p99_ms'):.2f}x; / y-leveldb's "
            f"{med(fo, 'p99_ms') / med('fanout peerdb', 'p99_ms'):.2f}x",
            "",
            "<= 1.5x",
        ),
        (
            "  limit: peer's p99 + one fsync'd write's p99",
            f"{med(fp, 'p99_ms') + med('fsync', 'p99_ms'):.1f} ms (fsync'd SET at 400/s: "
            f"p50 {med('fsync', 'p50_ms'):.2f} / p99 {med('fsync', 'p99_ms'):.2f} ms)",
            "",
            "report",
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
        ("RSS per idle loaded board (200)", *both("memory", "per_board", "{:.1f} KiB"), "report"),
        (
            "pen update, 50,000-stroke board: rules time",
            f"p50 {med('pen', 'p50_us'):.0f} / p99 {med('pen', 'p99_us'):.0f} us",
            "n/a (relays the bytes)",
            "report",
        ),
        (
            "  bytes stored per update",
            f"{med('pen', 'stored_bytes'):.0f} B (update {med('pen', 'sent_bytes'):.0f} B)",
            "n/a (stores nothing)",
            "report",
        ),
        (
            "RSS per connected client (500, one board)",
            *both("memory", "per_client", "{:.1f} KiB"),
            "report",
        ),
    ]
    if args.cross_check:
        rows[4:4] = [
            ("shared client: initial sync", *both("shared", "sync_ms", "{:.0f} ms"), ""),
            ("shared client: propagation, 2 clients", *p50_p99("shared"), ""),
        ]
    lines = [
        f"Whiteboard, median of {args.runs} runs, {os.cpu_count()} cores, AOF fsync always",
        table(rows, ("figure", "ours", "peer (y-websocket@2, Node)", "target")),
        "",
        "per run (ours | peer):",
    ]
    one = "{:.1f}"
    for label, ours_runs, peer_runs in (
        ("initial sync ms", each("stock ours", "sync_ms"), each("stock peer", "sync_ms")),
        ("  warm ms", each("stock ours", "sync_warm_ms"), each("stock peer", "sync_warm_ms")),
        (
            "server side of it, ms",
            each("sync ours", "median_ms", one),
            each("sync peer", "median_ms", one),
        ),
        ("2 clients, p50 ms", each("stock ours", "p50_ms", one), each("stock peer", "p50_ms", one)),
        ("2 clients, p99 ms", each("stock ours", "p99_ms", one), each("stock peer", "p99_ms", one)),
        ("fan-out p50 ms", each(fo, "p50_ms", one), each(fp, "p50_ms", one)),
        ("fan-out p99 ms", each(fo, "p99_ms", one), each(fp, "p99_ms", one)),
        ("  y-leveldb peer p50 ms", "", each("fanout peerdb", "p50_ms", one)),
        ("  y-leveldb peer p99 ms", "", each("fanout peerdb", "p99_ms", one)),
        ("fan-out CPU %", each(fo, "cpu"), each(fp, "cpu")),
        ("fan-out Valkey CPU %", each(fo, "valkey_cpu"), ""),
        ("fan-out client CPU %", each(fo, "client_cpu"), each(fp, "client_cpu")),
        (
            "client loop delay p99 ms",
            each(fo, "client_loop_delay_p99_ms", one),
            each(fp, "client_loop_delay_p99_ms", one),
        ),
        ("activation, log ms", each("activation", "log_ms"), ""),
        ("pen update p50 us", each("pen", "p50_us"), ""),
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
        lines.append(f"  {label:26} {ours_runs or '-'}" + (f" | {peer_runs}" if peer_runs else ""))
    stock = runs["stock ours"] + runs["stock peer"] + runs["stock peerdb"]
    fans = runs[fo] + runs[fp] + runs["fanout peerdb"]
    act = runs["activation"]
    lines += [
        f"  2-client updates delivered: {sum(r['delivered'] for r in stock):,.0f} of "
        f"{sum(r['updates'] for r in stock):,.0f}",
        f"  fan-out updates delivered: {sum(r['delivered'] for r in fans):,.0f} of "
        f"{sum(r['expected'] for r in fans):,.0f}",
        f"  writing the {LOG_UPDATES:,}-update log took {each('activation', 'write_s', one)} s, "
        f"compacting it {each('activation', 'compact_s', one)} s; the board syncs "
        f"{act[0]['state_bytes']:,.0f} bytes",
    ]

    def pick(server: str, figures: list[tuple[str, str] | None]) -> list[float]:
        """The medians of (group, key) figures of one server; None: not measured."""
        return [med(f"{f[0]} {server}", f[1]) if f else float("nan") for f in figures]

    def chart(
        figures: list[tuple[str, str] | None], shared: list[tuple[str, str] | None]
    ) -> dict[str, list[float]]:
        """Ours and the peer; with --cross-check, the shared client's figures beside them."""
        series = {"ours": pick("ours", figures), "peer (y-websocket@2)": pick("peer", figures)}
        if all(f is None or f[0] in ("stock", "fanout") for f in figures):
            series["peer + y-leveldb"] = pick("peerdb", figures)
        if args.cross_check and any(shared):
            series["ours, shared client"] = pick("ours", shared)
            series["peer, shared client"] = pick("peer", shared)
        return series

    panels = [
        Panel(
            "Initial sync of a 5,000-stroke board",
            "ms",
            ["new client, fresh Node process", "new client, warm", "server side: to sync step 2"],
            chart(
                [("stock", "sync_ms"), ("stock", "sync_warm_ms"), ("sync", "median_ms")],
                [("shared", "sync_ms"), None, None],
            ),
            [90, None, None],
        ),
        Panel(
            "Propagation of small updates",
            "ms",
            ["2 clients, p50", "2 clients, p99", "20 clients, p50", "20 clients, p99"],
            chart(
                [
                    ("stock", "p50_ms"),
                    ("stock", "p99_ms"),
                    ("fanout", "p50_ms"),
                    ("fanout", "p99_ms"),
                ],
                [("shared", "p50_ms"), ("shared", "p99_ms"), None, None],
            ),
            [None, 3, None, 20],
        ),
        Panel(
            "CPU during the 20-client fan-out",
            "% of one core",
            ["server", "its Valkey"],
            {
                "ours": [med(fo, "cpu"), med(fo, "valkey_cpu")],
                "peer (y-websocket@2)": [med(fp, "cpu"), float("nan")],
            },
        ),
        Panel(
            "Server memory (RSS)",
            "KiB",
            ["per idle loaded board", "per connected client"],
            chart([("memory", "per_board"), ("memory", "per_client")], [None, None]),
        ),
        Panel(
            f"Cold activation of a {LOG_UPDATES:,}-update log (ours; the peer stores nothing)",
            "ms",
            ["as a log", "compacted"],
            {"ours": [med("activation", "log_ms"), med("activation", "snap_ms")]},
        ),
    ]
    publish("whiteboard", "\n".join(lines), panels)


if __name__ == "__main__":
    main()
