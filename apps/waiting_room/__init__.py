"""Waiting room: a strongly consistent admission counter in front of a busy site.

``app`` is the App the suite mounts (at /waiting-room), with settings read from
``WAITING_ROOM_*``; ``make_app(config)`` is the same app with other settings (tests use it).
Its node middleware (gates.py) lets a room stand in front of another app of the node.
docs/waiting-room.md explains it whole.

The parts:

    names.py            the namespaces (ROOMS, SHARDS, GATES)
    config.py           WaitingRoomConfig: the app's settings on a node (WAITING_ROOM_*)
    room_settings.py    RoomSettings: a room's own settings, checked field by field
    effects.py          every effect the rules below return, and the Status a visitor is told
    rules.py            RoomRules: visitors, the line, both limits, events; sans I/O
    leasing.py          slot leasing, sans I/O: the room's ledger, and ShardRules
    line.py, window.py, deadlines.py    the line, the rate window, pending times
    waiting_room.py     WaitingRoom: the object that carries RoomRules' effects out
    replica.py          a WaitingRoom's read replica: its rules follow the commits
    pages.py            waiting pages watched on replicas, and the room's record of them
    presence.py         which nodes report which visitors' open pages, while fresh; sans I/O
    admin.py            the admin page's socket, for a WaitingRoom
    room_shard.py       RoomShard: the object that carries ShardRules' effects out
    gate_directory.py   GateDirectory: which room stands in front of which path
    gates.py            the gate (node middleware) and each node's copy of the directory
    client.py           how routes and the gate reach the object that decides a visit
    cookies.py          the visitor's signed cookie
    versions.py         the room's version a client carries (read-your-writes)
    routes.py, api.py   the visitor's pages; the operator's JSON API and admin page
"""

from __future__ import annotations

from pathlib import Path

from runtime import App

from .api import routes as api_routes
from .config import WaitingRoomConfig
from .gate_directory import GateDirectory
from .gates import gate
from .names import GATES, ROOMS, SHARDS
from .room_shard import RoomShard
from .routes import routes as visitor_routes
from .waiting_room import WaitingRoom

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
