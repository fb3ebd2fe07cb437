"""Chat fan-out load: rooms x clients, some of them senders, over the edge chat protocol.

    python bench/chat_client.py ws://127.0.0.1:8000/chat/api/room/{room}/websocket \\
        [--rooms 1] [--clients 100] [--senders 1] [--messages 200] [--rate 0] [--timeout 60]

Every client joins its room the way the chat's own page does ({"name"} out, then frames in
until {"ready": true}); once all are in, the first --senders clients of each room send
--messages chat messages each, as fast as the socket takes them (--rate 0: a burst) or on a
fixed schedule of --rate messages a second (a send that falls behind it is not made up by a
burst). The room sends every message to every named client, the sender included, so each
client expects senders x messages of them.

A message's text is "<run> <sender> <seq> <sent>": the run's tag (the rooms are new, but
nothing else of the room's traffic is counted by mistake), which sender, its sequence number,
and the perf_counter() at which it was handed to the socket. One process holds every client,
so every receiver reads the same clock: latency is arrival minus <sent>, per delivery.

Each receiver keeps, per sender, a bitmap of the sequence numbers it got and the last one it
saw, so every delivery is accounted for: delivered (distinct), missing, duplicated or out of
order (a room delivers each sender's messages in the order sent), and {"error"} frames.
Prints one JSON line:

    delivered, expected, missing, duplicates, out_of_order, errors, join_s, elapsed_s
    (first send to last delivery), deliveries_per_s, sent_per_s, p50_ms, p99_ms, max_ms,
    client_cpu (this process's CPU over elapsed_s, % of one core: near 100, the client
    and not the server may be what limits the figures)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import statistics
import time
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect

#: Joins in flight at once: enough to be quick, few enough not to overflow the listen backlog.
JOINS_AT_ONCE = 25


@dataclass(frozen=True)
class Load:
    """What one run of this client does (its command line, as data)."""

    rooms: int
    clients: int
    senders: int
    messages: int
    rate: float = 0.0

    def argv(self) -> list[str]:
        return [
            *("--rooms", str(self.rooms), "--clients", str(self.clients)),
            *("--senders", str(self.senders), "--messages", str(self.messages)),
            *("--rate", str(self.rate)),
        ]


@dataclass
class Tally:
    """Everything the clients of one run received."""

    run: str
    senders: int
    messages: int
    expected: int
    latencies: list[float] = field(default_factory=list)
    duplicates: int = 0
    out_of_order: int = 0
    errors: int = 0
    last_arrival: float = 0.0
    all_in: asyncio.Event = field(default_factory=asyncio.Event)


class Receiver:
    """One client's view of the room's messages: which it got, and in what order."""

    def __init__(self, tally: Tally) -> None:
        self.tally = tally
        self.seen = [bytearray(tally.messages) for _ in range(tally.senders)]
        self.last = [-1] * tally.senders

    def frame(self, raw: str | bytes, now: float) -> None:
        """Account for one frame from the server."""
        data = json.loads(raw)
        if "error" in data:
            self.tally.errors += 1
            return
        words = str(data.get("message", "")).split()
        if len(words) != 4 or words[0] != self.tally.run:
            return  # a join, a quit, or someone else's message
        sender, seq, sent = int(words[1]), int(words[2]), float(words[3])
        if self.seen[sender][seq]:
            self.tally.duplicates += 1
            return
        self.seen[sender][seq] = 1
        if seq < self.last[sender]:
            self.tally.out_of_order += 1
        self.last[sender] = max(seq, self.last[sender])
        self.tally.latencies.append(now - sent)
        self.tally.last_arrival = now
        if len(self.tally.latencies) == self.tally.expected:
            self.tally.all_in.set()


async def join(url: str, name: str, tally: Tally) -> tuple[ClientConnection, asyncio.Task[None]]:
    """Open a socket, name ourselves, and read until the room says we are in; from then on a
    task accounts for every frame."""
    ws = await connect(url, max_queue=None, ping_interval=None, close_timeout=1)
    await ws.send(json.dumps({"name": name}))
    while not json.loads(await ws.recv()).get("ready"):
        pass  # the backlog: who is here (the room is new: no messages yet)
    receiver = Receiver(tally)

    async def read() -> None:
        async for raw in ws:
            receiver.frame(raw, time.perf_counter())

    return ws, asyncio.create_task(read())


async def send(ws: ClientConnection, run: str, sender: int, messages: int, rate: float) -> None:
    """One sender's messages: a burst, or one every 1/rate seconds from its first."""
    start = time.perf_counter()
    for seq in range(messages):
        if rate:
            await asyncio.sleep(max(0.0, start + seq / rate - time.perf_counter()))
        await ws.send(json.dumps({"message": f"{run} {sender} {seq} {time.perf_counter()!r}"}))


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def quantile(values: list[float], q: float) -> float:
    """The q-quantile in ms (NaN when nothing arrived)."""
    if len(values) < 2:
        return values[0] * 1000 if values else math.nan
    return statistics.quantiles(values, n=1000, method="inclusive")[round(q * 1000) - 1] * 1000


async def run(args: argparse.Namespace) -> dict[str, float | int]:
    run_tag = f"r{os.getpid()}x{time.time_ns() % 10**9}"
    expected = args.rooms * args.clients * args.senders * args.messages
    tally = Tally(run_tag, args.senders, args.messages, expected)
    urls = [args.url.format(room=f"{run_tag}-{r}") for r in range(args.rooms)]
    slots = asyncio.Semaphore(JOINS_AT_ONCE)

    async def member(r: int, c: int) -> tuple[ClientConnection, asyncio.Task[None]]:
        async with slots:
            return await join(urls[r], f"c{c}", tally)

    t0 = time.perf_counter()
    rooms = [
        await asyncio.gather(*(member(r, c) for c in range(args.clients)))
        for r in range(args.rooms)
    ]
    join_s = time.perf_counter() - t0
    await asyncio.sleep(0.2)  # the last joins' {"joined"} frames reach everyone first

    started, cpu_before = time.perf_counter(), cpu_seconds()
    await asyncio.gather(
        *(
            send(members[s][0], run_tag, s, args.messages, args.rate)
            for members in rooms
            for s in range(args.senders)
        )
    )
    try:
        await asyncio.wait_for(tally.all_in.wait(), args.timeout)
    except TimeoutError:
        pass  # reported as missing
    elapsed = (tally.last_arrival or time.perf_counter()) - started
    cpu = cpu_seconds() - cpu_before
    sockets = [member for members in rooms for member in members]
    for _, reader in sockets:
        reader.cancel()
    await asyncio.gather(*(ws.close() for ws, _ in sockets), return_exceptions=True)

    delivered = len(tally.latencies)
    sent = args.rooms * args.senders * args.messages
    return {
        "rooms": args.rooms,
        "clients": args.clients,
        "senders": args.senders,
        "messages": args.messages,
        "rate": args.rate,
        "join_s": round(join_s, 3),
        "delivered": delivered,
        "expected": expected,
        "missing": expected - delivered,
        "duplicates": tally.duplicates,
        "out_of_order": tally.out_of_order,
        "errors": tally.errors,
        "elapsed_s": round(elapsed, 4),
        "deliveries_per_s": round(delivered / elapsed, 1),
        "sent_per_s": round(sent / elapsed, 1),
        "p50_ms": round(quantile(tally.latencies, 0.5), 3),
        "p99_ms": round(quantile(tally.latencies, 0.99), 3),
        "max_ms": round(max(tally.latencies, default=math.nan) * 1000, 3),
        "client_cpu": round(cpu / elapsed * 100, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url", help="a room's WebSocket URL, with {room} where its name goes")
    parser.add_argument("--rooms", type=int, default=1)
    parser.add_argument("--clients", type=int, default=20, help="per room")
    parser.add_argument("--senders", type=int, default=1, help="per room")
    parser.add_argument("--messages", type=int, default=200, help="per sender")
    parser.add_argument("--rate", type=float, default=0.0, help="messages/s per sender; 0: burst")
    parser.add_argument("--timeout", type=float, default=60.0, help="for deliveries, after sends")
    args = parser.parse_args()
    if not 1 <= args.senders <= args.clients:
        parser.error("--senders must be between 1 and --clients")
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
