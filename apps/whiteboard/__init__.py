"""Whiteboard: a CRDT board per object over the standard y-websocket protocol.

``app`` is the App the suite mounts, with settings read from ``WHITEBOARD_*``;
``make_app(config)`` is the same app with other settings (tests use it). docs/whiteboard.md
explains it whole.

The parts:

    names.py          the namespaces (BOARDS, OLD_VIEW_KEYS)
    config.py         WhiteboardConfig: the app's settings (WHITEBOARD_*)
    protocol.py       the y-websocket codec, sans I/O (bytes in, messages out, and back)
    effects.py        what the rules ask the board's object to do (Send, Persist, Hold, ...)
    rules.py          BoardRules: what a board does with each message, sans I/O (effects out)
    board.py          Board: the object that carries BoardRules' effects out (sockets, the
                      snapshot-and-log storage, the compaction alarm)
    links.py          board names and view links (signed with the runtime's keys)
    old_view_key.py   OldViewKey: the key of view links shared before, until SECRET_KEY rotates
    routes.py         the board list, a board's page, POST /api/boards, the board's WebSocket
"""

from __future__ import annotations

from pathlib import Path

from runtime import App

from .board import Board
from .config import WhiteboardConfig
from .links import keep_old_links
from .names import BOARDS, OLD_VIEW_KEYS
from .old_view_key import OldViewKey
from .routes import routes

app = App(
    name="whiteboard",
    title="Whiteboard",
    description="Draw together live: shapes, cursors, undo, view-only links, PNG and SVG.",
    objects={BOARDS: Board, OLD_VIEW_KEYS: OldViewKey},
    routes=routes,
    settings=WhiteboardConfig,
    templates=Path(__file__).parent / "templates",
    live={BOARDS: "boards open", "sockets": "people drawing"},
    static="whiteboard",
    lifespan=keep_old_links,
)


def make_app(config: WhiteboardConfig | None = None) -> App:
    """The whiteboard with ``config`` (default: read from the environment when mounted)."""
    return app.with_settings(config or WhiteboardConfig)


__all__ = ["Board", "OldViewKey", "WhiteboardConfig", "app", "make_app"]
