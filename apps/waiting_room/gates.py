"""A room in front of another app of the node: the gate (node middleware), and each node's
copy of the directory of gated paths.

A room whose ``gate_prefix`` is, say, ``/chat`` claims that prefix in the GateDirectory
object (gate_directory.py; one per cluster). Only the node's operator may give a room a prefix
(``MountedApp.operator``: the OPS_TOKEN, or a laptop with nothing configured; a room's admin
may drop it), and only a path of another app of the node (its first segment is the app's
name). Every node caches the directory for ``gate_cache_seconds``. The gate wraps the whole
node: a request under a gated prefix (an HTTP page or a WebSocket handshake; the app's
static files pass freely) is decided by the room like any visit of the room's own site.
Admitted, it goes through and the cookie is renewed (on the response, or on a handshake's
accept); otherwise an HTTP GET is sent to the room's waiting page (303, with a return path),
any other method gets 503, and a WebSocket handshake is refused with 403 (with the cookie).
A handshake cannot show the waiting page, so it never puts a newcomer in line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime import DurableObjectError, Env, MountedApp, error_headers

from . import client
from .config import WaitingRoomConfig
from .names import GATES, GATES_NAME
from .room_settings import SettingsError

log = logging.getLogger("apps.waiting_room")

MAX_RETURN = 2000


def gateable(mounted: MountedApp) -> dict[str, bool]:
    """What a room may stand in front of: the node's other apps, by name (their paths'
    first segment), each with whether it serves static files (at /<name>/static/, which
    pass the gate). Nothing else: not the node's own paths, not the waiting room itself."""
    return {m.name: m.app.static is not None for m in mounted.apps if m is not mounted}


def check_prefix(prefix: str | None, apps: Mapping[str, bool]) -> None:
    """A gate covers a path of another app of the node (``apps``: see gateable)."""
    if prefix is None:
        return
    segments = prefix.split("/")
    first = segments[1]
    if first not in apps:
        names = ", ".join(f"/{name}" for name in sorted(apps)) or "none on this node"
        raise SettingsError("gate_prefix", f"must be a path of another app ({names})")
    if apps[first] and len(segments) > 2 and segments[2] == "static":
        raise SettingsError("gate_prefix", f"/{first}/static (static files) is never gated")


#: Why a room may not stand in front of another app for whoever asked.
OPERATOR_ONLY = (
    "only the node's operator may put a room in front of another app "
    "(Authorization: Bearer <OPS_TOKEN>, or logged in at /ops)"
)


def local_path(value: str | None) -> str | None:
    """``value`` if it is a path on this site (where a waiting page may send a visitor
    back to), else None: no scheme, no host, no ``//`` or backslash tricks."""
    if not value or len(value) > MAX_RETURN or not value.startswith("/"):
        return None
    decoded = unquote(value)
    if decoded.startswith(("//", "/\\")) or "\\" in decoded or any(ord(c) < 32 for c in decoded):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def match(gates: dict[str, str], path: str) -> tuple[str, str] | None:
    """(prefix, room) of the longest gated prefix covering ``path``."""
    best: tuple[str, str] | None = None
    for prefix, room in gates.items():
        if (path == prefix or path.startswith(prefix + "/")) and (
            best is None or len(prefix) > len(best[0])
        ):
            best = (prefix, room)
    return best


class GateCache:
    """A node's copy of the directory, at most ``ttl`` seconds old, refreshed in the
    background once loaded. Until one read has succeeded it has no copy (None): the gate
    then refuses what it might cover rather than let it through. After that, if the
    directory cannot be read, the last good copy stays (and a read is tried every second).

    Each read asks every room in the map whether it still stands in front of its prefix
    (``WaitingRoom.holds``). An entry outlives its reason when a release never reached the
    directory (or a room's creation failed after it claimed): left alone, it would gate the
    app for good, by a room that lets nobody in or that does not exist. Only a definite "no"
    (the room says so, or there is no such room) drops an entry, here and in the directory;
    a room that cannot answer keeps its gate, as the gate fails closed."""

    def __init__(self, env: Env, ttl: float) -> None:
        self.env = env
        self.ttl = ttl
        self.map: dict[str, str] | None = None
        self.loaded = -1e18
        self.retry_at = -1e18
        self._task: asyncio.Task[None] | None = None
        self.clearing: set[asyncio.Task[None]] = set()

    async def get(self) -> dict[str, str] | None:
        now = time.monotonic()
        if now - self.loaded < self.ttl:
            return self.map
        if self._task is None and now >= self.retry_at:
            self._task = asyncio.get_running_loop().create_task(self._refresh())
        # Never read (or changed by this node, see invalidate): wait for this read.
        if (self.map is None or self.loaded < 0) and self._task is not None:
            await asyncio.shield(self._task)
        return self.map

    def invalidate(self) -> None:
        """This node changed the directory: the next request waits for a fresh copy (if
        that read fails, the last good copy serves)."""
        self.loaded = self.retry_at = -1e18

    async def _refresh(self) -> None:
        try:
            directory = self.env.namespace(GATES).get_by_name(GATES_NAME)
            gates = await asyncio.wait_for(directory.gates(), 5)
            read = {str(k): str(v) for k, v in gates.items()}
            for prefix in await self.stale(read):
                del read[prefix]
            self.map = read
            self.loaded = time.monotonic()
        except (DurableObjectError, TimeoutError) as exc:
            kept = "keeping the last copy" if self.map is not None else "none read yet"
            log.warning("gated paths could not be read (%s): %s", kept, exc)
            self.retry_at = time.monotonic() + 1.0
        finally:
            self._task = None

    async def stale(self, gates: dict[str, str]) -> list[str]:
        """The prefixes whose rooms say they do not stand in front of them (asked at once,
        each within 5 s); the directory is told to drop them, in the background."""
        found = await asyncio.gather(*(self.holds(p, r) for p, r in gates.items()))
        stale = [p for p, held in zip(gates, found, strict=True) if not held]
        for prefix in stale:
            log.warning("gate %s: room %s does not hold it; ignored", prefix, gates[prefix][:12])
            self.clear_later(prefix, gates[prefix])
        return stale

    def clear_later(self, prefix: str, room: str) -> None:
        task = asyncio.get_running_loop().create_task(self.clear(prefix, room))
        self.clearing.add(task)  # (kept: the loop holds tasks weakly)
        task.add_done_callback(self.clearing.discard)

    async def holds(self, prefix: str, room: str) -> bool:
        """Whether ``room`` stands in front of ``prefix``: False only for a definite no."""
        try:
            return bool(await asyncio.wait_for(client.room_stub(self.env, room).holds(prefix), 5))
        except client.UnknownRoom:
            return False  # (not a room ID this app could have made)
        except (DurableObjectError, TimeoutError) as exc:
            log.warning("gate %s: room %s could not say if it holds it: %s", prefix, room[:12], exc)
            return True

    async def clear(self, prefix: str, room: str) -> None:
        try:
            directory = self.env.namespace(GATES).get_by_name(GATES_NAME)
            await asyncio.wait_for(directory.clear_stale(prefix, room), 5)
        except (DurableObjectError, TimeoutError) as exc:  # the next read tries again
            log.warning("gate %s: could not be cleared from the directory: %s", prefix, exc)


#: The messages that open a response's head, where a Set-Cookie header can go.
HEADS = ("http.response.start", "websocket.accept", "websocket.http.response.start")

_caches: weakref.WeakKeyDictionary[MountedApp, GateCache] = weakref.WeakKeyDictionary()


def cache_of(mounted: MountedApp) -> GateCache:
    cache = _caches.get(mounted)
    if cache is None:
        ttl = mounted.settings_as(WaitingRoomConfig).gate_cache_seconds
        cache = _caches[mounted] = GateCache(mounted.env, ttl)
    return cache


def gate(app: ASGIApp, mounted: MountedApp) -> ASGIApp:
    """The node middleware (App.node_middleware)."""
    return Gate(app, mounted)


class Gate:
    """Sends visitors of gated paths who are not admitted to the room's waiting page."""

    def __init__(self, app: ASGIApp, mounted: MountedApp) -> None:
        self.app = app
        self.mounted = mounted
        self.config = mounted.settings_as(WaitingRoomConfig)
        self.apps: dict[str, bool] | None = None  # (gateable: the node's apps are all made)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        first = path.split("/", 2)[1] if path.startswith("/") else ""
        if self.apps is None:
            self.apps = gateable(self.mounted)
        static = self.apps.get(first)
        if static is None or (static and path.startswith(f"/{first}/static/")):
            await self.app(scope, receive, send)  # never gated: no need to look
            return
        gated = await cache_of(self.mounted).get()
        if gated is None:  # which paths are gated is not known yet: none goes through
            text = "The waiting room's gates cannot be read yet; retry shortly."
            await self.refuse(scope, send, 503, text, retry={"X-Outcome": "not-run"})
            return
        found = match(gated, path)
        if found is None:
            await self.app(scope, receive, send)
            return
        prefix, room = found
        env = self.mounted.env
        conn = HTTPConnection(scope)
        decision: client.Decision | None = None
        try:
            visitor = await client.read_pass(env, room, dict(conn.cookies))
            # A handshake cannot show the waiting page: it never puts a newcomer in line.
            join = scope["type"] != "websocket"
            decision = await client.decide(env, room, visitor, join=join)
            secure = scope.get("scheme") in ("https", "wss")
            cookie = await client.cookie_header(env, room, decision, self.config, secure)
        except (client.UnknownRoom, client.RoomError, DurableObjectError) as exc:
            # (A room that does not exist is dropped from the map by its next read.)
            log.warning("gate %s -> room %s: %s", prefix, room[:12], exc)
            text = "The waiting room is unavailable; retry shortly."
            # The request never reached the app; the room's visit may have counted.
            said = error_headers(exc) if isinstance(exc, DurableObjectError) else {}
            if decision is not None:
                said["X-Outcome"] = "unknown"
            said.setdefault("X-Outcome", "not-run")
            await self.refuse(scope, send, 503, text, retry=said)
            return
        if decision.admitted:
            await self.app(scope, receive, self.with_cookie(send, cookie))
            return
        if scope["type"] == "websocket":
            # With the cookie, a client that keeps it is the same visitor next time (a
            # queued one keeps its place: the handshake counted as a visit).
            text = "Not admitted yet: wait in the waiting room."
            await self.refuse(scope, send, 403, text, cookie=cookie)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        back = path + ("?" + query if query else "")
        root = scope.get("root_path", "").rstrip("/")
        waiting = f"{root}/{self.mounted.name}/r/{room}/"
        if local_path(back):
            waiting += "?return=" + quote(back, safe="/")
        headers = [(b"set-cookie", cookie.encode("latin-1"))]
        if scope["method"] in ("GET", "HEAD"):
            headers += [(b"location", waiting.encode("latin-1")), (b"cache-control", b"no-store")]
            await self.respond(send, 303, headers, b"")
            return
        body = json.dumps({"error": "queued by the waiting room", "waiting_room": waiting}).encode()
        headers += [(b"content-type", b"application/json"), (b"retry-after", b"20")]
        headers.append((b"x-outcome", b"not-run"))  # (it never reached the app)
        await self.respond(send, 503, headers, body)

    @staticmethod
    def with_cookie(send: Send, cookie: str) -> Send:
        """``send`` that adds the renewed cookie to the response's head: an HTTP response's,
        or a handshake's (accepted, or refused by the app). Without it, a client's every
        handshake would be a newcomer, holding a slot nobody could renew or free."""

        async def sending(message: Message) -> None:
            if message["type"] in HEADS:
                headers = list(message.get("headers", []))
                headers.append((b"set-cookie", cookie.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        return sending

    @staticmethod
    async def respond(send: Send, status: int, headers: list[Any], body: bytes) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def refuse(
        self,
        scope: Scope,
        send: Send,
        status: int,
        text: str,
        retry: dict[str, str] | None = None,
        cookie: str | None = None,
    ) -> None:
        """Answer for the app: ``retry`` is a 503's headers (X-Outcome...; Retry-After: 1)."""
        body = text.encode()
        head = [(b"content-type", b"text/plain; charset=utf-8")]
        if retry is not None:
            head += [(k.lower().encode(), v.encode("latin-1")) for k, v in retry.items()]
            if "Retry-After" not in retry:
                head.append((b"retry-after", b"1"))
        if cookie is not None:
            head.append((b"set-cookie", cookie.encode("latin-1")))
        if scope["type"] == "websocket":
            start = {"type": "websocket.http.response.start", "status": status, "headers": head}
            await send(start)
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await self.respond(send, status, head, body)
