"""The reference apps. ``SUITE`` is what ``python -m runtime serve`` mounts by default."""

from __future__ import annotations

from runtime.server import App

#: Apps land here as they are built (chat, whiteboard, waiting room, lobby).
SUITE: list[App] = []
