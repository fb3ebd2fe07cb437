"""The operator's side, mounted at /waiting-room:

    POST  /api/rooms              {"total_active_users", "new_users_per_minute",
                                   "session_duration", "queueing_method", ...} -> 201
                                  {"room", "admin_token", "site_url", "admin_url", ...settings}
    GET   /api/rooms/<room>       200 {"active", "queued", "admitted_last_minute", ...settings}
    PATCH /api/rooms/<room>       Authorization: Bearer <admin token>; any settings -> 200
                                  {...settings}; no token 401, a wrong one 403
                                  (a gate_prefix, new or changed, needs the operator's
                                  authority too: gates.py; dropping it does not)
    DELETE /api/rooms/<room>      Authorization: Bearer <admin token> -> 200 {"deleted": true}:
                                  the room, its gate and every page of it are gone (404 after)
    GET   /admin/<room>           the admin page (the token stays in the page's URL fragment
                                  and the browser's session storage; it is never logged)
    WS    /admin/<room>/ws        the admin page's live figures (admin.py has the protocol)

Errors are JSON: {"error": "...", "field"?: "..."}: 400 malformed JSON, 401/403 a gate
without the operator's authority, 404 unknown room, 405, 409 a gate prefix another room
holds (or a change of the gate under way), 413 too large a body, 422 bad settings, 503 the
room is unavailable (retry), with the runtime's X-Error-Code, X-Outcome and Retry-After
(docs/api.md, "Errors").
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from runtime import DurableObjectError, app_of, env_of, error_headers, url_path

from . import client, gates, room_settings, versions
from .client import UnknownRoom
from .names import ROOMS
from .room_settings import SettingsError
from .waiting_room import token_hash

MAX_BODY = 16 * 1024


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def fail(
    status: int, message: str, exc: DurableObjectError | None = None, **extra: Any
) -> JSONResponse:
    """A JSON error; for a runtime error ``exc``, with its headers (X-Outcome, ...)."""
    headers = error_headers(exc) if exc is not None else {}
    if status == 401:
        headers["www-authenticate"] = "Bearer"
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers or None)


async def read_json(request: Request) -> Any:
    """The request's JSON body, bounded (BadRequest otherwise)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise BadRequest(413, f"the body is larger than {MAX_BODY} bytes")
    try:
        return json.loads(body, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        raise BadRequest(400, "the body is not valid JSON") from None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def links(request: Request, room: str) -> dict[str, str]:
    return {
        "site_url": url_path(request, "waiting-room:site", room=room),
        "admin_url": url_path(request, "waiting-room:admin", room=room),
    }


async def create(request: Request) -> Response:
    """A new room; the answer carries its admin token, shown this once."""
    app = app_of(request)
    try:
        checked = room_settings.create(await read_json(request))
        gates.check_prefix(checked.gate_prefix, gates.gateable(app))
    except BadRequest as exc:
        return fail(exc.status, str(exc))
    except SettingsError as exc:
        return JSONResponse(exc.as_json(), status_code=422)
    if checked.gate_prefix and not app.operator(request):
        status = 403 if "authorization" in request.headers else 401
        return fail(status, gates.OPERATOR_ONLY, field="gate_prefix")
    namespace = app.env.namespace(ROOMS)
    room_id = namespace.new_unique_id()
    token = secrets.token_urlsafe(32)
    try:
        made = await namespace.get(room_id).create(checked.as_dict(), token_hash(token))
    except DurableObjectError as exc:
        return fail(503, f"could not create the room ({exc.code}); retry", exc)
    if "error" in made:
        return fail(int(made.get("status", 500)), str(made["error"]))
    if checked.gate_prefix:
        gates.cache_of(app).invalidate()
    room = room_id.hex
    body = {"room": room, "admin_token": token, **links(request, room), **made["settings"]}
    return JSONResponse(body, status_code=201, headers={"cache-control": "no-store"})


async def room_api(request: Request) -> Response:
    """GET (or HEAD): figures and settings. PATCH: change settings, DELETE: delete the room
    (the admin token, for both)."""
    app = app_of(request)
    room = request.path_params["room"]
    try:  # (reads at least as current as the client's last write: versions.py)
        stub = client.room_stub(app.env, room, versions.carried(request, room))
    except UnknownRoom:
        return fail(404, "no such room")
    if request.method in ("GET", "HEAD"):  # (Starlette routes HEAD wherever GET goes)
        try:
            # A replica counts a leasing or passthrough room's admissions of the last minute
            # only from when it loaded (replica.py): those rooms' figures are the room's own.
            exact = await client.replica_exact(app.env, room)
            info = await (stub.info() if exact else stub.primary_info())
        except UnknownRoom:
            return fail(404, "no such room")
        except DurableObjectError as exc:
            return fail(503, f"the room is unavailable ({exc.code}); retry", exc)
        if info is None:
            return fail(404, "no such room")
        body = {**info, **links(request, room)}
        response = JSONResponse(body, headers={"cache-control": "no-store"})
        # (the version it read at: a client that sends it back never reads older: monotonic)
        return versions.remember(response, room, stub.version, cookie=False)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return fail(401, "this needs the room's admin token: Authorization: Bearer <token>")
    try:  # the token first: a stranger learns nothing from how their body is refused
        refused = await stub.authorize(token)  # (changes nothing: a later call's outcome
    except DurableObjectError as exc:  # is the request's)
        return fail(503, f"the room is unavailable ({exc.code}); retry", exc)
    if refused:
        return fail(int(refused.get("status", 403)), str(refused.get("error", "refused")))
    if request.method == "DELETE":
        return await delete_room(request, stub, room, token)
    try:
        changes = await read_json(request)
        if isinstance(changes, dict) and "gate_prefix" in changes:
            prefix = room_settings.normal_prefix(changes["gate_prefix"])
            gates.check_prefix(prefix, gates.gateable(app))
        # (a new gate needs the operator too: only the room knows whether it is new)
        answer = await stub.configure(token, changes, app.operator(request))
    except BadRequest as exc:
        return fail(exc.status, str(exc))
    except SettingsError as exc:
        return JSONResponse(exc.as_json(), status_code=422)
    except DurableObjectError as exc:
        return fail(503, f"the room is unavailable ({exc.code}); retry", exc)
    # (also after an error: a 503 from a lost release comes with the settings saved)
    gates.cache_of(app).invalidate()
    client.forget_settings(room)
    secure = request.scope.get("scheme") == "https"
    if "error" in answer:
        status = int(answer.pop("status", 500))
        return versions.remember(
            JSONResponse(answer, status_code=status), room, stub.version, secure
        )
    return versions.remember(JSONResponse(answer["settings"]), room, stub.version, secure)


async def delete_room(request: Request, stub: Any, room: str, token: str) -> Response:
    """Delete the room (its token already checked)."""
    app = app_of(request)
    try:
        answer = await stub.delete(token)
    except DurableObjectError as exc:
        return fail(503, f"the room is unavailable ({exc.code}); retry", exc)
    if "error" in answer:
        status = int(answer.pop("status", 500))
        return JSONResponse(answer, status_code=status)
    gates.cache_of(app).invalidate()
    client.forget_room(room)
    secure = request.scope.get("scheme") == "https"
    return versions.remember(JSONResponse({"deleted": True}), room, stub.version, secure)


#: The API's paths, and the methods each takes (anything else under /api: a JSON 404).
API_PATHS = (
    (re.compile(r"/api/rooms"), "POST"),
    (re.compile(r"/api/rooms/[^/]+"), "GET, PATCH, DELETE"),
)
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def api_fallback(request: Request) -> Response:
    """Whatever else is asked under /api: JSON errors (405 with Allow, or 404) for clients
    that read JSON, not Starlette's plain text or its redirects to add or drop a slash."""
    path = "/api/" + request.path_params["rest"]
    for pattern, allow in API_PATHS:
        if pattern.fullmatch(path):
            answer = fail(405, f"{request.method} is not allowed here; use {allow}")
            answer.headers["allow"] = allow
            return answer
    return fail(404, "no such API path: POST /api/rooms, GET, PATCH or DELETE /api/rooms/<room>")


async def admin_page(request: Request) -> Response:
    """The admin page: live charts and the settings form (the token unlocks them)."""
    app = app_of(request)
    room = request.path_params["room"]
    try:
        settings = await client.room_settings(app.env, room)
    except UnknownRoom:
        return app.render(request, "error.html", {"status": 404, "message": "No such room."}, 404)
    except DurableObjectError as exc:
        context = {"status": 503, "message": f"The room is unavailable ({exc.code})."}
        return app.render(request, "error.html", context, 503, error_headers(exc))
    data = {
        "room": room,
        "api": url_path(request, "waiting-room:room", room=room),
        "socket": url_path(request, "waiting-room:admin_socket", admin_of=room),
        "index_url": url_path(request, "waiting-room:index"),
        **links(request, room),
    }
    return app.render(request, "admin.html", {"room": room, "settings": settings, "data": data})


async def admin_socket(websocket: WebSocket) -> None:
    """Hand the admin page's socket to the room (it proves itself with the token)."""
    try:
        stub = client.room_stub(env_of(websocket), websocket.path_params["admin_of"])
    except UnknownRoom:
        await websocket.send_denial_response(JSONResponse({"error": "no such room"}, 404))
        return
    await stub.connect(websocket)


routes: list[BaseRoute] = [
    Route("/api/rooms", create, methods=["POST"], name="rooms"),
    Route("/api/rooms/{room}", room_api, methods=["GET", "PATCH", "DELETE"], name="room"),
    Route("/api/{rest:path}", api_fallback, methods=ANY_METHOD),  # (after the others)
    Route("/admin/{room}", admin_page, name="admin"),
    WebSocketRoute("/admin/{admin_of}/ws", admin_socket, name="admin_socket"),
]
