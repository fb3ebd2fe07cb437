"""``--cross-check``: the clients that set the performance targets, run beside ours.

Those clients sit outside this repository, in the folder ``../shared/bench`` of the workspace
the project grew in; a clone has no such folder and the benchmarks do not need it. When it
is there, ``--cross-check`` runs them against the same servers in the same sitting, so their
figures can be set beside ours (and beside the targets they set). Their output is parsed
here and nowhere else.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.chat_client import Load
from bench.common import NODE_DIR, ROOT, Server, run_client

FOLDER = ROOT.parent / "shared" / "bench"
CHAT = FOLDER / "chatbench.py"
YJS = FOLDER / "yjs_bench.mjs"
HELP = (
    "also run the clients that set the targets (../shared/bench, when it sits beside this "
    "repository) and print their figures beside ours"
)


def missing(*needed: Path) -> str | None:
    """Why a cross-check that needs these clients cannot run, or None when it can."""
    absent = [path.name for path in needed if not path.exists()]
    return f"--cross-check: {', '.join(absent)} not found in {FOLDER}" if absent else None


def chat(port: int, path: str, load: Load, tag: str) -> dict[str, float]:
    """chatbench.py once; its JSON line. A paced load becomes its --interval, the pause it
    makes after each send (so it sends a little slower than ``load.rate``)."""
    return run_client(
        [
            sys.executable,
            str(CHAT),
            *("--base", f"ws://127.0.0.1:{port}", "--path", path, "--tag", tag),
            *("--rooms", str(load.rooms), "--clients", str(load.clients)),
            *("--senders", str(load.senders), "--messages", str(load.messages)),
            *("--interval", str(1 / load.rate if load.rate else 0)),
        ],
        timeout=300,
    )


def yjs(server: Server) -> dict[str, float]:
    """yjs_bench.mjs once, run from a scratch folder inside bench/node (so it finds the stock
    Yjs packages there): initial sync of its 5,000-stroke board, propagation p50/p99."""
    with tempfile.TemporaryDirectory(dir=NODE_DIR) as scratch:
        script = Path(scratch) / YJS.name
        shutil.copyfile(YJS, script)
        out = subprocess.run(
            ["node", str(script), server.base],
            cwd=NODE_DIR,
            capture_output=True,
            text=True,
            check=True,
            timeout=180,
        ).stdout
    sync = re.search(r"initial_sync_5000_strokes_ms=(\S+)", out)
    prop = re.search(r"propagation_ms p50=(\d+) p99=(\d+) n=(\d+)", out)
    if sync is None or prop is None:
        raise RuntimeError(f"{YJS.name} printed {out!r}")
    if not sync[1].isdigit() or prop[3] != "200":
        print(f"  ! {server.name}: {YJS.name} printed {out!r}", file=sys.stderr)
    return {
        "sync_ms": float(sync[1]) if sync[1].isdigit() else float("nan"),
        "p50_ms": float(prop[1]),
        "p99_ms": float(prop[2]),
    }
