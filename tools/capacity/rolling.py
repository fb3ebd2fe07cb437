"""Scenario: a rolling restart of every node, one after the other.

A draining node (node.py: SIGTERM) leaves the registry, lets running events finish,
commits, closes its sockets with 1012 and releases its leases at once; its clients
reconnect within a few seconds through the balancer to some other node, which activates
each object on its first event there. The node then starts again (empty) and the operator
moves on to the next one once it is healthy and the moved objects are serving.

What the formulas miss is where the objects go: placement is "the first node that needs
it", so a drained object lands on a random live node, often one that has not restarted
yet, and moves again when that node's turn comes. The simulation follows every object
(in groups of ``group`` that move together, for speed) and answers how many times each
moved, how long the whole restart took, and the busiest moment on the survivors and on
Redis; and what a placement that prefers already-restarted nodes would change.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import simpy

from .costs import Costs
from .simulation import Process, Tally, Thread


@dataclass(frozen=True)
class RollingSetup:
    nodes: int = 100
    objects_per_node: int = 10_000
    sockets_per_object: float = 1.0
    shards: int = 16
    #: Seconds a node takes to start and report healthy.
    boot: float = 3.0
    #: Clients reconnect within this window after their socket closed (1012).
    reconnect_window: float = 2.0
    #: The operator waits this long after the moved objects serve before the next node.
    settle: float = 1.0
    #: "random": the first node a client reaches (today). "restarted": drained objects go
    #: to nodes that already restarted (a placement hint or a balancer preferring them).
    placement: str = "random"
    #: Objects that move together (one simulated piece of work per group and node).
    group: int = 50
    seed: int = 1


@dataclass
class RollingResult:
    setup: RollingSetup
    total_seconds: float
    #: Moves per object over the whole restart.
    moves_mean: float
    moves_max: int
    activations: int
    #: Per step: seconds from the drain until every moved object served again.
    step: Tally = field(default_factory=Tally)
    survivor_peak: float = 0.0
    shard_peak: float = 0.0


def simulate(setup: RollingSetup, costs: Costs) -> RollingResult:
    env = simpy.Environment()
    rng = random.Random(setup.seed)
    n = setup.nodes
    threads = [Thread(env, f"node{i}") for i in range(n)]
    shards = [Thread(env, f"shard{i}") for i in range(setup.shards)]
    groups_per_node = max(1, setup.objects_per_node // setup.group)
    size = setup.objects_per_node / groups_per_node
    # Each group: the node it lives on, and how many times it moved.
    home = [g // groups_per_node for g in range(n * groups_per_node)]
    moves = [0] * len(home)
    restarted: set[int] = set()
    live = set(range(n))
    result = RollingResult(setup, 0.0, 0.0, 0, 0)
    windows: dict[tuple[str, int], float] = {}

    def work(thread: Thread, seconds: float) -> Process:
        yield env.process(thread.run(seconds))
        key = (thread.name, int(env.now * 10))
        windows[key] = windows.get(key, 0.0) + seconds

    def target() -> int:
        pool = sorted(restarted & live) if setup.placement == "restarted" else []
        return rng.choice(pool or sorted(live))

    def move(group: int) -> Process:
        yield env.timeout(rng.uniform(0, setup.reconnect_window))
        k = target()
        home[group] = k
        moves[group] += 1
        result.activations += round(size)
        sockets = size * setup.sockets_per_object
        yield env.process(
            work(threads[k], size * costs.node_activation + sockets * costs.node_http)
        )
        yield env.process(work(shards[group % setup.shards], size * costs.redis_activation))

    def operator() -> Process:
        for i in range(n):
            began = env.now
            mine = [g for g, h in enumerate(home) if h == i]
            live.discard(i)
            # Drain: every object's last commit and release, then the sockets close.
            draining = Thread(env, f"drain{i}")  # (its peak is not a survivor's)
            yield env.process(
                work(draining, len(mine) * size * (costs.node_eviction + costs.node_commit))
            )
            moved = [env.process(move(g)) for g in mine]
            yield simpy.AllOf(env, moved)
            result.step.add(env.now - began)
            yield env.timeout(max(0.0, setup.boot - (env.now - began)))
            live.add(i)
            restarted.add(i)
            yield env.timeout(setup.settle)
        result.total_seconds = env.now

    env.process(operator())
    env.run()
    result.moves_mean = sum(moves) / len(moves)
    result.moves_max = max(moves)
    result.survivor_peak = _peak(windows, "node")
    result.shard_peak = _peak(windows, "shard")
    return result


def _peak(windows: dict[tuple[str, int], float], prefix: str) -> float:
    return min(
        1.0,
        max((v / 0.1 for (name, _), v in windows.items() if name.startswith(prefix)), default=0),
    )
