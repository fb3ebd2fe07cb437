"""Chat fan-out: N rooms x M clients x S senders over real sockets (issue #3's figures).

    .venv/bin/python bench/chat_bench.py [--runs 5] [--baselines]

Starts a Valkey server configured like `make run`'s embedded one (append-only file, fsync
always) and one node serving the suite with the rate limiter off (CHAT_RATE_LIMIT=0), then
drives it with the shared client ../shared/bench/chatbench.py (the one that set the targets)
in its own process. With --baselines it also measures two servers with no storage: a plain
`websockets` server with broadcast() and Starlette on uvicorn. Prints the medians of --runs
runs per workload.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import start_node, start_server  # noqa: E402
from runtime.embedded import ValkeyProcess, free_port  # noqa: E402

CLIENT = ROOT.parent / "shared" / "bench" / "chatbench.py"
PATH = "/chat/api/room/{room}/websocket"

WORKLOADS = [
    (
        "1 room x 100 clients, 1 sender, 200 msgs as fast as possible",
        ["--rooms", "1", "--clients", "100", "--senders", "1", "--messages", "200"],
        ">= 80,000 deliveries/s",
    ),
    (
        "1 room x 20 clients, 1 sender at ~170 msg/s",
        [
            "--rooms",
            "1",
            "--clients",
            "20",
            "--senders",
            "1",
            "--messages",
            "200",
            "--interval",
            "0.005",
        ],
        "p99 <= 3 ms",
    ),
    (
        "50 rooms x 4 clients, 1 sender each, 50 msgs burst",
        ["--rooms", "50", "--clients", "4", "--senders", "1", "--messages", "50"],
        ">= 40,000 deliveries/s, p99 <= 0.25 s",
    ),
]


def run_client(port: int, args: list[str], tag: str) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            str(CLIENT),
            "--base",
            f"ws://127.0.0.1:{port}",
            "--path",
            PATH,
            "--tag",
            tag,
            *args,
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(port: int, runs: int, label: str) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {}
    for i, (name, args, _) in enumerate(WORKLOADS):
        results[name] = []
        for run in range(runs):
            result = run_client(port, args, f"{label}{i}r{run}{int(time.time()) % 1000}")
            if result["delivered"] != result["expected"]:
                print(
                    f"  ! {label}: {name}: delivered {result['delivered']} of "
                    f"{result['expected']} (errors {result['errors']})",
                    file=sys.stderr,
                )
            results[name].append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baselines", action="store_true")
    parser.add_argument("--appendfsync", choices=["always", "everysec"], default="always")
    args = parser.parse_args()
    if not CLIENT.exists():
        sys.exit(f"the shared client is missing: {CLIENT}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    table: dict[str, dict[str, list[dict]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        valkey = ValkeyProcess(tmp, unix_socket=True, appendfsync=args.appendfsync).start()
        port = free_port()
        node = start_node(port, valkey.url, CHAT_RATE_LIMIT="0")
        try:
            table["runtime (storage, output gate)"] = measure(port, args.runs, "rt")
        finally:
            node.terminate()
            node.wait(30)
            valkey.stop()
    if args.baselines:
        for label, script in (
            ("plain websockets, no storage", "websockets_broadcast.py"),
            ("Starlette on uvicorn, no storage", "starlette_broadcast.py"),
        ):
            port = free_port()
            server = start_server(
                [sys.executable, str(ROOT / "bench" / "baselines" / script), str(port)], port, env
            )
            try:
                table[label] = measure(port, args.runs, script[:2])
            finally:
                server.terminate()
                server.wait(30)

    print(
        f"\nChat fan-out, chatbench.py client, median of {args.runs} runs, "
        f"{os.cpu_count()} cores, AOF fsync {args.appendfsync}"
    )
    for name, _, target in WORKLOADS:
        print(f"\n{name}   (target: {target})")
        print(f"  {'server':34} {'deliveries/s':>14} {'p50 ms':>9} {'p99 ms':>9}  delivered")
        for label, results in table.items():
            rows = results[name]
            rate = statistics.median(r["deliveries_per_s"] for r in rows)
            p50 = statistics.median(r["p50_ms"] for r in rows)
            p99 = statistics.median(r["p99_ms"] for r in rows)
            got = sum(r["delivered"] for r in rows)
            want = sum(r["expected"] for r in rows)
            print(f"  {label:34} {rate:>14,.0f} {p50:>9.2f} {p99:>9.2f}  {got}/{want}")


if __name__ == "__main__":
    main()
