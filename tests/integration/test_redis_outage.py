"""Redis going away and coming back: clear retryable errors, no crash, nothing acknowledged lost."""

from __future__ import annotations

import asyncio

from runtime import DurableObjectError, Node, Settings
from runtime.storage.embedded import ValkeyProcess
from tests.conftest import TEST_SETTINGS
from tests.support.objects import Probe


async def test_node_rides_through_a_redis_restart(tmp_path) -> None:
    server = ValkeyProcess(tmp_path / "v", appendfsync="always").start()
    node = Node(Settings(**{**TEST_SETTINGS, "activation_timeout": 3.0}), server.url)
    node.register("probe", Probe)
    await node.start()
    try:
        stub = node.namespace("probe").get_by_name("outage")
        acknowledged = 0
        for _ in range(20):
            acknowledged = await stub.increment()
        server.kill()  # kill -9: only what AOF (fsync always) holds survives
        errors = []
        for _ in range(5):
            try:
                await stub.increment()
            except DurableObjectError as exc:
                errors.append(exc)
        assert len(errors) == 5
        assert all(e.retryable for e in errors), errors
        assert "Redis" in str(errors[0]) or "lease" in str(errors[0])
        server = ValkeyProcess(tmp_path / "v", port=server.port, appendfsync="always").start()
        for _ in range(100):
            try:
                value = await stub.increment()
                break
            except DurableObjectError:
                await asyncio.sleep(0.1)
        assert value == acknowledged + 1  # no acknowledged increment was lost
    finally:
        await node.stop()
        server.stop()


async def test_the_first_write_after_a_redis_restart_is_stored(tmp_path) -> None:
    # A restart leaves the node's idle connections dead and Redis without the scripts: the
    # next commit must find a live connection, load the scripts and go through, first time.
    server = ValkeyProcess(tmp_path / "v", appendfsync="always").start()
    node = Node(Settings(**{**TEST_SETTINGS, "lease_ttl": 30.0}), server.url)
    node.register("probe", Probe)
    await node.start()
    try:
        stub = node.namespace("probe").get_by_name("restarted")
        assert await stub.increment() == 1
        server.stop()  # a clean shutdown: the AOF keeps the lease and the value
        server = ValkeyProcess(tmp_path / "v", port=server.port, appendfsync="always").start()
        assert await stub.increment() == 2
    finally:
        await node.stop()
        server.stop()
