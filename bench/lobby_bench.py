"""Lobby benchmarks (issue #12's figures): directory latency under churn, moves per second.

    .venv/bin/python bench/lobby_bench.py                 # the issue's sizes (a quiet machine)
    .venv/bin/python bench/lobby_bench.py --small         # a quick look while developing

Each run starts a Valkey configured like `make run`'s embedded one (append-only file, fsync
always) and one node serving the suite, then drives it from this process over real sockets:

1. **Directory under churn.** ``--lobbies`` public lobbies (1,000), ``--players`` players
   each (4) who join, ready up and leave, one action after the other per lobby, with
   ``--concurrency`` lobbies (200) going at once; ``--watchers`` directory pages (50) watch.
   For each join and leave, the latency until each page sees a summary that reflects it
   (the directory coalesces pushes per 50 ms tick), and, as the baseline, until the
   player's own lobby confirms it to its members (no directory on the way).
2. **Moves per second**: one game, then ``--games`` concurrent games (500). Two clients per
   game alternate moves as fast as the server confirms them (each waits for the state
   showing its move), playing a drawn sequence of 42 moves and a rematch, over and over.
   Baseline: the same clients against a plain `websockets` server holding the games in
   memory (bench/baselines/connect4_server.py): no storage, no output gate. Beside the
   rates, the CPU each process spent per move (the node, Valkey, the clients; the
   in-memory server), from /proc: where a move's time goes, against its wall time.

Prints the medians of ``--runs`` runs (3) in one table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import cpu_seconds, fsync_floor, start_node, start_server  # noqa: E402
from bench.results import Panel, publish, table  # noqa: E402
from runtime.storage.embedded import ValkeyProcess, free_port  # noqa: E402

# A full board with no four in a row (tests/unit/test_lobby_connect4.py): games never end
# early, so every round is 42 moves, then a rematch.
DRAW = [0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 2, 3, 2, 3, 2, 3, 3, 2, 3, 2, 3, 2]
DRAW += [4, 5, 4, 5, 4, 5, 5, 4, 5, 4, 5, 4, 6, 6, 6, 6, 6, 6]
NODE_ENV = {
    "LOBBY_EMPTY_TTL": "3600",  # lobbies waiting their turn must not close meanwhile
    "LOBBY_TURN_TIME": "3600",
    "LOBBY_GRACE": "3600",
    "LOBBY_MAX_LOBBIES": "100000",
    "LOBBY_CREATE_RATE": "0",  # one client creates thousands of lobbies: no per-address limit
    "LOBBY_CODE_RATE": "0",
}


def now() -> float:
    return time.perf_counter()


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


#: A page's log entry for "the server closed this page" (time, close code).
CLOSED = "(closed)"

#: Handshakes refused with 503 (not-run) and tried again, by X-Error-Code.
RETRIED: Counter[str] = Counter()


class Sock:
    """A JSON socket read by a background task; ``on_message`` sees each message first."""

    def __init__(self, ws: ClientConnection, on_message: Any = None) -> None:
        self.ws = ws
        self.on_message = on_message
        self.waiters: list[tuple[Any, asyncio.Future[dict[str, Any]]]] = []
        self.task = asyncio.get_running_loop().create_task(self.read())

    @classmethod
    async def open(cls, url: str, on_message: Any = None) -> Sock:
        # As the lobby's pages do: a handshake refused with 503 and X-Outcome: not-run did
        # nothing, and is tried again after a backoff (a busy shared machine can make an
        # activation miss its deadline); the retries are counted and printed.
        for attempt in range(6):
            try:
                return cls(await connect(url, open_timeout=60, max_queue=None), on_message)
            except InvalidStatus as exc:
                headers = exc.response.headers
                if exc.response.status_code != 503 or headers.get("X-Outcome") != "not-run":
                    raise
                if attempt == 5:
                    raise
                RETRIED[headers.get("X-Error-Code", "?")] += 1
                await asyncio.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    async def read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                if self.on_message is not None:
                    self.on_message(message, now())
                for entry in list(self.waiters):
                    predicate, future = entry
                    if not future.done() and predicate(message):
                        future.set_result(message)
                        self.waiters.remove(entry)
        except ConnectionClosed:
            pass
        why = f"closed: {self.ws.close_code} {self.ws.close_reason or ''}".rstrip()
        for _, future in self.waiters:
            if not future.done():
                future.set_exception(ConnectionError(why))

    def wait(self, predicate: Any) -> asyncio.Future[dict[str, Any]]:
        """A future for the next message satisfying ``predicate`` (register before sending)."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.waiters.append((predicate, future))
        return future

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def close(self) -> None:
        await self.ws.close()


# ----------------------------------------------------------------- workload 1: churn


async def create_lobbies(http: str, count: int, max_players: int) -> list[str]:
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=http, timeout=60, limits=limits) as client:

        async def one(i: int) -> str:
            body = {"name": f"bench {i}", "public": True, "max_players": max_players}
            r = await client.post("/lobby/api/lobbies", json=body)
            r.raise_for_status()
            return str(r.json()["lobby"])

        return list(await asyncio.gather(*(one(i) for i in range(count))))


def pages_process(ws: str, count: int, ready: Any, stop: Any, out: Any) -> None:
    """``count`` directory pages; sends back, per page, lobby -> [(time, players)]."""

    async def main() -> list[dict[str, list[tuple[float, int]]]]:
        logs: list[dict[str, list[tuple[float, int]]]] = []

        def watcher(log: dict[str, list[tuple[float, int]]]) -> Any:
            def on_message(message: dict[str, Any], at: float) -> None:
                if message["type"] == "lobby":
                    log[message["lobby"]["lobby"]].append((at, message["lobby"]["players"]))
                elif message["type"] == "lobbies":  # the whole list (a page's first, or a
                    for summary in message["lobbies"]:  # replica that reloaded): each counts
                        log[summary["lobby"]].append((at, summary["players"]))

            return on_message

        pages = []
        for _ in range(count):
            log: dict[str, list[tuple[float, int]]] = defaultdict(list)
            logs.append(log)
            pages.append(await Sock.open(f"{ws}/lobby/ws/directory", watcher(log)))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(ready.wait, 120)
        await asyncio.to_thread(stop.wait)  # (a process-wide event: waited for in a thread)
        for page, log in zip(pages, logs, strict=True):
            if page.ws.close_code is not None:  # the server closed it before the end
                log[CLOSED].append((now(), page.ws.close_code))
            await page.close()
        return [dict(log) for log in logs]

    out.put(asyncio.run(main()))


async def churn(base: str, args: argparse.Namespace) -> dict[str, float]:
    """Players join, ready and leave; pages watch the directory."""
    http, ws = f"http://{base}", f"ws://{base}"
    lobbies = await create_lobbies(http, args.lobbies, args.players)
    # The pages run in processes of their own (--page-procs), so parsing their messages
    # does not slow the players down (or the other way round). perf_counter is the
    # system-wide monotonic clock: its readings compare across processes.
    context = multiprocessing.get_context("spawn")
    nprocs = min(args.page_procs, args.watchers)
    ready, stop, out = context.Barrier(nprocs + 1), context.Event(), context.Queue()
    share = [args.watchers // nprocs] * nprocs if nprocs else []
    if share:
        share[0] += args.watchers - sum(share)
    procs = [
        context.Process(target=pages_process, args=(ws, n, ready, stop, out), daemon=True)
        for n in share
    ]
    for proc in procs:
        proc.start()
    await asyncio.to_thread(ready.wait, 120)  # every page has its first list
    actions: list[tuple[str, str, int, float]] = []  # lobby, "join"/"leave", players after, sent
    member_ms: list[float] = []
    gate = asyncio.Semaphore(args.concurrency)

    async def run_lobby(lobby: str) -> None:
        async with gate:
            socks: list[Sock] = []
            for i in range(args.players):
                sock = await Sock.open(f"{ws}/lobby/ws/{lobby}")
                socks.append(sock)
                seen_by_first = (socks[0] if i else sock).wait(
                    lambda m, n=i + 1: m["type"] == "state" and len(m["lobby"]["players"]) == n
                )
                sent = now()
                actions.append((lobby, "join", i + 1, sent))
                await sock.send(type="join", name=f"p{i}")
                await seen_by_first
                member_ms.append((now() - sent) * 1000)
            for i, sock in enumerate(socks):
                ready = sock.wait(
                    lambda m, n=i + 1: (
                        m["type"] == "state" and sum(p["ready"] for p in m["lobby"]["players"]) == n
                    )
                )
                await sock.send(type="ready", ready=True)
                await ready
            for i, sock in enumerate(socks):
                remaining = args.players - i - 1
                if remaining:
                    left = socks[-1].wait(
                        lambda m, n=remaining: (
                            m["type"] == "state" and len(m["lobby"]["players"]) == n
                        )
                    )
                sent = now()
                actions.append((lobby, "leave", remaining, sent))
                await sock.send(type="leave")
                if remaining:
                    await left
                    member_ms.append((now() - sent) * 1000)
                await sock.close()

    started = now()
    await asyncio.gather(*(run_lobby(lobby) for lobby in lobbies))
    elapsed = now() - started
    # The last pushes: on a busy machine a lobby's last report can reach the pages more than
    # 2 s after its last action (late, not lost: a run that waited 2 s counted 40 of 8,000 as
    # missed, the same load waiting 10 s none), so "missed" counts only what never came.
    await asyncio.sleep(10.0)
    stop.set()
    seen: list[dict[str, list[tuple[float, int]]]] = []  # per page: lobby -> (time, players)
    for _ in procs:
        seen.extend(out.get(timeout=120))
    for proc in procs:
        proc.join(30)

    directory_ms: list[float] = []
    closed = sum(1 for log in seen if log.get(CLOSED))
    if closed:
        codes = sorted({code for log in seen for _, code in log.get(CLOSED, ())})
        print(f"{closed} pages were closed by the server (codes {codes})", file=sys.stderr)
    # A change a page never saw counts as missed only if it saw none of that lobby's later
    # changes either: the directory pushes each lobby's latest summary once per tick, so a
    # state that lasted less than a tick (a fourth player who joined 40 ms before the first
    # left) is rightly never shown, and the page's next message reflects it.
    missed = coalesced = 0
    by_lobby: dict[str, list[tuple[str, int, float]]] = defaultdict(list)
    for lobby, kind, players, sent in actions:
        by_lobby[lobby].append((kind, players, sent))
    for log in seen:
        for lobby, changes in by_lobby.items():
            summaries = log.get(lobby, ())
            hits = [
                next(
                    (
                        at
                        for at, count in summaries
                        if at >= sent and (count >= players if kind == "join" else count <= players)
                    ),
                    None,
                )
                for kind, players, sent in changes
            ]
            for i, ((_, _, sent), hit) in enumerate(zip(changes, hits, strict=True)):
                if hit is not None:
                    directory_ms.append((hit - sent) * 1000)
                elif any(later is not None for later in hits[i + 1 :]):
                    coalesced += 1
                else:
                    missed += 1
    total_actions = args.lobbies * args.players * 3
    return {
        "actions_per_s": total_actions / elapsed,
        "dir_p50": pct(directory_ms, 0.50),
        "dir_p99": pct(directory_ms, 0.99),
        "member_p50": pct(member_ms, 0.50),
        "member_p99": pct(member_ms, 0.99),
        "missed": missed,
        "coalesced": coalesced,
        "pages_closed": closed,
        "samples": len(directory_ms),
    }


# ----------------------------------------------------------------- workload 2: moves


async def seat_pairs_runtime(base: str, games: int) -> list[tuple[str, str]]:
    """``games`` lobbies of two ready players, started: the seat URLs of each game."""
    http, ws = f"http://{base}", f"ws://{base}"
    lobbies = await create_lobbies(http, games, 2)
    gate = asyncio.Semaphore(100)

    async def start(lobby: str) -> tuple[str, str]:
        async with gate:
            socks = [await Sock.open(f"{ws}/lobby/ws/{lobby}") for _ in range(2)]
            for i, sock in enumerate(socks):
                welcomed = sock.wait(lambda m: m["type"] == "welcome")
                await sock.send(type="join", name=f"p{i}")
                await welcomed
            both = socks[0].wait(
                lambda m: (
                    m["type"] == "state" and sum(p["ready"] for p in m["lobby"]["players"]) == 2
                )
            )
            for sock in socks:
                await sock.send(type="ready", ready=True)
            await both
            games_seen = [sock.wait(lambda m: m["type"] == "game") for sock in socks]
            await socks[0].send(type="start")
            got = [await g for g in games_seen]
            return tuple(  # type: ignore[return-value]
                f"{ws}/lobby/ws/game/{m['game']}?token={m['token']}" for m in got
            )

    return list(await asyncio.gather(*(start(lobby) for lobby in lobbies)))


def seat_pairs_baseline(base: str, games: int) -> list[tuple[str, str]]:
    return [(f"ws://{base}/g{i}?token=1", f"ws://{base}/g{i}?token=2") for i in range(games)]


async def play(pairs: list[tuple[str, str]], seconds: float) -> float:
    """Moves per second over ``seconds``, every game played as fast as it is confirmed."""
    moves = 0

    async def game(urls: tuple[str, str]) -> None:
        nonlocal moves
        socks = {}
        firsts = []
        for seat, url in zip((1, 2), urls, strict=True):
            sock = await Sock.open(url)
            firsts.append(sock.wait(lambda m: m["type"] == "state"))
            socks[seat] = sock
        state = (await asyncio.gather(*firsts))[-1]
        await ready.wait()
        while now() < stop_at:
            if state["ended_by"]:
                round_ = state["round"]
                nxt = socks[1].wait(lambda m, r=round_: m["type"] == "state" and m["round"] > r)
                for sock in socks.values():
                    await sock.send(type="rematch")
                state = await nxt
                continue
            mover = socks[state["turn"]]
            count = state["moves"]
            confirmed = mover.wait(lambda m, c=count: m["type"] == "state" and m["moves"] > c)
            await mover.send(type="move", column=DRAW[count])
            state = await confirmed
            if now() < stop_at:
                moves += 1
        for sock in socks.values():
            await sock.close()

    ready = asyncio.Event()
    stop_at = float("inf")
    tasks = [asyncio.create_task(game(urls)) for urls in pairs]
    await asyncio.sleep(0.5 + len(pairs) * 0.004)  # every socket open (roughly)
    started = now()
    stop_at = started + seconds
    ready.set()
    await asyncio.gather(*tasks)
    return moves / seconds


# ----------------------------------------------------------------- driver


def timed_play(
    pairs: list[tuple[str, str]], seconds: float, label: str, servers: dict[str, int]
) -> dict[str, float]:
    """``play``, and the CPU each process spent per move meanwhile (µs, /proc; the sockets'
    opening and closing included): ``moves_<label>``, ``<name>_us_<label>`` for each server
    and ``clients_us_<label>`` for this process."""
    before = {name: cpu_seconds(pid) for name, pid in servers.items()}
    own = time.process_time()
    rate = asyncio.run(play(pairs, seconds))
    moves = max(1.0, rate * seconds)
    out = {f"moves_{label}": rate, f"clients_us_{label}": 1e6 * (time.process_time() - own) / moves}
    for name, pid in servers.items():
        out[f"{name}_us_{label}"] = 1e6 * (cpu_seconds(pid) - before[name]) / moves
    return out


def runtime_run(args: argparse.Namespace) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        valkey = ValkeyProcess(tmp, unix_socket=True, appendfsync=args.appendfsync).start()
        port = free_port()
        node = start_node(port, valkey.url, **NODE_ENV)
        base = f"127.0.0.1:{port}"
        try:
            result = asyncio.run(churn(base, args))
            assert valkey.process is not None
            servers = {"node": node.pid, "valkey": valkey.process.pid}
            one = asyncio.run(seat_pairs_runtime(base, 1))
            result.update(timed_play(one, args.seconds, "1", servers))
            many = asyncio.run(seat_pairs_runtime(base, args.games))
            result.update(timed_play(many, args.seconds, "n", servers))
            # One fsync'd SET at a time, on this Valkey: what every committed move waits for.
            result["fsync_p50"], result["fsync_p99"] = fsync_floor(valkey.url, writes=1000)
            return result
        finally:
            node.terminate()
            node.wait(30)
            valkey.stop()


def baseline_run(args: argparse.Namespace) -> dict[str, float]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = ROOT / "bench" / "baselines" / "connect4_server.py"
    server = start_server([sys.executable, str(script), str(port)], port, env)
    base = f"127.0.0.1:{port}"
    try:
        servers = {"server": server.pid}
        return {
            **timed_play(seat_pairs_baseline(base, 1), args.seconds, "1", servers),
            **timed_play(seat_pairs_baseline(base, args.games), args.seconds, "n", servers),
        }
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lobbies", type=int, default=1000)
    parser.add_argument("--players", type=int, default=4)
    parser.add_argument("--watchers", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--page-procs", type=int, default=2, help="processes for the pages")
    parser.add_argument("--games", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--appendfsync", choices=["always", "everysec"], default="always")
    parser.add_argument("--small", action="store_true", help="100 lobbies, 10 pages, 50 games")
    args = parser.parse_args()
    if args.small:
        args.lobbies, args.watchers, args.concurrency, args.page_procs = 100, 10, 50, 1
        args.games, args.seconds, args.runs = 50, 4.0, 1
    # Interleaved, so the machine's drift over the sitting hits both servers alike.
    runtime: list[dict[str, float]] = []
    baseline: list[dict[str, float]] = []
    for _ in range(args.runs):
        runtime.append(runtime_run(args))
        baseline.append(baseline_run(args))

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    missed = sum(int(r["missed"]) for r in runtime)
    pages_closed = sum(int(r["pages_closed"]) for r in runtime)
    coalesced = sum(int(r["coalesced"]) for r in runtime)
    expected = sum(int(r["samples"] + r["missed"] + r["coalesced"]) for r in runtime)
    churn = table(
        [
            (
                "directory pages see a join/leave",
                f"{med(runtime, 'dir_p50'):.1f}",
                f"{med(runtime, 'dir_p99'):.1f}",
            ),
            (
                "baseline: the lobby members see it",
                f"{med(runtime, 'member_p50'):.1f}",
                f"{med(runtime, 'member_p99'):.1f}",
            ),
        ],
        ("", "p50 ms", "p99 ms"),
    )
    moves = table(
        [
            (
                "runtime (every move committed first)",
                f"{med(runtime, 'moves_1'):,.0f}",
                f"{med(runtime, 'moves_n'):,.0f}",
            ),
            (
                "baseline: plain websockets, in memory",
                f"{med(baseline, 'moves_1'):,.0f}",
                f"{med(baseline, 'moves_n'):,.0f}",
            ),
        ],
        ("server", "1 game", f"{args.games} games"),
    )
    # A game's moves are serial: each waits for the one before to be confirmed. A server that
    # commits before it answers cannot beat the in-memory server's move plus one fsync'd write.
    in_memory_ms = 1000 / med(baseline, "moves_1")
    limit_1 = 1000 / (in_memory_ms + med(runtime, "fsync_p50"))
    ratio_1 = med(runtime, "moves_1") / med(baseline, "moves_1")
    ratio_n = med(runtime, "moves_n") / med(baseline, "moves_n")
    limits = (
        f"runtime / in-memory: 1 game {ratio_1:.0%}, {args.games} games {ratio_n:.0%}\n"
        f"one fsync'd SET at a time: p50 {med(runtime, 'fsync_p50'):.2f} / p99 "
        f"{med(runtime, 'fsync_p99'):.2f} ms; the limit of one game for a server that commits "
        f"each move first (in-memory move {in_memory_ms:.3f} ms + one fsync): "
        f"{limit_1:,.0f} moves/s ({limit_1 / med(baseline, 'moves_1'):.0%} of in-memory)\n"
        f"where one game's move goes (CPU per move, µs; the sockets' setup included): "
        f"node {med(runtime, 'node_us_1'):.0f} + Valkey {med(runtime, 'valkey_us_1'):.0f} + "
        f"clients {med(runtime, 'clients_us_1'):.0f} of {1e6 / med(runtime, 'moves_1'):.0f} "
        f"wall; in memory: server {med(baseline, 'server_us_1'):.0f} + clients "
        f"{med(baseline, 'clients_us_1'):.0f} of {1e6 / med(baseline, 'moves_1'):.0f} wall "
        f"({args.games} games: node {med(runtime, 'node_us_n'):.0f}, Valkey "
        f"{med(runtime, 'valkey_us_n'):.0f}; in-memory server {med(baseline, 'server_us_n'):.0f})"
    )
    text = (
        f"Lobby, median of {args.runs} runs, {os.cpu_count()} cores, "
        f"AOF fsync {args.appendfsync}\n\n"
        f"{args.lobbies} lobbies x {args.players} players joining, readying and leaving "
        f"({args.concurrency} lobbies at a time), {args.watchers} directory pages\n{churn}\n"
        f"actions/s {med(runtime, 'actions_per_s'):,.0f}; page updates missed: {missed} of "
        f"{expected} (shown at once with a later change, as coalescing does: {coalesced}); "
        f"pages the server closed: {pages_closed}\n\n"
        f"Moves per second (each confirmed to the mover before the next), "
        f"{args.seconds:g} s\n{moves}\n{limits}\n"
        f"socket handshakes refused with 503 (not-run) and tried again: "
        f"{sum(RETRIED.values())} {dict(RETRIED) if RETRIED else ''}"
    )
    panels = [
        Panel(
            "Directory updates under churn (latency to the pages watching)",
            "ms",
            ["p50", "p99"],
            {
                "directory pages": [med(runtime, "dir_p50"), med(runtime, "dir_p99")],
                "lobby members (baseline)": [
                    med(runtime, "member_p50"),
                    med(runtime, "member_p99"),
                ],
            },
        ),
        Panel(
            "Moves per second",
            "moves/s",
            ["1 game", f"{args.games} games"],
            {
                "runtime (committed first)": [med(runtime, "moves_1"), med(runtime, "moves_n")],
                "plain websockets, in memory": [
                    med(baseline, "moves_1"),
                    med(baseline, "moves_n"),
                ],
            },
        ),
    ]
    publish("lobby", text, panels)


if __name__ == "__main__":
    main()
