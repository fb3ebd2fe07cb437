"""The node's web server: the Starlette app with every App mounted, a landing page, /healthz,
the node-to-node endpoints, and the uvicorn configuration a node serves with.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import uvicorn
from redis import exceptions as redis_errors
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp
from starlette.websockets import WebSocket

from ..base.config import Settings
from ..base.errors import (
    DurableObjectError,
    InvalidObjectId,
    InvalidValue,
    RpcError,
    StorageLimitExceeded,
    error_headers,
)
from ..base.logs import PathShapes
from ..cluster import protocol as link
from ..cluster.server import LinkSession
from ..host.node import Node
from ..sockets.asgi import Connection, FastWebSocketProtocol
from ..sockets.http1 import BoundedHttpToolsProtocol, HeadLimits
from ..storage.embedded import ValkeySupervisor
from . import metrics, ops, tail
from .app import (
    SCOPE_KEY,
    App,
    MountedApp,
    NodeMiddleware,
    check_unique,
    static_root,
    templates_for,
)
from .guards import Guards, allowed_hosts
from .pathindex import IndexedRouter

log = logging.getLogger("runtime.server")


def _error_status(exc: DurableObjectError) -> int:
    if exc.retryable:
        return 503
    if isinstance(exc, InvalidObjectId | InvalidValue):
        return 400
    if isinstance(exc, StorageLimitExceeded):
        return 413
    return 500


async def _object_error(request: Request, exc: Exception) -> Response:
    """A runtime error a route did not catch. The client's own mistakes (4xx) and retryable
    conditions say what went wrong; a server fault (500) is logged, and the page says only
    its kind: an exception's text may carry what no visitor should read."""
    assert isinstance(exc, DurableObjectError)
    status = _error_status(exc)
    headers = error_headers(exc)
    if status == 500:
        paths: PathShapes = request.app.state.paths
        log.error("%s %s failed: %s", request.method, paths.shorten(request.url.path), exc)
        kind = exc.type_name if isinstance(exc, RpcError) else type(exc).__name__
        return PlainTextResponse(f"internal error ({kind})", status, headers=headers)
    return PlainTextResponse(str(exc), status, headers=headers)


async def _refused(request: Request, exc: Exception) -> Response:
    """An HTTPException (no such route, a method it does not take, a body too large): the
    request was refused before anything ran. (A route raises one only before it acts.)"""
    assert isinstance(exc, HTTPException)
    headers = {**(exc.headers or {}), "X-Outcome": "not-run"}
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=headers)
    return PlainTextResponse(str(exc.detail), exc.status_code, headers=headers)


async def _crash(request: Request, exc: Exception) -> Response:
    """What Starlette answers for an exception nothing caught (it logs it): a plain 500 that
    says it may have had an effect, since nobody knows how far it got."""
    return PlainTextResponse("Internal Server Error", 500, headers={"X-Outcome": "unknown"})


def _wants_page(request: Request) -> bool:
    """A browser asking for a page (Accept names text/html), not a program."""
    return request.method in ("GET", "HEAD") and "text/html" in request.headers.get("accept", "")


def _not_found(templates: Jinja2Templates) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handler(request: Request, exc: Exception) -> Response:
        """An address no route answers: a page with a way back for browsers; for programs,
        the plain text they always got."""
        assert isinstance(exc, HTTPException)
        if _wants_page(request):
            # (inside an app's path, the page offers the way back to that app's start page)
            mounted = request.scope.get(SCOPE_KEY)
            context = {"app": mounted} if isinstance(mounted, MountedApp) else {}
            page: Response = templates.TemplateResponse(
                request, "404.html", context, status_code=404, headers={"X-Outcome": "not-run"}
            )
            return page
        return await _refused(request, exc)

    return handler


def create_app(
    node: Node, apps: Sequence[App] = (), embedded: ValkeySupervisor | None = None
) -> Starlette:
    """The node's ASGI app: landing page, /healthz, /static, /favicon.ico, the node-to-node
    endpoints, and every app under /<name>. ``embedded`` watches the embedded Valkey (its
    state shows in /healthz)."""
    check_unique(apps)
    node.embedded = embedded
    metrics.expose(node)
    templates = templates_for(apps)
    mounted = [MountedApp(app, node, templates) for app in apps]
    for m in mounted:
        m.apps = tuple(mounted)
    for m in mounted:
        for name, cls in m.app.namespaces.items():
            node.register(name, cls, m.env)
    listed = [m for m in mounted if m.app.listed]

    async def landing(request: Request) -> Response:
        """The suite's front page: every listed app, and this node's figures."""
        return templates.TemplateResponse(
            request,
            "index.html",
            {
                "apps": listed,
                "node_id": node.node_id,
                "live": node.live_objects,
                "hosted": len(node.records),
            },
        )

    async def favicon(request: Request) -> Response:
        return FileResponse(static_root() / "favicon.ico", media_type="image/x-icon")

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
        if embedded is not None:
            body["embedded_valkey"] = embedded.status()
        refusals = node.links.refusals()
        if refusals["by"] or refusals["of"]:  # a misconfigured cluster shows here
            body["links_refused"] = refusals
        return JSONResponse(body, status_code=200 if healthy else 503)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        watcher = None if embedded is None else asyncio.create_task(embedded.run())
        await node.start()
        try:
            async with AsyncExitStack() as stack:
                for m in mounted:
                    if m.app.lifespan is not None:
                        await stack.enter_async_context(m.app.lifespan(m))
                yield
        finally:
            await node.stop()
            if watcher is not None:
                watcher.cancel()

    async def cluster_link(websocket: WebSocket) -> None:
        """Another node's link (authenticated with the cluster secret)."""
        headers = {k.lower(): v for k, v in websocket.headers.items()}
        peer, why = node.verifier.verify(headers, time.time())
        if peer is None:
            client = websocket.client.host if websocket.client else "?"
            claimed = headers.get("x-cluster-node", "")[:64]
            node.link_refused(f"{claimed or '?'} at {client}", why)
            await websocket.send_denial_response(
                PlainTextResponse("cluster credentials required", 403)
            )
            return
        conn = Connection(websocket, max_buffer=1 << 30)
        await conn.accept()
        session = LinkSession(node, conn, peer)
        node.links.sessions.add(session)
        try:
            await session.run()
        finally:
            node.links.sessions.discard(session)

    async def cluster_objects(request: Request) -> Response:
        """This node's live objects (for operators and tests; same credentials as links)."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        if node.verifier.verify(headers, time.time())[0] is None:
            return PlainTextResponse("cluster credentials required", 403)
        return JSONResponse(
            {
                "node": node.node_id,
                "live": sorted(node.live_ids()),
                "hosted": len(node.records),
                "stats": node.stats.as_dict(),
            }
        )

    routes: list[BaseRoute] = [
        Route("/", landing, name="landing"),
        Route("/healthz", healthz, name="healthz"),
        Route("/favicon.ico", favicon),
        WebSocketRoute(link.PATH, cluster_link),
        Route("/_cluster/objects", cluster_objects),
        Mount("/static", StaticFiles(directory=static_root(), check_dir=False), name="static"),
    ]
    routes += ops.routes(node, templates, mounted)
    hub = tail.TailHub(node)
    routes += tail.routes(node, hub)
    routes += [m.mount() for m in mounted]
    settings = node.settings
    paths = PathShapes(routes)  # (log lines show paths without their capabilities)
    middleware = [
        Middleware(
            Guards,
            hosts=allowed_hosts(settings.allowed_hosts, settings.public_url()),
            allowed_origins=settings.allowed_origins,
            paths=paths,
        )
    ]
    # (an app's node-wide middleware is built as it is, with no wrapper of ours around it)
    middleware += [
        Middleware(_node_middleware, factory=factory, mounted=m)
        for m in mounted
        for factory in m.app.node_middleware
    ]
    starlette = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=middleware,
        exception_handlers={
            DurableObjectError: _object_error,
            404: _not_found(templates),
            HTTPException: _refused,
            Exception: _crash,
        },
    )
    # The same routes, found by their first segment instead of one after another.
    starlette.router = IndexedRouter(routes=routes, lifespan=lifespan)
    starlette.state.node = node
    starlette.state.apps = mounted
    starlette.state.paths = paths
    starlette.state.tail = hub
    return starlette


def _node_middleware(app: ASGIApp, factory: NodeMiddleware, mounted: MountedApp) -> ASGIApp:
    """An app's node-wide middleware (App.node_middleware), around the rest of the node."""
    return factory(app, mounted)


def uvicorn_config(app: Starlette, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """How a node serves: uvicorn with the websockets protocol that exposes its transport,
    frame and proxy-header settings taken from the node's settings."""
    limits = HeadLimits(settings.max_header_bytes, settings.header_timeout)
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "http": functools.partial(BoundedHttpToolsProtocol, limits=limits),
        "ws": functools.partial(FastWebSocketProtocol, large_paths=frozenset({link.PATH})),
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
    if settings.tls_cert_file:
        options["ssl_certfile"] = settings.tls_cert_file
        options["ssl_keyfile"] = settings.tls_key_file
    options.update(overrides)
    return uvicorn.Config(app, **options)


__all__ = ["create_app", "uvicorn_config"]
