"""The embedded Valkey of ``make run``: data survives stopping and starting the node."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from tests.support.servers import NodeProcess


def valkey_pids(data_dir: Path) -> list[int]:
    """The embedded server's pid, if that process is alive (Valkey rewrites its title, so
    the pid file is the reliable way to find it)."""
    try:
        pid = int((data_dir / "valkey.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except (OSError, ValueError):
        return []
    return [pid] if b"valkey" in cmdline and stat != "Z" else []


def test_embedded_valkey_keeps_data_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for run, expected in ((1, [1, 2, 3]), (2, [4, 5])):
        node = NodeProcess(
            redis_url=None,
            node_id=f"embedded-{run}",
            data_dir=str(data),
            log_path=tmp_path / f"run{run}.log",
        ).start()
        try:
            values = [
                httpx.post(f"{node.http}/probe/kept/incr", timeout=5).json()["value"]
                for _ in expected
            ]
            assert values == expected
            assert len(valkey_pids(data.resolve())) == 1
        finally:
            code = node.stop(signal.SIGINT)  # what Ctrl-C in `make run` sends
        assert code == 0
        assert (data / "appendonlydir").is_dir()
        time.sleep(0.2)
        assert valkey_pids(data.resolve()) == []  # the embedded server stopped with the node


def test_a_killed_node_takes_its_embedded_valkey_with_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    node = NodeProcess(
        redis_url=None, node_id="killed", data_dir=str(data), log_path=tmp_path / "killed.log"
    ).start()
    assert httpx.post(f"{node.http}/probe/k/incr", timeout=5).json()["value"] == 1
    node.kill()
    deadline = time.monotonic() + 5
    while valkey_pids(data.resolve()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert valkey_pids(data.resolve()) == []
    again = NodeProcess(
        redis_url=None, node_id="killed-2", data_dir=str(data), log_path=tmp_path / "again.log"
    ).start()
    try:
        # fsync always: the acknowledged increment survived the kill; the old lease is waited out
        assert httpx.post(f"{again.http}/probe/k/incr", timeout=10).json()["value"] == 2
    finally:
        again.stop()
    assert os.path.exists(data / "appendonlydir")
