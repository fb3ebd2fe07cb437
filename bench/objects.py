"""Objects the benchmarks drive (importable as ``bench.objects:app`` by a node process)."""

from __future__ import annotations

from starlette.routing import WebSocketRoute
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

    async def websocket_connect(self, ws: ObjectWebSocket) -> None:
        self.accept_websocket(ws)
        ws.attachment = {"n": 1}

    async def websocket_message(self, ws: ObjectWebSocket, message: str | bytes) -> None:
        ws.send(message)


async def socket(websocket: WebSocket) -> None:
    ns = env_of(websocket).namespace("bench")
    await ns.get_by_name(websocket.path_params["name"]).connect(websocket)


app = App(
    name="bench",
    title="Bench",
    objects={"bench": Bench},
    routes=[WebSocketRoute("/{name}/ws", socket)],
    listed=False,
)
