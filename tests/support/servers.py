"""Real servers for the tests: Valkey processes, in-process nodes, node subprocesses."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from runtime import Node, Settings
from runtime.storage.embedded import free_port
from runtime.web.server import App, create_app, uvicorn_config

ROOT = Path(__file__).resolve().parents[2]


class LocalServer:
    """A node served by uvicorn inside the test's own event loop, on a real port."""

    def __init__(
        self, node: Node, apps: Sequence[App], port: int | None = None, **options: Any
    ) -> None:
        self.node = node
        self.port = port or free_port()
        self.app = create_app(node, apps, **options)
        config = uvicorn_config(
            self.app,
            node.settings,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> LocalServer:
        self.server.config.setup_event_loop = lambda: None  # type: ignore[method-assign]
        self.task = asyncio.get_running_loop().create_task(self.server.serve())
        deadline = time.monotonic() + 10
        while not self.server.started:
            if self.task.done():
                self.task.result()
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        if self.task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.task, 15)
        self.task = None


class NodeProcess:
    """``python -m runtime serve`` as a child process the test can kill, pause and stop."""

    def __init__(
        self,
        *,
        redis_url: str | None,
        node_id: str,
        apps: Sequence[str] = ("tests.support.objects:app",),
        data_dir: str | None = None,
        env: dict[str, str] | None = None,
        port: int | None = None,
        suite: bool = False,
        log_path: Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.node_id = node_id
        args = [
            sys.executable,
            "-m",
            "runtime",
            "serve",
            "--port",
            str(self.port),
            "--node-id",
            node_id,
            "--log-level",
            "warning",
        ]
        if redis_url:
            args += ["--redis-url", redis_url]
        if data_dir:
            args += ["--data-dir", data_dir]
        if not suite:
            args.append("--no-suite")
        for app in apps:
            args += ["--app", app]
        self.args = args
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.env.pop("REDIS_URL", None) if not redis_url else None
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def tls(self) -> bool:
        return bool(self.env.get("TLS_CERT_FILE"))

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What a client checks this node's certificate with (its CA, when it serves TLS)."""
        ca = self.env.get("LINK_CA_FILE")
        return ssl.create_default_context(cafile=ca) if ca else True

    @property
    def http(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> NodeProcess:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            self.args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"node {self.node_id} exited with {self.process.returncode}")
            try:
                ok = httpx.get(self.http + "/healthz", timeout=1, verify=self.verify)
                if ok.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"node {self.node_id} did not become healthy")

    def send_signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> int:
        """Ask the node to stop (Ctrl-C by default) and wait for it to exit."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise


def _cluster_port() -> int:
    """A free port whose cluster-bus twin (port + 10000) is free too. Both stay below the
    kernel's ephemeral range (32768 and up), so no outgoing connection takes one between
    this check and the server's bind."""
    import random
    import socket

    while True:
        port = random.randrange(10000, 22768)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
            return port
        except OSError:
            continue


class ValkeyCluster:
    """A Redis Cluster of real valkey-server processes (masters only), slots split evenly."""

    def __init__(self, directory: Path, masters: int = 3) -> None:
        from runtime.storage.embedded import ValkeyProcess

        self.servers = [
            ValkeyProcess(
                directory / f"m{i}",
                port=_cluster_port(),
                appendonly=False,
                extra=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "5000",
                ],
            )
            for i in range(masters)
        ]

    @property
    def url(self) -> str:
        return self.servers[0].url

    def start(self, timeout: float = 20.0) -> ValkeyCluster:
        import redis

        from runtime.base.errors import ConfigurationError

        for server in self.servers:
            for attempt in range(3):
                try:
                    server.start()
                    break
                except ConfigurationError:  # its port was taken meanwhile: another one
                    if attempt == 2:
                        raise
                    server.port = _cluster_port()
        clients = [redis.Redis(port=s.port) for s in self.servers]
        step = 16384 // len(clients)
        for i, client in enumerate(clients):
            last = 16383 if i == len(clients) - 1 else (i + 1) * step - 1
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * step, last)
        for client in clients[1:]:
            client.execute_command("CLUSTER", "MEET", "127.0.0.1", self.servers[0].port)
        deadline = time.monotonic() + timeout
        while True:
            infos = [c.cluster("info") for c in clients]
            if all(
                i["cluster_state"] == "ok" and int(i["cluster_known_nodes"]) == len(clients)
                for i in infos
            ):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not form: {infos}")
            time.sleep(0.1)
        for client in clients:
            client.close()
        return self

    def flushall(self) -> None:
        import redis

        for server in self.servers:
            client = redis.Redis(port=server.port)
            client.flushall()
            client.config_resetstat()
            client.close()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


class LinkedNodes:
    """In-process nodes on one Redis that forward to each other (one cluster secret):
    ``await start(n, **settings)`` adds ``n`` of them, named ``<prefix>1``, ``<prefix>2``...,
    each serving ``apps``; ``stop()`` ends them all."""

    def __init__(
        self,
        redis_url: str,
        apps: Sequence[App],
        settings: dict[str, Any],
        prefix: str,
        secret: str,
    ) -> None:
        self.redis_url, self.apps, self.settings = redis_url, list(apps), settings
        self.prefix, self.secret = prefix, secret
        self.servers: list[LocalServer] = []

    async def start(self, n: int = 2, **overrides: Any) -> list[LocalServer]:
        batch = []
        for _ in range(n):
            port = free_port()
            settings = {
                **self.settings,
                "node_id": f"{self.prefix}{len(self.servers) + 1}",
                "port": port,
                "cluster_secret": self.secret,
                **overrides,
            }
            node = Node(Settings(**settings), self.redis_url)
            server = await LocalServer(node, self.apps, port=port).start()
            self.servers.append(server)
            batch.append(server)
        return batch

    async def stop(self) -> None:
        for server in self.servers:
            await server.stop()
