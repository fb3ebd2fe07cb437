"""docs/reliability.md from the long suite's runs: a table per fault, a timeline plot per run."""

from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path

from tests.nemesis.scenarios import Run, timeline

INTRO = """\
# Reliability: the runtime under faults

*Written by `make test-faults` (`python -m tests.nemesis`); do not edit by hand.*

Three node processes and one Valkey (append-only, `appendfsync always`) on one machine, with
the default settings (`LEASE_TTL` 2 s, renewals every second). {clients} clients, each bound
to one node, run one operation at a time on a few keys: fetch-and-increment counters
(`POST /counter/<key>`, reads with `GET`), registers (read, write, compare-and-set on the
test app's `/probe/<key>/register`), or — the replica workload — an append-only log of a
replicated object (`/shelf/<key>`: appends go to its primary, counts are read-only calls that
each node's replica serves when it can; every client carries the version each answer gives
it, as a browser carries a cookie). Before the fault, the first node is made the owner of
every key; the fault then hits it (or Valkey, or the paths between them): kill -9,
SIGSTOP, a frozen TCP proxy between it and Valkey (a black hole: bytes go nowhere, no reset)
or between it and its peers, Valkey killed and restarted, or its clock shifted or sped up
with libfaketime. Every operation is recorded: invoked, then `ok` with its value, `fail`
(the answer said `X-Outcome: not-run`, or no connection could be made), or `info` (unknown:
a timeout, or `X-Outcome: unknown`).

Each history is checked per key: registers with a linearizability search (Wing & Gong with
Lowe's memoisation, `tests/nemesis/checker.py`); counters with the fetch-and-increment
checks (no value handed out twice, values in real-time order, no stale or backward read, no
acknowledged increment lost, and nothing applied beyond the acknowledged and the unknown —
which is how a `not-run` that did run would show); the replica workload per client
(read-your-writes: no read shows fewer lines than the client's own last acknowledged append
made; monotonic reads: none fewer than its earlier reads) and across clients (no read staler
than 1.25 s: `REPLICA_MAX_LAG_MS` and a margin; no acknowledged append lost). The checkers are
tested against planted bad histories (`tests/unit/test_nemesis_checker.py`).

**Recovery** is the time from the fault's start (for faults that leave the objects nowhere
else to go — Valkey down, the owner unreachable — from its end) until an operation on a key
the faulty node owned, sent after that moment through another node, completed ok. **Kept**
is the share of such operations that completed ok from then on.

Run on {when}, {machine}; the whole suite took {minutes:.1f} minutes (load average
{load:.1f} at its end: the machine is shared).
"""


def write_report(runs: list[Run], path: Path, images: Path, seconds: float) -> None:
    images.mkdir(parents=True, exist_ok=True)
    for old in images.glob("*.png"):
        old.unlink()
    clients = max((len({op.process for op in r.history}) for r in runs), default=0)
    lines = [
        INTRO.format(
            clients=15 if clients >= 15 else clients,
            when=datetime.date.today().isoformat(),
            machine=f"{os.cpu_count()} cores, Python {platform.python_version()}",
            minutes=seconds / 60,
            load=os.getloadavg()[0],
        ),
        "## Summary\n",
        "| fault | workload | ops | ok | fail | info | anomalies | recovery | kept |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    replicas = [r for r in runs if r.replica_share is not None]
    for r in runs:
        c = r.counts
        recovery = "—" if r.recovery is None else f"{r.recovery:.2f} s"
        kept = "—" if r.kept is None else f"{100 * r.kept:.1f} %"
        lines.append(
            f"| {r.fault.title} | {r.workload} | {len(r.history):,} | {c['ok']:,} | "
            f"{c['fail']:,} | {c['info']:,} | **{len(r.anomalies)}** | {recovery} | {kept} |"
        )
    if replicas:
        lines.append(
            "\nReads on replicas (the replica workload): the share of ok reads a replica "
            "served; the rest went to the primary (a third of the clients are on the owner's "
            "node, where the primary serves them; others were behind the client's version, "
            "past the staleness bound, or the replica was reloading):\n"
        )
        lines.append("| fault | reads | served by a replica |")
        lines.append("|---|---|---|")
        for r in replicas:
            reads = sum(1 for op in r.history if op.f == "read" and op.status == "ok")
            lines.append(f"| {r.fault.title} | {reads:,} | {100 * (r.replica_share or 0):.0f} % |")
    total = sum(len(r.history) for r in runs)
    anomalies = sum(len(r.anomalies) for r in runs)
    lines.append(f"\n{len(runs)} runs, {total:,} operations, **{anomalies} anomalies**.\n")
    lines.append("## Per fault\n")
    for r in runs:
        name = f"{r.fault.name}-{int(r.fault.length)}s-{r.workload}.png"
        _plot(r, images / name)
        lines.append(f"### {r.fault.title} ({r.workload})\n")
        lines.append(
            f"Fault from {r.began - r.t0:.1f} s to {r.healed - r.t0:.1f} s; keys the faulty "
            f"node owned when it began: {len(r.victims)} of {len(r.finals)}."
        )
        if r.errors:
            shown = ", ".join(
                f"`{k}` {v:,}" for k, v in sorted(r.errors.items(), key=lambda kv: -kv[1])[:6]
            )
            lines.append(f"Error answers (status, `X-Error-Code`, `X-Outcome`): {shown}.")
        for anomaly in r.anomalies[:10]:
            lines.append(f"- anomaly: {anomaly}")
        lines.append(f"\n![{r.fault.title}](images/reliability/{name})\n")
    path.write_text("\n".join(lines) + "\n")


def _plot(run: Run, path: Path, width: float = 0.25) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = timeline(run, width)
    xs = [i * width for i in range(len(series["ok"]))]
    fig, ax = plt.subplots(figsize=(8, 2.6), dpi=80)
    ax.axvspan(run.began - run.t0, run.healed - run.t0, color="#fde2e1", label="fault")
    for status, colour in (("ok", "#2f9e44"), ("fail", "#e8590c"), ("info", "#7048e8")):
        ax.plot(xs, [n / width for n in series[status]], label=status, color=colour, lw=1.2)
    ax.set_xlabel("seconds since the clients started")
    ax.set_ylabel("operations / s")
    ax.set_title(f"{run.fault.title} ({run.workload})", fontsize=10)
    ax.legend(loc="upper right", fontsize=8, ncols=4)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
