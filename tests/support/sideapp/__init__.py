"""An app in a module of its own, as an app author writes one outside this repository: its
page, its template and its browser script all live beside it (``App(static=Path)``)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime import App, app_of

HERE = Path(__file__).resolve().parent


async def page(request: Request) -> Response:
    """A page whose script comes from the app's own static folder."""
    return app_of(request).render(request, "side.html", {"greeting": "hello"})


app = App(
    name="side",
    title="Side app",
    routes=[Route("/", page, name="page")],
    templates=HERE / "templates",
    static=HERE / "static",
)
