"""A replicated test object and its App: read replicas' behaviour, in-process and in node
processes (tests/integration/test_replicas.py, tests/cluster/test_replicas_nodes.py, the
nemesis suite's replica workload and bench/replica_bench.py).

``Shelf`` keeps keys in storage and, like a board, a list of lines in memory: its
``replica_update`` hook applies each commit's new lines and sends them to the sockets that
watch it there. Routes carry the stub's version in the ``X-Version`` header, both ways, as an
app carries it in a cookie: ``/shelf/<name>/...``.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from runtime import (
    App,
    Binding,
    Changes,
    DurableObject,
    DurableObjectError,
    ObjectWebSocket,
    Stub,
    env_of,
    error_headers,
    rpc,
)

SHELVES = Binding("shelf")


class Shelf(DurableObject):
    """Keys, and lines appended in order (kept in memory too, like a board's document)."""

    replicated = True

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.lines: list[str] = []
        ctx.block_concurrency_while(self._load)

    async def _load(self) -> None:
        self.lines = list((await self.storage.list(prefix="line:")).values())

    def _where(self) -> dict[str, Any]:
        return {"replica": self.ctx.is_replica, "node": self.ctx.node_id}

    # ------------------------------------------------------------------ writes
    @rpc
    async def put(self, key: str, value: Any) -> dict[str, Any]:
        await self.storage.put(f"key:{key}", value)
        return self._where()

    @rpc
    async def append(self, line: str) -> int:
        """Add a line: stored, kept in memory, sent to the primary's own watchers."""
        n = len(self.lines)
        await self.storage.put(f"line:{n:08d}", line)
        self.lines.append(line)
        self.broadcast(json.dumps({"lines": [line], "at": n}))
        return n + 1

    @rpc
    async def total(self) -> int:
        """How many lines, asked of the primary (not read-only: it never runs on a replica)."""
        return len(self.lines)

    @rpc
    async def shout(self, text: str) -> None:
        """Tell the replicas (and the primary's own watchers) something never stored."""
        self.ctx.tell_replicas(text.encode())
        self.broadcast(json.dumps({"told": text}))

    @rpc
    async def wipe(self) -> None:
        await self.storage.delete_all()
        self.lines = []

    # ------------------------------------------------------------------ reads
    @rpc(readonly=True)
    async def get(self, key: str) -> dict[str, Any]:
        return {"value": await self.storage.get(f"key:{key}"), **self._where()}

    @rpc(readonly=True)
    async def count(self) -> dict[str, Any]:
        """How many lines, from memory (what replica_update keeps)."""
        return {"lines": len(self.lines), **self._where()}

    @rpc(readonly=True)
    async def keys(self) -> list[str]:
        return list(await self.storage.list(prefix="key:"))

    @rpc(readonly=True)
    async def sneaky_put(self, key: str) -> None:
        """A read-only method that writes: refused wherever it runs."""
        await self.storage.put(f"key:{key}", "sneaky")

    # ------------------------------------------------------------------ replicas
    async def replica_update(self, changes: Changes) -> None:
        """Bring the lines in memory up to date and tell this node's watchers."""
        if changes.reloaded or changes.deleted_all:
            await self._load()
            self.broadcast(json.dumps({"reset": len(self.lines)}))
            return
        new = sorted(k for k in changes.keys if k.startswith("line:"))
        fresh = await self.storage.get_many(new)
        at = len(self.lines)
        added = [fresh[k] for k in new if k in fresh and int(k[5:]) >= at]
        self.lines.extend(added)
        if added:
            self.broadcast(json.dumps({"lines": added, "at": at}))

    async def replica_message(self, message: bytes) -> None:
        """What the primary told its replicas: to this node's watchers."""
        self.broadcast(json.dumps({"told": message.decode()}))

    # ------------------------------------------------------------------ sockets
    async def websocket_connect(self, ws: ObjectWebSocket) -> None:
        self.accept_websocket(ws)
        ws.send(json.dumps({"hello": len(self.lines), **self._where()}))

    async def websocket_message(self, ws: ObjectWebSocket, message: str | bytes) -> None:
        if message == "count":
            ws.send(json.dumps({"count": len(self.lines), **self._where()}))
        elif message == "write":
            try:
                await self.storage.put("key:from-socket", 1)
                ws.send(json.dumps({"wrote": True}))
            except DurableObjectError as exc:
                ws.send(json.dumps({"error": exc.code}))


def shelf(request: Request | WebSocket) -> Stub:
    """The Shelf a path names, from the version the client carries (``X-Version``)."""
    raw = request.headers.get("x-version", "0")
    after = int(raw) if raw.isdigit() else 0
    return env_of(request).namespace(SHELVES).get_by_name(request.path_params["name"], after=after)


def answer(stub: Stub, body: Any) -> Response:
    return JSONResponse(body, headers={"X-Version": str(stub.version)})


async def failed(exc: DurableObjectError) -> Response:
    return JSONResponse({"error": exc.code}, 503, headers=error_headers(exc))


async def put(request: Request) -> Response:
    stub = shelf(request)
    try:
        where = await stub.put(request.path_params["key"], request.query_params.get("value"))
    except DurableObjectError as exc:
        return await failed(exc)
    return answer(stub, {"ok": True, **where})


async def get(request: Request) -> Response:
    stub = shelf(request)
    try:
        return answer(stub, await stub.get(request.path_params["key"]))
    except DurableObjectError as exc:
        return await failed(exc)


async def append(request: Request) -> Response:
    stub = shelf(request)
    try:
        return answer(stub, {"lines": await stub.append(request.query_params.get("line", ""))})
    except DurableObjectError as exc:
        return await failed(exc)


async def count(request: Request) -> Response:
    stub = shelf(request)
    try:
        return answer(stub, await stub.count())
    except DurableObjectError as exc:
        return await failed(exc)


async def total(request: Request) -> Response:
    stub = shelf(request)
    try:
        return answer(stub, {"value": await stub.total()})
    except DurableObjectError as exc:
        return await failed(exc)


async def watch(websocket: WebSocket) -> None:
    await shelf(websocket).watch(websocket)


async def edit(websocket: WebSocket) -> None:
    await shelf(websocket).connect(websocket)


app = App(
    name="shelf",
    title="Shelf",
    description="Replicated test object",
    objects={SHELVES: Shelf},
    routes=[
        Route("/{name}/put/{key}", put, methods=["POST"]),
        Route("/{name}/get/{key}", get),
        Route("/{name}/append", append, methods=["POST"]),
        Route("/{name}/count", count),
        Route("/{name}/total", total),
        WebSocketRoute("/{name}/watch", watch),
        WebSocketRoute("/{name}/edit", edit),
    ],
    listed=False,
)
