"""Where a node spends its time under the chat's paced and multi-room workloads (py-spy).

    make profile-chat ARGS="--workload paced"
    .venv/bin/python bench/profile_chat.py [--workload paced|rooms|both] [--repeat 3]

Starts a Valkey like `make run`'s and a node serving the chat (rate limiter off), samples the
node with py-spy (`--idle` off: only time on the CPU) while bench/chat_client.py drives the
workload --repeat times, and prints the functions with the most samples: by their own time
("self") and with what they call ("total"), as shares of the node's samples. The collapsed
stacks are kept under bench/results/profile-<workload>.txt (flamegraph.pl or speedscope
read them).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.chat_bench import CLIENT, PATH, WORKLOADS  # noqa: E402
from bench.common import run_client, start_node  # noqa: E402
from bench.results import RESULTS  # noqa: E402
from runtime.storage.embedded import ValkeyProcess, free_port  # noqa: E402

PICK = {"paced": 1, "rooms": 2}


def summarize(collapsed: Path, top: int) -> str:
    """The top frames by self and total samples, from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue  # (py-spy writes odd bytes for some threads' names)
        n = int(count)
        frames = [f for f in stack.split(";") if f]
        samples += n
        if frames:
            own[_short(frames[-1])] += n
        for frame in {_short(f) for f in frames}:
            total[frame] += n
    lines = [f"{samples} samples (the node's CPU time, 1 per ms)", "", "self %  function"]
    lines += [f"{100 * n / samples:5.1f}  {f}" for f, n in own.most_common(top)]
    lines += ["", "total %  function (runtime and apps code)"]
    ours = [(f, n) for f, n in total.most_common() if "runtime/" in f or "apps/" in f]
    lines += [f"{100 * n / samples:6.1f}  {f}" for f, n in ours[:top]]
    return "\n".join(lines)


def _short(frame: str) -> str:
    """'fn (path/to/module.py:12)' -> 'fn (module.py)' with site-packages trimmed."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for cut in ("site-packages/", "/work/", str(ROOT) + "/"):
        if cut in where:
            where = where.split(cut, 1)[1]
    return f"{name} ({where})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workload", choices=["paced", "rooms", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    pyspy = Path(sys.executable).with_name("py-spy")
    if not pyspy.exists():
        parser.error("py-spy is missing: make profile-chat installs it (the bench extra)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    names = ["paced", "rooms"] if args.workload == "both" else [args.workload]
    for name in names:
        workload = WORKLOADS[PICK[name]]
        with tempfile.TemporaryDirectory() as tmp:
            valkey = ValkeyProcess(tmp, unix_socket=True).start()
            port = free_port()
            node = start_node(port, valkey.url, CHAT_RATE_LIMIT="0")
            out = RESULTS / f"profile-{name}.txt"
            spy = subprocess.Popen(
                [str(pyspy), "record", "--pid", str(node.pid), "--format", "raw",
                 "--rate", "1000", "--output", str(out), "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            time.sleep(1.0)
            try:
                for _ in range(args.repeat):
                    run_client(
                        [sys.executable, str(CLIENT), f"ws://127.0.0.1:{port}{PATH}",
                         *workload.load.argv()],
                        timeout=300,
                    )  # fmt: skip
            finally:
                spy.send_signal(2)  # py-spy writes its file on Ctrl-C
                spy.wait(60)
                node.terminate()
                node.wait(30)
                valkey.stop()
        print(f"== {workload.name}  (py-spy, {out.relative_to(ROOT)})")
        print(summarize(out, args.top))
        print()


if __name__ == "__main__":
    if os.geteuid() != 0 and not os.environ.get("PYSPY_OK"):
        print("py-spy needs to attach to another process (root, or ptrace allowed)")
    main()
