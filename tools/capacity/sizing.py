"""Sizing: the fewest nodes and Redis shards that carry a named workload with headroom.

A deployment fits when every limiting resource stays at or under ``target`` utilisation
(0.6 by default: room for bursts, a node's death and a rolling restart). The search takes
the fewest Redis shards whose busiest shard fits, then the fewest nodes whose processes
and memory fit; a resource no number of nodes or shards can relieve (one hot object's
thread, the registry's one slot) is reported as the limit instead.

The named workloads are assumptions, written out in ``WORKLOADS`` and docs/scale.md; change
them to your numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .costs import Costs
from .model import GIB, Deployment, Report, Workload, evaluate

#: Per-event CPU of the apps' own rules (bench/capacity/apps.py measures them; these are
#: the figures of the sitting in costs.json, rounded).
APP_CPU = {"chat": 5e-6, "waiting room": 10e-6, "connect four": 10e-6}


@dataclass(frozen=True)
class Named:
    """A workload with a name and what it assumes, in words."""

    name: str
    workload: Workload
    assumes: str
    #: The design the sizing answers for (read replicas, affinity...).
    deployment: Deployment = field(default_factory=Deployment)


def workloads() -> list[Named]:
    chat_rooms, chat_sockets = 1_000_000, 10_000_000
    messages = chat_rooms / 10.0  # a message per room every 10 s
    visitors = 1_000_000
    games = 100_000
    moves = games / 5.0  # a move every 5 s per game
    chat = Workload(
        name="chat",
        live_objects=chat_rooms * 0.1,
        hibernated_objects=chat_rooms * 0.9,
        sockets=chat_sockets,
        socket_opens=chat_sockets / 3600,
        socket_messages=messages,
        deliveries=messages * (chat_sockets / chat_rooms - 1),
        writes=messages,
        writing_objects=chat_rooms * 0.1,
        app_cpu=APP_CPU["chat"],
        cross_node=0.0,
        hot_events=20.0,
        hot_fanout=10_000,
        state_bytes=20_000,
    )
    return [
        Named(
            "chat: 10^6 rooms, 10^7 sockets",
            chat,
            "10 sockets a room on average, a message per room every 10 s (10^5/s), a tenth of "
            "the rooms active at a time (the rest hibernate with their sockets), every socket "
            "reconnecting once an hour, 100 messages of history (~20 KB) a room; the balancer "
            "routes by room (no tunnels); the biggest room: 10^4 sockets at 20 messages/s",
        ),
        Named(
            "the same chat, with read replicas",
            chat,
            "as above, with read replicas (modelled as specified: each commit published "
            "once per node, each node's replica delivering to its own sockets)",
            Deployment(read_replicas=True),
        ),
        Named(
            "waiting room: a ticket sale, 10^6 visitors",
            Workload(
                name="waiting room",
                live_objects=100,
                sockets=visitors,
                socket_opens=visitors / 600,
                requests=visitors / 20,
                writes=visitors / 20,
                writing_objects=100,
                deliveries=5000,
                app_cpu=APP_CPU["waiting room"],
                hot_events=2000.0,
                state_bytes=visitors * 100 / 100,
            ),
            "10^6 visitors, each page open (a socket) and renewing every 20 s (5 x 10^4 "
            "decisions/s), slot leasing on: decisions run on one shard object per node (100 of "
            "them), and the room object answers their lease requests (about 2,000/s) and "
            "pushes 5,000 position updates/s; 100 bytes per visitor stored",
        ),
        Named(
            "lobby: 10^5 concurrent Connect Four games",
            Workload(
                name="connect four",
                live_objects=games * 2,
                sockets=games * 2,
                socket_opens=games * 2 / 1800,
                socket_messages=moves,
                deliveries=moves,
                writes=moves,
                writing_objects=games,
                alarm_sets=moves,
                alarms=games / 300,
                app_cpu=APP_CPU["connect four"],
                activations=games / 600,
                hot_events=200.0,
                hot_fanout=50,
                state_bytes=2000,
            ),
            "two players a game, a move every 5 s (2 x 10^4 moves/s), each move committed, "
            "sent to both players and re-arming the turn timer (an alarm set per move); a lobby "
            "object per game besides the game; games last 10 minutes; the directory object "
            "(the busiest) hears 200 reports/s and pushes them to 50 pages",
        ),
    ]


@dataclass(frozen=True)
class Size:
    named: Named
    report: Report
    #: What limits it once sized: the bottleneck at that size.
    limit: str
    fits: bool


def size(named: Named, costs: Costs, target: float = 0.6, cores: int = 8) -> Size:
    """The fewest shards, then nodes, that keep every resource under ``target`` (the two
    depend on each other a little: every node polls and heartbeats into Redis; so the
    search alternates until neither moves)."""
    base = replace(
        named.deployment, cores_per_node=cores, memory_per_node=32 * GIB, memory_per_shard=25 * GIB
    )
    work = named.workload
    nodes, shards = 1, 1
    for _ in range(10):
        new_shards = _fewest_shards(work, replace(base, nodes=nodes), costs, target)
        new_nodes = _fewest_nodes(work, replace(base, redis_shards=new_shards), costs, target)
        if (new_nodes, new_shards) == (nodes, shards):
            break
        nodes, shards = new_nodes, new_shards
    report = evaluate(work, replace(base, nodes=nodes, redis_shards=shards), costs)
    fits = all(r.utilisation <= target for r in report.resources if r.limits)
    return Size(named, report, report.bottleneck.name, fits)


def _redis(work: Workload, d: Deployment, costs: Costs) -> float:
    report = evaluate(work, d, costs)
    return max(r.utilisation for r in report.resources if r.name.startswith("Redis"))


def _fewest_shards(work: Workload, d: Deployment, costs: Costs, target: float) -> int:
    """Doubling the shards until the busiest one fits, or until another doubling stops
    helping (what is left is on a fixed slot: the registry, the alarm index)."""
    shards = 1
    load = _redis(work, replace(d, redis_shards=shards), costs)
    while load > target and shards < 1024:
        more = _redis(work, replace(d, redis_shards=shards * 2), costs)
        if more > load * 0.95:
            break
        shards, load = shards * 2, more
    return shards


def _fewest_nodes(work: Workload, d: Deployment, costs: Costs, target: float) -> int:
    lo, hi = 1, 1
    while hi < 100_000 and not _fits(work, replace(d, nodes=hi), costs, target):
        lo, hi = hi, hi * 2
    while lo < hi:
        mid = (lo + hi) // 2
        if _fits(work, replace(d, nodes=mid), costs, target):
            hi = mid
        else:
            lo = mid + 1
    return hi


def _fits(work: Workload, d: Deployment, costs: Costs, target: float) -> bool:
    """Whether every resource more nodes can relieve fits (not a hot object's thread, not
    Redis: those are reported, or sized by shards)."""
    report = evaluate(work, d, costs)
    return all(
        r.utilisation <= target for r in report.resources if r.limits and r.name.startswith("node")
    )
