"""What stands between a browser and the node: Host names, other sites, and page headers.

:class:`Guards` is the first thing a request meets (after Starlette's error handler), one
middleware doing in one pass over the request's headers what a Host allow-list, a
same-site check and a header filter would each do in a layer of their own:

- more than one ``Host`` header gets 400 (RFC 9112, section 3.2), so the Host check and the
  Origin check can never read different ones;
- a Host the node is not configured for gets 400 (localhost names, the node's own
  advertised host, ``ALLOWED_HOSTS``; as Starlette's TrustedHostMiddleware decides), so a
  web page cannot reach a node on someone's machine through DNS rebinding;
- a path whose percent-escapes do not decode to UTF-8 gets 400;
- a WebSocket handshake, or an HTTP request that changes state (anything but GET, HEAD and
  OPTIONS), whose ``Origin`` names another site (or that carries two ``Origin`` headers,
  which no browser sends) is refused with 403 — cross-site request forgery and cross-site
  WebSocket hijacking alike. Same-origin requests and configured origins pass, and so do
  requests without ``Origin`` (SDKs, load tools, servers: no browser sends a cross-site POST
  without one).

Each refusal says ``X-Outcome: not-run``, and a refused WebSocket handshake is logged once,
with its reason and its path shortened (logs.PathShapes: a path may carry a capability,
such as a private room's ID or a board's edit name). Every HTTP response gets the headers
that keep pages from being framed, sniffed or leaking their URL, and a
Content-Security-Policy that allows only the node's own scripts (a response that sets its
own keeps it); an error that does not say whether its request may have had an effect gets
``X-Outcome: unknown`` if it is a server error (5xx) and ``not-run`` if it is a client
error (4xx: a refusal), see errors.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from starlette._utils import parse_host_header
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


def allowed_hosts(allowed: Sequence[str], own_url: str) -> list[str]:
    """The Host names a node answers to: localhost names, its own advertised host, and
    ``allowed`` (``*.example.com`` matches any subdomain; ``*`` anything)."""
    own = urlsplit(own_url).hostname or ""
    return list(dict.fromkeys([*LOCAL_HOSTS, *([own] if own else []), *allowed]))


class Guards:
    """Every check a request meets before any app sees it, in one pass over its headers,
    and the headers every response gets (one middleware, not four: each layer costs every
    request a call and a wrapped ``send``). In order:

    1. more than one ``Host`` -> 400 (RFC 9112, 3.2: the Host check and the Origin check
       must never read different ones);
    2. a Host the node is not configured for -> 400 ``Invalid host header`` (DNS rebinding);
    3. a path whose percent-escapes are not UTF-8 -> 400;
    4. a WebSocket handshake, or a request that changes state, from another site (its
       ``Origin``, two ``Origin`` headers, or ``Sec-Fetch-Site: cross-site``) -> 403.

    Refusals say ``X-Outcome: not-run``; a refused WebSocket handshake is logged once, as it
    leaves, with its reason and its path shortened (logs.PathShapes)."""

    def __init__(
        self,
        app: ASGIApp,
        hosts: Sequence[str],
        allowed_origins: Sequence[str] = (),
        paths: PathShapes | None = None,
    ) -> None:
        self.app = app
        for pattern in hosts:
            wild = "*" in pattern[1:] or (pattern.startswith("*") and not pattern.startswith("*."))
            if wild and pattern != "*":
                raise ValueError(f"host pattern {pattern!r}: use '*.example.com' or '*'")
        self.hosts = frozenset(h.lower() for h in hosts if not h.startswith("*"))
        self.suffixes = tuple(h[1:].lower() for h in hosts if h.startswith("*."))
        self.any_host = "*" in hosts
        self.allowed = {o.rstrip("/").lower() for o in allowed_origins}
        self.paths = paths

    def shown(self, path: str) -> str:
        return self.paths.shorten(path) if self.paths is not None else "/…"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        host = origin = site = None
        hosts = origins = 0
        for name, value in scope["headers"]:  # (ASGI servers give names in lower case)
            if name == b"host":
                hosts += 1
                host = value
            elif name == b"origin":
                origins += 1
                origin = value
            elif name == b"sec-fetch-site":
                site = value
        if kind == "websocket":
            send = self._logging(scope, send)
        if hosts > 1:
            await _refuse(scope, send, "more than one Host header", 400, self.shown)
            return
        text = host.decode("latin-1") if host is not None else None
        if not self.any_host and not self._known(text):
            await _refuse(scope, send, "Invalid host header", 400, self.shown)
            return
        if not _utf8_path(scope):
            await _refuse(scope, send, "the path is not valid UTF-8", 400, self.shown)
            return
        if (kind == "websocket" or scope["method"] not in SAFE_METHODS) and not self._same_site(
            origin, origins, site, text
        ):
            shown_origin = origin.decode("latin-1")[:100] if origin is not None else "?"
            await _refuse(
                scope, send, f"cross-site request refused (Origin {shown_origin})", 403, self.shown
            )
            return
        if kind == "websocket":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.get("headers", [])
                present = {name.lower() for name, _ in headers}
                extra = [(n, v) for n, v in PAGE_HEADERS if n not in present]
                status = message["status"]
                if status >= 400 and b"x-outcome" not in present:
                    # An error that does not say whether its request had an effect: a server
                    # error (an app's own 503, a crash) may have; a client error (an app's
                    # 404, 422 or 429) is a refusal, which changes nothing. An app whose
                    # refusal comes after a write says so itself, and keeps its header.
                    extra.append((b"x-outcome", b"unknown" if status >= 500 else b"not-run"))
                message["headers"] = [*headers, *extra]
            await send(message)

        await self.app(scope, receive, with_headers)

    def _known(self, host: str | None) -> bool:
        """Whether the Host header names a host the node answers to."""
        parsed = parse_host_header(host)
        if parsed is None:
            return False
        name = parsed.host.lower()
        return name in self.hosts or any(name.endswith(s) for s in self.suffixes)

    def permits(self, origin: str | None, host: str | None) -> bool:
        """Same-origin (the Origin's host is the Host header), configured, or no Origin."""
        if origin is None or "*" in self.allowed:
            return True
        origin = origin.rstrip("/").lower()
        if origin in self.allowed:
            return True
        return bool(host) and urlsplit(origin).netloc == (host or "").lower()

    def _same_site(
        self, origin: bytes | None, origins: int, site: bytes | None, host: str | None
    ) -> bool:
        if origin is None:  # an older browser says so another way; tools say nothing
            return site != b"cross-site"
        if origins > 1:
            return False  # (no browser sends two: which one would be the page's?)
        return self.permits(origin.decode("latin-1"), host)

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
    if scope["type"] == "http":  # (a refused handshake is logged as it leaves: Guards)
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
