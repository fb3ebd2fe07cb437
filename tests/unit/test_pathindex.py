"""IndexedRouter answers every request exactly as Starlette's Router does (it only finds
the candidates sooner): the same route, the same 404, 405 and slash redirects."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Host, Mount, Route, Router

from runtime.web.pathindex import IndexedRouter


def said(text: str):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> Response:
        params = ",".join(f"{k}={v}" for k, v in sorted(request.path_params.items()))
        return PlainTextResponse(f"{text}|{params}|{request.scope.get('root_path', '')}")

    return endpoint


def routes(root_mount: bool) -> list[BaseRoute]:
    inner = [Route("/", said("app-home")), Route("/items/{n:int}", said("item"))]
    return [
        Route("/", said("landing")),
        Route("/healthz", said("healthz")),
        Route("/chat/special", said("before-mount")),  # earlier than the mount: wins
        Mount("/chat", routes=inner),
        Route("/post-only", said("post"), methods=["POST"]),
        Route("/{anything}/edit", said("param-first")),  # a candidate for every path
        Mount("/lobby", app=IndexedRouter(inner)),
        Host("api.example", app=Router([Route("/healthz", said("host-healthz"))])),
        Route("/lobby/after", said("shadowed-by-mount")),
        # A mount at the root matches every path: what comes after it is never reached.
        *([Mount("", routes=[Route("/fallback", said("root-mount"))])] if root_mount else []),
        Route("/late/", said("late")),
    ]


def app(router: type[Router], root_mount: bool = False) -> Starlette:
    starlette = Starlette()
    starlette.router = router(routes=routes(root_mount))
    return starlette


PATHS = [
    "/", "/healthz", "/healthz/", "/chat", "/chat/", "/chat/items/3", "/chat/items/x",
    "/chat/special", "/post-only", "/x/edit", "/healthz/edit", "/lobby/", "/lobby/items/9",
    "/lobby/after", "/fallback", "/nowhere", "/chat/nowhere", "//double", "/%C3%A9/edit",
    "/late", "/late/",
]  # fmt: skip


def client(starlette: Starlette) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=starlette)  # in process: this is about routing alone
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.mark.parametrize("root_mount", [False, True])
async def test_indexed_router_answers_as_starlettes_router(root_mount: bool) -> None:
    async with (
        client(app(Router, root_mount)) as plain,
        client(app(IndexedRouter, root_mount)) as indexed,
    ):
        for path in PATHS:
            for method in ("GET", "POST"):
                for host in ("testserver", "api.example"):
                    a = await plain.request(method, path, headers={"host": host})
                    b = await indexed.request(method, path, headers={"host": host})
                    seen = (method, path, host)
                    assert (a.status_code, a.text, a.headers.get("location")) == (
                        b.status_code,
                        b.text,
                        b.headers.get("location"),
                    ), seen


async def test_a_route_added_later_is_found() -> None:
    starlette = Starlette()
    starlette.router = IndexedRouter(routes=[Route("/early", said("early"))])
    async with client(starlette) as http:
        assert (await http.get("/late")).status_code == 404
        starlette.router.routes.append(Route("/late", said("late")))
        assert (await http.get("/late")).text.startswith("late|")
