"""Runs of the nemesis: a cluster (cluster.py), clients recording a history (workload.py),
one fault injected and healed on a schedule, then the history checked (checker.py).

A run goes: start the cluster; make the target node the owner of every key (one operation
on each through it: the first node that needs a free object hosts it); clients run for
``warmup`` seconds; the fault begins (time T); it heals ``length`` seconds later; clients
run ``cooldown`` seconds more; every operation ends; each key is read once more through
any node; the history is checked.

What a run measures besides anomalies: **recovery**, the time from T (or from the heal,
for faults that leave the object nowhere to go) until an operation on a key the target
owned, invoked after T through another node, completed ok; and **kept**, the share of the
operations on those keys through other nodes, invoked from then on, that completed ok.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.nemesis.checker import (
    Counter,
    Register,
    check_counter,
    check_register_reads,
    check_sessions,
    linearizable,
)
from tests.nemesis.cluster import Cluster, object_hex
from tests.nemesis.history import FAIL, INFO, OK, History, Op
from tests.nemesis.workload import Workload, final_value

Action = Callable[[Cluster], None]


@dataclass
class Fault:
    """A fault: what begins it and what heals it, and whether the target's objects can be
    served elsewhere while it lasts (recovery is then measured from its start)."""

    name: str
    title: str
    begin: Action
    heal: Action
    length: float
    elsewhere: bool = True
    clocks: dict[int, str] = field(default_factory=dict)


def _none(cluster: Cluster) -> None:
    pass


TARGET = 0
#: The staleness a replica read may show at most (the nodes' REPLICA_MAX_LAG_MS, 1 s by
#: default, and a quarter second for a read's own way through a loaded machine).
STALENESS_BOUND = 1.25


def fault(kind: str, length: float) -> Fault:
    """The faults of the suite, by name, lasting ``length`` seconds."""
    t = TARGET
    if kind == "kill":
        return Fault(
            kind,
            "owner killed (kill -9), restarted later",
            lambda c: c.kill(t),
            lambda c: c.restart(t),
            length,
        )
    if kind in ("pause", "pause-short"):
        title = f"owner paused (SIGSTOP) for {length:g} s"
        return Fault(kind, title, lambda c: c.pause(t), lambda c: c.resume(t), length)
    if kind == "redis-cut":
        return Fault(
            kind,
            f"owner cut off from Valkey for {length:g} s (its path frozen)",
            lambda c: c.cut_from_redis(t),
            lambda c: c.heal_redis(t),
            length,
        )
    if kind == "valkey-kill":
        return Fault(
            kind,
            f"Valkey killed (kill -9), back after {length:g} s",
            lambda c: c.kill_valkey(),
            lambda c: c.restart_valkey(),
            length,
            elsewhere=False,
        )
    if kind == "isolate":
        return Fault(
            kind,
            f"owner unreachable by the other nodes for {length:g} s",
            lambda c: c.isolate(t),
            lambda c: c.heal_links(),
            length,
            elsewhere=False,
        )
    if kind == "partition":

        def split(c: Cluster) -> None:
            for i in range(c.count):
                c.isolate(i)

        return Fault(
            kind,
            f"no node reaches another for {length:g} s",
            split,
            lambda c: c.heal_links(),
            length,
            elsewhere=False,
        )
    if kind == "replica-cut":
        # Not the owner: a node whose replicas serve reads loses Valkey (its feed freezes).
        return Fault(
            kind,
            f"a replica's node cut off from Valkey for {length:g} s (its path frozen)",
            lambda c: c.cut_from_redis(1),
            lambda c: c.heal_redis(1),
            length,
        )
    if kind.startswith("clock"):
        # The owner runs on a skewed clock the whole run; the fault pauses it past its lease.
        skew = {
            "clock+30s": "+30",
            "clock-30s": "-30",
            "clock-fast": "+0 x1.01",
            "clock-slow": "+0 x0.99",
        }[kind]
        title = f"owner's clock {skew.strip()} (libfaketime), paused {length:g} s"
        return Fault(
            kind, title, lambda c: c.pause(t), lambda c: c.resume(t), length, clocks={t: skew}
        )
    raise ValueError(f"no fault {kind!r}")


@dataclass
class Run:
    """A finished run: its history and what was found in it."""

    fault: Fault
    workload: str
    history: History
    t0: float  # clients started
    began: float  # the fault began
    healed: float
    victims: set[str]
    finals: dict[str, Any]
    anomalies: list[str]
    recovery: float | None  # seconds
    kept: float | None  # share ok
    stats: list[dict[str, int]]
    errors: dict[str, int]
    unlabelled: int  # error answers without X-Outcome

    @property
    def counts(self) -> dict[str, int]:
        return self.history.counts()

    @property
    def replica_share(self) -> float | None:
        """The share of ok reads a replica served (the replica workload), else None."""
        reads = [op for op in self.history if op.f == "read" and op.status == OK]
        if self.workload != "replica" or not reads:
            return None
        return sum(1 for op in reads if op.detail == "replica") / len(reads)


async def run(
    directory: Path,
    the_fault: Fault,
    kind: str = "counter",
    *,
    keys: int = 4,
    clients: int = 9,
    warmup: float = 2.0,
    cooldown: float = 3.0,
) -> Run:
    """One run of ``the_fault`` under a ``kind`` workload (see the module's docstring)."""
    cluster = await asyncio.to_thread(Cluster(directory, clocks=the_fault.clocks).start)
    try:
        return await _run(cluster, the_fault, kind, keys, clients, warmup, cooldown)
    finally:
        await asyncio.to_thread(cluster.stop)


async def _run(
    cluster: Cluster,
    the_fault: Fault,
    kind: str,
    keys: int,
    clients: int,
    warmup: float,
    cooldown: float,
) -> Run:
    names = [f"{kind}-{the_fault.name}-{i}" for i in range(keys)]
    history = History()
    work = Workload(kind, names, clients=clients)
    bases = [cluster.url(i) for i in range(cluster.count)]
    ids = [f"n{i + 1}" for i in range(cluster.count)]
    # The target owns every key: one operation on each through it, recorded like any other.
    import httpx

    async with httpx.AsyncClient() as client:
        first = history.new_process()
        for name in names:
            op = await work.one(client, history, first, ids[TARGET], bases[TARGET], name)
            assert op.status == OK, f"setting up {name} failed: {op.detail}"
    stop = asyncio.Event()
    t0 = time.monotonic()
    tasks = [
        asyncio.create_task(
            work.client(history, ids[i % cluster.count], bases[i % cluster.count], stop, i + 1)
        )
        for i in range(clients)
    ]
    try:
        await asyncio.sleep(warmup)
        namespace = {"counter": "counter", "register": "probe", "replica": "shelf"}[kind]
        owned = await asyncio.to_thread(cluster.live, TARGET)
        victims = {n for n in names if f"{namespace}:{object_hex(namespace, n)}" in owned}
        began = time.monotonic()
        await asyncio.to_thread(the_fault.begin, cluster)
        await asyncio.sleep(the_fault.length)
        healed = time.monotonic()
        await asyncio.to_thread(the_fault.heal, cluster)
        await asyncio.sleep(cooldown)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    path = {
        "counter": "/counter/{}",
        "register": "/probe/{}/register",
        "replica": "/shelf/{}/total",
    }[kind]
    finals = {n: await final_value(bases, path.format(n)) for n in names}
    stats = [await asyncio.to_thread(cluster.stats, i) for i in range(cluster.count)]
    anomalies = check(history, kind, finals)
    recovery, kept = availability(
        history, victims, ids[TARGET], began if the_fault.elsewhere else healed
    )
    unlabelled = sum(n for (status, _, outcome), n in work.errors.items() if outcome == "-")
    errors = {f"{s} {c} {o}": n for (s, c, o), n in sorted(work.errors.items())}
    return Run(
        the_fault,
        kind,
        history,
        t0,
        began,
        healed,
        victims,
        finals,
        anomalies,
        recovery,
        kept,
        stats,
        errors,
        unlabelled,
    )


def check(history: History, kind: str, finals: dict[str, Any]) -> list[str]:
    """Every anomaly of every key."""
    anomalies: list[str] = []
    for key, ops in sorted(history.by_key().items()):
        if kind == "replica":
            found = check_sessions(ops, finals.get(key), STALENESS_BOUND)
            anomalies += [f"{key}: {a}" for a in found]
            continue
        if kind == "counter":
            found = check_counter(ops, finals.get(key))
            verdict = linearizable([*ops, _final_read(key, finals.get(key), ops)], Counter())
            if verdict.linearizable is False:
                found.append(verdict.why)
        else:
            found = check_register_reads(ops)
            verdict = linearizable([*ops, _final_read(key, finals.get(key), ops)], Register())
            if verdict.linearizable is False:
                found.append(verdict.why)
            elif verdict.linearizable is None:
                found.append(f"linearizability not decided: {verdict.why}")
        anomalies += [f"{key}: {a}" for a in found]
    return anomalies


def _final_read(key: str, value: Any, ops: list[Op]) -> Op:
    """The last read, after every operation ended, as one more operation of the history."""
    after = max((op.end for op in ops if op.complete is not None), default=0.0) + 1
    return Op(
        0,
        key,
        "read",
        None,
        invoke=after,
        complete=after + 0.001,
        status=OK,
        value=value,
        index=len(ops),
    )


def availability(
    history: History, victims: set[str], target: str, since: float
) -> tuple[float | None, float | None]:
    """(seconds from ``since`` until the first ok on a victim key through another node,
    share ok of such operations invoked from then on)."""
    mine = [op for op in history if op.key in victims and op.node != target and op.invoke >= since]
    oks = [op for op in mine if op.status == OK]
    if not oks:
        return None, None
    first = min(op.end for op in oks)
    later = [op for op in mine if op.invoke >= first]
    kept = sum(1 for op in later if op.status == OK) / len(later) if later else None
    return first - since, kept


def timeline(run: Run, width: float = 0.25) -> dict[str, list[int]]:
    """ok / fail / info operations per ``width`` seconds since the clients started (an op
    counts when it ended; an info one when it was given up on)."""
    end = max((op.invoke for op in run.history), default=run.t0) + 1
    bins = int((end - run.t0) / width) + 1
    out = {OK: [0] * bins, FAIL: [0] * bins, INFO: [0] * bins}
    for op in run.history:
        when = op.returned if op.returned is not None else op.invoke
        i = int((when - run.t0) / width)
        if 0 <= i < bins and op.status in out:
            out[op.status][i] += 1
    return out
