"""A named counter: the object the tutorial (docs/tutorial.md) builds step by step.

    python -m runtime serve --app examples.counter:app     (make run mounts it too)
    curl -X POST localhost:8000/counter/visits       -> {"name": "visits", "value": 1}
    curl localhost:8000/counter/visits               -> {"name": "visits", "value": 1}

Wire protocol of ``/counter/<name>/ws`` (text frames):

    server -> client   "<value>"          on connect, and after every change, to every viewer
    client -> server   "+1"               add one
                       anything else      answered with "error: ..." (the socket stays open)
"""

from __future__ import annotations

import time
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from runtime import AlarmInfo, App, Binding, DurableObject, ObjectWebSocket, app_of, env_of, rpc

#: The counters' namespace, declared once; code reaches them through this handle.
COUNTERS = Binding("counter")
MAX_NAME = 64


class Counter(DurableObject):
    """One counter per name; the value lives in storage under "value"."""

    @rpc
    async def increment(self, by: int = 1) -> int:
        """Add ``by`` and return the new value."""
        if not isinstance(by, int) or isinstance(by, bool):
            raise ValueError("by must be an integer")
        value = await self.storage.get("value", 0) + by
        await self.storage.put("value", value)
        self.broadcast(str(value))  # sent once the put is committed (output gate)
        return int(value)

    @rpc
    async def value(self) -> int:
        """The current value."""
        return int(await self.storage.get("value", 0))

    @rpc
    async def reset_in(self, seconds: float) -> None:
        """Set the counter back to zero after ``seconds`` (one alarm per object)."""
        await self.storage.set_alarm(time.time() + seconds)

    async def alarm(self, info: AlarmInfo) -> None:
        """The reset is due: zero the counter and tell every viewer."""
        await self.storage.put("value", 0)
        self.broadcast("0")

    async def websocket_connect(self, ws: ObjectWebSocket) -> None:
        """A viewer joins: keep the socket (it survives hibernation) and send the value."""
        self.accept_websocket(ws, tags=["viewer"])
        ws.send(str(await self.storage.get("value", 0)))

    async def websocket_message(self, ws: ObjectWebSocket, message: str | bytes) -> None:
        """Only "+1" is understood; anything else gets a short error."""
        if message == "+1":
            await self.increment()
        else:
            ws.send('error: send "+1"')


async def index(request: Request) -> Response:
    """The counter's page: a counter's value, live, and a button to add one."""
    return app_of(request).render(request, "counter.html", {"name": "visits"})


async def counter(request: Request) -> Response:
    """GET reads a counter, POST increments it."""
    name = request.path_params["name"]
    if len(name) > MAX_NAME:
        return JSONResponse({"error": f"name longer than {MAX_NAME} characters"}, 400)
    stub = env_of(request).namespace(COUNTERS).get_by_name(name)
    if request.method == "POST":
        return JSONResponse({"name": name, "value": await stub.increment()})
    return JSONResponse({"name": name, "value": await stub.value()})


async def viewer(websocket: WebSocket) -> None:
    """Hand a browser's socket to the counter object."""
    name = websocket.path_params["name"]
    if len(name) > MAX_NAME:
        await websocket.close(1008)  # (a route may refuse before handing over, as here)
        return
    await env_of(websocket).namespace(COUNTERS).get_by_name(name).connect(websocket)


app = App(
    name="counter",
    title="Counter",
    description="Count anything by name, live in every window: the object the tutorial builds.",
    objects={COUNTERS: Counter},
    routes=[
        Route("/", index, name="index"),
        Route("/{name}", counter, methods=["GET", "POST"], name="counter"),
        WebSocketRoute("/{name}/ws", viewer, name="viewer"),
    ],
    templates=Path(__file__).parent / "templates",
    static="counter",
    live={COUNTERS: "counters in use", "sockets": "viewers"},
)
