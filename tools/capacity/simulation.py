"""Discrete-event simulation primitives (SimPy): single-threaded processes on shared cores,
Redis shards, and the statistics the scenarios report.

A node process and a Redis shard are each one thread: a SimPy resource of capacity one,
held for the CPU time of each piece of work. Where several processes share a machine's
cores (this benchmark machine, a laptop) each piece of work also holds one of the
machine's cores, so two busy processes on one core take turns as they would under the
kernel's scheduler (at the granularity of one piece of work, not of a time slice).

The scenarios built on these are in scenarios.py.
"""

from __future__ import annotations

import math
import random
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

import simpy

Process = Generator[simpy.Event, Any, Any]


class Machine:
    """Cores several threads share (None: every thread has a core of its own)."""

    def __init__(self, env: simpy.Environment, cores: int | None) -> None:
        self.env = env
        self.cores = None if cores is None else simpy.Resource(env, capacity=cores)


class Thread:
    """One single-threaded process (a node's event loop, a Redis shard): work runs one
    piece at a time, in arrival order; ``busy`` adds up the CPU time it ran."""

    def __init__(self, env: simpy.Environment, name: str, machine: Machine | None = None):
        self.env = env
        self.name = name
        self.machine = machine
        self.lock = simpy.Resource(env, capacity=1)
        self.busy = 0.0
        self.pieces = 0

    def run(self, seconds: float) -> Process:
        """Hold this thread (and a core of its machine) for ``seconds`` of CPU."""
        with self.lock.request() as turn:
            yield turn
            if self.machine is not None and self.machine.cores is not None:
                with self.machine.cores.request() as core:
                    yield core
                    yield self.env.timeout(seconds)
            else:
                yield self.env.timeout(seconds)
        self.busy += seconds
        self.pieces += 1

    def utilisation(self, since: float = 0.0, busy_before: float = 0.0) -> float:
        elapsed = self.env.now - since
        return 0.0 if elapsed <= 0 else (self.busy - busy_before) / elapsed


def quantile(values: Sequence[float], p: float) -> float:
    """The ``p`` quantile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))
    return ordered[rank]


@dataclass
class Tally:
    """Samples of one figure (latencies, completion times)."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def count(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values) if self.values else math.nan

    def q(self, p: float) -> float:
        return quantile(self.values, p)

    @property
    def max(self) -> float:
        return max(self.values) if self.values else math.nan


def mm1(rate: float, service: float, customers: int, seed: int = 1) -> Tally:
    """Waits of ``customers`` Poisson arrivals at one server with exponential service of
    mean ``service``: the textbook M/M/1 queue, run through the same Thread as the
    scenarios (the unit tests check it against the closed form)."""
    env = simpy.Environment()
    rng = random.Random(seed)
    server = Thread(env, "server")
    waits = Tally()

    def customer() -> Process:
        arrived = env.now
        with server.lock.request() as turn:
            yield turn
            waits.add(env.now - arrived)
            yield env.timeout(rng.expovariate(1 / service))

    def source() -> Process:
        for _ in range(customers):
            env.process(customer())
            yield env.timeout(rng.expovariate(rate))

    env.process(source())
    env.run()
    return waits
