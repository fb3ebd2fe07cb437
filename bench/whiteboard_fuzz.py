"""A long fuzzing run of the whiteboard's rules (the short one is a unit test).

    .venv/bin/python bench/whiteboard_fuzz.py [--trials 300000] [--seed 1]

Mutated ordinary Yjs updates go through a board's rules as a client would send them; after
each trial, what the board stored must load (in one transaction, as an activation loads it)
into exactly the document it serves. Prints a table; exits 1 and lists every seed that broke
a rule (add it to tests/unit/test_whiteboard_fuzz.py's FOUND once fixed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RUST_BACKTRACE", "0")

from tests.support import boardfuzz  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=10_000, help="trials per progress line")
    args = parser.parse_args()
    started = time.monotonic()
    done, broken = 0, []
    print(f"{'trials':>10} {'broken':>7} {'seconds':>9} {'trials/s':>9}")
    chunk = 0
    while done < args.trials:
        n = min(args.chunk, args.trials - done)
        outcome = boardfuzz.run(n, seed=args.seed * 1_000_003 + chunk)
        done += outcome.trials
        broken += outcome.divergent
        chunk += 1
        elapsed = time.monotonic() - started
        print(f"{done:>10} {len(broken):>7} {elapsed:>9.1f} {done / elapsed:>9.0f}", flush=True)
    for seed, problem in broken:
        print(f"seed {seed}: {problem}")
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
