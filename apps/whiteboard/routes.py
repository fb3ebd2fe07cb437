"""HTTP and WebSocket routes of the whiteboard, mounted at /whiteboard.

    GET  /whiteboard/                 the board list (boards this browser opened) and "new board"
    POST /whiteboard/api/boards       a new board: {"room": name, "url": "/whiteboard/b/<name>"}
    GET  /whiteboard/b/<room>         a board's page (an edit name, or a view token: read-only);
                                      any edit name is a board (a never-written one says it is
                                      new), a view token that does not verify is a 404 page
    GET  /whiteboard/ws/<room>        the board's y-websocket endpoint (Upgrade required)

``<room>`` is explained in links.py. The WebSocket path ends in the room, as the stock
y-websocket provider builds it (``serverUrl + '/' + room``); query parameters are ignored.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from runtime import DurableObjectError, app_of, env_of, error_headers, url_path

from . import links
from .config import WhiteboardConfig
from .links import InvalidRoom
from .names import BOARDS


async def boards(request: Request) -> Response:
    """The board list."""
    return app_of(request).render(request, "boards.html")


async def new_board(request: Request) -> Response:
    """Mint a board name nobody can guess (the board itself appears on first use)."""
    room = links.new_edit_name()
    url = url_path(request, "whiteboard:board", room=room)
    return JSONResponse({"room": room, "url": url}, status_code=201)


async def board_page(request: Request) -> Response:
    """A board: editable with its name, read-only with a view token."""
    room = request.path_params["room"]
    app = app_of(request)
    env = app.env
    try:
        parsed = await links.parse(env, room)
        view_url = ""
        if not parsed.read_only:
            token = await links.view_token(env, room)
            view_url = url_path(request, "whiteboard:board", room=token)
    except InvalidRoom as exc:
        return app.render(request, "missing.html", {"reason": str(exc)}, status_code=404)
    except DurableObjectError as exc:  # a signing key is unreachable (Redis down, say)
        return PlainTextResponse(f"Try again shortly: {exc}", 503, error_headers(exc))
    try:  # (the page works without knowing: it then shows no "new board" notice)
        written: bool | None = (
            await env.namespace(BOARDS).get(links.board_id(env, parsed)).written()
        )
    except DurableObjectError:
        written = None
    context = {
        "room": room,
        "read_only": parsed.read_only,
        "view_url": view_url,
        "max_update_bytes": app.settings_as(WhiteboardConfig).max_update_bytes,
        "is_new": written is False,
    }
    return app.render(request, "board.html", context)


async def board_http(request: Request) -> Response:
    """The WebSocket URL fetched without an upgrade."""
    return PlainTextResponse("expected a WebSocket (the y-websocket protocol)", 400)


async def board_socket(websocket: WebSocket) -> None:
    """Hand the socket to the board's object, once the room checks out."""
    env = env_of(websocket)
    try:
        room = await links.parse(env, websocket.path_params["room"])
    except InvalidRoom as exc:
        await websocket.send_denial_response(PlainTextResponse(f"No such board: {exc}", 404))
        return
    except DurableObjectError as exc:
        answer = PlainTextResponse(f"Try again shortly: {exc}", 503, error_headers(exc))
        await websocket.send_denial_response(answer)
        return
    board = env.namespace(BOARDS).get(links.board_id(env, room))
    if websocket.path_params["room"].startswith(links.VIEW_PREFIX):
        await board.watch(websocket)  # a view link: the board's replica on this node serves it
    else:
        await board.connect(websocket)


routes: list[BaseRoute] = [
    Route("/", boards, name="boards"),
    Route("/api/boards", new_board, methods=["POST"], name="new_board"),
    Route("/b/{room}", board_page, name="board"),
    Route("/ws/{room}", board_http),
    WebSocketRoute("/ws/{room}", board_socket, name="board_socket"),
]
