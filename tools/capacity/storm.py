"""Scenario: a node dies holding live objects; the survivors take them over.

What happens, as routing.py and node.py do it: the dead node's leases were all renewed by
its last renewal round, so they expire together, ``lease_ttl`` after that round was sent.
Until then every event for one of its objects, on whichever survivor it reaches, finds the
lease held: the survivor's first forward to the dead node is refused (the link marks the
node unreachable for a second), and the event then polls ``acquire.lua`` with a backoff of
20 ms doubling to 100 ms, each poll a round trip to the object's Redis shard, until the
lease is free or ``activation_timeout`` passes (the event fails). The first poll after the
expiry takes the lease and activates the object; events for it on other survivors find it
held by a live node and are forwarded there.

A formula sees the average; the outage is a pile-up: every event of the gap is parked in
a poll loop, all of them polling at up to 10/s each, and then all objects activate within
one backoff step of the expiry. The simulation follows each event, with every survivor's
loop and every Redis shard as single threads (optionally on shared cores, as on this
benchmark machine), and answers how long until every object is serving again, how much
the polling costs Redis, and what two design changes would save: one waiter per object per
node (``coalesce``), and waiting exactly for the expiry that ``acquire.lua`` could report
(``wait_for_expiry``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import simpy

from .costs import Costs
from .simulation import Machine, Process, Tally, Thread

#: The router's backoff between lease polls: 20 ms doubling up to 100 ms (routing.py).
FIRST_DELAY = 0.02
MAX_DELAY = 0.1


@dataclass(frozen=True)
class StormSetup:
    survivors: int = 99
    #: Live objects on the node that dies.
    objects: int = 10_000
    shards: int = 16
    lease_ttl: float = 2.0
    renew_interval: float = 1.0
    #: Seconds between the dead node's last renewal round (or the acquisition of a new
    #: lease) and its death; None: uniform over the renewal interval (a random moment).
    renewed_before_death: float | None = None
    #: The dead node's registry entry outlives it by up to this (3 heartbeats).
    registry_ttl: float = 3.0
    activation_timeout: float = 5.0
    #: How long a refused link keeps its node marked unreachable.
    unreachable_for: float = 1.0
    #: Open loop: every object hears from its clients once within this window after the
    #: death (their sockets closed; they reconnect), and then every 1/event_rate s.
    reconnects_per_object: int = 1
    reconnect_window: float = 1.0
    event_rate: float = 0.0
    #: Closed loop instead (this machine's measurement): ``clients`` callers visit every
    #: object once, each waiting ``client_pause`` after a failed attempt.
    clients: int = 0
    client_pause: float = 0.01
    #: Survivors, Redis and the load generator share this many cores (None: own cores).
    cores: int | None = None
    #: Commits per round trip (the batcher's batching; 1 is the pessimistic end).
    batch: float = 1.0
    #: Design change: one lease waiter per object per node; other events wait for it.
    coalesce: bool = False
    #: Design change: acquire.lua reports the lease's remaining time; wait exactly that.
    wait_for_expiry: bool = False
    horizon: float = 60.0
    seed: int = 1


@dataclass
class StormResult:
    setup: StormSetup
    #: The lease expiry, seconds after the death.
    expiry: float
    #: Seconds after the death until every object has served an event again.
    all_back: float
    #: Until the first object served again.
    first_back: float
    #: Events served, failed (waited past activation_timeout).
    served: int
    failed: int
    polls: int
    #: Lease polls per second at their peak (over 100 ms), over the deployment.
    peak_polls_per_s: float
    #: Peak utilisation (over 100 ms windows) of the busiest survivor and Redis shard.
    survivor_peak: float
    shard_peak: float
    latency: Tally = field(default_factory=Tally)
    #: Seconds after the death at which each object served again, in order.
    back: list[float] = field(default_factory=list)


@dataclass
class _Object:
    index: int
    shard: int
    owner: int | None = None
    ready: simpy.Event | None = None
    served: bool = False
    #: Per survivor: the event its lease waiter will fire (coalesce).
    waiters: dict[int, simpy.Event] = field(default_factory=dict)


def simulate(setup: StormSetup, costs: Costs) -> StormResult:
    env = simpy.Environment()
    rng = random.Random(setup.seed)
    machine = Machine(env, setup.cores)
    nodes = [Thread(env, f"node{i}", machine) for i in range(setup.survivors)]
    shards = [Thread(env, f"shard{i}", machine) for i in range(setup.shards)]
    client = Thread(env, "load generator", machine)
    renewed = (
        setup.renewed_before_death
        if setup.renewed_before_death is not None
        else rng.uniform(0, setup.renew_interval)
    )
    expiry = setup.lease_ttl - renewed
    registry_gone = rng.uniform(setup.registry_ttl - 1.0, setup.registry_ttl)
    unreachable_until = [0.0] * setup.survivors
    objects = [_Object(i, rng.randrange(setup.shards)) for i in range(setup.objects)]
    result = StormResult(setup, expiry, 0.0, 0.0, 0, 0, 0, 0.0, 0.0, 0.0)
    poll_times: list[float] = []
    trip = costs.redis_rtt + costs.fsync
    # (CPU seconds, by the 100 ms window in which each piece finished)
    windows: dict[tuple[str, int], float] = {}

    def work(thread: Thread, seconds: float) -> Process:
        yield env.process(thread.run(seconds))
        key = (thread.name, int(env.now * 10))
        windows[key] = windows.get(key, 0.0) + seconds

    def commit_and_run(obj: _Object) -> Process:
        """The event on its owner: the event, its commit (a round trip), then done."""
        assert obj.owner is not None
        owner = nodes[obj.owner]
        yield env.process(
            work(owner, costs.node_event + costs.node_commit + costs.node_round_trip / setup.batch)
        )
        yield env.process(
            work(shards[obj.shard], costs.redis_commit + costs.redis_round_trip / setup.batch)
        )
        yield env.timeout(trip)

    def activate(obj: _Object, k: int) -> Process:
        obj.owner = k
        obj.ready = env.event()
        yield env.process(work(nodes[k], costs.node_activation))
        yield env.process(work(shards[obj.shard], costs.redis_activation))
        yield env.timeout(costs.redis_rtt)
        obj.ready.succeed()

    def wait_for_lease(obj: _Object, k: int, start: float) -> Process:
        """Poll until the lease is ours or another live node holds it; False: timed out."""
        delay = FIRST_DELAY
        while obj.owner is None:
            if env.now >= expiry:
                yield env.process(activate(obj, k))
                return True
            if env.now - start > setup.activation_timeout:
                return False
            node = nodes[k]
            # The holder is still registered and not marked unreachable: forward, refused.
            if env.now < registry_gone and env.now >= unreachable_until[k]:
                yield env.process(work(node, costs.node_forward_caller))
                unreachable_until[k] = env.now + setup.unreachable_for
            yield env.process(work(node, costs.node_lease_poll))
            yield env.process(work(shards[obj.shard], costs.redis_lease_poll))
            yield env.timeout(costs.redis_rtt)
            result.polls += 1
            poll_times.append(env.now)
            if obj.owner is not None or env.now >= expiry:
                continue
            if setup.wait_for_expiry:
                yield env.timeout(max(0.0, expiry - env.now))
            else:
                yield env.timeout(delay)
                delay = min(delay * 2, MAX_DELAY)
        return True

    def event(obj: _Object, k: int) -> Process:
        """One event for ``obj`` arriving at survivor ``k`` (over HTTP or a socket)."""
        start = env.now
        yield env.process(work(nodes[k], costs.node_http))
        if obj.owner is None:
            if setup.coalesce and k in obj.waiters:
                ok = yield obj.waiters[k]
            else:
                done = env.event()
                if setup.coalesce:
                    obj.waiters[k] = done
                ok = yield env.process(wait_for_lease(obj, k, start))
                done.succeed(ok)
                obj.waiters.pop(k, None)
            if not ok:
                result.failed += 1
                return False
        assert obj.ready is not None and obj.owner is not None
        yield obj.ready
        if obj.owner != k:
            yield env.process(work(nodes[k], costs.node_forward_caller))
            yield env.process(work(nodes[obj.owner], costs.node_forward_owner))
            yield env.timeout(costs.link_rtt)
        yield env.process(commit_and_run(obj))
        result.served += 1
        result.latency.add(env.now - start)
        if not obj.served:
            obj.served = True
            result.back.append(env.now)
            if result.first_back == 0.0:
                result.first_back = env.now
            result.all_back = max(result.all_back, env.now)
        return True

    def open_loop(obj: _Object) -> Process:
        for _ in range(setup.reconnects_per_object):
            env.process(_later(rng.uniform(0, setup.reconnect_window), obj))
        if setup.event_rate > 0:
            while True:
                yield env.timeout(rng.expovariate(setup.event_rate))
                env.process(event(obj, rng.randrange(setup.survivors)))
        yield env.timeout(0)

    def _later(delay: float, obj: _Object) -> Process:
        yield env.timeout(delay)
        yield env.process(event(obj, rng.randrange(setup.survivors)))

    def caller(worker: int, queue: list[_Object]) -> Process:
        k = worker % setup.survivors
        while queue:
            obj = queue.pop()
            while True:
                yield env.process(work(client, costs.client_http))
                ok = yield env.process(event(obj, k))
                if ok:
                    break
                yield env.timeout(setup.client_pause)

    if setup.clients:
        queue = list(reversed(objects))
        for w in range(setup.clients):
            env.process(caller(w, queue))
    else:
        for obj in objects:
            env.process(open_loop(obj))
    env.run(until=setup.horizon)
    result.peak_polls_per_s = _peak_rate(poll_times, 0.1)
    result.survivor_peak = _peak(windows, [n.name for n in nodes])
    result.shard_peak = _peak(windows, [s.name for s in shards])
    return result


def _peak_rate(times: list[float], window: float) -> float:
    counts: dict[int, int] = {}
    for t in times:
        counts[int(t / window)] = counts.get(int(t / window), 0) + 1
    return max(counts.values(), default=0) / window


def _peak(windows: dict[tuple[str, int], float], names: list[str]) -> float:
    wanted = set(names)
    return min(1.0, max((v / 0.1 for (n, _), v in windows.items() if n in wanted), default=0.0))
