"""Queueing formulas the model uses for added latency, with their assumptions.

Every function takes a utilisation ``rho`` (arrival rate x mean service time, per server)
and a mean service time in seconds, and answers waiting time (time in the queue before
service starts), not time in the system. Each returns ``math.inf`` once the queue is
unstable (``rho >= 1``): no steady state exists.

- **M/M/1** (Poisson arrivals, exponential service, one server): an event loop, an object's
  input gate. Exact: ``P(W > t) = rho * exp(-(1 - rho) * t / s)``.
- **M/D/1** (constant service): a Redis shard running scripts of one kind. The mean is
  exact (Pollaczek-Khinchine); the quantiles use an exponential tail with that mean given
  a wait (``P(W > 0) = rho``), a standard approximation that is close for ``rho`` above
  about 0.5 and slightly pessimistic below.
- **M/M/c** (c servers sharing one queue): a machine's cores shared by several processes
  (Erlang C): ``P(W > t) = C(c, a) * exp(-(c - a) * t / s)`` with ``a = c * rho``.

Limits, stated once: arrivals are assumed Poisson and independent of the system's state.
Real traffic is burstier (a broadcast releases many sends at once, a renewal round arrives
as one pipeline), and closed loops (a caller waiting for its answer before sending again)
throttle themselves; the simulation (simulation.py) covers the cases where that matters.
"""

from __future__ import annotations

import math


def _check(rho: float, service: float) -> None:
    if rho < 0 or service < 0:
        raise ValueError(f"utilisation {rho} and service time {service} must not be negative")


def mm1_mean_wait(rho: float, service: float) -> float:
    """Mean wait in an M/M/1 queue: ``rho * s / (1 - rho)``."""
    _check(rho, service)
    if rho >= 1:
        return math.inf
    return rho * service / (1 - rho)


def mm1_wait_quantile(rho: float, service: float, p: float) -> float:
    """The ``p`` quantile of the wait in an M/M/1 queue (0 when at least ``p`` of arrivals
    find the server free)."""
    _check(rho, service)
    if rho >= 1:
        return math.inf
    if rho <= 1 - p or rho == 0:
        return 0.0
    return service / (1 - rho) * math.log(rho / (1 - p))


def md1_mean_wait(rho: float, service: float) -> float:
    """Mean wait in an M/D/1 queue (Pollaczek-Khinchine): ``rho * s / (2 (1 - rho))``."""
    _check(rho, service)
    if rho >= 1:
        return math.inf
    return rho * service / (2 * (1 - rho))


def md1_wait_quantile(rho: float, service: float, p: float) -> float:
    """Approximate ``p`` quantile of the wait in an M/D/1 queue: waits happen with
    probability ``rho`` and are taken as exponential with the exact conditional mean."""
    _check(rho, service)
    if rho >= 1:
        return math.inf
    if rho <= 1 - p or rho == 0:
        return 0.0
    conditional = md1_mean_wait(rho, service) / rho
    return conditional * math.log(rho / (1 - p))


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with ``offered`` load
    (arrival rate x mean service time, in servers): Erlang's C formula."""
    if servers < 1:
        raise ValueError("at least one server")
    if offered < 0:
        raise ValueError("offered load must not be negative")
    if offered >= servers:
        return 1.0
    # The terms a^k / k!, summed without overflow.
    term, total = 1.0, 1.0
    for k in range(1, servers):
        term *= offered / k
        total += term
    last = term * offered / servers * servers / (servers - offered)
    return last / (total + last)


def mmc_wait_quantile(servers: int, rho: float, service: float, p: float) -> float:
    """The ``p`` quantile of the wait in an M/M/c queue at per-server utilisation ``rho``."""
    _check(rho, service)
    if rho >= 1:
        return math.inf
    waits = erlang_c(servers, rho * servers)
    if waits <= 1 - p or waits == 0:
        return 0.0
    return service / (servers * (1 - rho)) * math.log(waits / (1 - p))


def mmc_mean_wait(servers: int, rho: float, service: float) -> float:
    """Mean wait in an M/M/c queue: ``C(c, a) * s / (c (1 - rho))``."""
    _check(rho, service)
    if rho >= 1:
        return math.inf
    return erlang_c(servers, rho * servers) * service / (servers * (1 - rho))
