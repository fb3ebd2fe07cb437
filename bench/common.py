"""What the benchmark scripts share: starting a node, the reference y-websocket server or any
server as a child process, and reading a process's memory."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.storage.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent
#: The Node side of the benchmarks: its own package.json and lock file (stock Yjs, y-websocket).
NODE_DIR = ROOT / "bench" / "node"
PEER_BIN = NODE_DIR / "node_modules" / "y-websocket" / "bin" / "server.cjs"


def wait_for_http(port: int, timeout: float = 20.0) -> None:
    """Until something answers HTTP on ``port`` (any status: baselines have no /healthz)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing answered on port {port}")


def start_server(cmd: Sequence[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start a server process (output discarded) and wait until it answers."""
    process = subprocess.Popen(
        list(cmd), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_for_http(port)
    return process


def start_node(
    port: int, redis_url: str, apps: Sequence[str] = (), suite: bool = True, **env: str
) -> subprocess.Popen[bytes]:
    """``python -m runtime serve`` on ``port`` against ``redis_url``; ``env`` adds settings."""
    cmd = [
        sys.executable,
        "-m",
        "runtime",
        "serve",
        "--port",
        str(port),
        "--redis-url",
        redis_url,
        "--log-level",
        "warning",
    ]
    if not suite:
        cmd.append("--no-suite")
    for app in apps:
        cmd += ["--app", app]
    return start_server(cmd, port, {**os.environ, "PYTHONPATH": str(ROOT), **env})


def self_fenced(port: int, ops_token: str = "") -> int:
    """Objects the node on ``port`` gave up because it could not renew their leases in time
    (its /metrics: open on loopback to a node without CLUSTER_SECRET, else ``ops_token``). A
    healthy node under load: 0."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if ops_token:
        request.add_header("Authorization", f"Bearer {ops_token}")
    with urllib.request.urlopen(request, timeout=5) as reply:
        text = reply.read().decode()
    for line in text.splitlines():
        if line.startswith('do_leases_total{event="self_fenced"}'):
            return int(float(line.rsplit(" ", 1)[1]))
    raise RuntimeError("the node's /metrics has no self_fenced count")


def run_client(cmd: Sequence[str], timeout: float, cwd: Path = ROOT) -> dict[str, Any]:
    """Run a load client to its end; the JSON object it printed last."""
    out = subprocess.run(
        list(cmd), cwd=cwd, capture_output=True, text=True, check=True, timeout=timeout
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


@dataclass
class Server:
    """A server under test, running as a child process."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    #: A y-websocket provider's serverUrl: a room's socket is base + "/" + room.
    base: str

    def url(self, room: str) -> str:
        return f"{self.base}/{room}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def node_tools() -> None:
    """bench/node's packages, installed from its lock file when they are missing."""
    if not (NODE_DIR / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True)


def start_peer(persist_dir: Path | None = None) -> Server:
    """The reference server of the npm package y-websocket@2 (its `y-websocket` bin): keeps
    documents in memory only, stores nothing; with ``persist_dir``, its own persistence
    (``YPERSISTENCE``: y-leveldb, which stores each update after it was broadcast)."""
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
    if persist_dir is not None:
        env["YPERSISTENCE"] = str(persist_dir)
    process = start_server(["node", str(PEER_BIN)], port, env)
    return Server("peerdb" if persist_dir else "peer", process, port, f"ws://127.0.0.1:{port}")


def rss_kib(pid: int) -> int:
    """A process's resident memory (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """A process's CPU time so far, user and system (Linux's /proc, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raise_open_files(wanted: int) -> None:
    """Let this process (and the servers it starts, which inherit it) hold ``wanted`` files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, wanted), hard))


def fsync_floor(redis_url: str, writes: int = 2000, rate: float = 0.0) -> tuple[float, float]:
    """p50 and p99 ms of one SET at a time against ``redis_url`` (a Valkey with the AOF
    fsync'd on every write, as the benchmarks start it): the least time any durable write,
    hence any message the output gate holds for it, can take on this machine. ``rate``: one
    SET every 1/rate s, not back to back (an idle disk's fsync has a longer tail)."""
    import statistics

    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        times = []
        for i in range(writes):
            started = time.perf_counter()
            client.set(f"fsync-floor:{i % 100}", i)
            times.append((time.perf_counter() - started) * 1000)
            if rate:
                time.sleep(max(0.0, 1 / rate - (time.perf_counter() - started)))
        client.delete(*[f"fsync-floor:{i}" for i in range(100)])
    finally:
        client.close()
    cuts = statistics.quantiles(times, n=100)
    return cuts[49], cuts[98]
