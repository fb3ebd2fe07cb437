"""One node holding 5,000 idle client sockets on one object: the object hibernates, and a
broadcast still reaches every one of them (sockets served with no task of their own)."""

from __future__ import annotations

import asyncio
import time

from tests.cluster.conftest import live_ids
from tests.support.rawws import RawSocket

COUNT = 5000


async def test_five_thousand_idle_sockets_all_receive_a_broadcast(nodes) -> None:
    (node,) = nodes(1, env={"HIBERNATE_AFTER": "1", "SWEEP_INTERVAL": "0.2"})

    async def join(i: int) -> RawSocket:
        ws = await RawSocket.open("127.0.0.1", node.port, f"/probe/crowd/ws?user=u{i}")
        opcode, payload = await ws.read(30)
        assert (opcode, payload) == (0x1, b"welcome")
        return ws

    sockets: list[RawSocket] = []
    for start in range(0, COUNT, 250):
        sockets += await asyncio.gather(*(join(i) for i in range(start, start + 250)))
    deadline = time.monotonic() + 30
    while any(i.startswith("probe:") for i in live_ids(node)):  # the object hibernates
        assert time.monotonic() < deadline, "the object never hibernated"
        await asyncio.sleep(0.2)

    sockets[1234].text("broadcast:to-everyone")  # wakes it; one message, 5,000 deliveries
    heard = await asyncio.gather(*(ws.read(60) for ws in sockets))
    assert heard == [(0x1, b"all:to-everyone")] * COUNT
    sockets[0].text("count")  # and the object, rebuilt, still knows them all
    assert await sockets[0].read(30) == (0x1, f"count:{COUNT}".encode())
    for ws in sockets:
        ws.close()
