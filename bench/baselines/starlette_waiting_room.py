"""Baseline: Starlette on uvicorn answering the waiting room's JSON, deciding nothing.

python bench/baselines/starlette_waiting_room.py PORT

The same routes, headers and bodies as a node's ``GET /waiting-room/r/<room>/`` (Accept:
application/json) and ``POST /waiting-room/r/<room>/leave``, with a fixed cookie: what the
bare framework costs per request, without a room object, storage or signing.
"""

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

COOKIE = "wr_bench=baseline; HttpOnly; Max-Age=172800; Path=/; SameSite=Lax"


async def site(request: Request) -> Response:
    body = {"status": "admitted", "position": None, "eta_s": None}
    return JSONResponse(body, headers={"set-cookie": COOKIE, "cache-control": "no-store"})


async def leave(request: Request) -> Response:
    return JSONResponse({"left": True}, headers={"set-cookie": COOKIE, "cache-control": "no-store"})


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/waiting-room/r/{room}/", site),
        Route("/waiting-room/r/{room}/leave", leave, methods=["POST"]),
        Route("/healthz", healthz),
    ]
)

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
        server_header=False,
    )
