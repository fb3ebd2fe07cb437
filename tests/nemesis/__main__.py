"""The nemesis suite, long: every fault under the counter and register workloads (and the
owner's faults and a replica node's cut under the replica workload), then
docs/reliability.md.

    python -m tests.nemesis                 (make test-faults)
    python -m tests.nemesis --only pause    the runs whose fault name contains "pause"
    python -m tests.nemesis --quick         shorter runs, for a look (not for the docs)

Writes docs/reliability.md (a table per fault and the promise as measured) and one timeline
plot per run under docs/images/reliability/; keeps every history as JSON lines under
test-artifacts/nemesis/. Exits 1 if any history holds an anomaly.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from tests.nemesis.cluster import faketime_available
from tests.nemesis.report import write_report
from tests.nemesis.scenarios import Run, fault, run

ROOT = Path(__file__).resolve().parents[2]

#: (fault, seconds it lasts) of the long suite.
LONG = [
    ("kill", 8.0),
    ("pause", 8.0),
    ("pause", 30.0),
    ("pause-short", 0.8),
    ("redis-cut", 10.0),
    ("redis-cut", 40.0),
    ("valkey-kill", 4.0),
    ("isolate", 10.0),
    ("partition", 10.0),
    ("clock+30s", 6.0),
    ("clock-30s", 6.0),
    ("clock-fast", 6.0),
    ("clock-slow", 6.0),
    ("replica-cut", 10.0),
]
#: Faults the replica workload (reads on replicas) also runs under.
REPLICA_FAULTS = ("kill", "pause", "redis-cut", "replica-cut")


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.nemesis",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--only", default="", help="run only faults whose name contains this")
    parser.add_argument("--quick", action="store_true", help="short runs; no report written")
    parser.add_argument("--clients", type=int, default=15)
    args = parser.parse_args(argv)
    runs: list[Run] = []
    artifacts = ROOT / "test-artifacts" / "nemesis"
    artifacts.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    for name, length in LONG:
        if args.only and args.only not in name:
            continue
        if name.startswith("clock") and not faketime_available():
            print(f"skipping {name}: libfaketime is missing (apt-get install faketime)")
            continue
        kinds = ("counter", "register") if name != "replica-cut" else ()
        if name in REPLICA_FAULTS and length < 30:
            kinds = (*kinds, "replica")
        for kind in kinds:
            with tempfile.TemporaryDirectory(prefix="nemesis-") as tmp:
                the_fault = fault(name, length / 2 if args.quick else length)
                result = await run(
                    Path(tmp),
                    the_fault,
                    kind,
                    keys={"counter": 4, "register": 6, "replica": 4}[kind],
                    clients=args.clients,
                    warmup=3.0 if args.quick else 5.0,
                    cooldown=4.0 if args.quick else 10.0,
                )
            result.history.dump(artifacts / f"{name}-{int(length)}s-{kind}.jsonl")
            runs.append(result)
            counts = result.counts
            recovery = "-" if result.recovery is None else f"{result.recovery:.2f}s"
            print(
                f"{the_fault.title:<60} {kind:<9} ops {len(result.history):>6} ok {counts['ok']:>6}"
                f" fail {counts['fail']:>5} info {counts['info']:>4} recovery {recovery:>6}"
                f" anomalies {len(result.anomalies)}",
                flush=True,
            )
            for anomaly in result.anomalies[:10]:
                print("   ", anomaly)
    if not args.quick and not args.only:
        write_report(
            runs,
            ROOT / "docs" / "reliability.md",
            ROOT / "docs" / "images" / "reliability",
            time.monotonic() - started,
        )
        print("wrote docs/reliability.md")
    return 1 if any(r.anomalies for r in runs) else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
