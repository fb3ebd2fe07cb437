"""The poll example on three node processes sharing one Valkey (AOF, fsync always): the node
holding a poll is killed (-9) before the poll's closing alarm is due, and the close still
happens, exactly once, on a survivor."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from runtime.storage.embedded import ValkeyProcess
from tests.cluster.conftest import live_ids, node_stats

APPS = ("examples.poll:app",)
SECONDS = 6  # the poll's closing time, from its creation


async def recv(ws: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return data


async def test_the_close_happens_once_when_the_polls_node_is_killed_before_it(
    nodes, tmp_path
) -> None:
    valkey = ValkeyProcess(tmp_path / "valkey", appendfsync="always").start()
    try:
        cluster = nodes(3, url=valkey.url, apps=APPS)
        async with httpx.AsyncClient() as client:
            query = {"question": "Ship it?", "option": ["yes", "no"], "seconds": str(SECONDS)}
            created = await client.post(f"{cluster[0].http}/poll/", params=query)
        assert created.status_code == 201
        due = time.monotonic() + SECONDS
        poll_id = created.json()["id"]
        owners = [n for n in cluster if f"poll:{poll_id}" in live_ids(n)]
        assert len(owners) == 1  # one instance, on one node
        owner = owners[0]
        survivors = [n for n in cluster if n is not owner]

        # A vote before the kill, through a node that is not the owner (a tunnelled socket).
        voter = await connect(f"{survivors[0].ws}/poll/{poll_id}")
        assert (await recv(voter))["votes"] == {"yes": 0, "no": 0}
        await voter.send("yes")
        assert (await recv(voter))["votes"] == {"yes": 1, "no": 0}

        owner.kill()  # kill -9: no drain, no lease released, the alarm not yet due
        assert time.monotonic() < due - 2, "the kill came too late to show anything"
        with pytest.raises(ConnectionClosed) as gone:
            await asyncio.wait_for(voter.recv(), 10)
        assert gone.value.rcvd is not None and gone.value.rcvd.code == 1012  # reconnect

        # A viewer on each survivor: the poll comes back (with its vote) once the lease of the
        # dead node runs out, and its close is pushed live when the alarm fires there.
        viewers = []
        for node in survivors:
            viewer = await connect(f"{node.ws}/poll/{poll_id}", open_timeout=15)
            before = await recv(viewer, 15)
            assert before == {"question": "Ship it?", "votes": {"yes": 1, "no": 0}}
            viewers.append(viewer)
        closed = {"question": "Ship it?", "votes": {"yes": 1, "no": 0}, "closed": 1}
        for viewer in viewers:
            assert await recv(viewer, SECONDS + 15) == closed
        assert time.monotonic() >= due - 0.5  # at its closing time, not before

        # Past the due time plus failover: no second close arrives, and every survivor reads
        # one close from storage. (If the alarm's effect ran twice, "closed" would be 2.)
        await asyncio.sleep(3)
        for viewer in viewers:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(viewer.recv(), 0.5)
            await viewer.close()
        for node in survivors:
            late = await connect(f"{node.ws}/poll/{poll_id}")
            assert await recv(late) == closed
            await late.send("no")
            assert await recv(late) == {"error": "poll closed"}
            await late.close()
        assert sum(node_stats(n)["alarms_fired"] for n in survivors) == 1
        await voter.close()
    finally:
        valkey.stop()
