"""Each app's own error answers say whether the request may have run (docs/api.md, "Errors").

A node in this process on a Valkey of the test's own, stopped under it: the apps' routes
that catch a runtime error and answer in their own format carry the runtime's
``X-Error-Code``, ``X-Outcome`` and ``Retry-After``, keep their status codes and JSON shapes,
and never say "not-run" of a request that may have changed something.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from apps.chat import ChatConfig
from apps.chat import make_app as chat_app
from apps.lobby import make_app as lobby_app
from apps.waiting_room import make_app as waiting_room_app
from apps.whiteboard import make_app as whiteboard_app
from apps.whiteboard import old_view_key
from runtime import App, Node, Settings
from runtime.storage.embedded import ValkeyProcess
from tests.conftest import TEST_SETTINGS
from tests.support.servers import LocalServer

Serving = Callable[..., Coroutine[Any, Any, LocalServer]]


@pytest.fixture
async def on_own_valkey(tmp_path: Path) -> AsyncIterator[tuple[ValkeyProcess, Serving]]:
    """(its Valkey, a function serving apps on a node over it); all stopped after."""
    server = ValkeyProcess(tmp_path / "v", appendfsync="always").start()
    served: list[LocalServer] = []

    async def serve(*apps: App, **settings: Any) -> LocalServer:
        node = Node(Settings(**{**TEST_SETTINGS, "lease_ttl": 30.0, **settings}), server.url)
        web = await LocalServer(node, list(apps)).start()
        served.append(web)
        return web

    yield server, serve
    for web in served:
        await web.stop()
    server.stop()


def said_not_run(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["x-outcome"] == "not-run", response.headers
    assert response.headers["x-error-code"] in ("storage_unavailable", "unavailable", "fenced")
    assert response.headers["retry-after"] == "1"


async def test_the_lobby_api_says_nothing_ran_when_storage_is_down(on_own_valkey) -> None:
    valkey, serve = on_own_valkey
    web = await serve(lobby_app())
    async with httpx.AsyncClient(base_url=web.http) as http:
        valkey.stop()
        made = await http.post(
            "/lobby/api/lobbies", json={"name": "x", "public": True, "max_players": 2}
        )
        said_not_run(made)
        assert made.json() == {"error": "the lobby could not be created; try again"}
        code = await http.get("/lobby/api/codes/ABC234")
        said_not_run(code)
        assert set(code.json()) == {"error"}


async def test_the_waiting_room_api_and_gate_say_nothing_ran_when_storage_is_down(
    on_own_valkey,
) -> None:
    valkey, serve = on_own_valkey
    web = await serve(waiting_room_app(), chat_app(ChatConfig(rate_limit=False)))
    settings = {
        "total_active_users": 1,
        "new_users_per_minute": 60,
        "session_duration": 60,
        "queueing_method": "fifo",
        "gate_prefix": "/chat",
    }
    async with httpx.AsyncClient(base_url=web.http) as http:
        made = await http.post("/waiting-room/api/rooms", json=settings)
        assert made.status_code == 201, made.text
        room = made.json()["room"]
        valkey.stop()
        again = await http.post("/waiting-room/api/rooms", json={**settings, "gate_prefix": None})
        said_not_run(again)
        assert set(again.json()) == {"error"}
        # The gate asks a room that cannot be reached: the app behind it was never reached.
        gated = await http.get("/chat/", headers={"Accept": "text/html"})
        assert gated.status_code == 503 and gated.headers["x-outcome"] == "not-run"
        assert gated.headers["retry-after"] == "1"
        # The room's page (a visit) and its JSON interface.
        page = await http.get(f"/waiting-room/r/{room}/", headers={"Accept": "application/json"})
        said_not_run(page)
        assert set(page.json()) == {"error"}


async def test_the_whiteboard_page_and_socket_say_nothing_ran_when_storage_is_down(
    on_own_valkey, monkeypatch
) -> None:
    # A view link that does not verify under the runtime's key is checked against the key of
    # links shared before it (old_view_key.py): that takes Redis once its node's copy is old.
    monkeypatch.setattr(old_view_key, "CACHE_SECONDS", 0.0)
    valkey, serve = on_own_valkey
    # (the default lease: the node gives its objects up soon after it lost Redis, and taking
    # the old key's object again then needs Redis)
    web = await serve(whiteboard_app(), secret_key="k" * 64, lease_ttl=TEST_SETTINGS["lease_ttl"])
    view = f"v-{'0' * 64}.{'A' * 22}"
    async with httpx.AsyncClient(base_url=web.http) as http:
        assert (await http.get(f"/whiteboard/b/{view}")).status_code == 404  # (Redis is up)
        valkey.stop()
        for _ in range(100):
            page = await http.get(f"/whiteboard/b/{view}")
            if page.status_code != 404:
                break
            await asyncio.sleep(0.1)
        said_not_run(page)
        assert page.text.startswith("Try again shortly")
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{web.ws}/whiteboard/ws/{view}")
    answer = refused.value.response
    assert answer.status_code == 503 and answer.headers["x-outcome"] == "not-run"
