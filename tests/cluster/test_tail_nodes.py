"""``durable-redis tail`` against node processes: asked of one node, it shows what runs on
every node (gathered over the authenticated node-to-node endpoint), follows an object as it
moves when its node is killed, and never prints a whole ID."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.cluster.conftest import StartNodes
from tests.support.servers import ROOT, NodeProcess

TOKEN = "ops-token-for-the-tail-tests"


class Cli:
    """``python -m runtime tail ...`` with its output read line by line as it comes."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runtime", "tail", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "OPS_TOKEN": TOKEN},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.seen: list[str] = []
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))

    def until(self, found: Callable[[str], bool], timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if found(line):
                return line
        raise AssertionError("not seen; the tail printed:\n" + "\n".join(self.seen))

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


def event(text: str, **match: Any) -> bool:
    try:
        line = json.loads(text)
    except ValueError:
        return False
    return line.get("type") == "event" and all(line.get(k) == v for k, v in match.items())


def where(node: NodeProcess, name: str) -> str | None:
    answer = httpx.get(
        f"{node.http}/ops/api/locate",
        params={"namespace": "probe", "name": name},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    )
    found: str | None = answer.json()["node"]
    return found


def test_tail_asked_of_one_node_shows_every_nodes_events_and_follows_a_moved_object(
    nodes: StartNodes,
) -> None:
    n1, n2 = nodes(2, env={"OPS_TOKEN": TOKEN, "LOG_LEVEL": "info"})
    assert httpx.post(f"{n2.http}/probe/far/incr", timeout=10).json() == {"value": 1}
    assert where(n1, "far") == "n2"
    full_id = httpx.get(
        f"{n1.http}/ops/api/locate",
        params={"namespace": "probe", "name": "far"},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=5,
    ).json()["id"]
    raw = Cli("--url", n1.http, "probe", "--name", "far", "--json")
    human = Cli("--url", n1.http, "probe", "--id", full_id)
    try:
        for cli in (raw, human):  # both nodes follow, the asked one and the other
            cli.until(
                lambda line: '"node":"n2","state":"following"' in line or "n2: following" in line
            )
        # Asked of n1, run on n2 (forwarded): the line comes from n2.
        assert httpx.post(f"{n1.http}/probe/far/incr", timeout=10).json() == {"value": 2}
        line = json.loads(raw.until(lambda text: event(text, node="n2", kind="rpc")))
        assert line["outcome"] == "ok" and line["object"] == full_id[:12]
        shown = human.until(lambda text: " n2 " in text and " rpc " in text)
        assert f"probe:{full_id[:12]}" in shown and " ok " in shown and shown.endswith(" ms")

        # Its node dies: the tail says so, and follows the object where it comes back.
        n2.kill()
        raw.until(lambda text: '"node":"n2"' in text and "unreachable" in text)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if httpx.post(f"{n1.http}/probe/far/incr", timeout=10).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        line = json.loads(raw.until(lambda text: event(text, node="n1", kind="rpc", outcome="ok")))
        assert line["object"] == full_id[:12]
        human.until(lambda text: " n1 " in text and " rpc " in text and " ok " in text)
    finally:
        raw.stop()
        human.stop()
    assert not any(full_id in text for text in raw.seen + human.seen)


def test_tail_without_the_token_is_refused_with_what_to_do(nodes: StartNodes) -> None:
    [node] = nodes(1, env={"OPS_TOKEN": TOKEN})
    refused = subprocess.run(
        [sys.executable, "-m", "runtime", "tail", "--url", node.http],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OPS_TOKEN": ""},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 2
    assert "401" in refused.stderr and "OPS_TOKEN" in refused.stderr
