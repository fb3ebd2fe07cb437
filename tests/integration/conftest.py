"""The integration suite runs twice: on one Valkey server, and on a 3-master Valkey Cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from runtime.storage.embedded import ValkeyProcess
from tests.support.servers import ValkeyCluster


@pytest.fixture(scope="session", params=["single", "cluster"])
def valkey(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ValkeyProcess | ValkeyCluster]:
    server: ValkeyProcess | ValkeyCluster
    if request.param == "cluster":
        server = ValkeyCluster(tmp_path_factory.mktemp("cluster")).start()
    else:
        server = ValkeyProcess(tmp_path_factory.mktemp("valkey"), appendonly=False).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(valkey: ValkeyProcess | ValkeyCluster) -> str:
    """The shared test Valkey (or cluster), emptied and with fresh command statistics."""
    if isinstance(valkey, ValkeyCluster):
        valkey.flushall()
    else:
        client = redis.Redis.from_url(valkey.url)
        client.flushall()
        client.config_resetstat()
        client.close()
    return valkey.url


@pytest.fixture
def sync_redis(valkey: ValkeyProcess | ValkeyCluster, redis_url: str) -> Iterator[redis.Redis]:
    client = (
        redis.RedisCluster.from_url(redis_url)
        if isinstance(valkey, ValkeyCluster)
        else redis.Redis.from_url(redis_url)
    )
    yield client  # type: ignore[misc]
    client.close()
