"""Baseline: the chat protocol on a plain `websockets` server with broadcast(), no storage.

python bench/baselines/websockets_broadcast.py PORT
"""

import asyncio
import json
import sys
import time

from websockets.asyncio.server import broadcast, serve

rooms: dict[str, set] = {}


async def session(ws) -> None:
    room = rooms.setdefault(ws.request.path, set())
    name = None
    try:
        async for raw in ws:
            data = json.loads(raw)
            if name is None:
                name = str(data.get("name") or "anonymous")
                room.add(ws)
                broadcast(room, json.dumps({"joined": name}))
                await ws.send(json.dumps({"ready": True}))
                continue
            stamp = int(time.time() * 1000)
            text = {"name": name, "message": str(data.get("message")), "timestamp": stamp}
            broadcast(room, json.dumps(text))
    finally:
        room.discard(ws)


async def main() -> None:
    async with serve(session, "127.0.0.1", int(sys.argv[1]), max_queue=None):
        await asyncio.Future()


asyncio.run(main())
