"""A Starlette router that finds a request's routes by the first segment of its path.

Starlette's ``Router`` tries every route in turn, and a node's top level holds a dozen
routes and a mount per app, each mount a router of its own: a request to the last app
mounted paid for every regular expression before it. ``IndexedRouter`` answers exactly as
``Router`` does, only sooner:

- a route whose path starts with a literal segment (``/healthz``, ``/chat``) can only match
  paths starting with that segment, so each segment maps to the routes it could match,
  in the routes' own order; routes that start with a parameter, or hosts, are candidates
  for every path, in their place in that order;
- the first candidate that matches fully handles the request, as in ``Router``;
- anything else (a 405 for a path that matched with another method, a redirect to add or
  drop a trailing slash, a 404) is left to ``Router`` itself.
"""

from __future__ import annotations

from typing import Any

from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match, Mount, Route, Router, WebSocketRoute
from starlette.types import Receive, Scope, Send

_ANY = "\0"  # the key of the routes a path of any first segment could match


class IndexedRouter(Router):
    """``Router``, with the routes a path could match looked up by its first segment."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._index: dict[str, list[BaseRoute]] = {}
        # How many routes the index was built from: routes appended later (Starlette's
        # add_route) rebuild it. (A route replaced in place, the count unchanged, is not
        # seen; nothing in the runtime does that, and Starlette's own API does not.)
        self._indexed = -1

    def _candidates(self, segment: str) -> list[BaseRoute]:
        if self._indexed != len(self.routes):
            self._index = _index(self.routes)
            self._indexed = len(self.routes)
        found = self._index.get(segment)
        return found if found is not None else self._index[_ANY]

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            if "router" not in scope:
                scope["router"] = self
            path = get_route_path(scope)
            for route in self._candidates(path[1:].split("/", 1)[0]):
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope["route"] = route
                    scope.update(child_scope)
                    await route.handle(scope, receive, send)
                    return
        await super().app(scope, receive, send)  # lifespan, 405, slash redirects, 404


def _index(routes: list[BaseRoute]) -> dict[str, list[BaseRoute]]:
    """Each literal first segment -> the routes it could match, in order (see above)."""
    segments = {s for s in map(_literal_segment, routes) if s is not None}
    index: dict[str, list[BaseRoute]] = {s: [] for s in [*segments, _ANY]}
    for route in routes:
        segment = _literal_segment(route)
        for key, candidates in index.items():
            if segment is None or segment == key:
                candidates.append(route)
    return index


def _literal_segment(route: BaseRoute) -> str | None:
    """The first segment every path the route matches starts with; None if it has none."""
    if not isinstance(route, Route | WebSocketRoute | Mount):
        return None  # (a Host, or a route of another kind: tried for every path)
    path: str = route.path
    if not path.startswith("/") and path != "":
        return None
    segment = path[1:].split("/", 1)[0]
    if "{" in segment or (isinstance(route, Mount) and segment == ""):
        return None  # a parameter, or a mount at the root: any first segment
    return segment


__all__ = ["IndexedRouter"]
