"""Several real node processes on real Valkey servers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from runtime.cluster import auth as cluster_auth
from tests.support.servers import NodeProcess

SECRET = "cluster-secret-for-tests-only-7f3a9c"
FAST = {"CLUSTER_SECRET": SECRET, "LEASE_TTL": "2", "ALARM_POLL_INTERVAL": "0.2"}


def auth(node: NodeProcess, caller: str = "test-client") -> dict[str, str]:
    return cluster_auth.auth_headers(SECRET, caller, node.node_id, time.time())


def live_ids(node: NodeProcess) -> list[str]:
    """The live objects a node reports (an authenticated operator endpoint)."""
    r = httpx.get(
        f"{node.http}/_cluster/objects",
        headers=auth(node),
        timeout=5,
        verify=node.verify,
    )
    r.raise_for_status()
    return list(r.json()["live"])


def node_stats(node: NodeProcess) -> dict[str, Any]:
    r = httpx.get(
        f"{node.http}/_cluster/objects",
        headers=auth(node),
        timeout=5,
        verify=node.verify,
    )
    r.raise_for_status()
    return dict(r.json()["stats"])


StartNodes = Callable[..., list[NodeProcess]]


@pytest.fixture
def nodes(redis_url: str, tmp_path: Path) -> Iterator[StartNodes]:
    """start(n, env=..., url=..., apps=...) -> n more node processes sharing the cluster secret
    (``apps``: "module:attribute" of each app to mount; the test Probe app by default)."""
    started: list[NodeProcess] = []

    def start(
        n: int = 3,
        env: dict[str, str] | None = None,
        url: str | None = None,
        suite: bool = False,
        port: int | None = None,
        apps: Sequence[str] = ("tests.support.objects:app",),
    ) -> list[NodeProcess]:
        batch = []
        for _ in range(n):
            node_id = f"n{len(started) + 1}"
            node = NodeProcess(
                redis_url=url or redis_url,
                node_id=node_id,
                env={**FAST, **(env or {})},
                log_path=tmp_path / f"{node_id}.log",
                suite=suite,
                port=port,
                apps=apps,
            ).start()
            started.append(node)
            batch.append(node)
        return batch

    yield start
    for node in started:
        node.kill()
