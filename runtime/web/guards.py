"""What stands between a browser and the node: Host names, other sites, and page headers.

- :class:`Edge`, the first thing a request meets: a request (or WebSocket handshake) with
  more than one ``Host`` header gets 400 (RFC 9112, section 3.2), so the Host check and the
  Origin check below can never read different ones; and each refused WebSocket handshake
  is logged once, with its reason and its path shortened (logs.PathShapes: a path may
  carry a capability, such as a private room's ID or a board's edit name).
- :func:`trusted_hosts`: requests (and WebSocket handshakes) must name a Host the node is
  configured for (Starlette's TrustedHostMiddleware; localhost names by default, plus the
  node's own advertised host, plus ``ALLOWED_HOSTS``), so a web page cannot reach a node on
  someone's machine through DNS rebinding.
- :class:`SameSite`: a request whose path is not UTF-8 once unescaped gets 400. A WebSocket
  handshake, or an HTTP request that changes state (anything
  but GET, HEAD and OPTIONS), whose ``Origin`` names another site (or that carries two
  ``Origin`` headers, which no browser sends) is refused with 403 —
  cross-site request forgery and cross-site WebSocket hijacking alike. Same-origin requests
  and configured origins pass, and so do requests without ``Origin`` (SDKs, load tools,
  servers: no browser sends a cross-site POST without one). Every HTTP response gets the
  headers that keep pages from being framed, sniffed or leaking their URL, and a
  Content-Security-Policy that allows only the node's own scripts (a response that sets its
  own keeps it). A server error (5xx) that does not say whether its request may have had an
  effect gets ``X-Outcome: unknown`` (see errors.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..base.logs import PathShapes

log = logging.getLogger("runtime.guards")

#: Hosts a node answers to when ALLOWED_HOSTS does not say more.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: Scripts, styles, images and connections from the node itself only. Styles may be inline
#: (style attributes carry per-element values, e.g. colour swatches); scripts never are.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # Same-origin only: share links carry capabilities in their path; never leak them.
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy", CSP.encode()),
)


def trusted_hosts(allowed: Sequence[str], own_url: str) -> Middleware:
    """The Host check: localhost names, the node's own advertised host, ``allowed``."""
    own = urlsplit(own_url).hostname or ""
    hosts = list(dict.fromkeys([*LOCAL_HOSTS, *([own] if own else []), *allowed]))
    return Middleware(_TrustedHosts, allowed_hosts=hosts)


class _TrustedHosts:
    """Starlette's TrustedHostMiddleware, its refusals saying ``X-Outcome: not-run``."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.check = TrustedHostMiddleware(self._passed, allowed_hosts, www_redirect=False)

    async def _passed(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["runtime.host_ok"] = True
        await self.app(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def refusal(message: Message) -> None:
            if message["type"] == "http.response.start" and not scope.get("runtime.host_ok"):
                message["headers"] = [*message.get("headers", []), (b"x-outcome", b"not-run")]
            await send(message)

        await self.check(scope, receive, refusal)


def host_of(scope: Scope) -> str | None:
    """The request's one ``Host`` header; None when it has none, or more than one."""
    found: str | None = None
    for name, value in scope["headers"]:
        if name.lower() == b"host":
            if found is not None:
                return None
            found = value.decode("latin-1")
    return found


def _count(scope: Scope, header: bytes) -> int:
    return sum(1 for name, _ in scope["headers"] if name.lower() == header)


class Edge:
    """One Host header per request; a log line per refused WebSocket handshake."""

    def __init__(self, app: ASGIApp, paths: PathShapes | None = None) -> None:
        self.app = app
        self.paths = paths

    def shown(self, path: str) -> str:
        return self.paths.shorten(path) if self.paths is not None else "/…"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            send = self._logging(scope, send)
        elif kind != "http":
            await self.app(scope, receive, send)
            return
        if _count(scope, b"host") > 1:
            # Two Host lines: which one names the site depends on who reads them (the Host
            # allow-list read the first, the Origin check the last), so neither is believed.
            await _refuse(scope, send, "more than one Host header", 400, self.shown)
            return
        await self.app(scope, receive, send)

    def _logging(self, scope: Scope, send: Send) -> Send:
        """``send``, logging the handshake's refusal (an HTTP answer instead of 101)."""
        status: list[int] = []

        async def logged(message: Message) -> None:
            kind = message["type"]
            if kind == "websocket.http.response.start":
                status.append(int(message["status"]))
            elif (
                kind == "websocket.http.response.body"
                and status
                and not message.get("more_body", False)
            ):
                reason = bytes(message.get("body", b""))[:200].decode(errors="replace")
                path = self.shown(scope["path"])
                log.info("refused a WebSocket to %s: %d %s", path, status[0], reason.strip())
            await send(message)

        return logged


class SameSite:
    """Refuse cross-site handshakes and state changes; add security headers to responses."""

    def __init__(
        self, app: ASGIApp, allowed_origins: Sequence[str] = (), paths: PathShapes | None = None
    ) -> None:
        self.app = app
        self.allowed = {o.rstrip("/").lower() for o in allowed_origins}
        self.paths = paths

    def shown(self, path: str) -> str:
        return self.paths.shorten(path) if self.paths is not None else "/…"

    def permits(self, origin: str | None, host: str | None) -> bool:
        """Same-origin (the Origin's host is the Host header), configured, or no Origin."""
        if origin is None or "*" in self.allowed:
            return True
        origin = origin.rstrip("/").lower()
        if origin in self.allowed:
            return True
        return bool(host) and urlsplit(origin).netloc == (host or "").lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        checked = kind == "websocket" or scope["method"] not in SAFE_METHODS
        if not _utf8_path(scope):
            await _refuse(scope, send, "the path is not valid UTF-8", 400, self.shown)
            return
        if checked and not self._same_site(scope, headers):
            origin = headers.get("origin", "?")[:100]
            text = f"cross-site request refused (Origin {origin})"
            await _refuse(scope, send, text, 403, self.shown)
            return
        if kind == "websocket":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in PAGE_HEADERS if n not in present]
                if message["status"] >= 500 and b"x-outcome" not in present:
                    # A server error that did not say whether its request had an effect
                    # (an app's own 503, a crash): it may have.
                    extra.append((b"x-outcome", b"unknown"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)

    def _same_site(self, scope: Scope, headers: dict[str, str]) -> bool:
        origin = headers.get("origin")
        if origin is None:  # an older browser says so another way; tools say nothing
            return headers.get("sec-fetch-site", "same-origin") != "cross-site"
        if _count(scope, b"origin") > 1:
            return False  # (no browser sends two: which one would be the page's?)
        # The same Host the allow-list checked: Edge refused requests with two.
        return self.permits(origin, host_of(scope))


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


def _utf8_path(scope: Scope) -> bool:
    """Whether the path's percent-escapes decode to UTF-8 (else ``%ff`` and ``%c0%af`` would
    both become U+FFFD: two names, one room)."""
    raw: bytes = scope.get("raw_path") or b""
    if b"%" not in raw:
        return True
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def _refuse(
    scope: Scope, send: Send, text: str, status: int, shown: Callable[[str], str]
) -> None:
    if scope["type"] == "http":  # (a refused handshake is logged by Edge, as it leaves)
        log.info("refused %s %s: %d %s", scope["method"], shown(scope["path"]), status, text)
    prefix = "websocket." if scope["type"] == "websocket" else ""
    start: dict[str, Any] = {
        "type": f"{prefix}http.response.start",
        "status": status,
        "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"x-outcome", b"not-run"),  # refused before anything ran
            *PAGE_HEADERS,
        ],
    }
    await send(start)
    await send({"type": f"{prefix}http.response.body", "body": text.encode()})
