"""HTTP and WebSocket routes of the chat, mounted at /chat (the demo's /api paths).

    GET  /chat/                                   the browser UI
    POST /chat/api/room                           a new private room: 64 hex characters
    GET  /chat/api/room/<name>/websocket          the room's WebSocket (Upgrade required)

``<name>``: 64 lowercase hex characters name a private room (an ID this app minted);
anything else of at most 32 characters is a public room, the same for everyone who types it.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from runtime import InvalidObjectId, ObjectId, app_of, env_of

from .names import ROOMS
from .rules import MAX_NAME, js_length

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_HEX64 = re.compile(r"[0-9a-f]{64}")


def room_id(conn: Request | WebSocket, name: str) -> ObjectId | Response:
    """The room a URL names, or the error response the demo gives."""
    rooms = env_of(conn).namespace(ROOMS)
    if _HEX64.fullmatch(name):
        try:
            return rooms.id_from_string(name)
        except InvalidObjectId:
            return PlainTextResponse("Invalid room id", 404)
    if js_length(name) <= MAX_NAME:
        return rooms.id_from_name(name)
    return PlainTextResponse("Name too long", 404)


async def page(request: Request) -> Response:
    """The chat UI."""
    return app_of(request).render(request, "chat.html", {"max_name": MAX_NAME})


async def create_room(request: Request) -> Response:
    """POST: mint a private room (a unique ID nobody can guess)."""
    if request.method != "POST":
        return PlainTextResponse("Method not allowed", 405)
    room = env_of(request).namespace(ROOMS).new_unique_id()
    return PlainTextResponse(room.hex, headers={"Access-Control-Allow-Origin": "*"})


async def room_http(request: Request) -> Response:
    """The WebSocket URL fetched without an upgrade."""
    found = room_id(request, request.path_params["name"])
    if isinstance(found, Response):
        return found
    return PlainTextResponse("expected websocket", 400)


async def room_socket(websocket: WebSocket) -> None:
    """Hand the socket to the room's object."""
    found = room_id(websocket, websocket.path_params["name"])
    if isinstance(found, Response):
        await websocket.send_denial_response(found)
        return
    await env_of(websocket).namespace(ROOMS).get(found).connect(websocket)


async def not_found(request: Request) -> Response:
    return PlainTextResponse("Not found", 404)


routes: list[BaseRoute] = [
    Route("/", page, name="page"),
    Route("/api/room", create_room, methods=ALL_METHODS, name="create_room"),
    Route("/api/room/{name}/websocket", room_http, methods=ALL_METHODS),
    WebSocketRoute("/api/room/{name}/websocket", room_socket, name="room_socket"),
    Route("/api/{rest:path}", not_found, methods=ALL_METHODS),
]
