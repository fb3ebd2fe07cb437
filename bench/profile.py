"""Where a node spends its time under each workload (py-spy), on this tree or another's code.

    make profile ARGS="--workload decisions write c4 paced rooms"
    .venv/bin/python bench/profile.py [--workload NAME ...|all] [--repeat 3] [--top 15]
                                      [--node-tree DIR] [--label TAG] [--native]

Starts a Valkey like `make run`'s (append-only file, fsync always) and one node, warms the
node up with the workload once, then samples it with py-spy (`--idle` off: only time on the
CPU, 1 sample per ms, collapsed stacks) while the workload runs --repeat times, and prints
the functions with the most samples: by their own time ("self") and, for the runtime's and
the apps' code, with what they call ("total"), as shares of the node's samples; and the
node's CPU time (its /proc counters over the sampled load) per unit of work. The collapsed
stacks are kept under bench/results/profile-<workload>[-<label>].txt (flamegraph.pl or
speedscope read them).

Workloads, each the load of a benchmark, imported from it:

    decisions  the waiting room, one room on one node: visitors arrive, renew twice and
               leave over HTTP, 32 keep-alive connections (bench/waiting_room_bench.py)
    write      a route -> one RPC -> one committed write per request, 32 connections, the
               bench app alone (bench/event_cost.py's last stage)
    c4         Connect Four moves in one game, each confirmed before the next
               (bench/lobby_bench.py)
    paced      the chat: 1 room x 20 clients, 1,000 messages at ~170/s (bench/chat_bench.py)
    rooms      the chat: 50 rooms x 4 clients, 50 messages each as a burst

--node-tree DIR runs the NODE from another checkout (DIR/.venv/bin/python, cwd and
PYTHONPATH DIR) while Valkey, the load and the profiler come from this tree: the same load
on older code. Both trees start a node as `python -m runtime serve` with the suite mounted
(or `--app bench.objects:app --no-suite` for write, whose objects are DIR's own
bench/objects.py), so the URLs are the same.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# (run as a script, bench/ comes first on the path: this file would shadow the stdlib's profile)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench import event_cost, lobby_bench, waiting_room_bench  # noqa: E402
from bench.chat_bench import CLIENT, PATH, WORKLOADS  # noqa: E402
from bench.common import cpu_seconds, run_client, wait_for_http  # noqa: E402
from bench.results import RESULTS  # noqa: E402
from runtime.storage.embedded import ValkeyProcess, free_port  # noqa: E402

#: A load: given the node's port, run it once; the units of work it did (requests, moves...).
Load = Callable[[int], int]


@dataclass
class Workload:
    name: str
    description: str
    unit: str
    #: Build the load (its setup, e.g. a room or a game, done once on the node's port).
    prepare: Callable[[int], Load]
    apps: Sequence[str] = ()
    suite: bool = True
    env: dict[str, str] = field(default_factory=dict)
    #: Loads per --repeat (a short one, run several times, gives as many samples as the rest).
    times: int = 1


# ------------------------------------------------------------------ the loads


def _decisions(port: int) -> Load:
    room = asyncio.run(waiting_room_bench.create_room(port))

    def load(port: int, seconds: float = 5.0) -> int:
        started = time.perf_counter()
        got = asyncio.run(waiting_room_bench.decisions([port], room, 32, seconds))
        # (decisions() reports a rate over its own span; the span here is the same within ms)
        return round(got["rate"] * (time.perf_counter() - started))

    return load


def _write(port: int) -> Load:
    def load(port: int, n: int = 40_000) -> int:
        asyncio.run(event_cost.drive(port, "POST", "/bench/hot/write", n, 32))
        return n

    return load


def _c4(port: int) -> Load:
    pairs = asyncio.run(lobby_bench.seat_pairs_runtime(f"127.0.0.1:{port}", 1))

    def load(port: int, seconds: float = 5.0) -> int:
        # (the seats reconnect to the same game each time; a full board is a rematch)
        return round(asyncio.run(lobby_bench.play(pairs, seconds)) * seconds)

    return load


def _chat(index: int) -> Callable[[int], Load]:
    def prepare(port: int) -> Load:
        def load(port: int) -> int:
            result = run_client(
                [sys.executable, str(CLIENT), f"ws://127.0.0.1:{port}{PATH}",
                 *WORKLOADS[index].load.argv()],
                timeout=300,
            )  # fmt: skip
            return int(result["delivered"])

        return load

    return prepare


LOADS = {
    w.name: w
    for w in (
        Workload(
            "decisions",
            "waiting room, one room on one node: arrive, renew, renew, leave, 32 connections",
            "decision",
            _decisions,
        ),
        Workload(
            "write",
            "route -> RPC -> one committed write per request, 32 connections (bench app only)",
            "request",
            _write,
            apps=["bench.objects:app"],
            suite=False,
        ),
        Workload(
            "c4",
            "Connect Four, one game, each move confirmed before the next",
            "move",
            _c4,
            env=lobby_bench.NODE_ENV,
        ),
        Workload("paced", WORKLOADS[1].name, "delivery", _chat(1), env={"CHAT_RATE_LIMIT": "0"}),
        Workload(
            "rooms",
            WORKLOADS[2].name,
            "delivery",
            _chat(2),
            env={"CHAT_RATE_LIMIT": "0"},
            times=4,
        ),
    )
}
GROUPS = {"both": ["paced", "rooms"], "all": list(LOADS)}


# ------------------------------------------------------------------ the node


def start_node(
    tree: Path, port: int, redis_url: str, workload: Workload
) -> subprocess.Popen[bytes]:
    """``python -m runtime serve`` from ``tree``'s code and venv (bench.common.start_node's
    command, with the interpreter and directory of the tree)."""
    python = tree / ".venv" / "bin" / "python"
    cmd = [str(python if python.exists() else sys.executable), "-m", "runtime", "serve",
           "--port", str(port), "--redis-url", redis_url, "--log-level", "warning"]  # fmt: skip
    if not workload.suite:
        cmd.append("--no-suite")
    for app in workload.apps:
        cmd += ["--app", app]
    env = {**os.environ, "PYTHONPATH": str(tree), **workload.env}
    process = subprocess.Popen(
        cmd, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for_http(port)
    return process


def _system_seconds(pid: int) -> float:
    """A process's CPU time in the kernel so far (Linux's /proc, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[12]) / os.sysconf("SC_CLK_TCK")


def commands(redis_url: str) -> Counter[str]:
    """Valkey's count of calls per command so far (INFO commandstats)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return Counter({k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()})


# ------------------------------------------------------------------ the summary


def summarize(collapsed: Path, top: int, trees: Sequence[Path] = ()) -> str:
    """The top frames by self and total samples, from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue  # (py-spy writes odd bytes for some threads' names)
        n = int(count)
        frames = [f for f in stack.split(";") if f]
        samples += n
        if frames:
            own[_short(frames[-1], trees)] += n
        # (the frames up to the event loop's are on every stack: start-up's, not the work's)
        loop = next((i for i, f in enumerate(frames) if "asyncio/runners.py" in f), -1)
        for frame in {_short(f, trees) for f in frames[loop + 1 :]}:
            total[frame] += n
    if not samples:
        return "no samples"
    lines = [
        f"{samples} samples (1 per ms the node was on a core or waiting for one); "
        "Runner.run's own are the event loop's C code (uvloop: epoll, socket reads, callbacks)",
        "",
        "self %  function",
    ]
    lines += [f"{100 * n / samples:5.1f}  {f}" for f, n in own.most_common(top)]
    lines += ["", "total %  function (runtime and apps code)"]
    ours = [(f, n) for f, n in total.most_common() if f.split(" (", 1)[-1].startswith(_OURS)]
    lines += [f"{100 * n / samples:6.1f}  {f}" for f, n in ours[:top]]
    return "\n".join(lines)


_OURS = ("runtime/", "apps/", "bench/objects")


def _short(frame: str, trees: Sequence[Path] = ()) -> str:
    """'fn (path/to/module.py:12)' -> 'fn (module.py)' with site-packages and the trees trimmed."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")").rsplit(":", 1)[0]
    for cut in ("site-packages/", *(str(t) + "/" for t in trees), str(ROOT) + "/", "/work/"):
        if cut in where:
            where = where.split(cut, 1)[1]
            break
    return f"{name} ({where})"


# ------------------------------------------------------------------ main


def profile(workload: Workload, args: argparse.Namespace, pyspy: Path) -> None:
    tree = Path(args.node_tree).resolve() if args.node_tree else ROOT
    suffix = f"-{args.label}" if args.label else ""
    out = RESULTS / f"profile-{workload.name}{suffix}.txt"
    load_avg = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        valkey = ValkeyProcess(tmp, unix_socket=True, appendfsync="always").start()
        port = free_port()
        node = start_node(tree, port, valkey.url, workload)
        try:
            load = workload.prepare(port)
            load(port)  # warm up: objects, caches, connections
            cmd = [str(pyspy), "record", "--pid", str(node.pid), "--format", "raw",
                   "--rate", "1000", "--output", str(out)]  # fmt: skip
            # (--native needs the node stopped for each sample: its CPU figures then include
            # the profiler's pauses; without it py-spy reads the node's memory as it runs)
            cmd.append("--native" if args.native else "--nonblocking")
            spy = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(1.0)
            units = 0
            calls = commands(valkey.url)
            cpu = cpu_seconds(node.pid)
            kernel = _system_seconds(node.pid)
            started = time.perf_counter()
            try:
                for _ in range(args.repeat * workload.times):
                    units += load(port)
            finally:
                used = cpu_seconds(node.pid) - cpu
                kernel = _system_seconds(node.pid) - kernel
                elapsed = time.perf_counter() - started
                calls = commands(valkey.url) - calls
                calls.pop("info", None)
                spy.send_signal(2)  # py-spy writes its file on Ctrl-C
                _, errors = spy.communicate(timeout=60)
                if not out.exists():
                    raise RuntimeError(f"py-spy wrote nothing: {errors.decode()[-2000:]}")
        finally:
            node.terminate()
            node.wait(30)
            valkey.stop()
    where = "this tree" if tree == ROOT else str(tree)
    print(f"== {workload.name}: {workload.description}")
    print(f"   node: {where}; load average before: {load_avg}; py-spy: {out.relative_to(ROOT)}")
    print(
        f"   node CPU {used:.2f} s over {elapsed:.1f} s for {units:,} {workload.unit}: "
        f"{used / max(units, 1) * 1e6:.1f} us each, {kernel / max(used, 1e-9):.0%} of it "
        "in the kernel"
    )
    per = ", ".join(f"{c} {n / max(units, 1):.2f}" for c, n in calls.most_common(6))
    print(f"   Valkey calls per {workload.unit} (the node's, over the same span): {per}")
    samples = sum(
        int(line.rpartition(" ")[2])
        for line in out.read_text(errors="replace").splitlines()
        if line.rpartition(" ")[2].isdigit()
    )
    # (py-spy counts a thread that is runnable but waiting for a core as active: on a shared
    # machine the samples exceed the node's CPU time, and the shares are shares of both)
    print(f"   samples / node CPU ms: {samples / max(used * 1000, 1):.2f}")
    print(summarize(out, args.top, [tree]))
    print(flush=True)


def main(default: Sequence[str] = ("all",)) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workload", nargs="+", choices=[*LOADS, *GROUPS], default=list(default))
    parser.add_argument("--repeat", type=int, default=3, help="loads under one sampling")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--node-tree", help="run the node from this checkout's code and venv")
    parser.add_argument("--label", default="", help="added to the stacks' file names")
    parser.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    args = parser.parse_args()
    pyspy = Path(sys.executable).with_name("py-spy")
    if not pyspy.exists():
        parser.error("py-spy is missing: make profile installs it (the bench extra)")
    if os.geteuid() != 0 and not os.environ.get("PYSPY_OK"):
        print("py-spy needs to attach to another process (root, or ptrace allowed)")
    RESULTS.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    for name in args.workload:
        names += [n for n in GROUPS.get(name, [name]) if n not in names]
    for name in names:
        profile(LOADS[name], args, pyspy)


if __name__ == "__main__":
    main()
