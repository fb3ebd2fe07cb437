"""Chat: rooms, history, per-address rate limiting, hibernation; the edge chat demo's protocol.

``app`` is the App the suite mounts, with settings read from ``CHAT_*``; ``make_app(config)``
is the same app with other settings (tests use it).
"""

from __future__ import annotations

from pathlib import Path

from runtime import App

from .config import ChatConfig
from .limiter import RateLimiter
from .room import LIMITERS, ChatRoom
from .routes import ROOMS, routes

app = App(
    name="chat",
    title="Chat",
    description="Public and private rooms with history, live presence and rate limiting.",
    objects={ROOMS: ChatRoom, LIMITERS: RateLimiter},
    routes=routes,
    settings=ChatConfig,
    templates=Path(__file__).parent / "templates",
    live={ROOMS: "rooms open", "sockets": "people connected"},
    static="chat",
)


def make_app(config: ChatConfig | None = None) -> App:
    """The chat with ``config`` (default: read from the environment when mounted)."""
    return app.with_settings(config or ChatConfig)


__all__ = ["ChatConfig", "ChatRoom", "RateLimiter", "app", "make_app"]
