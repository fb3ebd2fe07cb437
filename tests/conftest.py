"""Fixtures every test can lean on: real Valkey servers, nodes in-process and as processes."""

from __future__ import annotations

import resource
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from runtime import Node, Settings
from runtime.storage.embedded import ValkeyProcess
from tests.support.objects import Probe
from tests.support.objects import app as probe_app
from tests.support.servers import LocalServer

# Many sockets per test (the hibernation test holds 2,000 file descriptors).
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (max(_soft, min(_hard, 16384)), _hard))

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"

#: Fast settings for tests (short waits); a test overrides what it looks at.
TEST_SETTINGS: dict[str, Any] = {
    "node_id": "test-node",
    "lease_ttl": 2.0,
    "lease_margin": 0.25,
    "activation_timeout": 5.0,
    "sweep_interval": 0.2,
    "alarm_poll_interval": 0.1,
}


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyProcess]:
    server = ValkeyProcess(tmp_path_factory.mktemp("valkey"), appendonly=False).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(valkey: ValkeyProcess) -> str:
    """The shared test Valkey, emptied and with fresh command statistics."""
    client = redis.Redis.from_url(valkey.url)
    client.flushall()
    client.config_resetstat()
    client.close()
    return valkey.url


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


NodeFactory = Callable[..., Awaitable[Node]]


@pytest.fixture
async def make_node(redis_url: str) -> AsyncIterator[NodeFactory]:
    """Start in-process nodes (with the Probe object) on the test Valkey; stopped after."""
    nodes: list[Node] = []

    async def factory(url: str | None = None, **overrides: Any) -> Node:
        node = Node(Settings(**{**TEST_SETTINGS, **overrides}), url or redis_url)
        node.register("probe", Probe)
        await node.start()
        nodes.append(node)
        return node

    yield factory
    for node in nodes:
        await node.stop()


ServerFactory = Callable[..., Awaitable[LocalServer]]


@pytest.fixture
async def serve(redis_url: str) -> AsyncIterator[ServerFactory]:
    """Serve a node over real HTTP/WebSocket sockets, in this process."""
    servers: list[LocalServer] = []

    async def factory(
        url: str | None = None, apps: Any = (probe_app,), **overrides: Any
    ) -> LocalServer:
        node = Node(Settings(**{**TEST_SETTINGS, **overrides}), url or redis_url)
        server = await LocalServer(node, list(apps)).start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by folder, so ``-m unit`` runs the fast ones alone."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for kind in ("unit", "integration", "cluster", "browser"):
            if kind in parts:
                item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture(autouse=True)
def _fresh_probe_counters() -> None:
    """Probe's per-process counters start empty in every test (the integration suite runs
    twice, on one server and on a cluster, with the same object names)."""
    from tests.support.objects import ALARMS, CONSTRUCTED

    ALARMS.clear()
    CONSTRUCTED.clear()
