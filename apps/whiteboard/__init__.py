"""Whiteboard: a CRDT board per object over the standard y-websocket protocol.

``app`` is the App the suite mounts, with settings read from ``WHITEBOARD_*``;
``make_app(config)`` is the same app with other settings (tests use it).
"""

from __future__ import annotations

from pathlib import Path

from runtime import App

from .board import Board
from .config import WhiteboardConfig
from .links import BOARDS, KEYS, KeyRing
from .routes import routes

app = App(
    name="whiteboard",
    title="Whiteboard",
    description="Draw together live: shapes, cursors, undo, view-only links, PNG and SVG.",
    objects={BOARDS: Board, KEYS: KeyRing},
    routes=routes,
    settings=WhiteboardConfig,
    templates=Path(__file__).parent / "templates",
    live={BOARDS: "boards open", "sockets": "people drawing"},
    static="whiteboard",
)


def make_app(config: WhiteboardConfig | None = None) -> App:
    """The whiteboard with ``config`` (default: read from the environment when mounted)."""
    return app.with_settings(config or WhiteboardConfig)


__all__ = ["Board", "KeyRing", "WhiteboardConfig", "app", "make_app"]
