"""The 100-node scenarios and the sizing table (``make simulate``).

    .venv/bin/python -m tools.capacity [--costs FILE] [--out DIR] [--quick]

Runs every scenario on the measured costs (tools/capacity/costs.json unless --costs names
another sitting, e.g. bench/results/capacity_costs.json from ``make bench-capacity``),
prints one table per scenario and the sizing table, and keeps them with the plots under
--out (bench/results/ by default): simulate.txt and simulate_*.png.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from . import hot, leases, rolling, sizing, storm
from .costs import Costs, load
from .plots import curves, save_bars

ROOT = Path(__file__).resolve().parents[2]


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    lines = [list(header), *[list(r) for r in rows]]
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    out = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in lines
    ]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def ms(seconds: float) -> str:
    return "n/a" if math.isnan(seconds) else f"{seconds * 1000:,.1f} ms"


def renewal_section(costs: Costs, out: Path, quick: bool) -> str:
    rows, by_shards = [], {}
    seconds = 4.0 if quick else 10.0
    for shards in (16, 32, 64):
        for aligned in (False, True):
            setup = leases.RenewalSetup(
                shards=shards, aligned=aligned, alarms=10_000, seconds=seconds
            )
            r = leases.simulate(setup, costs)
            by_shards[(shards, aligned)] = r
            rows.append(
                (
                    f"{shards}",
                    "together" if aligned else "spread",
                    f"{r.shard_utilisation_mean:.1%} / {r.shard_utilisation_max:.1%}",
                    f"{ms(r.round_p50)} / {ms(r.round_p99)} / {ms(r.round_max)}",
                    f"{r.late_rounds} of {r.rounds}",
                    f"{r.claims_per_s:,.0f}/s, busiest shard {r.claim_shard_max_share:.0%}",
                    ms(r.alarm_delay_p99),
                )
            )
    assigned = leases.simulate(
        leases.RenewalSetup(
            shards=64,
            alarms=10_000,
            seconds=seconds,
            pollers_per_shard=2,
            claim_limit=1000,
            alarm_poll_interval=0.1,
        ),
        costs,
    )
    rows.append(
        (
            "64",
            "spread; 2 pollers a shard, every 0.1 s, 1,000 a claim",
            f"{assigned.shard_utilisation_mean:.1%} / {assigned.shard_utilisation_max:.1%}",
            f"{ms(assigned.round_p50)} / {ms(assigned.round_p99)} / {ms(assigned.round_max)}",
            f"{assigned.late_rounds} of {assigned.rounds}",
            f"{assigned.claims_per_s:,.0f}/s, busiest shard {assigned.claim_shard_max_share:.0%}",
            ms(assigned.alarm_delay_p99),
        )
    )
    save_bars(
        out / "simulate_leases.png",
        "Lease renewal and alarm claiming: 10^6 objects, 100 nodes (Redis CPU of renewals "
        "and polls alone)",
        [f"{s} shards" for s in (16, 32, 64)],
        {
            "busiest shard, rounds spread": [
                by_shards[(s, False)].shard_utilisation_max * 100 for s in (16, 32, 64)
            ],
            "busiest shard, rounds together": [
                by_shards[(s, True)].shard_utilisation_max * 100 for s in (16, 32, 64)
            ],
            "mean shard": [
                by_shards[(s, False)].shard_utilisation_mean * 100 for s in (16, 32, 64)
            ],
        },
        "% of a shard's core",
    )
    return (
        "Lease renewal and alarm claiming: 10^6 live objects over 100 nodes, 10^4 alarms/s\n"
        + table(
            rows,
            (
                "shards",
                "renewal rounds",
                "shard CPU mean / max",
                "round p50 / p99 / max",
                "late (> 0.75 s)",
                "claim polls",
                "alarm p99 delay",
            ),
        )
    )


def storm_section(costs: Costs, out: Path, quick: bool) -> str:
    objects = 2000 if quick else 10_000
    # At the expiry every survivor activates its share at once: its commits share round
    # trips (4 in flight), as the batcher sends them.
    batch = max(1.0, objects / 99 / 4)
    base = storm.StormSetup(
        objects=objects, event_rate=0.5, horizon=8.0, renewed_before_death=0.0, batch=batch
    )
    variants = {
        "as built (poll, back off to 100 ms)": base,
        "wait for the expiry acquire.lua reports": replace(base, wait_for_expiry=True),
    }
    rows, series = [], {}
    for label, setup in variants.items():
        r = storm.simulate(setup, costs)
        series[label] = r.back
        rows.append(
            (
                label,
                f"{r.expiry:.2f} s",
                f"{r.all_back:.2f} s",
                f"{r.polls:,}",
                f"{r.peak_polls_per_s:,.0f}/s",
                f"{r.survivor_peak:.0%}",
                f"{r.shard_peak:.0%}",
                f"{r.latency.q(0.5):.2f} / {r.latency.q(0.99):.2f} s",
                f"{r.failed}",
            )
        )
    curves(
        out / "simulate_storm.png",
        f"A node of 100 dies holding {objects:,} live objects: objects serving again",
        {k: (v, [(i + 1) / objects * 100 for i in range(len(v))]) for k, v in series.items()},
        "seconds after the death",
        "% of its objects back",
    )
    return (
        f"A node of 100 dies with {objects:,} live objects (16 shards; every object's clients "
        "reconnect within 1 s, then an event every 2 s)\n"
        + table(
            rows,
            (
                "survivors' lease waits",
                "leases expire",
                "all back",
                "lease polls",
                "peak polls",
                "busiest survivor",
                "busiest shard",
                "events p50 / p99",
                "failed",
            ),
        )
    )


def hot_section(costs: Costs, out: Path, quick: bool) -> str:
    events = 800 if quick else 1500
    chat = hot.HotSetup(name="chat room", fanout=10_000, nodes=100, entry="socket", events=events)
    rooms = {
        "clients on 100 nodes, tunnelled": chat,
        "clients on the room's node (balancer affinity)": replace(chat, cross_node=0.0),
        "read replicas: each node serves its own sockets": replace(chat, read_replicas=True),
    }
    wr = hot.HotSetup(
        name="waiting room", nodes=100, entry="http", write_share=1.0, events=events * 4
    )
    rooms_wr = {
        "every decision on the room object": wr,
        "replicas, half the decisions read-only": replace(wr, read_replicas=True, write_share=0.5),
        "replicas, a tenth of decisions write": replace(wr, read_replicas=True, write_share=0.1),
    }
    rows = []
    lines = {}
    for label, setup in rooms.items():
        rate, run = hot.cap(setup, costs, p99_target=1.0)
        rows.append(
            (
                "chat room, 10^4 sockets",
                label,
                f"{rate:,.1f} msg/s",
                f"{rate * 10_000:,.0f}/s",
                f"{run.owner_utilisation:.0%}",
                f"{run.replica_utilisation:.0%}" if setup.read_replicas else "",
                f"{run.batch:.1f}",
                ms(run.p99),
            )
        )
        rates = [rate * f for f in (0.25, 0.5, 0.8, 1.0, 1.1)]
        lines[f"chat: {label}"] = (
            rates,
            [hot.simulate(replace(setup, rate=x), costs).p99 * 1000 for x in rates],
        )
    for label, setup in rooms_wr.items():
        rate, run = hot.cap(setup, costs, p99_target=0.05)
        rows.append(
            (
                "waiting room, one room object",
                label,
                f"{rate:,.0f} decisions/s",
                "",
                f"{run.owner_utilisation:.0%}",
                f"{run.replica_utilisation:.0%}" if setup.read_replicas else "",
                f"{run.batch:.1f}",
                ms(run.p99),
            )
        )
    curves(
        out / "simulate_hot.png",
        "One chat room with 10^4 sockets: p99 latency against the message rate",
        lines,
        "messages per second",
        "p99 ms (arrival to last delivery)",
        log_x=True,
        log_y=True,
    )
    return (
        "One hot object: where its single thread caps it (the highest rate at which every event "
        "completes and p99 stays under 1 s for the chat room, 50 ms for the waiting room)\n"
        + table(
            rows,
            (
                "object",
                "design",
                "cap",
                "deliveries",
                "owner CPU",
                "busiest replica",
                "events/commit",
                "p99 at cap",
            ),
        )
    )


def rolling_section(costs: Costs, out: Path, quick: bool) -> str:
    base = rolling.RollingSetup(objects_per_node=2000 if quick else 10_000)
    rows, moves = [], {}
    for label, placement in (
        ("first node a client reaches", "random"),
        ("nodes already restarted", "restarted"),
    ):
        r = rolling.simulate(replace(base, placement=placement), costs)
        moves[label] = r.moves_mean
        rows.append(
            (
                label,
                f"{r.total_seconds / 60:.1f} min",
                f"{r.moves_mean:.2f} (max {r.moves_max})",
                f"{r.activations:,}",
                f"{r.step.q(0.5):.2f} / {r.step.max:.2f} s",
                f"{r.survivor_peak:.0%}",
                f"{r.shard_peak:.0%}",
            )
        )
    save_bars(
        out / "simulate_rolling.png",
        "Rolling restart of 100 nodes: moves per object",
        ["moves per object"],
        {k: [v] for k, v in moves.items()},
        "moves",
    )
    return (
        f"Rolling restart of 100 nodes, {base.objects_per_node:,} live objects each (boot 3 s, "
        "clients reconnect within 2 s, 1 s between nodes)\n"
        + table(
            rows,
            (
                "drained objects go to",
                "total",
                "moves per object",
                "activations",
                "step p50 / max",
                "busiest survivor",
                "busiest shard",
            ),
        )
    )


def sizing_section(costs: Costs) -> str:
    rows, notes = [], []
    for named in sizing.workloads():
        s = sizing.size(named, costs)
        r = s.report
        d = r.deployment
        hot_part = f"{r.hot.utilisation:.0%} of one thread" if r.hot is not None else "n/a"
        rows.append(
            (
                named.name,
                f"{d.nodes} x {d.cores_per_node} cores",
                f"{d.redis_shards}",
                f"{s.limit} ({r.bottleneck.utilisation:.0%})",
                hot_part,
                f"{r.resource('node memory').utilisation:.0%}",
            )
        )
        notes.append(f"- {named.name}: {named.assumes}.")
    return (
        "Sizing (every resource at most 60 % busy; 8-core, 32 GiB nodes; 25 GiB shards)\n"
        + table(
            rows,
            ("workload", "nodes", "shards", "first bottleneck", "busiest object", "node memory"),
        )
        + "\n"
        + "\n".join(notes)
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--costs", type=Path, help="a sitting's costs (JSON)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--quick", action="store_true", help="smaller runs (a quick look)")
    args = parser.parse_args()
    sitting = load(args.costs)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"Simulated at {stamp} on the costs measured {sitting.conditions.get('measured', '?')}"
    ]
    for section in (renewal_section, storm_section, hot_section, rolling_section):
        t0 = time.perf_counter()
        parts.append(section(sitting.costs, args.out, args.quick))
        print(f"  {section.__name__}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    parts.append(sizing_section(sitting.costs))
    parts.append(f"(took {time.perf_counter() - started:.0f} s)")
    text = "\n\n".join(parts)
    print(text)
    (args.out / "simulate.txt").write_text(text + "\n")
    print(f"\nwrote {args.out / 'simulate.txt'} and simulate_*.png", file=sys.stderr)


if __name__ == "__main__":
    main()
