"""Scenario: one hot object, whose single thread caps what it can serve.

An object runs one event at a time. Every event costs its owner's thread the event itself
(plus the link's share when it arrived through another node); an event that writes joins
the object's open batch, which is committed when no commit is in flight, so under load
many events share one commit and one round trip (commits.py); when the commit lands, the
outputs of its events are released, and a broadcast costs a delivery per socket (a
tunnelled frame per socket whose client is on another node). What a formula misses is the
batching: the commit's cost per event falls as the rate grows, while the output gate adds
a round trip and the fan-out arrives in lumps at each release.

With read replicas (``read_replicas``, being built in parallel: modelled as specified, a
parameter here), read-only events run on a replica on the caller's node, and the owner
publishes each commit once to every node, whose replica delivers it to its local sockets.

The simulation answers, for a rate of events: the owner's utilisation, latency p50/p99
(arrival to output released; for a broadcast, to its last delivery), the average batch;
and by bisection the highest rate whose p99 stays under a target: where the thread caps it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace

import simpy

from .costs import Costs
from .simulation import Process, Tally, Thread


@dataclass(frozen=True)
class HotSetup:
    name: str = "hot object"
    #: Events per second arriving for the object (Poisson).
    rate: float = 100.0
    nodes: int = 100
    #: Sockets every written event's message is broadcast to (0: the caller only).
    fanout: int = 0
    #: Share of events and sockets whose client is on another node; None: 1 - 1/nodes.
    cross_node: float | None = None
    #: Share of events that write (the rest only read).
    write_share: float = 1.0
    #: The app's own CPU per event (its rules).
    app_cpu: float = 0.0
    #: "socket": events are client socket messages (tunnelled frames from other nodes);
    #: "http": requests, forwarded from other nodes as RPC.
    entry: str = "socket"
    read_replicas: bool = False
    events: int = 3000
    seed: int = 1


@dataclass
class HotResult:
    setup: HotSetup
    owner_utilisation: float
    #: The busiest replica's thread (with read replicas).
    replica_utilisation: float = 0.0
    latency: Tally = field(default_factory=Tally)
    commits: int = 0
    #: Events per commit, on average.
    batch: float = 0.0
    #: Completed / arrived: below ~1 the queue grew through the run (unstable).
    completed_share: float = 0.0

    @property
    def p50(self) -> float:
        return self.latency.q(0.5)

    @property
    def p99(self) -> float:
        return self.latency.q(0.99)


def cross(setup: HotSetup) -> float:
    return setup.cross_node if setup.cross_node is not None else 1 - 1 / setup.nodes


def simulate(setup: HotSetup, costs: Costs) -> HotResult:
    env = simpy.Environment()
    rng = random.Random(setup.seed)
    owner = Thread(env, "owner")
    replicas = [Thread(env, f"replica{i}") for i in range(setup.nodes)]
    x = cross(setup)
    trip = costs.redis_rtt + costs.fsync
    result = HotResult(setup, 0.0)
    arrived = 0
    # The open batch: (arrival time, writes?) of events whose outputs wait for it.
    open_batch: list[float] = []
    inflight = False
    local_share = 1 - x
    per_delivery = costs.node_delivery + x * costs.node_tunnel_owner
    event_in = costs.node_socket_message if setup.entry == "socket" else costs.node_event
    link_in = costs.node_tunnel_owner if setup.entry == "socket" else costs.node_forward_owner

    def flush() -> None:
        nonlocal inflight, open_batch
        if inflight or not open_batch:
            return
        batch, open_batch = open_batch, []
        inflight = True
        env.process(commit(batch))

    def commit(batch: list[float]) -> Process:
        nonlocal inflight
        yield env.process(owner.run(costs.node_commit + costs.node_round_trip))
        yield env.timeout(trip)
        result.commits += 1
        inflight = False
        flush()  # what gathered meanwhile goes next
        writes = len(batch)
        if setup.read_replicas:
            # Published once per node; each replica applies it and delivers locally.
            yield env.process(owner.run((setup.nodes - 1) * costs.node_tunnel_owner))
            local = setup.fanout / setup.nodes
            done = [
                env.process(r.run(costs.node_commit + writes * local * costs.node_delivery))
                for r in replicas
            ]
            yield simpy.AllOf(env, done)
        elif setup.fanout:
            yield env.process(owner.run(writes * setup.fanout * per_delivery))
        for started in batch:
            result.latency.add(env.now - started)

    def event() -> Process:
        start = env.now
        write = rng.random() < setup.write_share
        if setup.read_replicas and not write:
            # A read on the caller's node's replica: no link, no commit.
            replica = replicas[rng.randrange(setup.nodes)]
            yield env.process(replica.run(event_in + setup.app_cpu))
            result.latency.add(env.now - start)
            return
        remote = rng.random() >= local_share
        cost = event_in + setup.app_cpu + (link_in if remote else 0.0)
        yield env.process(owner.run(cost))
        if remote:
            yield env.timeout(costs.link_rtt)
        if write or inflight or open_batch:
            # Writes join the open batch; a read's output waits for what is uncommitted.
            open_batch.append(start)
            flush()
        else:
            result.latency.add(env.now - start)

    last_arrival = 0.0

    def source() -> Process:
        nonlocal arrived, last_arrival
        for _ in range(setup.events):
            env.process(event())
            arrived += 1
            last_arrival = env.now
            yield env.timeout(rng.expovariate(setup.rate))

    env.process(source())
    # Run to the last arrival, then a little longer for what is in flight (a few times
    # one event's own time, unqueued): a queue that grew without bound shows as events
    # not completed.
    alone = (
        trip
        + costs.link_rtt
        + event_in
        + link_in
        + setup.app_cpu
        + costs.node_commit
        + costs.node_round_trip
        + setup.fanout * per_delivery
    )
    horizon = setup.events / setup.rate
    env.run(until=horizon * 1.05 + 5 * alone)
    # The work the arrivals brought, over the time they arrived in: the offered load
    # (what ran after the last arrival is the backlog of the same period; above 1 the
    # queue grows without bound).
    result.owner_utilisation = owner.busy / last_arrival if last_arrival else 0.0
    busiest = max(r.busy for r in replicas)
    result.replica_utilisation = busiest / last_arrival if last_arrival else 0.0
    result.batch = result.latency.count / result.commits if result.commits else 0.0
    result.completed_share = result.latency.count / arrived if arrived else 0.0
    return result


def cap(
    setup: HotSetup, costs: Costs, p99_target: float = 0.1, lo: float = 0.1, hi: float = 1e6
) -> tuple[float, HotResult]:
    """The highest rate whose p99 stays under ``p99_target``, with every event completed and
    every thread's offered load under 0.98 (bisection on the logarithm of the rate); and
    the run at that rate."""
    best: HotResult | None = None
    for _ in range(18):
        mid = math.sqrt(lo * hi)
        run = simulate(replace(setup, rate=mid), costs)
        stable = max(run.owner_utilisation, run.replica_utilisation) < 0.98
        if stable and run.completed_share > 0.99 and run.p99 <= p99_target:
            lo, best = mid, run
        else:
            hi = mid
        if hi / lo < 1.1:
            break
    if best is None:
        best = simulate(replace(setup, rate=lo), costs)
    return lo, best
