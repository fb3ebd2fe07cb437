"""Read replicas (issue 25's figures): reads of one hot object from clients on three nodes,
and one document watched by thousands, with replicas and without, in one run.

    .venv/bin/python bench/replica_bench.py [--runs 3] [--seconds 5] [--sockets 3000]

Everything runs on this machine: a Valkey (AOF, fsync always), three node processes serving
``bench/replica_objects.py``, and the load in this process. Each run starts the nodes twice,
with ``REPLICAS=1`` and ``REPLICAS=0``, and measures:

- **reads**: read-only RPCs per second on one hot object, from 40 keep-alive clients per node
  on all three nodes, while a writer changes a value 50 times a second through the primary's
  node: a directory of 50 entries listed whole (``stub.directory()``, as a lobby directory's
  page reads it: the read ratio), and one key (``stub.read()``: where the nodes' HTTP stacks,
  not the object, are the cost); and the **staleness** of the replicas: how long after a
  commit a replica applied it (p50/p99, from /ops);
- **whiteboard view fan-out**: ``--sockets`` view links of one whiteboard spread over the
  three nodes (the app's own sockets: y-websocket, watching each node's replica of the
  board) and one editor drawing 5 strokes a second: each stroke's delay from the editor's
  send to each viewer (p99), and the CPU (seconds per second) of the board's node meanwhile;
- **the same shape on a test object** (``Doc``: a document kept in memory, lines appended):
  the CPU of the primary's node and of all three, then with the watchers only on the two
  nodes the primary is not on (where a replica takes the whole fan-out off the primary's
  node).

Prints a table of medians over ``--runs`` (kept with a chart under bench/results/,
replicas.txt and .png), the load average beside it, and as its last line
``replicas: read ratio N.NNx, staleness p99 X ms, view fan-out p99 Y ms vs Z ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import cpu_seconds, raise_open_files, start_node  # noqa: E402
from bench.results import Panel, publish, table  # noqa: E402
from runtime.storage.embedded import ValkeyProcess, free_port  # noqa: E402

SECRET = "bench-replica-secret-0123456789"
TOKEN = "bench-replica-ops-token"
READERS_PER_NODE = 40
WRITES_PER_SECOND = 50
UPDATES_PER_SECOND = 5


class Http:
    """A keep-alive HTTP/1.1 client with next to no CPU of its own."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def call(self, method: str, path: str) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            "Content-Length: 0\r\n\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        return int(head[9:12]), await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def start_cluster(url: str, replicas: bool) -> list[tuple[Any, int]]:
    nodes = []
    for i in range(3):
        port = free_port()
        process = start_node(
            port,
            url,
            apps=["bench.replica_objects:app"],
            suite=True,
            CLUSTER_SECRET=SECRET,
            OPS_TOKEN=TOKEN,
            NODE_ID=f"n{i + 1}",
            REPLICAS="1" if replicas else "0",
        )
        nodes.append((process, port))
    return nodes


def stop_cluster(nodes: list[tuple[Any, int]]) -> None:
    for process, _ in nodes:
        process.terminate()
    for process, _ in nodes:
        process.wait(30)


def node_figures(port: int) -> dict[str, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/ops/api/node")
    request.add_header("Authorization", f"Bearer {TOKEN}")
    with urllib.request.urlopen(request, timeout=10) as reply:
        figures: dict[str, Any] = json.loads(reply.read())
    return figures


async def reads(ports: list[int], seconds: float, tag: str, what: str = "list") -> dict[str, float]:
    """Reads per second from every node (``what``: "list" or "read"), a writer at
    WRITES_PER_SECOND meanwhile."""
    writer = Http(ports[0])
    status, _ = await writer.call("POST", f"/hot/{tag}/write?v=0")  # the primary: node 1
    assert status == 200, status
    for port in ports:  # each node's first read builds its replica
        client = Http(port)
        assert (await client.call("GET", f"/hot/{tag}/{what}"))[0] == 200
        client.close()
    done = 0
    stop = time.perf_counter() + seconds

    async def reader(port: int) -> None:
        nonlocal done
        client = Http(port)
        try:
            while time.perf_counter() < stop:
                status, _ = await client.call("GET", f"/hot/{tag}/{what}")
                if status == 200:
                    done += 1
        finally:
            client.close()

    async def write() -> None:
        i = 0
        while time.perf_counter() < stop:
            i += 1
            await writer.call("POST", f"/hot/{tag}/write?v={i}")  # (not 0: the list stays)
            await asyncio.sleep(1 / WRITES_PER_SECOND)

    started = time.perf_counter()
    await asyncio.gather(
        write(), *(reader(port) for port in ports for _ in range(READERS_PER_NODE))
    )
    writer.close()
    rate = done / (time.perf_counter() - started)
    staleness = [node_figures(port)["replicas"] for port in ports[1:]]
    p50s = [s["staleness_p50_ms"] for s in staleness if s["staleness_p50_ms"] is not None]
    p99s = [s["staleness_p99_ms"] for s in staleness if s["staleness_p99_ms"] is not None]
    return {
        "rate": rate,
        "staleness_p50": max(p50s, default=float("nan")),
        "staleness_p99": max(p99s, default=float("nan")),
    }


class Watcher(asyncio.Protocol):
    """A view-only socket: a WebSocket handshake, then each text frame's delay is noted."""

    def __init__(self, port: int, path: str, delays: list[float], ready: asyncio.Future[None]):
        self.port, self.path, self.delays, self.ready = port, path, delays, ready
        self.buffer = b""
        self.opened = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buffer += data
        if not self.opened:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101") and not self.ready.done():
                self.ready.set_exception(ConnectionError(self.buffer[:80].decode()))
            self.opened = True
            self.buffer = self.buffer[end + 4 :]
            if not self.ready.done():
                self.ready.set_result(None)
        while len(self.buffer) >= 2:
            size, start = self.buffer[1] & 0x7F, 2
            if size == 126:
                if len(self.buffer) < 4:
                    return
                size, start = int.from_bytes(self.buffer[2:4], "big"), 4
            elif size == 127:
                if len(self.buffer) < 10:
                    return
                size, start = int.from_bytes(self.buffer[2:10], "big"), 10
            if len(self.buffer) < start + size:
                return
            payload = self.buffer[start : start + size]
            if self.buffer[0] & 0x0F == 1:
                self.delays.append(now - float(payload))
            self.buffer = self.buffer[start + size :]


async def fanout(
    ports: list[int], pids: list[int], sockets: int, seconds: float, tag: str, spread: int = 0
) -> dict[str, float]:
    """p99 of a line's delay to every watcher, and the CPU seconds per second of the primary's
    node and of all three. ``spread``: watchers on every node (0), or only on the nodes the
    primary is not on (1)."""
    editor = Http(ports[0])
    assert (await editor.call("POST", f"/hot/doc/{tag}/append?line={time.time()}"))[0] == 200
    loop = asyncio.get_running_loop()
    delays: list[float] = []
    watchers = []
    hosts = ports[spread:]
    for i in range(sockets):
        port = hosts[i % len(hosts)]
        ready: asyncio.Future[None] = loop.create_future()
        path = f"/hot/doc/{tag}/view"
        transport, _ = await loop.create_connection(
            lambda port=port, path=path, ready=ready: Watcher(port, path, delays, ready),
            "127.0.0.1",
            port,
        )
        watchers.append(transport)
        await ready
    await asyncio.sleep(1.0)
    delays.clear()
    editor.close()  # (idle while the watchers connected: the node may have closed it)
    editor = Http(ports[0])
    cpu0, t0 = cpu_seconds(pids[0]), time.perf_counter()
    all0 = sum(cpu_seconds(pid) for pid in pids)
    updates = int(seconds * UPDATES_PER_SECOND)
    for _ in range(updates):
        await editor.call("POST", f"/hot/doc/{tag}/append?line={time.time()}")
        await asyncio.sleep(1 / UPDATES_PER_SECOND)
    await asyncio.sleep(1.0)
    took = time.perf_counter() - t0
    cpu = (cpu_seconds(pids[0]) - cpu0) / took
    cpu_all = (sum(cpu_seconds(pid) for pid in pids) - all0) / took
    expected = updates * sockets
    for transport in watchers:
        transport.close()
    editor.close()
    delays.sort()
    return {
        "p99": delays[int(0.99 * (len(delays) - 1))] * 1000 if delays else float("nan"),
        "p50": delays[len(delays) // 2] * 1000 if delays else float("nan"),
        "delivered": len(delays) / expected if expected else 0.0,
        "cpu": cpu,
        "cpu_all": cpu_all,
    }


def commit_costs(url: str, calls: int = 5000) -> list[tuple[str, float, float]]:
    """(case, Valkey µs per commit call, bytes Valkey sends per commit) for a one-key commit
    (100-byte value): not replicated, replicated with no replica, with three replicas."""
    import redis

    from runtime.storage.batch import WriteBatch
    from runtime.storage.keyspace import ObjectKeys
    from runtime.storage.scripts import load_source

    client = redis.Redis.from_url(url)
    sha = client.script_load(load_source("commit"))
    batch = WriteBatch()
    batch.entries["key"] = b"x" * 100
    out = []
    for case, replicated, replicas in (
        ("not replicated", False, 0),
        ("replicated, no replica", True, 0),
        ("replicated, 3 nodes with a replica", True, 3),
    ):
        keys = ObjectKeys.of("cost", "cost", case.replace(" ", "-"), replicated)
        client.set(keys.lease, "me:1")
        listeners = [client.pubsub() for _ in range(replicas)]
        for listener in listeners:
            listener.subscribe(keys.channel)
            listener.get_message(timeout=1)
        client.config_resetstat()  # (it resets the byte counts too: read them after)
        before = client.info("stats")["total_net_output_bytes"]
        pipe = client.pipeline(transaction=False)
        for _ in range(calls):
            pipe.evalsha(sha, len(keys.commit), *keys.commit, *batch.script_args("me:1"))
        pipe.execute()
        usec = client.info("commandstats")["cmdstat_evalsha"]["usec_per_call"]
        sent = client.info("stats")["total_net_output_bytes"] - before
        for listener in listeners:
            while listener.get_message(timeout=0.01) is not None:
                pass
            listener.close()
        out.append((case, float(usec), sent / calls))
    client.close()
    return out


class Viewer(asyncio.Protocol):
    """A whiteboard view link's socket that only counts: the arrival time of each update
    frame (y-websocket sync, step "update") it gets."""

    def __init__(self, port: int, path: str, arrivals: list[float], ready: asyncio.Future[None]):
        self.port, self.path, self.arrivals, self.ready = port, path, arrivals, ready
        self.buffer = b""
        self.opened = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buffer += data
        if not self.opened:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101") and not self.ready.done():
                self.ready.set_exception(ConnectionError(self.buffer[:80].decode()))
            self.opened = True
            self.buffer = self.buffer[end + 4 :]
            if not self.ready.done():
                self.ready.set_result(None)
        while len(self.buffer) >= 2:
            size, start = self.buffer[1] & 0x7F, 2
            if size == 126:
                if len(self.buffer) < 4:
                    return
                size, start = int.from_bytes(self.buffer[2:4], "big"), 4
            elif size == 127:
                if len(self.buffer) < 10:
                    return
                size, start = int.from_bytes(self.buffer[2:10], "big"), 10
            if len(self.buffer) < start + size:
                return
            payload = self.buffer[start : start + size]
            if payload[:2] == b"\x00\x02":  # sync, update: a stroke
                self.arrivals.append(now)
            self.buffer = self.buffer[start + size :]


async def board_fanout(ports: list[int], pids: list[int], sockets: int, seconds: float):
    """One whiteboard, ``sockets`` view links over the nodes, one editor on node 1: each
    stroke's delay to each viewer (p50, p99) and the board node's CPU meanwhile."""
    import re
    import secrets

    import httpx

    from tests.support.yclient import YClient

    room = secrets.token_hex(8)
    editor = await YClient.open(f"ws://127.0.0.1:{ports[0]}/whiteboard/ws/{room}")
    await editor.add("first", {"type": "pen"})
    async with httpx.AsyncClient() as http:
        page = (await http.get(f"http://127.0.0.1:{ports[0]}/whiteboard/b/{room}")).text
    found = re.search(r"/whiteboard/b/(v-[A-Za-z0-9_.\-]+)", page)
    assert found is not None, "no view link on the board's page"
    loop = asyncio.get_running_loop()
    arrivals: list[list[float]] = []
    viewers = []
    for i in range(sockets):
        port = ports[i % len(ports)]
        ready: asyncio.Future[None] = loop.create_future()
        mine: list[float] = []
        arrivals.append(mine)
        path = f"/whiteboard/ws/{found.group(1)}"
        transport, _ = await loop.create_connection(
            lambda port=port, path=path, mine=mine, ready=ready: Viewer(port, path, mine, ready),
            "127.0.0.1",
            port,
        )
        viewers.append(transport)
        await ready
    await asyncio.sleep(1.0)
    for mine in arrivals:
        mine.clear()
    strokes = int(seconds * UPDATES_PER_SECOND)
    sent: list[float] = []
    cpu0, t0 = cpu_seconds(pids[0]), time.perf_counter()
    for n in range(strokes):
        sent.append(time.perf_counter())
        await editor.add(f"s{n}", {"type": "pen", "points": [n, n + 1, n + 2]})
        await asyncio.sleep(1 / UPDATES_PER_SECOND)
    await asyncio.sleep(1.0)
    cpu = (cpu_seconds(pids[0]) - cpu0) / (time.perf_counter() - t0)
    delays = sorted(
        (got - sent[k]) * 1000 for mine in arrivals for k, got in enumerate(mine[:strokes])
    )
    delivered = sum(min(len(m), strokes) for m in arrivals) / (strokes * sockets)
    for transport in viewers:
        transport.close()
    await editor.close()
    return {
        "p99": delays[int(0.99 * (len(delays) - 1))] if delays else float("nan"),
        "p50": delays[len(delays) // 2] if delays else float("nan"),
        "delivered": delivered,
        "cpu": cpu,
    }


def one_run(url: str, replicas: bool, args: argparse.Namespace, tag: str) -> dict[str, Any]:
    nodes = start_cluster(url, replicas)
    try:
        ports = [port for _, port in nodes]
        pids = [process.pid for process, _ in nodes]
        read = asyncio.run(reads(ports, args.seconds, tag))
        one = asyncio.run(reads(ports, args.seconds, tag + "k", "read"))
        board = asyncio.run(board_fanout(ports, pids, args.sockets, args.seconds))
        fan = asyncio.run(fanout(ports, pids, args.sockets, args.seconds, tag))
        off = asyncio.run(fanout(ports, pids, args.sockets, args.seconds, tag + "o", spread=1))
        return {"read": read, "one": one, "board": board, "fan": fan, "off": off}
    finally:
        stop_cluster(nodes)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--sockets", type=int, default=3000)
    args = parser.parse_args()
    raise_open_files(4 * args.sockets + 1000)
    load_before = os.getloadavg()[0]
    runs: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
    with tempfile.TemporaryDirectory() as tmp:
        valkey = ValkeyProcess(Path(tmp), appendfsync="always").start()
        try:
            costs = commit_costs(valkey.url)
            for i in range(args.runs):
                for replicas in (True, False):
                    tag = f"r{i}{'y' if replicas else 'n'}"
                    runs[replicas].append(one_run(valkey.url, replicas, args, tag))
        finally:
            valkey.stop()

    def med(replicas: bool, part: str, key: str) -> float:
        return statistics.median(r[part][key] for r in runs[replicas])

    with_rate, without_rate = med(True, "read", "rate"), med(False, "read", "rate")
    ratio = with_rate / without_rate
    with_one, without_one = med(True, "one", "rate"), med(False, "one", "rate")
    s50, s99 = med(True, "read", "staleness_p50"), med(True, "read", "staleness_p99")
    y99, z99 = med(True, "fan", "p99"), med(False, "fan", "p99")
    y50, z50 = med(True, "fan", "p50"), med(False, "fan", "p50")
    ycpu, zcpu = med(True, "fan", "cpu"), med(False, "fan", "cpu")
    ydel, zdel = med(True, "fan", "delivered"), med(False, "fan", "delivered")
    yall, zall = med(True, "fan", "cpu_all"), med(False, "fan", "cpu_all")
    yb99, zb99 = med(True, "board", "p99"), med(False, "board", "p99")
    yb50, zb50 = med(True, "board", "p50"), med(False, "board", "p50")
    ybcpu, zbcpu = med(True, "board", "cpu"), med(False, "board", "cpu")
    ybdel, zbdel = med(True, "board", "delivered"), med(False, "board", "delivered")
    yo99, zo99 = med(True, "off", "p99"), med(False, "off", "p99")
    yocpu, zocpu = med(True, "off", "cpu"), med(False, "off", "cpu")
    rows = [
        (
            "read-only RPCs on one hot object (a 50-entry list), 3 nodes",
            f"{with_rate:,.0f}/s vs {without_rate:,.0f}/s ({ratio:.2f}x)",
            ">= 1.6x",
        ),
        (
            "... reading one key instead",
            f"{with_one:,.0f}/s vs {without_one:,.0f}/s ({with_one / without_one:.2f}x)",
            "",
        ),
        ("replica staleness (commit to applied)", f"p50 {s50:.1f} ms, p99 {s99:.1f} ms", ""),
        (
            f"whiteboard view links, {args.sockets:,} viewers, p99 (p50)",
            f"{yb99:.1f} ms ({yb50:.1f}) vs {zb99:.1f} ms ({zb50:.1f})",
            "no worse",
        ),
        (
            "... the board's node's CPU",
            f"{ybcpu:.2f} vs {zbcpu:.2f} s/s ({1 - ybcpu / zbcpu:.0%} less)" if zbcpu else "-",
            ">= 50 % less",
        ),
        ("... strokes delivered", f"{ybdel:.1%} vs {zbdel:.1%}", "100 %"),
        (
            f"test object's view fan-out, {args.sockets:,} watchers, p99 (p50)",
            f"{y99:.1f} ms ({y50:.1f}) vs {z99:.1f} ms ({z50:.1f})",
            "no worse",
        ),
        (
            "primary's CPU during the fan-out",
            f"{ycpu:.2f} vs {zcpu:.2f} s/s ({1 - ycpu / zcpu:.0%} less)" if zcpu else "-",
            ">= 50 % less",
        ),
        ("all three nodes' CPU during the fan-out", f"{yall:.2f} vs {zall:.2f} s/s", ""),
        ("lines delivered", f"{ydel:.1%} vs {zdel:.1%}", "100 %"),
        (
            "the same, watchers only on the 2 other nodes: p99",
            f"{yo99:.1f} ms vs {zo99:.1f} ms",
            "",
        ),
        (
            "... and the primary's CPU",
            f"{yocpu:.2f} vs {zocpu:.2f} s/s ({1 - yocpu / zocpu:.0%} less)" if zocpu else "-",
            "",
        ),
    ]
    rows += [
        (f"a one-key commit, {case}", f"{usec:.1f} µs in Valkey, {sent:.0f} bytes sent", "")
        for case, usec, sent in costs
    ]
    load_after = os.getloadavg()[0]
    text = (
        f"Read replicas, with vs without, median of {args.runs} runs, {os.cpu_count()} cores, "
        f"AOF fsync always; load average {load_before:.2f} before, {load_after:.2f} after\n"
        + table(rows, ("figure", "with replicas vs without", "goal"))
    )
    panels = [
        Panel(
            "Read-only RPCs on one hot object, clients on 3 nodes",
            "calls/s",
            ["a 50-entry list", "one key"],
            {"with replicas": [with_rate, with_one], "without": [without_rate, without_one]},
        ),
        Panel(
            f"View fan-out to {args.sockets:,} watchers",
            "ms",
            ["p50", "p99"],
            {"with replicas": [y50, y99], "without": [z50, z99]},
        ),
        Panel(
            "The primary's CPU during the fan-out",
            "CPU s/s",
            ["primary"],
            {"with replicas": [ycpu], "without": [zcpu]},
        ),
    ]
    publish("replicas", text, panels)
    print(
        f"replicas: read ratio {ratio:.2f}x, staleness p99 {s99:.0f} ms, "
        f"view fan-out p99 {yb99:.0f} ms vs {zb99:.0f} ms"
    )


if __name__ == "__main__":
    main()
