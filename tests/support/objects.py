"""Objects and an App used by the runtime's tests (in-process and in node subprocesses)."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from runtime import (
    AlarmInfo,
    App,
    DurableObject,
    ObjectWebSocket,
    StorageLimitExceeded,
    env_of,
    rpc,
)

#: Constructor calls per object hex, in this process.
CONSTRUCTED: dict[str, int] = defaultdict(int)
#: Alarm calls per object hex, in this process: (wall time, retry count).
ALARMS: dict[str, list[tuple[float, int]]] = defaultdict(list)


class Probe(DurableObject):
    """A counter with hooks for every runtime behaviour the tests look at."""

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        CONSTRUCTED[self.id.hex] += 1
        self.memory = 0  # in-memory only: lost on hibernation/eviction

    @rpc
    async def increment(self, by: int = 1) -> int:
        value = await self.storage.get("value", 0)
        await asyncio.sleep(0)  # would let another event in, were there no input gate
        value += by
        await self.storage.put("value", value)
        return int(value)

    @rpc
    async def value(self) -> int:
        return int(await self.storage.get("value", 0))

    @rpc
    async def put(self, key: str, value: Any) -> None:
        await self.storage.put(key, value)

    @rpc
    async def get(self, key: str) -> Any:
        return await self.storage.get(key)

    @rpc
    async def put_n(self, n: int, prefix: str = "k") -> int:
        for i in range(n):
            await self.storage.put(f"{prefix}{i:05d}", i)
        return n

    @rpc
    async def put_many(self, entries: dict[str, Any]) -> None:
        await self.storage.put_many(entries)

    @rpc
    async def list(self, **options: Any) -> list[list[Any]]:
        return [[k, v] for k, v in (await self.storage.list(**options)).items()]

    @rpc
    async def bump_memory(self) -> int:
        self.memory += 1
        return self.memory

    @rpc
    async def set_alarm_in(self, seconds: float) -> None:
        await self.storage.set_alarm(time.time() + seconds)

    @rpc
    async def get_alarm(self) -> float | None:
        return await self.storage.get_alarm()

    @rpc
    async def alarm_log(self) -> list[list[Any]]:
        return list(await self.storage.get("alarm_log", []))

    @rpc
    async def set_failing_alarms(self, failures: int) -> None:
        await self.storage.put("fail_alarms", failures)

    async def alarm(self, info: AlarmInfo) -> None:
        ALARMS[self.id.hex].append((time.time(), info.retry_count))
        log = await self.storage.get("alarm_log", [])
        log.append([time.time(), info.retry_count])
        await self.storage.put("alarm_log", log)
        other = await self.storage.get("alarm_calls")
        if other:
            await self.env.namespace("probe").get_by_name(other).nap(0.5)
        rearm = await self.storage.get("rearm")
        if rearm and rearm[0] > 0:
            await self.storage.put("rearm", [rearm[0] - 1, rearm[1]])
            await self.storage.set_alarm(time.time() + rearm[1])
        failures = await self.storage.get("fail_alarms", 0)
        if failures > 0:
            await self.storage.put("fail_alarms", failures - 1)
            raise RuntimeError("alarm failed on purpose")

    def secret(self) -> str:  # not @rpc: must not be callable through a stub
        return "nope"

    @rpc
    async def ping_via(self, other: str, me: str) -> str:
        """A -> B -> A: ask ``other`` to call back into this object."""
        stub = self.env.namespace("probe").get_by_name(other)
        return str(await stub.call_back(me))

    @rpc
    async def ping_via_gather(self, other: str, me: str) -> list[str]:
        """A -> B -> A with the outgoing calls in other tasks (gather, wait_for)."""
        stub = self.env.namespace("probe").get_by_name(other)
        both = await asyncio.gather(stub.call_back(me), stub.call_back(me))
        timed = await asyncio.wait_for(stub.call_back(me), 5)
        return [*both, timed]

    @rpc
    async def nap(self, seconds: float, key: str = "napped") -> float:
        """Sleep (holding the gate), then record that the nap finished."""
        await asyncio.sleep(seconds)
        await self.storage.put(key, True)
        return seconds

    @rpc
    async def read_then_call(self, other: str) -> int:
        """Read a value, then await another object: the gate opens meanwhile."""
        value = await self.storage.get("value", 0)
        await self.env.namespace("probe").get_by_name(other).nap(0.2)
        return int(value)

    @rpc
    async def put_then_call(self, key: str, value: Any, other: str) -> None:
        """Write, then await another object (the gate opens while it naps)."""
        await self.storage.put(key, value)
        await self.env.namespace("probe").get_by_name(other).nap(0.3)

    @rpc
    async def nap_then_call(self, seconds: float, other: str) -> str:
        """Sleep, then call another object (which may have shut down meanwhile)."""
        await asyncio.sleep(seconds)
        try:
            await self.env.namespace("probe").get_by_name(other).value()
        except Exception as exc:
            return f"other failed: {type(exc).__name__}"
        return "other answered"

    @rpc
    async def nap_with_background_call(self, seconds: float, other: str) -> list[str]:
        """Start background work that calls another object, then nap holding the gate:
        the background call must not open this event's gate (its ops stay its own)."""
        self.ctx.wait_until(self.env.namespace("probe").get_by_name(other).nap(0.1))
        before = list(await self.storage.get("ops", []))
        await asyncio.sleep(seconds)
        return [op for op in await self.storage.get("ops", []) if op not in before]

    @rpc
    async def background_write(self, seconds: float) -> None:
        """Background work that writes "background" after ``seconds``, the event long over."""

        async def later() -> None:
            await asyncio.sleep(seconds)
            await self.storage.put("background", "done")

        self.ctx.wait_until(later())

    @rpc
    async def background_after_nap(self, seconds: float) -> None:
        """Ask for background work, then nap: the work must start after this event."""
        self.event_over = False
        self.ctx.wait_until(self._note_event_over())
        if seconds:  # (0: the event ends before the loop turns)
            await asyncio.sleep(seconds)
        self.event_over = True

    async def _note_event_over(self) -> None:
        self.seen_over = self.event_over

    @rpc
    async def background_saw_event_over(self) -> Any:
        return getattr(self, "seen_over", None)

    @rpc
    async def slow_write(self, seconds: float) -> str:
        await self.storage.put("slow", "started")
        await asyncio.sleep(seconds)
        await self.storage.put("slow", "finished")
        return "done"

    @rpc
    async def set_alarm_calling(self, seconds: float, other: str) -> None:
        """Arm an alarm whose handler awaits ``other`` (so other events can run meanwhile)."""
        await self.storage.put("alarm_calls", other)
        await self.storage.set_alarm(time.time() + seconds)

    @rpc
    async def rearm(self, times: int, every: float) -> None:
        """Arm an alarm that re-arms itself ``times`` times."""
        await self.storage.put("rearm", [times, every])
        await self.storage.set_alarm(time.time() + every)

    @rpc
    async def add_op(self, op: str) -> int:
        """Append an operation id to a ledger (so a test can see each write exactly)."""
        ops = await self.storage.get("ops", [])
        ops.append(op)
        await self.storage.put("ops", ops)
        return len(ops)

    @rpc
    async def ops(self) -> list[str]:
        return list(await self.storage.get("ops", []))

    # A register, for the nemesis suite's linearizability check (tests/nemesis).
    @rpc
    async def reg_read(self) -> Any:
        return await self.storage.get("register")

    @rpc
    async def reg_write(self, value: int) -> None:
        await self.storage.put("register", value)

    @rpc
    async def reg_cas(self, expected: int | None, new: int) -> bool:
        if await self.storage.get("register") != expected:
            return False
        await self.storage.put("register", new)
        return True

    @rpc
    async def call_back(self, caller: str) -> str:
        stub = self.env.namespace("probe").get_by_name(caller)
        return f"pong:{await stub.value()}"

    # ------------------------------------------------------------------ HTTP
    async def fetch(self, request: Request) -> Response:
        if request.method == "POST":
            body = await request.body()
            await self.storage.put("body", body.decode())
            return PlainTextResponse("stored")
        return JSONResponse({"body": await self.storage.get("body"), "path": request.url.path})

    # ------------------------------------------------------------ WebSockets
    async def websocket_connect(self, ws: ObjectWebSocket) -> None:
        if ws.request.query_param("refuse"):
            ws.close(4001, "refused")
            return
        if ws.request.query_param("crash"):
            self.accept_websocket(ws)
            raise RuntimeError("failed after accepting")
        self.accept_websocket(ws, tags=[ws.request.query_param("tag") or "all"])
        ws.attachment = {"user": ws.request.query_param("user") or "anon"}
        ws.send("welcome")

    async def websocket_message(self, ws: ObjectWebSocket, message: str | bytes) -> None:
        if isinstance(message, bytes):
            ws.send(b"bin:" + message)
            return
        command, _, arg = message.partition(":")
        if command == "incr":
            value = await self.storage.get("value", 0) + 1
            await self.storage.put("value", value)
            ws.send(f"value:{value}")
        elif command == "get":
            ws.send(f"value:{await self.storage.get('value', 0)}")
        elif command == "who":
            ws.send(f"user:{ws.attachment['user']}")
        elif command == "memory":
            self.memory += 1
            ws.send(f"memory:{self.memory}")
        elif command == "broadcast":
            self.broadcast(f"all:{arg}")
        elif command == "say-then-call":  # then await another object: the gate opens
            await self.storage.put("said", arg)
            self.broadcast(f"all:{arg}")
            await self.env.namespace("probe").get_by_name("elsewhere").nap(0.3)
        elif command == "close":
            ws.close(4000, "bye")
        elif command == "count":
            ws.send(f"count:{len(self.get_websockets(arg or None))}")
        elif command == "attach":
            try:
                ws.attachment = {"user": "x" * int(arg)}
                ws.send("attached")
            except StorageLimitExceeded as exc:
                ws.send(f"error:{exc}")
        elif command in ("flood", "stored-flood"):
            if command == "stored-flood":  # the sends then wait for this write's commit
                await self.storage.put("flooded", int(arg))
            for _ in range(int(arg)):
                ws.send("x" * 65536)
        elif command == "raise":
            raise RuntimeError("handler failed on purpose")
        else:
            ws.send(f"echo:{message}")

    async def websocket_error(self, ws: ObjectWebSocket, error: Exception) -> None:
        errors = await self.storage.get("errors", [])
        errors.append(str(error))
        await self.storage.put("errors", errors)

    async def websocket_close(self, ws: ObjectWebSocket, code: int, reason: str) -> None:
        closes = await self.storage.get("closes", [])
        closes.append([code, reason])
        await self.storage.put("closes", closes)


def probe(request: Request | WebSocket) -> Any:
    """The Probe a path names; /probe/eu/<name>/... is one in the "eu" jurisdiction."""
    ns = env_of(request).namespace("probe")
    name = request.path_params["name"]
    if request.path_params.get("place") == "eu":
        return ns.get(ns.id_from_name(name, jurisdiction="eu"))
    return ns.get_by_name(name)


async def incr(request: Request) -> Response:
    return JSONResponse({"value": await probe(request).increment()})


async def add_op(request: Request) -> Response:
    return JSONResponse({"count": await probe(request).add_op(request.path_params["op"])})


async def ops(request: Request) -> Response:
    return JSONResponse({"ops": await probe(request).ops()})


async def slow(request: Request) -> Response:
    seconds = float(request.query_params.get("seconds", "1"))
    return JSONResponse({"result": await probe(request).slow_write(seconds)})


async def nap_then_call(request: Request) -> Response:
    seconds = float(request.query_params.get("seconds", "1"))
    other = request.query_params.get("other", "other")
    return JSONResponse({"result": await probe(request).nap_then_call(seconds, other)})


async def read(request: Request) -> Response:
    return JSONResponse({"value": await probe(request).get(request.path_params["key"])})


async def value(request: Request) -> Response:
    return JSONResponse({"value": await probe(request).value()})


async def register(request: Request) -> Response:
    """GET reads the register, PUT ?value=N writes it, POST ?from=A&to=B swaps A for B."""
    stub = probe(request)
    params = request.query_params
    if request.method == "GET":
        return JSONResponse({"value": await stub.reg_read()})
    if request.method == "PUT":
        await stub.reg_write(int(params["value"]))
        return JSONResponse({"ok": True})
    expected = params.get("from")
    swapped = await stub.reg_cas(
        None if expected in (None, "") else int(expected), int(params["to"])
    )
    return JSONResponse({"ok": swapped})


async def crash(request: Request) -> Response:
    """A route with a bug: it raises something nothing catches."""
    raise RuntimeError("a bug in a route")


async def alarm(request: Request) -> Response:
    stub = env_of(request).namespace("probe").get_by_name(request.path_params["name"])
    if request.method == "POST":
        await stub.set_alarm_in(float(request.query_params.get("in", "1")))
        return JSONResponse({"ok": True})
    return JSONResponse({"log": await stub.alarm_log(), "alarm": await stub.get_alarm()})


async def fetch(request: Request) -> Response:
    stub = env_of(request).namespace("probe").get_by_name(request.path_params["name"])
    return await stub.fetch(request)


async def socket(websocket: WebSocket) -> None:
    await probe(websocket).connect(websocket)


app = App(
    name="probe",
    title="Probe",
    description="Test object",
    objects={"probe": Probe},
    routes=[
        Route("/{place:str}/{name}/incr", incr, methods=["POST"]),
        Route("/{name}/incr", incr, methods=["POST"]),
        Route("/{name}/op/{op}", add_op, methods=["POST"]),
        Route("/{name}/ops", ops),
        Route("/{name}/slow", slow, methods=["POST"]),
        Route("/{name}/nap-then-call", nap_then_call, methods=["POST"]),
        Route("/{name}/get/{key}", read),
        Route("/{place:str}/{name}/value", value),
        Route("/{name}/value", value),
        Route("/{name}/alarm", alarm, methods=["GET", "POST"]),
        Route("/{name}/register", register, methods=["GET", "PUT", "POST"]),
        Route("/{name}/crash", crash),
        Route("/{name}/fetch", fetch, methods=["GET", "POST"]),
        WebSocketRoute("/{name}/ws", socket),
    ],
    listed=False,
)
