"""The visitor's side, mounted at /waiting-room:

    GET  /                         create a room (the operator's start page)
    GET  /r/<room>/                the demo site behind the room (also /r/<room>/tickets,
                                   /r/<room>/about); with Accept: application/json,
                                   {"status", "position", "eta_s"}. Every request is a visit:
                                   it renews an admitted visitor's session or decides for a
                                   newcomer, and sets the visitor's cookie
    POST /r/<room>/leave           frees the visitor's slot at once
    GET  /r/<room>/bye             "you left" (where the site's Leave button lands)
    WS   /r/<room>/ws              the waiting page's live status (waiting_room.py has the
                                   protocol)

A visitor who is not admitted sees the waiting page (queued: position, wait, progress; a
plain reload every 20 s without scripts) or the rejection page, never the site. With
``?return=<local path>`` (how a gated app sends its visitors here) an admitted visitor is
sent back there instead of to the demo site.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from runtime import DurableObjectError, app_of, env_of, error_headers, url_path

from . import client, versions
from .client import Decision, RoomError, UnknownRoom
from .config import WaitingRoomConfig
from .cookies import cookie_name
from .gates import local_path
from .rules import progress

#: The demo site's pages: path segment -> (title, what the page says).
SITE_PAGES: dict[str, tuple[str, str]] = {
    "": ("Welcome", "You made it in. Have a look around: this shop is behind the waiting room."),
    "tickets": ("Tickets", "Front row, balcony or standing: pick your seats before they go."),
    "about": ("About", "A demo site. Every page you open renews your session."),
}


def accepted(header: str) -> dict[str, float]:
    """The media ranges of an Accept header, each with its quality (q, 0 to 1)."""
    ranges: dict[str, float] = {}
    for item in header.split(",")[:32]:
        media, *params = (part.strip() for part in item.split(";"))
        if not media:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(1.0, max(0.0, float(value)))
                except ValueError:
                    quality = 0.0
        ranges[media.lower()] = max(quality, ranges.get(media.lower(), 0.0))
    return ranges


def quality(ranges: dict[str, float], media: str) -> tuple[float, int]:
    """How much ``media`` is wanted, and how specifically (2 named, 1 type/*, 0 */*)."""
    kind = media.split("/", 1)[0] + "/*"
    for specific, key in ((2, media), (1, kind), (0, "*/*")):
        if key in ranges:
            return ranges[key], specific
    return 0.0, -1


def wants_json(request: Request) -> bool:
    """JSON when the client prefers it to HTML (q-values count; on a tie, the one it named)."""
    ranges = accepted(request.headers.get("accept", ""))
    json_q, html_q = quality(ranges, "application/json"), quality(ranges, "text/html")
    return json_q[0] > 0 and json_q > html_q


def error(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """A clear error: JSON for programs, a page for people."""
    if wants_json(request) or request.method not in ("GET", "HEAD"):
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    context = {"status": status, "message": message}
    return app_of(request).render(request, "error.html", context, status, headers)


def outcome(exc: DurableObjectError, decided: bool) -> dict[str, str]:
    """The headers of a 503 for ``exc``: its own, but "unknown" once the room has decided for
    this request (the visit counted: the visitor may hold a place or a slot now)."""
    headers = error_headers(exc)
    if decided:
        headers["X-Outcome"] = "unknown"
    return headers


async def index(request: Request) -> Response:
    """The operator's start page: create a room, see the rooms made in this browser."""
    return app_of(request).render(request, "index.html")


async def site(request: Request) -> Response:
    """A page of the demo site, if the room admits the visitor; else the waiting page."""
    room = request.path_params["room"]
    page = request.path_params.get("page", "")
    if page not in SITE_PAGES:
        return error(request, 404, "No such page.")
    app = app_of(request)
    env = app.env
    config = app.settings_as(WaitingRoomConfig)
    as_json = wants_json(request)
    decision: Decision | None = None
    try:
        visitor = await client.read_pass(env, room, request.cookies)
        decision = await client.decide(env, room, visitor)
        secure = request.scope.get("scheme") == "https"
        cookie = await client.cookie_header(env, room, decision, config, secure)
        texts = {} if as_json else await client.room_settings(env, room)
    except UnknownRoom:
        return error(request, 404, "No such room.")
    except RoomError as exc:
        return error(request, exc.status, str(exc))
    except DurableObjectError as exc:
        text = f"The room is unavailable; retry shortly ({exc.code})."
        return error(request, 503, text, outcome(exc, decided=decision is not None))
    headers = {"set-cookie": cookie, "cache-control": "no-store"}
    response: Response
    back = None if as_json else local_path(request.query_params.get("return"))
    if as_json:
        response = JSONResponse(decision.as_json(), headers=headers)
    elif decision.admitted and back:
        response = RedirectResponse(back, 303, headers=headers)
    elif decision.admitted:
        context = site_context(request, room, page, texts)
        response = app.render(request, "site.html", context, 200, headers)
    else:
        context = waiting_context(request, room, decision, texts, back)
        response = app.render(request, "waiting.html", context, 200, headers)
    return versions.remember(response, room, decision.version, cookie=False)


def site_context(request: Request, room: str, page: str, texts: dict[str, Any]) -> dict[str, Any]:
    title, body = SITE_PAGES[page]
    home = url_path(request, "waiting-room:site", room=room)
    links = [(name or "home", SITE_PAGES[name][0], home + name) for name in SITE_PAGES]
    return {
        "room": room,
        "page": page or "home",
        "page_title": title,
        "body": body,
        "links": links,
        "texts": texts,
        "leave_url": url_path(request, "waiting-room:leave", room=room),
    }


def waiting_context(
    request: Request, room: str, decision: Decision, texts: dict[str, Any], back: str | None
) -> dict[str, Any]:
    site_url = url_path(request, "waiting-room:site", room=room)
    position, first = decision.position, decision.first_position
    return {
        "room": room,
        "decision": decision,
        "texts": texts,
        "progress": progress(first, position),
        "leave_url": url_path(request, "waiting-room:leave", room=room),
        "data": {
            "status": decision.status,
            "position": position,
            "eta_s": decision.eta_s,
            "paused": decision.paused,
            "first_position": first,
            "socket": url_path(request, "waiting-room:socket", room=room),
            "status_url": site_url,
            "next": back or site_url,
            "room": room,
        },
    }


async def leave(request: Request) -> Response:
    """Free the visitor's slot (or place in line) now, and forget the cookie."""
    room = request.path_params["room"]
    env = env_of(request)
    try:
        visitor = await client.read_pass(env, room, request.cookies)
        if visitor is None:
            client.room_id(env, room)  # an unknown room is a 404 before a missing cookie
            return JSONResponse({"error": "no valid cookie for this room"}, status_code=400)
        left, version = await client.leave(env, room, visitor)
    except UnknownRoom:
        return JSONResponse({"error": "No such room."}, status_code=404)
    except DurableObjectError as exc:
        text = f"unavailable ({exc.code}); retry"
        return JSONResponse({"error": text}, status_code=503, headers=error_headers(exc))
    secure = request.scope.get("scheme") == "https"
    gone = client.morsel(cookie_name(room), "", 0, secure)
    headers = {"set-cookie": gone, "cache-control": "no-store"}
    response: Response
    if wants_json(request):
        response = JSONResponse({"left": left}, headers=headers)
    else:
        bye_url = url_path(request, "waiting-room:bye", room=room)
        if request.query_params.get("from") == "line":  # (the waiting page's "leave the line")
            bye_url += "?from=line"
        response = RedirectResponse(bye_url, 303, headers=headers)
    # (the room's version: a status read after the leave, through any node, shows it)
    return versions.remember(response, room, version, secure)


async def bye(request: Request) -> Response:
    """Where the Leave buttons land (the site's, and the waiting page's "leave the line")."""
    room = request.path_params["room"]
    app = app_of(request)
    try:
        texts = await client.room_settings(app.env, room)
    except (UnknownRoom, DurableObjectError):
        texts = {}  # (the page still says goodbye, with the site's name if it can)
    context = {
        "site_url": url_path(request, "waiting-room:site", room=room),
        "texts": texts,
        "from_line": request.query_params.get("from") == "line",
    }
    return app.render(request, "bye.html", context)


async def socket(websocket: WebSocket) -> None:
    """Hand a waiting page's socket to the room's replica on this node (it reads the
    visitor from the cookie, and tells the room the page is open: pages.py)."""
    env = env_of(websocket)
    try:
        stub = client.room_stub(env, websocket.path_params["room"])
    except UnknownRoom:
        await websocket.send_denial_response(JSONResponse({"error": "No such room."}, 404))
        return
    await stub.watch(websocket)


#: (the busiest routes first: Starlette tries them in order)
routes: list[BaseRoute] = [
    Route("/r/{room}/", site, name="site"),
    Route("/r/{room}/leave", leave, methods=["POST"], name="leave"),
    WebSocketRoute("/r/{room}/ws", socket, name="socket"),
    Route("/r/{room}/bye", bye, name="bye"),
    Route("/r/{room}/{page}", site, name="page"),
    Route("/", index, name="index"),
]
