"""Faults an operator meets get an answer that says what to do, and the embedded Valkey is
brought back when it dies."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from examples.counter import app as counter_app
from runtime import Node, Settings
from runtime.storage.embedded import ValkeyProcess, ValkeySupervisor
from tests.conftest import TEST_SETTINGS
from tests.support.servers import ROOT, LocalServer


def serve_command(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime", "serve", "--no-suite", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_data_directory_that_cannot_be_used_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    for data_dir in (blocker, blocker / "below"):
        run = serve_command("--data-dir", str(data_dir), "--port", "0")
        assert run.returncode == 2
        assert "the data directory" in run.stderr and "--data-dir" in run.stderr
        assert "Traceback" not in run.stderr


def test_an_unreachable_redis_and_a_taken_port_are_clear_errors() -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        dead_port = spare.getsockname()[1]
    run = serve_command("--redis-url", f"redis://:hunter2@127.0.0.1:{dead_port}/0", "--port", "0")
    assert run.returncode == 2 and "cannot reach Redis at redis://:***@127.0.0.1" in run.stderr
    assert "hunter2" not in run.stderr and "Traceback" not in run.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = serve_command("--port", str(port), "--redis-url", "redis://127.0.0.1:1/0")
    assert run.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in run.stderr


async def count_again(client: httpx.AsyncClient) -> int | None:
    """The counter's next value once the restarted Valkey serves it (None: it never did);
    the object's lease may need a moment to be taken again."""
    for _ in range(50):
        r = await client.post("/counter/kept")
        if r.status_code == 200:
            value: int = r.json()["value"]
            return value
        await asyncio.sleep(0.1)
    return None


async def test_the_embedded_valkey_is_brought_back_after_it_dies(tmp_path: Path) -> None:
    valkey = ValkeyProcess(tmp_path / "data", unix_socket=True).start()
    supervisor = ValkeySupervisor(valkey, every=0.1)
    node = Node(Settings(**TEST_SETTINGS), valkey.url)
    server = await LocalServer(node, [counter_app], embedded=supervisor).start()
    try:
        async with httpx.AsyncClient(base_url=server.http, timeout=10) as client:
            assert (await client.post("/counter/kept")).json()["value"] == 1
            first = valkey.process
            assert first is not None
            first.send_signal(signal.SIGKILL)  # what a crash (or "can't recover") looks like
            health = None
            for _ in range(100):
                health = (await client.get("/healthz")).json()
                if health["embedded_valkey"]["exits"] == 1:
                    break
                await asyncio.sleep(0.05)
            assert health is not None and health["embedded_valkey"]["exits"] == 1
            assert "exit code -9" in health["embedded_valkey"]["last_exit"]
            assert first.poll() is not None  # reaped: no zombie left behind
            for _ in range(200):
                health = (await client.get("/healthz")).json()
                if health["status"] == "ok" and health["embedded_valkey"]["state"] == "running":
                    break
                await asyncio.sleep(0.05)
            assert health["status"] == "ok" and valkey.process is not first
            value = await count_again(client)
            assert value == 2  # the data came back with it (append-only file, fsync always)
    finally:
        await server.stop()
        valkey.stop()


async def records_saying(
    caplog: pytest.LogCaptureFixture, text: str, count: int
) -> list[logging.LogRecord]:
    """The supervisor's log records containing ``text``, once there are ``count`` of them."""
    for _ in range(200):
        found = [r for r in caplog.records if r.name == "runtime.embedded" and text in r.message]
        if len(found) >= count:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} log lines saying {text!r} in 10 s")


async def test_a_restart_that_fails_is_retried_with_growing_delays(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="runtime.embedded")
    data, away = tmp_path / "data", tmp_path / "data-away"
    valkey = ValkeyProcess(data, unix_socket=True).start()
    # The production backoff (1 s doubling to 30 s), shortened so the test takes seconds.
    supervisor = ValkeySupervisor(valkey, every=0.1, first_delay=0.25, max_delay=1.0)
    node = Node(Settings(**TEST_SETTINGS), valkey.url)
    server = await LocalServer(node, [counter_app], embedded=supervisor).start()
    try:
        async with httpx.AsyncClient(base_url=server.http, timeout=10) as client:
            assert (await client.post("/counter/kept")).json()["value"] == 1
            # Its data directory is moved away and a file put in its place, then it dies:
            # every start fails (the directory cannot be used) until the directory is back.
            data.rename(away)
            data.write_text("in the way")
            assert valkey.process is not None
            valkey.process.send_signal(signal.SIGKILL)
            failed = await records_saying(caplog, "did not start", 4)
            health = (await client.get("/healthz")).json()
            assert health["status"] == "unavailable"
            assert health["embedded_valkey"]["state"] == "restarting"
            data.unlink()
            away.rename(data)
            (back,) = await records_saying(caplog, "is running again", 1)
            health = (await client.get("/healthz")).json()
            assert health["embedded_valkey"]["state"] == "running"
            assert health["embedded_valkey"]["exits"] == 1  # one death, however many tries
            value = await count_again(client)
            assert value == 2  # the same data: the directory it came back to
    finally:
        await server.stop()
        valkey.stop()
    (stopped,) = await records_saying(caplog, "the embedded Valkey stopped", 1)
    assert "exit code -9" in stopped.message and "starting it again" in stopped.message
    assert all("the data directory" in r.message for r in failed)  # it says why
    assert "restart 1" in back.message
    # The delays double up to max_delay, as logged and as waited (a record is written just
    # before its wait; the next one after it and one more failed start).
    delays = [float(re.findall(r"next try in ([\d.]+)s", r.message)[0]) for r in failed]
    assert delays[:4] == [0.25, 0.5, 1.0, 1.0]
    waited = [b.created - a.created for a, b in itertools.pairwise(failed)]
    for gap, delay in zip(waited, delays, strict=False):
        assert delay - 0.02 < gap < delay + 0.5
