"""HTTP and WebSocket routes of the lobby, mounted at /lobby.

    GET  /lobby/                          the browser UI (directory, lobby, game: one page)
    POST /lobby/api/lobbies               {"name", "public", "max_players"} -> 201 {"lobby", "code"}
    GET  /lobby/api/lobbies               {"lobbies": [{"lobby", "name", "players",
                                           "max_players", "status"}, ...]} (public ones)
    GET  /lobby/api/lobbies/<lobby>       {"lobby", "name", "players", "max_players", "status",
                                           "public"}, or 404
    GET  /lobby/api/codes/<code>          {"lobby": id}, or 404
    GET  /lobby/api/games/<game>          {"state": {...}, "history": [results]}, or 404
    WS   /lobby/ws/directory              the live list (directory.py)
    WS   /lobby/ws/quickplay              the quick-play queue (matchmaker.py)
    WS   /lobby/ws/game/<game>[?token=]   a game (game.py)
    WS   /lobby/ws/<lobby>                a lobby (lobby_room.py)

Errors are JSON ``{"error": "<why>"}`` with a 4xx/5xx status; a 503 carries the runtime's
``X-Error-Code``, ``X-Outcome`` and ``Retry-After`` (docs/api.md, "Errors"). WebSocket
handshakes for unknown lobbies or games are refused with 404 (the body says why). One client address
creating lobbies or looking codes up too fast gets 429, with ``Retry-After`` and
``"retry_after"`` (seconds) in the body (throttle.py).
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from runtime import (
    Binding,
    DurableObjectError,
    InvalidObjectId,
    ObjectId,
    app_of,
    env_of,
    error_headers,
)

from . import join_code
from .config import LobbyConfig
from .names import (
    CODES,
    DIRECTORY,
    DIRECTORY_NAME,
    GAMES,
    LOBBIES,
    QUEUE,
    QUEUE_NAME,
    THROTTLES,
)
from .rules import MAX_PLAYERS, MIN_PLAYERS, Terms, check_terms
from .throttle import ACTIONS, CODE, CREATE

log = logging.getLogger("apps.lobby")

MAX_BODY = 2048
#: Tries at drawing a free code before giving up (each collides with odds of
#: live lobbies / 887 million).
CODE_TRIES = 8


def problem(
    status: int, text: str, exc: DurableObjectError | None = None, *, ran: bool | None = None
) -> JSONResponse:
    """A JSON error. A 503 says whether the request may have had an effect (``X-Outcome``):
    the failed call's outcome (``exc``, with its ``X-Error-Code`` and ``Retry-After``), or
    ``ran`` when the route knows better (True: something of it may have lasted)."""
    headers = error_headers(exc) if exc is not None else {}
    if ran is not None:
        headers["X-Outcome"] = "unknown" if ran else "not-run"
    return JSONResponse({"error": text}, status_code=status, headers=headers or None)


def settings(request: Request | WebSocket) -> LobbyConfig:
    return app_of(request).settings_as(LobbyConfig)


async def throttled(request: Request, action: str) -> Response | None:
    """429 if this client address has tried ``action`` too fast (throttle.py), else None.
    If the address's throttle cannot answer, the try goes ahead (as the chat's limiter)."""
    config = settings(request)
    if (config.create_rate if action == CREATE else config.code_rate) <= 0:
        return None
    address = request.client.host if request.client else "unknown"
    try:
        wait = await env_of(request).namespace(THROTTLES).get_by_name(address).take(action)
    except DurableObjectError as exc:
        log.warning("throttle for %s unavailable: %s", address, exc)
        return None
    if wait <= 0:
        return None
    seconds = max(1, math.ceil(wait))
    return JSONResponse(
        {
            "error": f"too many tries from your address ({ACTIONS[action]}); "
            f"try again in {seconds} s",
            "retry_after": seconds,
        },
        status_code=429,
        headers={"Retry-After": str(seconds)},
    )


async def page(request: Request) -> Response:
    """The browser UI."""
    config = settings(request)
    limits = {
        "max_lobby_name": config.max_lobby_name,
        "max_player_name": config.max_player_name,
        "max_chat": config.max_chat,
        "min_players": MIN_PLAYERS,
        "max_players": MAX_PLAYERS,
        "turn_time": config.turn_time,
        "grace": config.grace,
    }
    return app_of(request).render(request, "lobby.html", {"limits": limits})


# ----------------------------------------------------------------- lobbies


async def lobbies(request: Request) -> Response:
    """GET: the public lobbies; POST: a new lobby."""
    env = env_of(request)
    directory = env.namespace(DIRECTORY).get_by_name(DIRECTORY_NAME)
    if request.method == "GET":
        try:
            return JSONResponse({"lobbies": await directory.listing()})
        except DurableObjectError as exc:
            return problem(503, f"the directory is unavailable; try again ({exc})", exc)
    body = await request.body()
    if len(body) > MAX_BODY:
        return problem(413, f"the request body is larger than {MAX_BODY} bytes")
    try:
        data: Any = json.loads(body)
    except ValueError:
        return problem(400, "the body must be JSON")
    if not isinstance(data, dict):
        return problem(400, 'the body must be a JSON object: {"name", "public", "max_players"}')
    config = settings(request)
    # the same checks the lobby makes, before anything is created
    checked = check_terms(
        data.get("name"), data.get("public"), data.get("max_players"), config.max_lobby_name
    )
    if not isinstance(checked, Terms):
        return problem(400, checked.reason)
    refused = await throttled(request, CREATE)
    if refused is not None:
        return refused
    # Several calls: once a code is claimed, a failure after it may leave something behind
    # (the code, the lobby), so it is "unknown" however the failing call ended; before,
    # nothing of this request has lasted.
    claimed = False
    try:
        if checked.public and await directory.count() >= config.max_lobbies:
            text = "there are too many public lobbies; join one or try later"
            return problem(503, text, ran=False)
        lobby_id = env.namespace(LOBBIES).new_unique_id()
        code = await claim_code(request, lobby_id)
        if code is None:
            return problem(503, "no join code could be found; try again", ran=False)
        claimed = True
        try:
            await (
                env.namespace(LOBBIES)
                .get(lobby_id)
                .create(checked.name, checked.public, checked.max_players, code)
            )
        except DurableObjectError:
            await release_code(request, code, lobby_id)
            raise
    except DurableObjectError as exc:
        log.warning("creating a lobby failed: %s", exc)
        text = "the lobby could not be created; try again"
        return problem(503, text, exc, ran=True if claimed else None)
    return JSONResponse({"lobby": lobby_id.hex, "code": code}, status_code=201)


async def claim_code(request: Request, lobby: ObjectId) -> str | None:
    """A join code no other lobby holds, now held by ``lobby``."""
    ns = env_of(request).namespace(CODES)
    for _ in range(CODE_TRIES):
        code = join_code.new_code()
        if await ns.get_by_name(code).claim(lobby.hex):
            return code
    return None


async def release_code(request: Request, code: str, lobby: ObjectId) -> None:
    try:
        await env_of(request).namespace(CODES).get_by_name(code).release(lobby.hex)
    except DurableObjectError as exc:  # the code stays taken: harmless, and rare
        log.warning("releasing code %s: %s", code, exc)


async def code_lookup(request: Request) -> Response:
    """The lobby a join code stands for."""
    code = join_code.normalize(request.path_params["code"])
    if code is None:
        return problem(404, "that is not a join code (6 letters and digits)")
    refused = await throttled(request, CODE)
    if refused is not None:
        return refused
    try:
        lobby = await env_of(request).namespace(CODES).get_by_name(code).lookup()
    except DurableObjectError as exc:
        return problem(503, f"try again ({exc})", exc)
    if lobby is None:
        return problem(404, "no lobby has that code")
    return JSONResponse({"lobby": lobby})


async def lobby_info(request: Request) -> Response:
    """One lobby's summary (private ones too: their ID is as good as their code)."""
    found = object_id(request, LOBBIES, request.path_params["lobby"])
    if found is None:
        return problem(404, "no such lobby")
    try:
        summary = await env_of(request).namespace(LOBBIES).get(found).summary()
    except DurableObjectError as exc:
        return problem(503, f"try again ({exc})", exc)
    if summary is None:
        return problem(404, "no such lobby (it may have closed)")
    return JSONResponse(summary)


async def game_info(request: Request) -> Response:
    """A game as a spectator sees it, with the results of its rounds."""
    found = object_id(request, GAMES, request.path_params["game"])
    if found is None:
        return problem(404, "no such game")
    try:
        info = await env_of(request).namespace(GAMES).get(found).info()
    except DurableObjectError as exc:
        return problem(503, f"try again ({exc})", exc)
    if info is None:
        return problem(404, "no such game")
    return JSONResponse(info)


# ----------------------------------------------------------------- sockets


def object_id(conn: Request | WebSocket, namespace: Binding, text: str) -> ObjectId | None:
    try:
        return env_of(conn).namespace(namespace).id_from_string(text)
    except InvalidObjectId:
        return None


async def lobby_socket(websocket: WebSocket) -> None:
    """Hand the socket to its lobby."""
    found = object_id(websocket, LOBBIES, websocket.path_params["lobby"])
    if found is None:
        await websocket.send_denial_response(PlainTextResponse("no such lobby", 404))
        return
    await env_of(websocket).namespace(LOBBIES).get(found).connect(websocket)


async def game_socket(websocket: WebSocket) -> None:
    """Hand the socket to its game (the token is checked there)."""
    found = object_id(websocket, GAMES, websocket.path_params["game"])
    if found is None:
        await websocket.send_denial_response(PlainTextResponse("no such game", 404))
        return
    await env_of(websocket).namespace(GAMES).get(found).connect(websocket)


async def directory_socket(websocket: WebSocket) -> None:
    # (a page only watches the list: the replica on this node serves it)
    await env_of(websocket).namespace(DIRECTORY).get_by_name(DIRECTORY_NAME).watch(websocket)


async def quickplay_socket(websocket: WebSocket) -> None:
    await env_of(websocket).namespace(QUEUE).get_by_name(QUEUE_NAME).connect(websocket)


async def socket_http(request: Request) -> Response:
    """A socket's URL fetched without an upgrade."""
    return PlainTextResponse("expected a WebSocket", 400)


async def not_found(request: Request) -> Response:
    return problem(404, "no such endpoint")


routes: list[BaseRoute] = [
    Route("/", page, name="page"),
    Route("/api/lobbies", lobbies, methods=["GET", "POST"], name="lobbies"),
    Route("/api/lobbies/{lobby}", lobby_info, name="lobby_info"),
    Route("/api/codes/{code}", code_lookup, name="code"),
    Route("/api/games/{game}", game_info, name="game_info"),
    Route("/api/{rest:path}", not_found, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    WebSocketRoute("/ws/directory", directory_socket, name="directory_socket"),
    WebSocketRoute("/ws/quickplay", quickplay_socket, name="quickplay_socket"),
    WebSocketRoute("/ws/game/{game}", game_socket, name="game_socket"),
    WebSocketRoute("/ws/{lobby}", lobby_socket, name="lobby_socket"),
    Route("/ws/{rest:path}", socket_http),
]
