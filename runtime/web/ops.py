"""Operating a cluster: ``/metrics``, the ``/ops`` page and its JSON, the apps' live numbers.

- ``GET /metrics``: this node, in the Prometheus format (metrics.py).
- ``GET /ops``: one page showing the whole cluster live: every node (up since, objects by
  namespace, sockets, event rate, commit p99, Redis latency), alarms due soon, and where
  an object lives (pick a namespace, type a name or an ID).
- ``GET /ops/api/node``: this node's figures (other nodes ask for them);
  ``/ops/api/cluster``: every live node's; ``/ops/api/locate?namespace=N&name=X`` (or
  ``&id=<64 hex>``, or ``&key=`` for either): which node holds an object.
- ``GET /api/apps``: each listed app's live numbers (rooms, boards...), for the landing page.

Who may look: another node (the node-link credentials), anyone with ``OPS_TOKEN`` (a
``Authorization: Bearer`` header, or ``/ops?token=...`` once, which leaves a cookie), and,
on a laptop (no CLUSTER_SECRET, no OPS_TOKEN, listening on loopback only), anyone
(authority.py).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from ..base.errors import DurableObjectError, InvalidObjectId, UnknownNamespace
from ..base.stats import quantile
from ..cluster import auth
from ..storage.keyspace import ObjectKeys, alarm_shard_key
from ..storage.lease import LeaseClient
from .authority import COOKIE, allowed
from .metrics import CONTENT_TYPE, render

if TYPE_CHECKING:
    from ..host.node import Node
    from .app import MountedApp

#: How long the cluster's figures are reused (many pages polling cost one round of asks).
CACHE_SECONDS = 1.0
_HEX64 = re.compile(r"[0-9a-f]{64}")


def snapshot(node: Node) -> dict[str, Any]:
    """This node's figures, as the ops page shows them."""
    stats = node.stats
    objects: dict[str, dict[str, int]] = {n: {"live": 0, "hibernated": 0} for n in node.namespaces}
    sockets: dict[str, int] = {}
    for record in node.records.values():
        counts = objects.setdefault(record.namespace.name, {"live": 0, "hibernated": 0})
        counts["live" if record.instance is not None else "hibernated"] += 1
        if record.sockets:
            sockets[record.app_name] = sockets.get(record.app_name, 0) + len(record.sockets)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 3)

    return {
        "node": node.node_id,
        "url": node.settings.public_url(),
        "up_since": stats.started,
        "objects": objects,
        "sockets": sockets,
        "events": sum(stats.events.values()),
        "forwarded": sum(stats.forwarded.values()),
        "commit_p99_ms": ms(quantile(stats.recent_commits, 0.99)),
        "redis_p50_ms": ms(quantile(stats.recent_round_trips, 0.5)),
        "redis_p99_ms": ms(quantile(stats.recent_round_trips, 0.99)),
        "leases": {
            "acquired": stats.leases_acquired,
            "takeovers": stats.lease_takeovers,
            "lost": stats.leases_lost,
            "fenced": stats.commits_fenced,
        },
        "alarms_fired": stats.alarms_fired,
        "links_refused": node.links.refusals(),
        "replicas": {
            **node.replicas.figures(),
            "reads": stats.replica_reads,
            "applied": stats.replica_applied,
            "reloads": stats.replica_reloads,
            "forwards": dict(stats.replica_forwards),
            "staleness_p50_ms": ms(quantile(stats.recent_staleness, 0.5)),
            "staleness_p99_ms": ms(quantile(stats.recent_staleness, 0.99)),
        },
    }


def http_url(ws_url: str) -> str:
    return "https" + ws_url[3:] if ws_url.startswith("wss") else "http" + ws_url[2:]


class ClusterView:
    """Every live node's figures, asked of each node (cached for a second)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def figures(self) -> dict[str, Any]:
        async with self._lock:
            cached = self._cached
            if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
                return cached[1]
            result = await self._ask_all()
            self._cached = (time.monotonic(), result)
            return result

    async def _ask_all(self) -> dict[str, Any]:
        node = self.node
        others = [i for i in await node.registry.alive() if i.node_id != node.node_id]
        nodes = [snapshot(node)]
        unreachable: list[str] = []
        if others and node.settings.cluster_secret:
            ca = node.settings.link_ca_file
            async with httpx.AsyncClient(timeout=1.5, verify=_verify(ca)) as client:
                answers = await asyncio.gather(
                    *(self._ask(client, info.node_id, info.url) for info in others)
                )
            for info, answer in zip(others, answers, strict=True):
                if answer is None:
                    unreachable.append(info.node_id)
                else:
                    nodes.append(answer)
        else:
            unreachable = [i.node_id for i in others]
        nodes.sort(key=lambda n: str(n["node"]))
        return {
            "now": time.time(),
            "served_by": node.node_id,
            "nodes": nodes,
            "unreachable": sorted(unreachable),
            "alarms_due_soon": await self._alarms_due(60.0),
        }

    async def _ask(self, client: httpx.AsyncClient, peer: str, url: str) -> dict[str, Any] | None:
        settings = self.node.settings
        headers = auth.auth_headers(settings.cluster_secret, self.node.node_id, peer, time.time())
        try:
            answer = await client.get(http_url(url) + "/ops/api/node", headers=headers)
            if answer.status_code != 200:
                return None
            figures: dict[str, Any] = answer.json()
            return figures
        except (httpx.HTTPError, ValueError):
            return None

    async def _alarms_due(self, seconds: float) -> int | None:
        """Alarms due within ``seconds`` (or overdue), over every index shard."""
        store = self.node.store
        now_ms = int(time.time() * 1000)
        settings = self.node.settings
        try:
            pipe = store.redis.pipeline(transaction=False)
            for shard in range(settings.alarm_shards):
                pipe.zcount(
                    alarm_shard_key(settings.key_prefix, shard), "-inf", now_ms + seconds * 1000
                )
            counts = await pipe.execute()
        except Exception:  # Redis trouble shows elsewhere on the page
            return None
        return int(sum(counts))


def _verify(ca: str) -> Any:
    import ssl

    return ssl.create_default_context(cafile=ca) if ca else True


class LocateQuery:
    """What ``/ops/api/locate`` was asked: a namespace, and a name or an ID.

    ``name=`` is an object's name (``id_from_name``), ``id=`` its ID (64 hex characters, as
    ``str(object_id)`` writes it), and ``key=`` either: 64 hex characters are taken for an
    ID, anything else for a name (the ops page's one box)."""

    MAX = 2048

    def __init__(self, params: Mapping[str, str]) -> None:
        self.namespace = params.get("namespace", "").strip()
        given = {k: params[k].strip() for k in ("name", "id", "key") if params.get(k)}
        self.error = ""
        self.name: str | None = None
        self.id: str | None = None
        if not self.namespace:
            self.error = "give namespace=<the namespace's name> (the ops page lists them)"
        elif len(given) != 1:
            self.error = (
                "give one of name=<the object's name>, id=<its ID: 64 hex characters> or "
                "key=<either>"
            )
        elif any(len(v) > self.MAX for v in given.values()):
            self.error = f"a name or an ID has at most {self.MAX} characters"
        elif "id" in given:
            if not _HEX64.fullmatch(given["id"].lower()):
                self.error = "id= takes an object ID: 64 hex characters (a name goes in name=)"
            self.id = given["id"].lower()
        elif "name" in given:
            self.name = given["name"]
        elif _HEX64.fullmatch(given["key"]):
            self.id = given["key"]
        else:
            self.name = given["key"]


async def locate(
    node: Node, namespace_name: str, *, name: str | None = None, object_id: str | None = None
) -> dict[str, Any]:
    """Which node holds the object a name or an ID names (None: no node holds it now)."""
    namespace = node.namespace(namespace_name)
    if object_id is not None:
        found = namespace.id_from_string(object_id)
    elif name is not None:
        found = namespace.id_from_name(name)
    else:
        raise ValueError("locate() needs a name or an ID")
    object_id_hex = found.hex
    store = node.store_for(found)
    keys = ObjectKeys.of(node.settings.key_prefix, namespace.name, object_id_hex)
    value = await store.redis.get(keys.lease)
    holder = None if value is None else LeaseClient.holder_of(value.decode())
    owner = None if holder is None else holder.partition("@")[0]
    return {
        "namespace": namespace.name,
        "id": object_id_hex,
        "node": owner,
        "app": namespace.env.app.name if namespace.env.app is not None else None,
    }


def routes(
    node: Node,
    templates: Jinja2Templates,
    apps: Sequence[MountedApp],
) -> list[BaseRoute]:
    view = ClusterView(node)

    def refuse(request: Request) -> Response:
        if request.url.path == "/ops":
            return templates.TemplateResponse(
                request,
                "ops_login.html",
                {"configured": bool(node.settings.ops_token)},
                status_code=401,
            )
        return JSONResponse(
            {"error": "ops credentials required (OPS_TOKEN)"},
            401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    async def metrics(request: Request) -> Response:
        """This node's metrics (Prometheus text format)."""
        if not node.settings.metrics:
            return JSONResponse({"error": "metrics are off on this node (METRICS=0)"}, 404)
        if not allowed(node, request):
            return refuse(request)
        return Response(render(node), media_type=CONTENT_TYPE)

    async def page(request: Request) -> Response:
        """The ops page; ?token=... logs in (a cookie) and comes back without it."""
        token = request.query_params.get("token")
        if token is not None:
            answer = RedirectResponse("/ops", 303)
            answer.set_cookie(
                COOKIE,
                token,
                httponly=True,
                samesite="strict",
                path="/",
                secure=request.url.scheme == "https",  # (behind TLS: never sent in clear)
            )
            return answer
        if not allowed(node, request):
            return refuse(request)
        namespaces = [
            {"name": n.name, "app": n.env.app.name if n.env.app is not None else ""}
            for n in sorted(node.namespaces.values(), key=lambda n: n.name)
        ]
        return templates.TemplateResponse(request, "ops.html", {"namespaces": namespaces})

    async def node_api(request: Request) -> Response:
        if not allowed(node, request):
            return refuse(request)
        return JSONResponse(snapshot(node))

    async def cluster_api(request: Request) -> Response:
        if not allowed(node, request):
            return refuse(request)
        figures = dict(await view.figures())
        if node.embedded is not None:
            figures["embedded_valkey"] = node.embedded.status()
        return JSONResponse(figures)

    async def locate_api(request: Request) -> Response:
        if not allowed(node, request):
            return refuse(request)
        query = LocateQuery(request.query_params)
        if query.error:
            return JSONResponse({"error": query.error}, 400)
        name = query.namespace
        try:
            return JSONResponse(await locate(node, name, name=query.name, object_id=query.id))
        except UnknownNamespace:
            known = ", ".join(sorted(node.namespaces))
            return JSONResponse({"error": f"no namespace {name[:64]!r} (there are: {known})"}, 404)
        except InvalidObjectId as exc:
            return JSONResponse({"error": str(exc)}, 400)
        except DurableObjectError as exc:
            return JSONResponse({"error": str(exc)}, 503)

    async def apps_api(request: Request) -> Response:
        """Each listed app's live numbers, over the whole cluster (for the landing page)."""
        try:
            figures = await view.figures()
        except Exception:
            figures = {"nodes": [snapshot(node)]}
        return JSONResponse({"apps": live_numbers(apps, figures["nodes"])})

    return [
        Route("/metrics", metrics, name="metrics"),
        Route("/ops", page, name="ops"),
        Route("/ops/api/node", node_api),
        Route("/ops/api/cluster", cluster_api, name="ops_cluster"),
        Route("/ops/api/locate", locate_api, name="ops_locate"),
        Route("/api/apps", apps_api, name="apps_api"),
    ]


def live_numbers(
    apps: Sequence[MountedApp], nodes: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """What each listed app says of itself (App.live): objects held and sockets open."""
    out = []
    for mounted in apps:
        if not mounted.app.listed or not mounted.app.live:
            continue
        numbers: dict[str, int] = {}
        for key, label in mounted.app.live.items():
            what, total = str(key), 0
            for figures in nodes:
                if what == "sockets":
                    total += int(figures.get("sockets", {}).get(mounted.name, 0))
                else:
                    held = figures.get("objects", {}).get(what, {})
                    total += int(held.get("live", 0)) + int(held.get("hibernated", 0))
            numbers[label] = total
        out.append({"name": mounted.name, "title": mounted.title, "live": numbers})
    return out
