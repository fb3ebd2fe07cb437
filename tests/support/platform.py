"""An app that exercises the platform: settings, templates, static files, hooks, sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from runtime import (
    App,
    BaseSettings,
    ConfigurationError,
    DurableObject,
    Env,
    MountedApp,
    ObjectContext,
    ObjectWebSocket,
    app_of,
    env_of,
    rpc,
    url_path,
)

#: What the lifespan and middleware hooks saw, in this process.
EVENTS: list[str] = []


@dataclass(frozen=True)
class DemoConfig(BaseSettings):
    env_prefix: ClassVar[str] = "DEMO_"
    greeting: str = "hello"
    loud: bool = False

    def __post_init__(self) -> None:
        if len(self.greeting) > 40:
            raise ConfigurationError("DEMO_GREETING is at most 40 characters")


class Room(DurableObject):
    """Sockets join as "waiting"; "admit" moves one to "admitted"; broadcasts pick a tag."""

    def __init__(self, ctx: ObjectContext, env: Env) -> None:
        super().__init__(ctx, env)
        self.config = env.app_settings(DemoConfig)
        self.finished: list[str] = []

    async def websocket_connect(self, ws: ObjectWebSocket) -> None:
        if ws.request.query_param("refuse"):
            ws.reject(404, "no such room")
            return
        self.accept_websocket(ws, tags=["waiting"])
        ws.attachment = {"joined": True}

    async def websocket_message(self, ws: ObjectWebSocket, message: str | bytes) -> None:
        if message == "admit":
            ws.tags = ["admitted"]
        elif message == "to-waiting":
            self.broadcast("for the waiting", tag="waiting")
        elif message == "to-others":
            self.broadcast("for the others", exclude=ws)
        elif message == "slow":
            self.ctx.wait_until(self.later("slow"))
        elif message == "where":
            ws.send(self.ctx.node_id)

    async def later(self, what: str) -> None:
        await asyncio.sleep(0.5)
        self.finished.append(what)
        await self.storage.put("finished", self.finished)

    @rpc
    async def greeting(self) -> str:
        text = self.config.greeting
        return text.upper() if self.config.loud else text

    @rpc
    async def fail(self) -> None:
        raise ValueError("secret detail: the database password is hunter2")


async def page(request: Request) -> Response:
    greeting = await env_of(request).namespace("demo_room").get_by_name("x").greeting()
    return app_of(request).render(request, "page.html", {"greeting": greeting})


async def room(request: Request) -> Response:
    return JSONResponse({"self": url_path(request, "demo:room", name=request.path_params["name"])})


async def fail(request: Request) -> Response:
    await env_of(request).namespace("demo_room").get_by_name("x").fail()
    return PlainTextResponse("unreachable")


async def socket(websocket: WebSocket) -> None:
    name = websocket.path_params["name"]
    await env_of(websocket).namespace("demo_room").get_by_name(name).connect(websocket)


class Stamp:
    """App middleware: marks responses of this app's routes only."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def stamped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-demo", b"1"))
            await send(message)

        await self.app(scope, receive, stamped)


def gate(app: ASGIApp, mounted: MountedApp) -> ASGIApp:
    """Node middleware: sees every request of the node, whatever app it is for."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/blocked-by-demo":
            await PlainTextResponse(f"gated by {mounted.name}", 451)(scope, receive, send)
            return
        await app(scope, receive, send)

    return wrapped


@asynccontextmanager
async def lifespan(mounted: MountedApp) -> AsyncIterator[None]:
    EVENTS.append(f"start {mounted.name} {mounted.settings_as(DemoConfig).greeting}")
    yield
    EVENTS.append(f"stop {mounted.name}")


app = App(
    name="demo",
    title="Demo",
    objects={"demo_room": Room},
    routes=[
        Route("/", page, name="page"),
        Route("/rooms/{name}", room, name="room"),
        Route("/fail", fail, name="fail"),
        WebSocketRoute("/rooms/{name}/ws", socket, name="socket"),
    ],
    settings=DemoConfig,
    templates=Path(__file__).parent / "templates",
    static="css",
    middleware=[Middleware(Stamp)],
    node_middleware=[gate],
    lifespan=lifespan,
)
