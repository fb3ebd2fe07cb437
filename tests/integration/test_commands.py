"""The command line's helpers for people building on the runtime: ``durable-redis valkey``
(the embedded server alone, for clusters made by hand) and ``durable-redis dev`` (a node
restarted when the project changes, its Valkey and its objects' data kept)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from runtime.embedded import free_port
from tests.support.servers import ROOT


def command(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runtime", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def first_line_with(process: subprocess.Popen[str], text: str, timeout: float = 20) -> str:
    """Read the process's output until a line holding ``text`` (or fail with what came)."""
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return line
    process.kill()
    raise AssertionError(f"no line with {text!r} in: {''.join(seen)}")


def test_valkey_serves_with_fsync_always_keeps_its_data_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    port = free_port()
    data = tmp_path / "data"
    server = command("valkey", "--port", str(port), "--data-dir", str(data))
    try:
        line = first_line_with(server, "Valkey serving")
        url = f"redis://127.0.0.1:{port}/0"
        assert url in line and str(data) in line
        client = redis.Redis.from_url(url)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
        client.set("kept", "yes")
        client.close()
        server.send_signal(signal.SIGINT)
        assert server.wait(15) == 0
    finally:
        server.kill()
    again = command("valkey", "--port", str(port), "--data-dir", str(data))
    try:
        first_line_with(again, "Valkey serving")
        client = redis.Redis.from_url(f"redis://127.0.0.1:{port}/0")
        assert client.get("kept") == b"yes"  # from the append-only file
        client.close()
        again.send_signal(signal.SIGTERM)
        assert again.wait(15) == 0
    finally:
        again.kill()


def test_valkey_beyond_loopback_needs_a_password_which_it_never_prints(tmp_path: Path) -> None:
    refused = command("valkey", "--host", "0.0.0.0", "--port", str(free_port()))
    out, _ = refused.communicate(timeout=20)
    assert refused.returncode == 2 and "--password" in out
    port = free_port()
    secret = "pa ss/word-" + os.urandom(4).hex()
    server = command(
        "valkey",
        "--host",
        "0.0.0.0",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "d"),
        env={"VALKEY_PASSWORD": secret},
    )
    try:
        line = first_line_with(server, "Valkey serving")
        assert secret not in line and f"redis://:***@127.0.0.1:{port}/0" in line
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).ping()
        assert redis.Redis(port=port, password=secret).ping()
        server.send_signal(signal.SIGINT)
        out, _ = server.communicate(timeout=15)
        assert server.returncode == 0 and secret not in out
    finally:
        server.kill()
