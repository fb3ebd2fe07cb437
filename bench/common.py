"""What the benchmark scripts share: starting a node (or any server) as a child process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
