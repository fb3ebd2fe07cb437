"""Objects the benchmarks drive (importable as ``bench.objects:app`` by a node process)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from runtime import App, DurableObject, ObjectWebSocket, env_of, rpc


class Bench(DurableObject):
    @rpc
    async def noop(self) -> int:
        """No storage: the cost of the stub, the gate and the copies alone."""
        return 1

    @rpc
    async def write(self, i: int) -> int:
        """One put per event."""
        await self.storage.put("v", i)
        return i

    @rpc
    async def arm(self, delay: float) -> int:
        """Set the object's alarm ``delay`` seconds from now (the alarm does nothing)."""
        await self.storage.set_alarm(time.time() + delay)
        return 1

    async def alarm(self) -> None:
        """Nothing: the cost of delivering an alarm alone."""

    async def fetch(self, request: Request) -> Response:
        """A fetch event with no storage: the cost of handing a request to an object."""
        return PlainTextResponse("ok")

    async def websocket_connect(self, ws: ObjectWebSocket) -> None:
        self.accept_websocket(ws)
        ws.attachment = {"n": 1}

    async def websocket_message(self, ws: ObjectWebSocket, message: str | bytes) -> None:
        """Echo, or a message starting with "b": to every socket of the object (no storage)."""
        if message[:1] in ("b", b"b"):
            self.broadcast(message)
        else:
            ws.send(message)


async def socket(websocket: WebSocket) -> None:
    ns = env_of(websocket).namespace("bench")
    await ns.get_by_name(websocket.path_params["name"]).connect(websocket)


async def plain(request: Request) -> Response:
    """No object at all: the cost of the node's HTTP stack (middleware, mounts, routing)."""
    return PlainTextResponse("ok")


async def touch(request: Request) -> Response:
    """Activate the object (on the node that receives this, if it is free)."""
    await env_of(request).namespace("bench").get_by_name(request.path_params["name"]).noop()
    return PlainTextResponse("ok")


async def fetch(request: Request) -> Response:
    """A fetch event: the request handed to the object."""
    return (
        await env_of(request)
        .namespace("bench")
        .get_by_name(request.path_params["name"])
        .fetch(request)
    )


async def arm(request: Request) -> Response:
    """Set the object's alarm, due in the number of seconds the query's ``in`` says."""
    stub = env_of(request).namespace("bench").get_by_name(request.path_params["name"])
    return PlainTextResponse(str(await stub.arm(float(request.query_params.get("in", "1")))))


async def write(request: Request) -> Response:
    """One RPC with one write."""
    stub = env_of(request).namespace("bench").get_by_name(request.path_params["name"])
    return PlainTextResponse(str(await stub.write(1)))


app = App(
    name="bench",
    title="Bench",
    objects={"bench": Bench},
    routes=[
        WebSocketRoute("/{name}/ws", socket),
        Route("/{name}/plain", plain, methods=["POST"]),
        Route("/{name}/touch", touch, methods=["POST"]),
        Route("/{name}/write", write, methods=["POST"]),
        Route("/{name}/fetch", fetch, methods=["POST"]),
        Route("/{name}/arm", arm, methods=["POST"]),
    ],
    listed=False,
)
