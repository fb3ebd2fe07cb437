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

from runtime.storage.embedded import free_port
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


PROJECT = '''
"""A project of its own, outside the repository: what `durable-redis dev` serves."""
from pathlib import Path

from starlette.responses import JSONResponse
from starlette.routing import Route

from runtime import App, DurableObject, app_of, env_of, rpc

VERSION = {version}


class Tally(DurableObject):
    @rpc
    async def add(self) -> int:
        value = await self.storage.get("n", 0) + 1
        await self.storage.put("n", value)
        return int(value)

    @rpc
    async def read(self) -> int:
        return int(await self.storage.get("n", 0))


async def tally(request):
    stub = env_of(request).namespace("tally").get_by_name(request.path_params["name"])
    value = await (stub.add() if request.method == "POST" else stub.read())
    return JSONResponse({{"value": value, "version": VERSION}})


async def page(request):
    return app_of(request).render(request, "page.html")


app = App(
    name="devproj",
    title="Dev",
    objects={{"tally": Tally}},
    routes=[Route("/", page), Route("/t/{{name}}", tally, methods=["GET", "POST"])],
    templates=Path(__file__).parent / "templates",
)
'''


def test_dev_restarts_the_node_on_a_code_change_and_keeps_valkey_and_the_data(
    tmp_path: Path,
) -> None:
    import httpx

    project = tmp_path / "project"
    (project / "templates").mkdir(parents=True)
    module = project / "devproj.py"
    module.write_text(PROJECT.format(version=1))
    template = project / "templates" / "page.html"
    template.write_text('{% extends "base.html" %}{% block content %}first{% endblock %}')
    data = tmp_path / "data"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "dev.log"
    with open(log, "wb") as out:
        dev = subprocess.Popen(
            [sys.executable, "-m", "runtime", "dev", "--no-suite", "--app", "devproj:app",
             "--port", str(port), "--data-dir", str(data), "--log-level", "warning"],
            cwd=project,
            env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{project}"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip

    def until(check, timeout: float = 40.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert dev.poll() is None, log.read_text()
            try:
                found = check()
                if found:
                    return found
            except (httpx.HTTPError, ValueError, KeyError):
                pass
            time.sleep(0.2)
        raise AssertionError(f"timed out; the dev command said:\n{log.read_text()}")

    def valkey_run_id() -> str:
        client = redis.Redis(unix_socket_path=str(data / "valkey.sock"))
        try:
            return str(client.info("server")["run_id"])
        finally:
            client.close()

    def started() -> float:
        return float(httpx.get(f"{base}/ops/api/node", timeout=2).json()["up_since"])

    def tally() -> dict[str, int]:
        return dict(httpx.get(f"{base}/devproj/t/a", timeout=2).json())

    try:
        until(lambda: httpx.get(f"{base}/healthz", timeout=2).status_code == 200)
        for expected in (1, 2):
            assert httpx.post(f"{base}/devproj/t/a", timeout=5).json()["value"] == expected
        valkey, first_start = valkey_run_id(), started()

        # A template is read at each request: it shows at once, with no restart.
        template.write_text('{% extends "base.html" %}{% block content %}second{% endblock %}')
        until(lambda: "second" in httpx.get(f"{base}/devproj/", timeout=2).text)
        time.sleep(2.5)  # (past the watcher's debounce: no restart came of it)
        assert started() == first_start

        # Code: the node restarts on the new code; Valkey ran on, and the object's data is
        # there on the first event after the restart.
        module.write_text(PROJECT.format(version=2))
        assert until(lambda: tally()["version"] == 2 and tally()) == {"value": 2, "version": 2}
        assert valkey_run_id() == valkey and started() > first_start

        # A broken edit: the node cannot start; the next change starts it again.
        module.write_text("def broken(:\n")
        until(lambda: "SyntaxError" in log.read_text())
        until(lambda: "the node exited (code 2)" in log.read_text())
        module.write_text(PROJECT.format(version=3))
        assert until(lambda: tally()["version"] == 3 and tally()) == {"value": 2, "version": 3}
        assert valkey_run_id() == valkey

        dev.send_signal(signal.SIGINT)  # Ctrl-C: the node drains, then Valkey stops
        assert dev.wait(40) == 0
        assert not (data / "valkey.sock").exists()
        text = log.read_text()
        assert text.count("devproj.py changed") == 3 and "Valkey stopped" in text
    finally:
        dev.kill()
