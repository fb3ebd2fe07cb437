"""The objects bench/replica_bench.py drives (``bench.replica_objects:app`` in a node).

- ``Hot``: one value read by everyone (``GET /hot/<name>/read``: a read-only call, served by
  the caller's node's replica when it can) and written now and then (``POST .../write``);
  and a directory of 50 entries listed whole (``GET /hot/<name>/list``), as a lobby
  directory's page reads it: a read that costs the object's thread real work.
- ``Doc``: a document kept in memory, like a whiteboard's: an editor appends lines
  (``POST /hot/doc/<name>/append?line=...``), sockets that only watch (``/hot/doc/<name>/view``)
  get each new line. With replicas each node's replica sends to its own watchers
  (``replica_update``); without, the primary sends to every watcher, through tunnels.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from runtime import App, Binding, Changes, DurableObject, ObjectWebSocket, env_of, rpc

HOT = Binding("hot")
DOCS = Binding("hot_doc")


class Hot(DurableObject):
    replicated = True

    @rpc(readonly=True)
    async def read(self) -> Any:
        return await self.storage.get("v", 0)

    @rpc(readonly=True)
    async def directory(self) -> list[Any]:
        return list((await self.storage.list(prefix="item:")).values())

    @rpc
    async def write(self, value: int) -> None:
        await self.storage.put("v", value)
        if value == 0:  # (the first write fills the directory)
            await self.storage.put_many(
                {f"item:{i:03d}": {"name": f"lobby {i}", "players": i % 4, "open": True}
                 for i in range(50)}
            )  # fmt: skip


class Doc(DurableObject):
    replicated = True

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.count = 0
        ctx.block_concurrency_while(self._load)

    async def _load(self) -> None:
        self.count = int(await self.storage.get("count", 0))

    @rpc
    async def append(self, line: str) -> int:
        """Store the line; the primary's own watchers get it at once (after the commit)."""
        await self.storage.put_many({"count": self.count + 1, f"l:{self.count:08d}": line})
        self.count += 1
        self.broadcast(line)
        return self.count

    async def replica_update(self, changes: Changes) -> None:
        """(Replicas.) The new lines, to this node's watchers."""
        if changes.reloaded:
            await self._load()
            return
        lines = await self.storage.get_many(sorted(k for k in changes.keys if k.startswith("l:")))
        self.count = int(await self.storage.get("count", 0))
        for line in lines.values():
            self.broadcast(line)

    async def websocket_connect(self, ws: ObjectWebSocket) -> None:
        self.accept_websocket(ws)


async def read(request: Request) -> Response:
    stub = env_of(request).namespace(HOT).get_by_name(request.path_params["name"])
    return PlainTextResponse(str(await stub.read()))


async def directory(request: Request) -> Response:
    stub = env_of(request).namespace(HOT).get_by_name(request.path_params["name"])
    return PlainTextResponse(str(len(await stub.directory())))


async def write(request: Request) -> Response:
    stub = env_of(request).namespace(HOT).get_by_name(request.path_params["name"])
    await stub.write(int(request.query_params.get("v", "0")))
    return PlainTextResponse(str(stub.version))


async def append(request: Request) -> Response:
    stub = env_of(request).namespace(DOCS).get_by_name(request.path_params["name"])
    return PlainTextResponse(str(await stub.append(request.query_params.get("line", ""))))


async def view(websocket: WebSocket) -> None:
    stub = env_of(websocket).namespace(DOCS).get_by_name(websocket.path_params["name"])
    await stub.watch(websocket)


app = App(
    name="hot",
    title="Replica bench",
    description="Objects the replica benchmark drives",
    objects={HOT: Hot, DOCS: Doc},
    routes=[
        Route("/{name}/read", read),
        Route("/{name}/list", directory),
        Route("/{name}/write", write, methods=["POST"]),
        Route("/doc/{name}/append", append, methods=["POST"]),
        WebSocketRoute("/doc/{name}/view", view),
    ],
    listed=False,
)
