"""Live tail: the events, errors and log lines of one object, a namespace or the cluster.

``durable-redis tail`` (the client, tailcli.py) asks any node; the node follows itself and
asks every other live node for theirs, merging what they say into one stream:

- ``GET /ops/api/tail?namespace=N&name=X`` (or ``&id=<64 hex>``, ``&key=``; no namespace:
  everything) with the operator's authority, as ``/ops`` asks for it: OPS_TOKEN, or a
  laptop node. The answer is a stream of JSON lines (``application/x-ndjson``).
- ``GET /_cluster/tail?namespace=N&id=<64 hex>``: one node's own lines, for the node
  gathering them (authenticated with the cluster secret, as ``/_cluster/objects`` is).

Each line is an object with ``type``:

    event      {"time", "node", "kind", "namespace", "object", "outcome", "ms"[, "error"]}
               kind: rpc, fetch, alarm, connect, message, close, error (a socket's);
               outcome: ok, error, overloaded, reset, cancelled
    log        {"time", "node", "level", "logger", "message"[, "namespace", "object"]}
    dropped    {"node", "count"}: lines a slow reader missed (the queue is bounded)
    status     {"node", "state"}: following, unreachable, stopped, not followed (why)
    heartbeat  {"time"}: nothing happened for a while (the connection is alive)

``object`` is the first 12 hex characters of the ID, as log lines show it (a whole unique ID
may be a capability); log messages are the lines of the node's process (at INFO and up),
which shorten IDs and paths already (logs.py). Nothing is kept when nobody tails: a node
with no follower pays one attribute read per event (``NodeStats.tap``). Followers are
bounded per node (``MAX_FOLLOWERS``), and so is what waits for each (``QUEUE``): past it,
lines are counted and reported as dropped, never buffered without end.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ..base.errors import (
    DurableObjectError,
    ObjectOverloaded,
    ObjectReset,
    Relocate,
    UnknownNamespace,
)
from ..cluster import auth
from .authority import allowed
from .ops import LocateQuery, http_url

if TYPE_CHECKING:
    from ..base.stats import NodeStats
    from ..host.node import Node

#: Followers one node serves at once (operators' and other nodes' asking for them).
MAX_FOLLOWERS = 32
#: Lines waiting for one follower; past it they are dropped, and counted.
QUEUE = 2000
#: A line of silence after this long, so readers (and proxies) see the stream alive.
HEARTBEAT = 10.0
#: How often the gathering node looks for nodes that joined.
PEER_REFRESH = 2.0
#: Log lines below this level are not followed (a debug node would flood its followers).
LOG_LEVEL = logging.INFO
#: A line from another node longer than this is ignored (they are small).
MAX_LINE = 64 * 1024
CONTENT_TYPE = "application/x-ndjson"
SHOWN = 12


@dataclass(frozen=True, slots=True)
class Interest:
    """What a follower wants: everything, a namespace, or one object of it."""

    namespace: str = ""
    object_hex: str = ""

    def wants(self, namespace: str | None, object_hex: str | None) -> bool:
        if self.namespace and namespace != self.namespace:
            return False
        if self.object_hex:  # (log lines carry the ID's first 12 characters only)
            return object_hex is not None and self.object_hex.startswith(object_hex)
        return True

    def params(self) -> dict[str, str]:
        found = {"namespace": self.namespace, "id": self.object_hex}
        return {k: v for k, v in found.items() if v}


class Follower:
    """One follower's bounded queue of lines."""

    def __init__(self, interest: Interest, limit: int = QUEUE) -> None:
        self.interest = interest
        self.limit = limit
        self.lines: deque[dict[str, Any]] = deque()
        self.dropped = 0
        self.ready = asyncio.Event()

    def offer(self, line: dict[str, Any]) -> None:
        if len(self.lines) >= self.limit:
            self.dropped += 1
        else:
            self.lines.append(line)
        self.ready.set()

    def take(self) -> list[dict[str, Any]]:
        lines = list(self.lines)
        self.lines.clear()
        self.ready.clear()
        return lines


class TailHost(Protocol):
    """What the hub needs of its node: its name, and its counters (where the tap goes)."""

    node_id: str
    stats: NodeStats


class TailHub(logging.Handler):
    """A node's followers, the tap that hears each event end, and the log handler."""

    def __init__(self, node: TailHost, max_followers: int = MAX_FOLLOWERS) -> None:
        super().__init__(LOG_LEVEL)
        self.node = node
        self.max_followers = max_followers
        self.followers: set[Follower] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0

    def follow(self, interest: Interest) -> Follower:
        if len(self.followers) >= self.max_followers:
            raise ObjectOverloaded(
                f"this node already serves {self.max_followers} tails; try again later"
            )
        if not self.followers:  # the first: start listening
            self._loop = asyncio.get_running_loop()
            self._thread = threading.get_ident()
            self.node.stats.tap = self.event_ended
            for logger in _loggers():
                logger.addHandler(self)
        follower = Follower(interest)
        self.followers.add(follower)
        return follower

    def leave(self, follower: Follower) -> None:
        self.followers.discard(follower)
        if not self.followers:  # the last: nothing is kept any more
            self.node.stats.tap = None
            for logger in _loggers():
                logger.removeHandler(self)

    def event_ended(self, record: Any, kind: str, error: BaseException | None, s: float) -> None:
        """The tap (NodeStats.tap): an event of ``record`` ended."""
        if isinstance(error, Relocate):
            return  # (it never ran here: it runs again where the object is)
        namespace, object_hex = record.namespace.name, record.id.hex
        interested = [f for f in self.followers if f.interest.wants(namespace, object_hex)]
        if not interested:
            return
        line: dict[str, Any] = {
            "type": "event",
            "time": time.time(),
            "node": self.node.node_id,
            "kind": kind,
            "namespace": namespace,
            "object": object_hex[:SHOWN],
            "outcome": _outcome(error),
            "ms": round(s * 1000, 3),
        }
        if line["outcome"] == "error" and error is not None:
            line["error"] = _error(error)
        for follower in interested:
            follower.offer(line)

    def emit(self, record: logging.LogRecord) -> None:
        """A log line of the node's process (the logging.Handler's half)."""
        if getattr(record, "_tailed", False) or record.name.startswith("uvicorn.access"):
            return
        record.__dict__["_tailed"] = True  # (seen by two of the loggers it went through)
        try:
            line: dict[str, Any] = {
                "type": "log",
                "time": record.created,
                "node": self.node.node_id,
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage()[:2000],
            }
            namespace = getattr(record, "namespace", None)
            short = getattr(record, "object_id", None)
            if namespace is not None:
                line["namespace"] = str(namespace)
            if short is not None:
                line["object"] = str(short)[:SHOWN]
            if record.exc_info and record.exc_info[1] is not None:
                line["error"] = _error(record.exc_info[1])
        except Exception:
            self.handleError(record)
            return
        loop = self._loop
        if threading.get_ident() == self._thread or loop is None:
            self._offer(line)
        else:  # (a line logged from another thread: the followers are the loop's)
            loop.call_soon_threadsafe(self._offer, line)

    def _offer(self, line: dict[str, Any]) -> None:
        for follower in self.followers:
            if follower.interest.wants(line.get("namespace"), line.get("object")):
                follower.offer(line)


def _loggers() -> list[logging.Logger]:
    """Where the node's lines go: the root, and uvicorn's error log when it keeps its own."""
    error_log = logging.getLogger("uvicorn.error")
    return [logging.getLogger(), *([] if error_log.propagate else [error_log])]


def _outcome(error: BaseException | None) -> str:
    if error is None:
        return "ok"
    if isinstance(error, ObjectOverloaded):
        return "overloaded"
    if isinstance(error, ObjectReset):
        return "reset"
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    return "error"


def _error(error: BaseException) -> str:
    kind = getattr(error, "type_name", None) or type(error).__name__  # (an RpcError: its own)
    text = str(getattr(error, "remote_message", None) or error).splitlines()
    return f"{kind}: {text[0][:200]}" if text and text[0] else kind


# ------------------------------------------------------------------ the stream


def _line(item: Mapping[str, Any]) -> bytes:
    return json.dumps(item, separators=(",", ":")).encode() + b"\n"


async def _stream(
    node: Node, hub: TailHub, follower: Follower, others: asyncio.Task[None] | None
) -> AsyncIterator[bytes]:
    """What the follower is told, until it goes or the node stops."""
    me = node.node_id
    try:
        wanted = follower.interest
        shown = {"namespace": wanted.namespace, "object": wanted.object_hex[:SHOWN]}
        shown = {k: v for k, v in shown.items() if v}  # (never a whole ID: it may open a room)
        yield _line({"type": "status", "node": me, "state": "following", **shown})
        quiet = 0.0
        while not node.stopping:
            try:
                await asyncio.wait_for(follower.ready.wait(), 1.0)
            except TimeoutError:
                quiet += 1.0
                if quiet >= HEARTBEAT:
                    quiet = 0.0
                    yield _line({"type": "heartbeat", "time": time.time()})
                continue
            quiet = 0.0
            lines = follower.take()
            if follower.dropped:
                lines.append({"type": "dropped", "node": me, "count": follower.dropped})
                follower.dropped = 0
            yield b"".join(map(_line, lines))
        yield _line({"type": "status", "node": me, "state": "stopped"})
    finally:
        hub.leave(follower)
        if others is not None:
            others.cancel()


async def _follow_others(node: Node, follower: Follower) -> None:
    """Ask every other live node for its lines (and nodes that join later), as they come."""
    me = node.node_id
    secret = node.settings.cluster_secret
    asked: dict[str, asyncio.Task[None]] = {}
    told: set[str] = set()
    ca = node.settings.link_ca_file
    verify: Any = True
    if ca:
        import ssl

        verify = ssl.create_default_context(cafile=ca)
    timeout = httpx.Timeout(5.0, read=3 * HEARTBEAT)
    async with httpx.AsyncClient(timeout=timeout, verify=verify) as client:
        try:
            while True:
                try:
                    alive = {i.node_id: i.url for i in await node.registry.alive()}
                except Exception:  # Redis trouble: the next round tries again
                    alive = {}
                for peer, url in alive.items():
                    if peer == me or (peer in asked and not asked[peer].done()):
                        continue
                    if not secret:
                        if peer not in told:
                            told.add(peer)
                            why = "not followed: this node has no CLUSTER_SECRET"
                            follower.offer({"type": "status", "node": peer, "state": why})
                        continue
                    asked[peer] = asyncio.create_task(_ask(client, node, follower, peer, url))
                await asyncio.sleep(PEER_REFRESH)
        finally:
            for task in asked.values():
                task.cancel()
            await asyncio.gather(*asked.values(), return_exceptions=True)


async def _ask(
    client: httpx.AsyncClient, node: Node, follower: Follower, peer: str, url: str
) -> None:
    """One other node's lines, into ``follower``'s queue, until its stream ends."""
    headers = auth.auth_headers(node.settings.cluster_secret, node.node_id, peer, time.time())
    params = follower.interest.params()
    state = "unreachable"
    try:
        async with client.stream(
            "GET", http_url(url) + "/_cluster/tail", params=params, headers=headers
        ) as answer:
            if answer.status_code != 200:
                state = f"unreachable ({answer.status_code})"
                return
            async for text in answer.aiter_lines():
                if not text or len(text) > MAX_LINE:
                    continue
                try:
                    line = json.loads(text)
                except ValueError:
                    continue
                if isinstance(line, dict) and line.get("type") != "heartbeat":
                    follower.offer(line)
            state = "stopped"
    except httpx.HTTPError:
        pass
    finally:
        if state != "stopped":  # (a stopping node says so itself)
            follower.offer({"type": "status", "node": peer, "state": state})


def routes(node: Node, hub: TailHub) -> list[BaseRoute]:
    """``/ops/api/tail`` (operators) and ``/_cluster/tail`` (other nodes)."""

    def interest(request: Request) -> Interest | Response:
        params = request.query_params
        if not params.get("namespace"):
            if any(params.get(k) for k in ("name", "id", "key")):
                return JSONResponse({"error": "an object is named within namespace=..."}, 400)
            return Interest()
        query = LocateQuery(params)
        try:
            namespace = node.namespace(query.namespace)
            if query.error and "give one of" not in query.error:
                return JSONResponse({"error": query.error}, 400)
            if query.id is not None:
                return Interest(namespace.name, namespace.id_from_string(query.id).hex)
            if query.name is not None:
                return Interest(namespace.name, namespace.id_from_name(query.name).hex)
        except UnknownNamespace:
            known = ", ".join(sorted(node.namespaces))
            return JSONResponse({"error": f"no namespace {query.namespace[:64]!r} ({known})"}, 404)
        except DurableObjectError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        return Interest(namespace.name)

    def start(wanted: Interest, cluster: bool) -> Response:
        try:
            follower = hub.follow(wanted)
        except ObjectOverloaded as exc:
            return JSONResponse({"error": str(exc)}, 503, headers={"Retry-After": "5"})
        others = asyncio.create_task(_follow_others(node, follower)) if cluster else None
        stream = _stream(node, hub, follower, others)
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}  # (nginx: as it comes)
        return StreamingResponse(stream, media_type=CONTENT_TYPE, headers=headers)

    async def operator_tail(request: Request) -> Response:
        """The cluster's lines, for an operator (the CLI)."""
        if not allowed(node, request):
            return JSONResponse(
                {"error": "ops credentials required (OPS_TOKEN)"},
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        wanted = interest(request)
        if isinstance(wanted, Response):
            return wanted
        return start(wanted, cluster=request.query_params.get("scope") != "node")

    async def node_tail(request: Request) -> Response:
        """This node's lines, for the node gathering them."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        if node.verifier.verify(headers, time.time())[0] is None:
            return JSONResponse({"error": "cluster credentials required"}, 403)
        wanted = interest(request)
        if isinstance(wanted, Response):
            return wanted
        return start(wanted, cluster=False)

    return [
        Route("/ops/api/tail", operator_tail, name="ops_tail"),
        Route("/_cluster/tail", node_tail),
    ]


__all__ = ["Follower", "Interest", "TailHub", "routes"]
