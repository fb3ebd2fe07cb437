"""The capacity benchmark: measured costs, then the model and the simulation against reality.

    .venv/bin/python -m bench.capacity [--runs 3] [--quick] [--save] [--costs FILE]
                                       [--only costs|check]

Starts a Valkey (AOF, fsync always, TCP) and node processes, measures every per-operation
cost of tools/capacity/costs.py (each the median of --runs runs), and the apps' own CPU on
their rules alone; then runs the checks of check.py (each measured figure the median of
--runs runs) beside the model's and the simulation's predictions, with the error. Prints
both tables and keeps them under bench/results/: capacity.txt and capacity.png (the costs),
capacity_check.png (prediction errors), capacity_costs.json (the costs, for
``make simulate ARGS="--costs bench/results/capacity_costs.json"``). --save also writes the
costs over tools/capacity/costs.json, the defaults the model and simulation use. --costs
takes the costs from a file instead of measuring them (checks only).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.capacity import apps as app_costs  # noqa: E402
from bench.capacity import check, measure  # noqa: E402
from bench.capacity.drive import load_averages  # noqa: E402
from bench.results import RESULTS, Panel, publish, table  # noqa: E402
from runtime.storage.embedded import ValkeyProcess  # noqa: E402
from tools.capacity.costs import DEFAULTS, Costs, Sitting, load  # noqa: E402


def shown(name: str, value: float) -> str:
    """A cost with its unit: bytes, a count, latency in ms, CPU in us (per second)."""
    if "mem_" in name:
        return f"{value:,.0f} B"
    if name == "redis_commit_ops":
        return f"{value:.2f} ops"
    if name.endswith("_per_s"):
        return f"{value * 1e6:.3f} us/s"
    if name in ("redis_rtt", "fsync", "link_rtt"):
        return f"{value * 1e3:.3f} ms"
    return f"{value * 1e6:.1f} us"


def costs_table(sitting: Sitting, seen: dict[str, float]) -> str:
    rows = []
    for name in Costs.names():
        value = getattr(sitting.costs, name)
        low, high = sitting.spread.get(name, (math.nan, math.nan))
        span = "" if math.isnan(low) else f"{shown(name, low)} - {shown(name, high)}"
        rows.append((name, shown(name, value), span))
    text = table(rows, ("cost", "median", "range over the runs"))
    if seen:
        text += "\n\n" + table(
            [(k, f"{v:.3g}") for k, v in seen.items()], ("also seen (medians)", "")
        )
    return text


def checks_table(checks: list[check.Check]) -> str:
    rows = []
    for c in checks:
        miss = c.miss
        rows.append(
            (
                c.what,
                f"{c.measured:,.4g} {c.unit}",
                f"{c.predicted:,.4g}",
                c.by,
                f"{c.error:+.0%}" + (" *" if miss else ""),
                ", ".join(f"{v:.4g}" for v in c.runs),
            )
        )
    return table(rows, ("figure", "measured", "predicted", "by", "error", "runs")) + (
        "\n(* misses by more than 25 % and more than the machine's jitter: docs/scale.md says why)"
    )


def plot_checks(checks: list[check.Check], path: Path, title: str) -> None:
    """Each check's error as a horizontal bar, the ±25 % band shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(10, 0.45 * len(checks) + 1.6), layout="constrained")
    errors = [c.error * 100 for c in checks]
    colours = ["tab:red" if c.miss else "tab:blue" for c in checks]
    ax.barh(range(len(checks)), errors, color=colours)
    ax.axvspan(-25, 25, color="tab:green", alpha=0.12, label="within 25 %")
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(range(len(checks)))
    ax.set_yticklabels([f"{c.what} ({c.by})" for c in checks], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("prediction error, % of the measurement")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer operations and checks")
    parser.add_argument("--save", action="store_true", help=f"also write {DEFAULTS}")
    parser.add_argument("--costs", type=Path, help="take the costs from this file")
    parser.add_argument("--only", choices=["costs", "check"])
    args = parser.parse_args()
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    before = load_averages()
    started = time.perf_counter()
    seen: dict[str, float] = {}
    if args.costs is not None or args.only == "check":
        sitting = load(args.costs)
    else:
        scale = measure.Scale().quick() if args.quick else measure.Scale()
        runs = []
        for i in range(args.runs):
            runs.append(measure.one_run(scale))
            print(f"  costs: run {i + 1} of {args.runs} done", file=sys.stderr)
        costs, spread, seen = measure.medians(runs)
        sitting = Sitting(
            costs,
            spread,
            {
                "measured": stamp,
                "machine": f"{os.cpu_count()} cores",
                "runs": str(args.runs),
                "load averages before": before,
                "load averages after": load_averages(),
                "how": "python -m bench.capacity" + (" --quick" if args.quick else ""),
            },
        )
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "capacity_costs.json").write_text(sitting.to_json())
        if args.save:
            DEFAULTS.write_text(sitting.to_json())
    apps = check.Apps(
        app_costs.chat_message(), app_costs.waiting_room_decision(), app_costs.whiteboard_update()
    )
    seen["app CPU per event, chat (us)"] = apps.chat * 1e6
    seen["app CPU per event, waiting room (us)"] = apps.waiting_room * 1e6
    seen["app CPU per event, whiteboard (us)"] = apps.whiteboard * 1e6
    parts = [
        f"Capacity: measured costs ({sitting.conditions.get('measured', 'from a file')}, "
        f"{os.cpu_count()} cores, medians of {sitting.conditions.get('runs', '?')} runs, "
        f"load averages before {sitting.conditions.get('load averages before', '?')})",
        costs_table(sitting, seen),
    ]
    checks: list[check.Check] = []
    if args.only != "costs":
        with tempfile.TemporaryDirectory() as tmp:
            valkey = ValkeyProcess(tmp, appendfsync="always").start()
            assert valkey.process is not None
            try:
                checks = check.check_all(
                    valkey.url, valkey.process.pid, sitting.costs, apps, args.runs, args.quick
                )
            finally:
                valkey.stop()
        within = sum(not c.miss for c in checks)
        parts += [
            f"Model and simulation against measurements (medians of {args.runs} runs; load "
            f"averages at the end {load_averages()}; {within} of {len(checks)} within 25 %)",
            checks_table(checks),
        ]
    minutes = (time.perf_counter() - started) / 60
    parts.append(f"(took {minutes:.1f} min)")
    c = sitting.costs
    names = [
        ("HTTP request", c.node_http),
        ("event", c.node_event),
        ("commit (call)", c.node_commit),
        ("round trip", c.node_round_trip),
        ("activation", c.node_activation),
        ("forward: caller", c.node_forward_caller),
        ("forward: owner", c.node_forward_owner),
        ("socket message", c.node_socket_message),
        ("delivery", c.node_delivery),
        ("tunnel frame: entry", c.node_tunnel_entry),
        ("tunnel frame: owner", c.node_tunnel_owner),
    ]
    redis_names = [
        ("commit", c.redis_commit),
        ("round trip", c.redis_round_trip),
        ("renewal", c.redis_renewal),
        ("alarm claim (empty)", c.redis_claim_empty),
        ("alarm", c.redis_alarm),
        ("heartbeat", c.redis_heartbeat),
        ("activation", c.redis_activation),
    ]
    panels = [
        Panel(
            "Node CPU per operation",
            "us",
            [n for n, _ in names],
            {"measured": [v * 1e6 for _, v in names]},
        ),
        Panel(
            "Valkey CPU per operation",
            "us",
            [n for n, _ in redis_names],
            {"measured": [v * 1e6 for _, v in redis_names]},
        ),
    ]
    publish("capacity", "\n\n".join(parts), panels)
    if checks:
        path = RESULTS / "capacity_check.png"
        plot_checks(checks, path, f"Capacity model and simulation against measurements ({stamp})")
        print(f"wrote {path}", file=sys.stderr)
    if checks and sum(c.miss for c in checks) > len(checks) / 2:
        print("most predictions miss by more than 25 %", file=sys.stderr)


if __name__ == "__main__":
    main()
