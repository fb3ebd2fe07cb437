"""Baseline: the chat protocol on Starlette + uvicorn, a send per socket, no storage.

python bench/baselines/starlette_broadcast.py PORT
"""

import json
import sys
import time

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

rooms: dict[str, set] = {}


async def session(ws: WebSocket) -> None:
    await ws.accept()
    room = rooms.setdefault(ws.path_params["room"], set())
    name = None
    try:
        while True:
            data = json.loads(await ws.receive_text())
            if name is None:
                name = str(data.get("name") or "anonymous")
                room.add(ws)
                text = json.dumps({"joined": name})
                for peer in list(room):
                    await peer.send_text(text)
                await ws.send_text(json.dumps({"ready": True}))
                continue
            stamp = int(time.time() * 1000)
            message = {"name": name, "message": str(data.get("message")), "timestamp": stamp}
            text = json.dumps(message)
            for peer in list(room):
                await peer.send_text(text)
    except WebSocketDisconnect:
        pass
    finally:
        room.discard(ws)


app = Starlette(routes=[WebSocketRoute("/chat/api/room/{room}/websocket", session)])
uvicorn.run(
    app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", ws="websockets-sansio"
)
