"""The admin page's socket, for the WaitingRoom object (waiting_room.py): the token
handshake, the sockets still waiting for it, and the figures streamed to admin pages.

    client -> server   {"token": "<admin token>"}     (first message, within PENDING_SECONDS)
    server -> client   {"type": "hello", "settings", "figures", "samples"}
                       {"type": "sample", "t", "active", "queued", "admitted_last_minute"}
                       {"type": "settings", "settings"}

Anyone who knows a room's ID (it is in every visitor's URL) can open an admin socket, so
sockets waiting for their token are bounded twice: each has PENDING_SECONDS to show it,
and when MAX_PENDING wait the oldest is closed to let a newcomer in (never the other way
round, or idle sockets would lock the admin out). A wrong token closes the socket (4003).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol

from runtime import ObjectContext, ObjectWebSocket

from .config import WaitingRoomConfig
from .room_settings import RoomSettings
from .rules import RoomRules

ADMIN = "admin"
PENDING = "pending"  # an admin socket that has not shown its token yet
MAX_MESSAGE = 1024
MAX_SAMPLES = 600
MAX_PENDING = 100
#: An admin socket must show its token this soon after it opens (the page sends it at once).
PENDING_SECONDS = 5.0
BAD_TOKEN = 4003
TOKEN_LATE = 4008  # (the admin page reconnects, as after any close but 4003)


def encode(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"))


def _opened(ws: ObjectWebSocket) -> float:
    """When an admin socket awaiting its token opened (0: not known, so the oldest)."""
    opened = ws.attachment.get("opened") if isinstance(ws.attachment, dict) else None
    return float(opened) if isinstance(opened, int | float) else 0.0


class AdminHost(Protocol):
    """What the admin pages need of their room (the WaitingRoom object)."""

    ctx: ObjectContext
    config: WaitingRoomConfig
    rules: RoomRules | None

    def accept_websocket(self, ws: ObjectWebSocket, tags: Iterable[str] = ()) -> None: ...
    def get_websockets(self, tag: str | None = None) -> list[ObjectWebSocket]: ...
    def broadcast(
        self,
        message: str | bytes,
        *,
        tag: str | None = None,
        exclude: ObjectWebSocket | None = None,
    ) -> int: ...
    def admin_ok(self, token: str) -> bool: ...


class AdminPages:
    """A room's admin sockets: waiting for the token, then watching the figures."""

    def __init__(self, room: AdminHost) -> None:
        self.room = room
        self.samples: deque[dict[str, Any]] = deque(maxlen=MAX_SAMPLES)
        self.sampling: asyncio.Task[Any] | None = None
        self.sweeping: asyncio.Task[Any] | None = None

    def connect(self, ws: ObjectWebSocket, now: float) -> None:
        """An admin socket opens: it waits for its token (the oldest waiting make room)."""
        self.close_late(now)
        waiting = self.room.get_websockets(PENDING)
        if len(waiting) >= MAX_PENDING:
            waiting.sort(key=_opened)
            for old in waiting[: len(waiting) - MAX_PENDING + 1]:
                old.close(TOKEN_LATE, "too many admin sockets waiting for their token")
        self.room.accept_websocket(ws, tags=[PENDING])
        ws.attachment = {"opened": now}
        if self.sweeping is None:
            self.sweeping = self.room.ctx.wait_until(self.sweep())

    def close_late(self, now: float) -> int:
        """Close the sockets that did not show a token in time; how many still wait."""
        waiting = 0
        for ws in self.room.get_websockets(PENDING):
            if now - _opened(ws) >= PENDING_SECONDS:
                ws.close(TOKEN_LATE, "no admin token in time")
            else:
                waiting += 1
        return waiting

    async def sweep(self) -> None:
        """While sockets wait for their token: close the late ones."""
        try:
            while True:
                await asyncio.sleep(PENDING_SECONDS / 5)
                if not self.close_late(time.time()):
                    return
        finally:
            self.sweeping = None

    def message(self, ws: ObjectWebSocket, message: str | bytes) -> None:
        """A waiting socket's first message is its token: right, it gets the figures."""
        if PENDING not in ws.tags:
            return
        token = None
        if isinstance(message, str) and len(message) <= MAX_MESSAGE:
            try:
                data = json.loads(message)
                token = data.get("token") if isinstance(data, dict) else None
            except ValueError:
                token = None
        if not isinstance(token, str) or not self.room.admin_ok(token):
            ws.close(BAD_TOKEN, "wrong admin token")
            return
        ws.tags = [ADMIN]
        ws.attachment = None
        rules = self.room.rules
        assert rules is not None
        now = time.time()
        self.sample(now, force=True)
        hello = {
            "type": "hello",
            "settings": rules.settings.as_dict(),
            "figures": rules.figures(now),
            "samples": list(self.samples),
        }
        ws.send(encode(hello))
        if self.sampling is None:
            self.sampling = self.room.ctx.wait_until(self.sample_loop())

    def settings_changed(self, settings: RoomSettings) -> None:
        self.room.broadcast(encode({"type": "settings", "settings": settings.as_dict()}), tag=ADMIN)

    def sample(self, now: float, force: bool) -> None:
        """Keep a sample of the figures for the charts (at most one per interval)."""
        rules = self.room.rules
        if rules is None:
            return
        interval = self.room.config.sample_interval
        if not force and self.samples and now - self.samples[-1]["t"] < interval:
            return
        figures = rules.figures(now)
        self.samples.append(
            {
                "t": round(now, 3),
                "active": figures["active"],
                "queued": figures["queued"],
                "admitted_last_minute": figures["admitted_last_minute"],
            }
        )

    async def sample_loop(self) -> None:
        """While admin pages watch: a sample every interval, to each of them."""
        try:
            while self.room.get_websockets(ADMIN):
                await asyncio.sleep(self.room.config.sample_interval)
                if self.room.rules is None:
                    return
                self.sample(time.time(), force=True)
                self.room.broadcast(encode({"type": "sample", **self.samples[-1]}), tag=ADMIN)
        finally:
            self.sampling = None
