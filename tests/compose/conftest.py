"""compose.yaml for real: a Docker engine (found, or started by deploy/docker/engine.py), the
base images (real where they can be pulled, else stand-ins from deploy/docker/images.py),
`docker compose up --build` of the whole topology with the monitoring profile, `down -v` after.

The published ports are free loopback ports (BALANCER_PORT, PROMETHEUS_PORT), and a lock
file keeps two worktrees' runs on one machine from sharing the fixed subnet at once."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.docker import engine, images
from runtime.storage.embedded import free_port
from tests.conftest import ARTIFACTS

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "durable-redis-test"
LOCK = Path("/run/lock/durable-redis-compose-test.lock")
NODES = ("node1", "node2", "node3")
#: The one line the run's summary gets about this test: what it ran on, or why it did not.
SUMMARY: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in SUMMARY[-1:]:
        terminalreporter.write_line(f"compose test: {line}")


@pytest.fixture(scope="module")
def docker_engine() -> Iterator[engine.Engine]:
    """The engine, or a skip naming why none can be had (the only reason to skip). A daemon
    started here stops after this module, not at the end of the whole run."""
    try:
        found = engine.start()
    except engine.NoEngine as exc:
        SUMMARY.append(f"SKIPPED, no Docker engine on this machine: {exc}")
        pytest.skip(SUMMARY[-1].removeprefix("SKIPPED, "))
    yield found
    if found.started_here:
        engine.stop()  # (the images stay in its store for the next run)


class Stack:
    """One compose project of compose.yaml, driven with `docker compose`."""

    def __init__(self) -> None:
        self.balancer_port = free_port()
        self.prometheus_port = free_port()
        self.grafana_port = free_port()
        self.ops_token = secrets.token_hex(16)
        self.env = {
            **os.environ,
            "CLUSTER_SECRET": secrets.token_hex(32),
            "OPS_TOKEN": self.ops_token,
            "BALANCER_PORT": f"127.0.0.1:{self.balancer_port}",
            "PROMETHEUS_PORT": f"127.0.0.1:{self.prometheus_port}",
            "GRAFANA_PORT": f"127.0.0.1:{self.grafana_port}",
        }
        self.env.pop("ALLOWED_HOSTS", None)
        self.with_grafana = False
        self.report: dict[str, Any] = {}

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.balancer_port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.balancer_port}"

    @property
    def prometheus(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def grafana(self) -> str:
        return f"http://127.0.0.1:{self.grafana_port}"

    def compose(
        self, *args: str, timeout: float = 600, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = ["docker", "compose", "-p", PROJECT, "--project-directory", str(ROOT)]
        done = subprocess.run(
            [*command, *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"docker compose {' '.join(args)}: {done.stderr[-3000:]}")
        return done

    def python(self, service: str, code: str) -> str:
        """Run Python in a service's container; what it printed."""
        return self.compose("exec", "-T", service, "python", "-c", code, timeout=60).stdout

    def state(self, service: str) -> dict[str, Any]:
        """The container's state as Docker reports it (Status, ExitCode, Restarting...)."""
        (container,) = self.compose("ps", "-a", "-q", service).stdout.split()
        done = subprocess.run(
            ["docker", "inspect", "--format", "{{json .State}}", container],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        state: dict[str, Any] = json.loads(done.stdout)
        return state


@contextlib.contextmanager
def machine_lock() -> Iterator[None]:
    """One compose test at a time on this machine (the project's subnet is fixed)."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as handle:
        deadline = time.monotonic() + 1800
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"another compose test holds {LOCK}") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="module")
def stack(docker_engine: engine.Engine) -> Iterator[Stack]:
    """compose.yaml up (built, healthy), with Prometheus, and Grafana where its image can be
    had; logs kept under test-artifacts/ and the project down with its volumes after."""
    ARTIFACTS.mkdir(exist_ok=True)
    with machine_lock():
        s = Stack()
        s.report["engine"] = f"Docker {docker_engine.version}, Compose {docker_engine.compose}"
        started = time.monotonic()
        s.report["images"] = {
            tag: images.ensure(tag, say=lambda _: None)
            for tag in images.wanted(monitoring=True)
            if images.has_recipe(tag)
        }
        s.report["images_seconds"] = round(time.monotonic() - started, 1)
        grafana = [tag for tag in images.wanted(monitoring=True) if "grafana" in tag]
        s.with_grafana = all(
            images.inspect_labels(t) is not None or images.pull(t) for t in grafana
        )
        services = ["valkey", *NODES, "balancer", "prometheus"]
        services += ["grafana"] if s.with_grafana else []
        s.compose("--profile", "monitoring", "down", "-v", "--remove-orphans", timeout=120)
        started = time.monotonic()
        try:
            s.compose("--profile", "monitoring", "up", "-d", "--build", "--wait", *services)
            s.report["up_seconds"] = round(time.monotonic() - started, 1)
            yield s
        finally:
            logs = s.compose("--profile", "monitoring", "logs", "--no-color", check=False)
            (ARTIFACTS / "compose.log").write_text(logs.stdout + logs.stderr)
            # (--rmi local: the nodes' images go too, so rebuilds leave no dangling images;
            # the build cache keeps the next build fast.)
            down = ("down", "-v", "--remove-orphans", "--rmi", "local", "-t", "10")
            s.compose("--profile", "monitoring", *down)
            (ARTIFACTS / "compose.json").write_text(json.dumps(s.report, indent=2) + "\n")
            kinds = sorted({how.split(" (")[0] for how in s.report["images"].values()})
            after = s.report.get("after_kill", {})
            SUMMARY.append(
                f"ran on {s.report['engine']}; base images: {', '.join(kinds)} "
                f"({s.report['images_seconds']} s); up --build {s.report.get('up_seconds')} s; "
                f"after the kill: {after.get('requests')} requests, the longest wait "
                f"{after.get('max_wait_s')} s (test-artifacts/compose.json)"
            )
