"""Waiting room: a strongly consistent admission counter in front of a busy site.

``app`` is the App the suite mounts (at /waiting-room), with settings read from
``WAITING_ROOM_*``; ``make_app(config)`` is the same app with other settings (tests use it).
Its node middleware (gates.py) lets a room stand in front of another app of the node.
"""

from __future__ import annotations

from pathlib import Path

from runtime import App

from .api import routes as api_routes
from .config import WaitingRoomConfig
from .gates import GateDirectory, gate
from .names import GATES, ROOMS, SHARDS
from .room import WaitingRoom
from .routes import routes as visitor_routes
from .shard import RoomShard

app = App(
    name="waiting-room",
    title="Waiting room",
    description="Queue visitors in front of a busy site: one exact count of who is in.",
    objects={ROOMS: WaitingRoom, SHARDS: RoomShard, GATES: GateDirectory},
    routes=[*visitor_routes, *api_routes],
    settings=WaitingRoomConfig,
    templates=Path(__file__).parent / "templates",
    static="waiting_room",
    node_middleware=[gate],
    live={ROOMS: "rooms open", "sockets": "pages waiting or watching"},
)


def make_app(config: WaitingRoomConfig | None = None) -> App:
    """The waiting room with ``config`` (default: read from the environment when mounted)."""
    return app.with_settings(config or WaitingRoomConfig)


__all__ = ["GateDirectory", "RoomShard", "WaitingRoom", "WaitingRoomConfig", "app", "make_app"]
