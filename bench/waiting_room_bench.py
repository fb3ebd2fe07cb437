"""Waiting room (issue #11's figures): admission decisions per second, and position fan-out.

    .venv/bin/python bench/waiting_room_bench.py [--runs 3] [--seconds 5] [--connections 32]
                                                 [--sockets 10000]

Everything runs on this machine: a Valkey (AOF, fsync always, like `make run`), node
processes serving the suite, and the load from this process over keep-alive connections.
Each simulated visitor makes four decisions: arrives (admitted), two more requests (session
renewed), leaves (slot freed). Prints medians of --runs runs:

- decisions/s of one room through one node's HTTP interface, beside a bare Starlette route
  answering the same JSON in the same run (no object, storage or signing), and their ratio;
  and, on the same node, the runtime's own floor: a route making one RPC to a hot object
  (without and with one write), which any decision pays;
- the same room over three nodes, connections spread over them: one room object (two nodes
  forward every decision to it), and slot leasing (each node's shard decides locally);
- fan-out: N queued visitors with the waiting page's socket open; the admitted visitor leaves,
  everyone moves up one place; the time until every socket has its new position and the
  node's CPU seconds for it, for 1,000 and --sockets pages (linear, not quadratic, work).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import self_fenced, start_node, start_server  # noqa: E402
from bench.results import Panel, publish, table  # noqa: E402
from runtime.storage.embedded import ValkeyProcess, free_port  # noqa: E402

SECRET = "bench-waiting-room-secret"
ROOM = {
    "total_active_users": 1_000_000,
    "new_users_per_minute": 1_000_000,
    "session_duration": 600,
    "queueing_method": "fifo",
}


class Conn:
    """A keep-alive HTTP/1.1 connection: the load generator must stay cheap."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, cookie: str = "", body: bytes = b""
    ) -> tuple[int, str, bytes]:
        """(status, the value of the first Set-Cookie, body)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
        )
        if cookie:
            head += f"Cookie: {cookie}\r\n"
        if body:
            head += "Content-Type: application/json\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status, length, set_cookie = int(raw[9:12]), 0, ""
        for line in raw.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"set-cookie" and not set_cookie:
                set_cookie = value.decode().strip().split(";", 1)[0]
        return status, set_cookie, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def decisions(ports: list[int], room: str, connections: int, seconds: float) -> dict:
    """Visitors in a loop on ``connections`` connections: decisions/s and refusals."""
    done = errors = 0
    path = f"/waiting-room/r/{room}/"
    stop = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        nonlocal done, errors
        conn = Conn(ports[w % len(ports)])
        try:
            while time.perf_counter() < stop:
                status, cookie, _ = await conn.request("GET", path)
                statuses = [status]
                for _ in range(2):
                    statuses.append((await conn.request("GET", path, cookie))[0])
                statuses.append((await conn.request("POST", path + "leave", cookie))[0])
                done += 4
                errors += sum(s != 200 for s in statuses)
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(connections)))
    return {"rate": done / (time.perf_counter() - start), "errors": errors}


async def floor(port: int, path: str, connections: int, seconds: float) -> dict:
    """The runtime alone: one POST per request, each one RPC to one hot object."""
    done = errors = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, errors
        conn = Conn(port)
        try:
            while time.perf_counter() < stop:
                status, _, _ = await conn.request("POST", path)
                done += 1
                errors += status != 200
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return {"rate": done / (time.perf_counter() - start), "errors": errors}


async def create_room(port: int, **settings: object) -> str:
    conn = Conn(port)
    try:
        body = json.dumps({**ROOM, **settings}).encode()
        status, _, answer = await conn.request("POST", "/waiting-room/api/rooms", body=body)
        assert status == 201, answer
        return str(json.loads(answer)["room"])
    finally:
        conn.close()


#: Objects each node gave up under load (self-fencing), read as it stops: must stay 0.
FENCED: list[int] = []
OPS_TOKEN = "waiting-room-bench-ops-token"


def stop(process: subprocess.Popen[bytes], port: int | None = None) -> None:
    """Stop a server; a node (``port`` given) says first how many objects it gave up."""
    if port is not None and process.poll() is None:
        FENCED.append(self_fenced(port, OPS_TOKEN))
    process.terminate()
    process.wait(30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ decisions per second


async def decision_figures(url: str, args: argparse.Namespace) -> dict[str, list[dict]]:
    keys = ("baseline", "plain", "noop", "write", "one", "three", "leasing")
    out: dict[str, list[dict]] = {k: [] for k in keys}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = str(ROOT / "bench" / "baselines" / "starlette_waiting_room.py")
    for run in range(args.runs):
        port = free_port()
        base = start_server([sys.executable, script, str(port)], port, env)
        try:
            out["baseline"].append(await decisions([port], "r", args.connections, args.seconds))
        finally:
            stop(base)
        port = free_port()
        node = start_node(port, url, apps=["bench.objects:app"], OPS_TOKEN=OPS_TOKEN)
        try:
            await floor(port, "/bench/hot/write", 4, 1.0)
            paths = {"plain": "plain", "noop": "touch", "write": "write"}
            for key, path in paths.items():
                out[key].append(
                    await floor(port, f"/bench/hot/{path}", args.connections, args.seconds)
                )
            room = await create_room(port)
            await decisions([port], room, 4, 1.0)  # warm up: keys, object, caches
            out["one"].append(await decisions([port], room, args.connections, args.seconds))
        finally:
            stop(node, port)
        ports = [free_port() for _ in range(3)]
        nodes = [
            start_node(p, url, CLUSTER_SECRET=SECRET, NODE_ID=f"b{run}n{i}", OPS_TOKEN=OPS_TOKEN)
            for i, p in enumerate(ports)
        ]
        try:
            for label, leasing in (("three", False), ("leasing", True)):
                room = await create_room(ports[0], slot_leasing=leasing)
                await decisions(ports, room, 6, 1.0)
                out[label].append(await decisions(ports, room, args.connections, args.seconds))
        finally:
            for n, p in zip(nodes, ports, strict=True):
                stop(n, p)
        got = ", ".join(f"{k} {v[-1]['rate']:,.0f}/s" for k, v in out.items())
        print(f"  run {run + 1}: {got}", file=sys.stderr)
    return out


# ------------------------------------------------------------------ fan-out


class Page:
    """A waiting page's socket: a bare WebSocket client reading the room's text frames."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, path: str, cookie: str) -> Page:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Cookie: {cookie}\r\n\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(head.decode(errors="replace"))
        return cls(reader, writer)

    async def status(self) -> dict:
        first, n = await self.reader.readexactly(2)
        n &= 0x7F
        if n == 126:
            n = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        payload = await self.reader.readexactly(n)
        if first & 0x0F != 0x1:
            raise ConnectionError(f"opcode {first & 0x0F}")
        return dict(json.loads(payload))

    def close(self) -> None:
        self.writer.close()


async def fanout(url: str, sockets: int, push_rate: int) -> dict[str, float]:
    """``sockets`` queued pages; the one admitted visitor leaves: until all have moved up."""
    port = free_port()
    node = start_node(port, url, WAITING_ROOM_PUSH_RATE=str(push_rate), OPS_TOKEN=OPS_TOKEN)
    pages: list[Page] = []
    try:
        room = await create_room(port, total_active_users=1)
        path = f"/waiting-room/r/{room}/"
        conns = [Conn(port) for _ in range(32)]
        _, holder, _ = await conns[0].request("GET", path)
        cookies: list[str] = [""] * sockets

        async def join(w: int) -> None:
            for i in range(w, sockets, len(conns)):
                cookies[i] = (await conns[w].request("GET", path))[1]

        await asyncio.gather(*(join(w) for w in range(len(conns))))
        for i in range(0, sockets, 500):
            pages += await asyncio.gather(
                *(Page.open(port, path + "ws", c) for c in cookies[i : i + 500])
            )
        first = await asyncio.gather(*(p.status() for p in pages))
        assert sorted(s["position"] for s in first) == list(range(1, sockets + 1))
        for c in conns:
            c.close()
        leaver = Conn(port)  # (a fresh connection: the others sat idle past keep-alive)
        await asyncio.sleep(1.0)  # quiet
        cpu = cpu_seconds(node.pid)
        start = time.perf_counter()
        status, _, _ = await leaver.request("POST", path + "leave", holder)
        assert status == 200

        async def moved(page: Page, before: int) -> None:
            while True:
                s = await page.status()
                if s["status"] == "admitted" or s["position"] == before - 1:
                    return

        await asyncio.gather(*(moved(p, s["position"]) for p, s in zip(pages, first, strict=True)))
        elapsed = time.perf_counter() - start
        used = cpu_seconds(node.pid) - cpu
        leaver.close()
        return {"seconds": elapsed, "cpu": used}
    finally:
        for p in pages:
            p.close()
        stop(node, port)


# ------------------------------------------------------------------ main


def med(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows)


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        valkey = ValkeyProcess(tmp, unix_socket=True, appendfsync=args.appendfsync).start()
        figures: dict[str, list[dict]] = {}
        spreads: dict[int, list[dict]] = {}
        paced: dict[str, float] = {}
        try:
            if args.only != "fanout":
                figures = await decision_figures(valkey.url, args)
            if args.only != "decisions":
                for n in sorted({min(1000, args.sockets), args.sockets}):
                    spreads[n] = [await fanout(valkey.url, n, 10**9) for _ in range(args.runs)]
                paced = await fanout(valkey.url, args.sockets, 5000)
        finally:
            valkey.stop()
    heading = (
        f"Waiting room, median of {args.runs} runs, {args.seconds:.0f} s each, "
        f"{args.connections} connections, {os.cpu_count()} cores, AOF fsync {args.appendfsync}"
    )
    parts, panels = [heading], []
    if figures:
        text, panel = decisions_table(figures)
        parts.append(text)
        panels.append(panel)
    if spreads:
        text, panel = fanout_table(spreads, paced, args.sockets)
        parts.append(text)
        panels.append(panel)
    parts.append(
        f"objects the nodes gave up under this load (self-fencing; must be 0): {sum(FENCED)} "
        f"over {len(FENCED)} node runs"
    )
    publish("waiting_room", "\n\n".join(parts), panels)


DECISION_ROWS = [
    ("bare Starlette route, same JSON (baseline)", "baseline"),
    ("(floor) node route, no object", "plain"),
    ("(floor) node route -> one RPC, no storage", "noop"),
    ("(floor) node route -> one RPC, one write", "write"),
    ("one room object, one node", "one"),
    ("one room object, three nodes", "three"),
    ("slot leasing, three nodes", "leasing"),
]


def decisions_table(figures: dict[str, list[dict]]) -> tuple[str, Panel]:
    base = med(figures["baseline"], "rate")
    rows = []
    for label, key in DECISION_ROWS:
        rate = med(figures[key], "rate")
        errors = sum(r["errors"] for r in figures[key])
        note = f"{errors} refused" if errors else ""
        rows.append((label, f"{rate:,.0f}", f"{rate / base:.0%}", note))
    text = table(rows, ("admission decisions (arrive, renew x2, leave)", "per s", "ratio", ""))
    panel = Panel(
        "Admission decisions per second (the target: half the bare route's rate)",
        "decisions/s",
        [key for _, key in DECISION_ROWS],
        {"rate": [med(figures[key], "rate") for _, key in DECISION_ROWS]},
        targets=[None, None, None, None, base / 2, base / 2, base / 2],
    )
    return text, panel


def fanout_table(
    spreads: dict[int, list[dict]], paced: dict[str, float], sockets: int
) -> tuple[str, Panel]:
    rows = [
        (f"{n:,} sockets, one pass", f"{med(r, 'seconds'):.2f}", f"{med(r, 'cpu'):.2f}")
        for n, r in spreads.items()
    ]
    rows.append(
        (
            f"{sockets:,} sockets, default pacing (5,000 updates/s)",
            f"{paced['seconds']:.2f}",
            f"{paced['cpu']:.2f}",
        )
    )
    text = table(rows, ("fan-out: every queued page moves up one place", "time s", "CPU s"))
    groups = [row[0] for row in rows]
    panel = Panel(
        "Fan-out: time for every queued page to hear its new place",
        "s",
        groups,
        {
            "wall time": [float(row[1]) for row in rows],
            "node CPU": [float(row[2]) for row in rows],
        },
    )
    return text, panel


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--appendfsync", choices=["always", "everysec"], default="always")
    parser.add_argument("--only", choices=["decisions", "fanout"], default=None)
    args = parser.parse_args()
    # Each fan-out socket is a file on both sides (the node inherits this limit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(soft, min(hard, args.sockets * 2 + 1000))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
