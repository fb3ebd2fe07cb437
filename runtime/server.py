"""The node's web server: Starlette app with the apps mounted, a landing page and /healthz.

An :class:`App` bundles what an application brings: object classes (registered as namespaces
on the node) and routes (mounted under ``/<name>``). Route handlers reach the objects with
``env_of(request).namespace("...")``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from jinja2 import Environment, FileSystemLoader, select_autoescape
from redis import exceptions as redis_errors
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from . import link
from .cluster import LinkSession
from .config import Settings
from .errors import DurableObjectError, InvalidObjectId, InvalidValue, StorageLimitExceeded
from .namespace import Env
from .node import Node
from .object import DurableObject
from .websocket import Connection
from .wsprotocol import FastWebSocketProtocol

log = logging.getLogger("runtime.server")

ROOT = Path(__file__).resolve().parent.parent
STATIC_DIR = ROOT / "static"
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


@dataclass
class App:
    """An application: its objects, its routes (mounted at /<name>) and how it is listed."""

    name: str
    title: str
    description: str = ""
    objects: dict[str, type[DurableObject]] = field(default_factory=dict)
    routes: Sequence[BaseRoute] = ()
    listed: bool = True


def env_of(conn: HTTPConnection) -> Env:
    """The objects' environment, from inside a route handler."""
    env: Env = conn.app.state.node.env
    return env


def node_of(conn: HTTPConnection) -> Node:
    node: Node = conn.app.state.node
    return node


class OriginCheck:
    """Refuse WebSocket handshakes whose ``Origin`` names another site (DESIGN.md section 9).

    Same-origin (Origin host == Host header) and configured origins pass; a handshake without
    ``Origin`` (SDKs, load tools, other servers) passes too. ``*`` allows every origin.
    """

    def __init__(self, app: ASGIApp, allowed: Sequence[str] = ()) -> None:
        self.app = app
        self.allowed = {o.rstrip("/").lower() for o in allowed}

    def permits(self, origin: str | None, host: str | None) -> bool:
        if origin is None or "*" in self.allowed:
            return True
        origin = origin.rstrip("/").lower()
        if origin in self.allowed:
            return True
        netloc = urlsplit(origin).netloc
        return bool(host) and netloc == (host or "").lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            if not self.permits(headers.get("origin"), headers.get("host")):
                log.info("refused WebSocket from origin %r", headers.get("origin"))
                await _deny(send, 403, "Origin not allowed")
                return
        await self.app(scope, receive, send)


async def _deny(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "websocket.http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "websocket.http.response.body", "body": body})


def _error_status(exc: DurableObjectError) -> int:
    if exc.retryable:
        return 503
    if isinstance(exc, InvalidObjectId | InvalidValue):
        return 400
    if isinstance(exc, StorageLimitExceeded):
        return 413
    return 500


async def _object_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DurableObjectError)
    status = _error_status(exc)
    headers = {"X-Error-Code": exc.code}
    if exc.retryable:
        headers["Retry-After"] = "1"
    return PlainTextResponse(str(exc), status, headers=headers)


def create_app(node: Node, apps: Sequence[App] = ()) -> Starlette:
    """The node's ASGI app: landing page, /healthz, /static and every app under /<name>."""
    for app in apps:
        for name, cls in app.objects.items():
            node.register(name, cls)
    templates = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)), autoescape=select_autoescape()
    )
    listed = [a for a in apps if a.listed]

    async def landing(request: Request) -> Response:
        html = templates.get_template("index.html").render(
            apps=listed,
            node_id=node.node_id,
            live=node.live_objects,
            hosted=len(node.records),
        )
        return HTMLResponse(html)

    async def healthz(request: Request) -> Response:
        try:
            await asyncio.wait_for(node.store.redis.ping(), 2.0)
            redis_ok = True
        except (redis_errors.RedisError, OSError, TimeoutError):
            redis_ok = False
        healthy = redis_ok and node.started and not node.stopping
        body: dict[str, Any] = {
            "status": "ok" if healthy else "unavailable",
            "node": node.node_id,
            "redis": "ok" if redis_ok else "unreachable",
            "live_objects": node.live_objects,
            "hosted_objects": len(node.records),
        }
        return JSONResponse(body, status_code=200 if healthy else 503)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await node.start()
        try:
            yield
        finally:
            await node.stop()

    async def cluster_link(websocket: WebSocket) -> None:
        """Another node's link (authenticated with the cluster secret)."""
        headers = {k.lower(): v for k, v in websocket.headers.items()}
        peer = link.verify(node.settings.cluster_secret, headers, node.node_id, time.time())
        if peer is None:
            client = websocket.client.host if websocket.client else "?"
            log.warning("refused a node link from %s: missing or wrong cluster credentials", client)
            await websocket.send_denial_response(
                PlainTextResponse("cluster credentials required", 403)
            )
            return
        conn = Connection(websocket, max_buffer=1 << 30)
        await conn.accept()
        await LinkSession(node, conn, peer).run()

    async def cluster_objects(request: Request) -> Response:
        """This node's live objects (for operators and tests; same credentials as links)."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        if link.verify(node.settings.cluster_secret, headers, node.node_id, time.time()) is None:
            return PlainTextResponse("cluster credentials required", 403)
        return JSONResponse(
            {
                "node": node.node_id,
                "live": sorted(node.live_ids()),
                "hosted": len(node.records),
                "stats": vars(node.stats),
            }
        )

    routes: list[BaseRoute] = [
        Route("/", landing),
        Route("/healthz", healthz),
        WebSocketRoute(link.PATH, cluster_link),
        Route("/_cluster/objects", cluster_objects),
        Mount("/static", StaticFiles(directory=str(STATIC_DIR), check_dir=False), name="static"),
    ]
    routes += [Mount(f"/{app.name}", routes=list(app.routes)) for app in apps]
    starlette = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={DurableObjectError: _object_error},
    )
    starlette.state.node = node
    starlette.add_middleware(OriginCheck, allowed=node.settings.allowed_origins)
    return starlette


def uvicorn_config(app: Starlette, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """How a node serves: uvicorn with the websockets protocol that exposes its transport,
    frame and proxy-header settings taken from the node's settings."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "ws": FastWebSocketProtocol,
        "ws_max_size": settings.max_frame_bytes,
        "ws_per_message_deflate": False,
        # X-Forwarded-For/-Proto are believed only from configured proxies.
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": ",".join(settings.trusted_proxies) or None,
        "server_header": False,
        "access_log": False,
        "log_level": settings.log_level,
        "timeout_graceful_shutdown": 10,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


__all__ = [
    "App",
    "HTTPException",
    "OriginCheck",
    "create_app",
    "env_of",
    "node_of",
    "uvicorn_config",
]
