"""Memory per open, idle client socket: a server's RSS growth over many sockets, per socket.

    .venv/bin/python bench/socket_memory.py [--sockets 5000] [--per-room 100] [--runs 3]
                                            [--no-deflate]

Three servers, a fresh process each per run, each made to hold --sockets client sockets in
rooms of --per-room, all opened from this process:

- ours: a node serving the chat (a Valkey configured like `make run`'s embedded one), with
  HIBERNATE_AFTER=1: clients join chat rooms ({"name"}, then the backlog up to {"ready"})
  and go quiet, so every room hibernates and what stays in memory is the sockets with their
  tags and attachments;
- plain `websockets`: bench/baselines/websockets_broadcast.py, the same chat protocol with
  no storage and no objects (a set of sockets per room);
- y-websocket@2: the reference Node.js server (npm), its clients doing the sync handshake
  (step 1 out, step 2 back) on a board per room and going quiet.

The server's VmRSS is read three times: after one room's sockets were opened and closed (so
its code paths are warm), once every socket is in ("open"), and once they have been idle a
while ("idle": for ours, when /healthz counts no live object, every room hibernated; the
others get the same time). Per socket: (RSS - RSS before) / --sockets, in KiB. Prints the
medians of --runs runs and keeps the table and a chart under bench/results/
(socket_memory.txt, socket_memory.png).

The clients offer permessage-deflate, as browsers do, and the table says which servers took
it: a compressing socket keeps zlib state of its own. --no-deflate offers none.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from bench.common import (  # noqa: E402
    node_tools,
    raise_open_files,
    rss_kib,
    start_node,
    start_peer,
    start_server,
)
from bench.results import Panel, publish, table  # noqa: E402
from bench.whiteboard_bench import open_synced  # noqa: E402
from runtime.storage.embedded import ValkeyProcess, free_port  # noqa: E402

CHAT_PATH = "/chat/api/room/{room}/websocket"
#: Sockets being opened at once: quick, and well inside the servers' listen backlogs.
OPENING_AT_ONCE = 100
#: How long the sockets stay idle before the last reading, at least (ours: until hibernated).
IDLE_S = 3.0

#: Opens the n-th socket at a URL, with these options for websockets' connect().
Opener = Callable[[str, int, dict[str, Any]], Awaitable[ClientConnection]]


async def chat_member(url: str, n: int, options: dict[str, Any]) -> ClientConnection:
    """A chat client that joined and went quiet. Its queue is unbounded so that the frames
    of later joins ({"joined"}) leave the server's buffers at once, whoever reads them."""
    ws = await connect(url, max_queue=None, **options)
    await ws.send(json.dumps({"name": f"idle{n}"}))
    while not json.loads(await ws.recv()).get("ready"):
        pass
    return ws


async def board_member(url: str, n: int, options: dict[str, Any]) -> ClientConnection:
    """A y-websocket client that synced (an empty board) and went quiet."""
    ws, _ = await open_synced(url, **options)
    return ws


def live_objects(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        return int(json.load(response)["live_objects"])


async def hold(
    pid: int, url: str, open_one: Opener, args: argparse.Namespace, quiet: Callable[[], bool]
) -> dict[str, float]:
    """Open the sockets in rooms of --per-room; the server's RSS growth per socket, open
    and idle (after IDLE_S, and until ``quiet()``), and whether it took deflate."""
    tag = os.urandom(3).hex()
    slots = asyncio.Semaphore(OPENING_AT_ONCE)
    options: dict[str, Any] = {"ping_interval": None, "close_timeout": 1}
    if args.no_deflate:
        options["compression"] = None

    async def one(n: int, room: str) -> ClientConnection:
        async with slots:
            return await open_one(url.format(room=f"{room}{tag}"), n, options)

    warm = await asyncio.gather(*(one(n, "warm") for n in range(args.per_room)))
    await asyncio.gather(*(ws.close() for ws in warm))
    await asyncio.sleep(1)
    before = rss_kib(pid)
    held = await asyncio.gather(*(one(n, f"m{n // args.per_room}-") for n in range(args.sockets)))
    opened = rss_kib(pid)
    deadline = time.monotonic() + 60
    await asyncio.sleep(IDLE_S)
    while not quiet():
        if time.monotonic() > deadline:
            raise RuntimeError("the rooms did not hibernate within a minute")
        await asyncio.sleep(0.2)
    idle = rss_kib(pid)
    deflate = held[0].response is not None and "deflate" in str(
        held[0].response.headers.get("Sec-WebSocket-Extensions", "")
    )
    for ws in held:  # the server is stopped next: no closing handshakes to wait for
        ws.transport.abort()
    per_socket = {"open": (opened - before) / args.sockets, "idle": (idle - before) / args.sockets}
    return {**per_socket, "deflate": float(deflate)}


def measure_ours(valkey_url: str, args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    node = start_node(
        port,
        valkey_url,
        apps=["apps.chat:app"],
        suite=False,
        CHAT_RATE_LIMIT="0",
        HIBERNATE_AFTER="1",
        SWEEP_INTERVAL="0.2",
        IDLE_TIMEOUT="1",  # the warm-up room, its sockets closed, leaves memory too
    )
    try:
        url = f"ws://127.0.0.1:{port}{CHAT_PATH}"
        return asyncio.run(hold(node.pid, url, chat_member, args, lambda: live_objects(port) == 0))
    finally:
        node.terminate()
        node.wait(30)


def measure_websockets(args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    script = ROOT / "bench" / "baselines" / "websockets_broadcast.py"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = start_server([sys.executable, str(script), str(port)], port, env)
    try:
        url = f"ws://127.0.0.1:{port}{CHAT_PATH}"
        return asyncio.run(hold(server.pid, url, chat_member, args, lambda: True))
    finally:
        server.terminate()
        server.wait(30)


def measure_peer(args: argparse.Namespace) -> dict[str, float]:
    peer = start_peer()
    try:
        url = peer.url("{room}")
        return asyncio.run(hold(peer.process.pid, url, board_member, args, lambda: True))
    finally:
        peer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sockets", type=int, default=5000)
    parser.add_argument("--per-room", type=int, default=100, help="sockets per room or board")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--no-deflate", action="store_true", help="clients do not offer permessage-deflate"
    )
    args = parser.parse_args()
    # Each server holds --sockets sockets, and so does this process: they inherit the limit.
    raise_open_files(args.sockets + 1024)
    node_tools()
    labels = {
        "ours": "ours: node, chat rooms hibernated",
        "websockets": "plain websockets, chat protocol",
        "peer": "y-websocket@2 reference server (Node)",
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in labels}
    with tempfile.TemporaryDirectory() as tmp:
        valkey = ValkeyProcess(tmp, unix_socket=True, appendfsync="always").start()
        try:
            for run in range(args.runs):
                print(f"run {run + 1}/{args.runs}", file=sys.stderr)
                runs["ours"].append(measure_ours(valkey.url, args))
                runs["websockets"].append(measure_websockets(args))
                runs["peer"].append(measure_peer(args))
        finally:
            valkey.stop()

    def med(name: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[name])

    rows = [
        (
            label,
            f"{med(name, 'idle'):.1f}",
            f"{med(name, 'open'):.1f}",
            "deflate" if runs[name][0]["deflate"] else "none",
            ", ".join(f"{r['idle']:.1f}" for r in runs[name]),
        )
        for name, label in labels.items()
    ]
    text = (
        f"RSS per open, idle client socket: {args.sockets:,} sockets in rooms of "
        f"{args.per_room}, median of {args.runs} runs, {os.cpu_count()} cores\n"
        + table(rows, ("server", "KiB idle", "KiB open", "compression", "idle, each run"))
    )
    panel = Panel(
        f"Server RSS growth per client socket ({args.sockets:,} sockets, rooms of {args.per_room})",
        "KiB per socket",
        ["open, just joined", "idle a while (ours: rooms hibernated)"],
        {label: [med(name, "open"), med(name, "idle")] for name, label in labels.items()},
    )
    publish("socket_memory", text, [panel])


if __name__ == "__main__":
    main()
