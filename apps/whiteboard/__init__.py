"""Whiteboard: a CRDT board per object over the standard y-websocket protocol.

``make_app(config)`` builds the App with its settings; ``app`` is the one the suite mounts,
configured from the environment (``WHITEBOARD_MAX_UPDATE_BYTES``, ...).
"""

from __future__ import annotations

from runtime import App

from .board import Board
from .config import WhiteboardConfig
from .links import BOARDS, KEYS, KeyRing
from .routes import routes


def make_app(config: WhiteboardConfig | None = None) -> App:
    config = config or WhiteboardConfig.from_env()
    board = type("Board", (Board,), {"config": config})
    return App(
        name="whiteboard",
        title="Whiteboard",
        description="Draw together live: shapes, cursors, undo, view-only links, PNG and SVG.",
        objects={BOARDS: board, KEYS: KeyRing},
        routes=routes,
    )


app = make_app()

__all__ = ["Board", "KeyRing", "WhiteboardConfig", "app", "make_app"]
