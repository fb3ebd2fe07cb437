"""HTTP and WebSocket routes of the whiteboard, mounted at /whiteboard.

    GET  /whiteboard/                 the board list (boards this browser opened) and "new board"
    POST /whiteboard/api/boards       a new board: {"room": name, "url": "/whiteboard/b/<name>"}
    GET  /whiteboard/b/<room>         a board's page (an edit name, or a view token: read-only)
    GET  /whiteboard/ws/<room>        the board's y-websocket endpoint (Upgrade required)

``<room>`` is explained in links.py. The WebSocket path ends in the room, as the stock
y-websocket provider builds it (``serverUrl + '/' + room``); query parameters are ignored.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.templating import Jinja2Templates
from starlette.websockets import WebSocket

from runtime import DurableObjectError, env_of

from . import links
from .board import Board
from .links import InvalidRoom

templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def board_class(request: Request) -> type[Board]:
    """The Board class this node mounted (make_app gives it the app's settings)."""
    cls: type[Board] = env_of(request).namespace(links.BOARDS).cls
    return cls


async def boards(request: Request) -> Response:
    """The board list."""
    return templates.TemplateResponse(request, "boards.html", {})


async def new_board(request: Request) -> Response:
    """Mint a board name nobody can guess (the board itself appears on first use)."""
    room = links.new_edit_name()
    return JSONResponse({"room": room, "url": f"/whiteboard/b/{room}"}, status_code=201)


async def board_page(request: Request) -> Response:
    """A board: editable with its name, read-only with a view token."""
    room = request.path_params["room"]
    env = env_of(request)
    try:
        parsed = await links.parse(env, room)
        view_url = "" if parsed.read_only else f"/whiteboard/b/{await links.view_token(env, room)}"
    except InvalidRoom as exc:
        return PlainTextResponse(f"No such board: {exc}", 404)
    except DurableObjectError as exc:  # the key ring is unreachable (Redis down, say)
        return PlainTextResponse(f"Try again shortly: {exc}", 503)
    context = {
        "room": room,
        "read_only": parsed.read_only,
        "view_url": view_url,
        "max_update_bytes": board_class(request).config.max_update_bytes,
    }
    return templates.TemplateResponse(request, "board.html", context)


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
        await websocket.send_denial_response(PlainTextResponse(f"Try again shortly: {exc}", 503))
        return
    await env.namespace(links.BOARDS).get(links.board_id(env, room)).connect(websocket)


routes: list[BaseRoute] = [
    Route("/", boards),
    Route("/api/boards", new_board, methods=["POST"]),
    Route("/b/{room}", board_page),
    Route("/ws/{room}", board_http),
    WebSocketRoute("/ws/{room}", board_socket),
]
