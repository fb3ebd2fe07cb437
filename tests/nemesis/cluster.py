"""The system under test: one Valkey (append-only, fsync always) and three node processes,
with a proxy (proxy.py) on every path the nemesis may cut, and the faults it injects.

    node i --REDIS_URL--> redis proxy i --> Valkey
    other nodes --ADVERTISE_URL of node i--> link proxy i --> node i

Each node serves the counter example (``POST /counter/<name>``), the test Probe app (a
register at ``/probe/<name>/register``) and the replicated test Shelf (lines appended and
counted at ``/shelf/<name>/...``, read on replicas). A node can run on a skewed clock: its
process is started under libfaketime (Debian's ``faketime`` package), which shifts or speeds
up every clock it reads, the monotonic one too.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from runtime.base.config import DEFAULT_ID_KEY
from runtime.cluster import auth
from runtime.objects.ids import IdFactory
from runtime.storage.embedded import ValkeyProcess, free_port
from tests.nemesis.proxy import Proxy
from tests.support.servers import NodeProcess

SECRET = "nemesis-cluster-secret-for-tests-only"
APPS = ("examples.counter:app", "tests.support.objects:app", "tests.support.replicated:app")
FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")


def faketime_available() -> bool:
    return FAKETIME_LIB.exists()


def object_hex(namespace: str, name: str) -> str:
    """The ID every node gives the object named ``name`` (default ID key)."""
    return IdFactory(namespace, DEFAULT_ID_KEY.encode()).from_name(name).hex


class Cluster:
    """Valkey, proxies and nodes, started together and stopped together."""

    def __init__(
        self,
        directory: Path,
        nodes: int = 3,
        clocks: dict[int, str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.count = nodes
        self.clocks = clocks or {}
        self.env = env or {}
        self.valkey_port = free_port()
        self.valkey = self._valkey()
        self.redis_proxies = [
            Proxy(free_port(), "127.0.0.1", self.valkey_port) for _ in range(nodes)
        ]
        self.ports = [free_port() for _ in range(nodes)]
        self.link_proxies = [Proxy(free_port(), "127.0.0.1", port) for port in self.ports]
        self.nodes: list[NodeProcess] = []

    def _valkey(self) -> ValkeyProcess:
        return ValkeyProcess(self.directory / "valkey", port=self.valkey_port, appendfsync="always")

    def _node(self, i: int) -> NodeProcess:
        env = {
            "CLUSTER_SECRET": SECRET,
            "LEASE_TTL": "2",
            "ADVERTISE_URL": f"ws://127.0.0.1:{self.link_proxies[i].port}",
            **self.env,
        }
        if i in self.clocks:
            env["LD_PRELOAD"] = str(FAKETIME_LIB)
            env["FAKETIME"] = self.clocks[i]
            env["FAKETIME_NO_CACHE"] = "1"
        return NodeProcess(
            redis_url=f"redis://127.0.0.1:{self.redis_proxies[i].port}/0",
            node_id=f"n{i + 1}",
            apps=APPS,
            env=env,
            port=self.ports[i],
            log_path=self.directory / f"n{i + 1}.log",
        )

    def start(self) -> Cluster:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.valkey.start()
        for proxy in (*self.redis_proxies, *self.link_proxies):
            proxy.start()
        self.nodes = [self._node(i) for i in range(self.count)]
        try:
            for node in self.nodes:
                node.start()
        except BaseException:  # (a node that fails to start leaves none of the others running)
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.send_signal(signal.SIGCONT)  # (a paused node cannot die)
            node.kill()
        for proxy in (*self.redis_proxies, *self.link_proxies):
            proxy.stop()
        self.valkey.stop()

    # ------------------------------------------------------------ faults

    def pause(self, i: int) -> None:
        self.nodes[i].send_signal(signal.SIGSTOP)

    def resume(self, i: int) -> None:
        self.nodes[i].send_signal(signal.SIGCONT)

    def kill(self, i: int) -> None:
        self.nodes[i].kill()

    def restart(self, i: int) -> None:
        self.nodes[i].kill()
        self.nodes[i] = self._node(i).start()

    def cut_from_redis(self, i: int) -> None:
        self.redis_proxies[i].freeze()

    def heal_redis(self, i: int) -> None:
        self.redis_proxies[i].thaw()

    def isolate(self, i: int) -> None:
        """No other node reaches node ``i`` (it still reaches them, and Redis)."""
        self.link_proxies[i].freeze()

    def heal_links(self) -> None:
        for proxy in self.link_proxies:
            if proxy.frozen:
                proxy.thaw()

    def kill_valkey(self) -> None:
        assert self.valkey.process is not None
        self.valkey.process.kill()
        self.valkey.process.wait()

    def restart_valkey(self) -> None:
        self.valkey = self._valkey().start()

    # ------------------------------------------------------------ looking

    def url(self, i: int) -> str:
        return self.nodes[i].http

    def _cluster_get(self, i: int) -> dict[str, object]:
        node = self.nodes[i]
        headers = auth.auth_headers(SECRET, "nemesis", node.node_id, time.time())
        reply = httpx.get(f"{node.http}/_cluster/objects", headers=headers, timeout=5)
        reply.raise_for_status()
        data: dict[str, object] = reply.json()
        return data

    def live(self, i: int) -> set[str]:
        """ "namespace:hex" of the objects node ``i`` serves now."""
        return {str(x) for x in self._cluster_get(i)["live"]}  # type: ignore[attr-defined]

    def stats(self, i: int) -> dict[str, int]:
        return dict(self._cluster_get(i)["stats"])  # type: ignore[arg-type]

    def logs(self) -> str:
        out = []
        for i in range(self.count):
            path = self.directory / f"n{i + 1}.log"
            if path.exists():
                out.append(f"--- n{i + 1} ---\n" + path.read_text()[-4000:])
        return "\n".join(out)


def environment_ok() -> str:
    """Why the nemesis cannot run here ("" when it can)."""
    if os.name != "posix":
        return "needs POSIX signals"
    return ""
