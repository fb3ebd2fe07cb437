"""Chat: rooms, history, per-IP rate limiting, hibernation; the edge chat demo's protocol.

``make_app(config)`` builds the App with its settings; ``app`` is the one the suite mounts,
configured from the environment (``CHAT_RATE_LIMIT``, ``CHAT_HISTORY``, ...).
"""

from __future__ import annotations

from runtime import App

from .config import ChatConfig
from .limiter import RateLimiter
from .room import LIMITERS, ChatRoom
from .routes import ROOMS, routes


def make_app(config: ChatConfig | None = None) -> App:
    config = config or ChatConfig.from_env()
    room = type("ChatRoom", (ChatRoom,), {"config": config})
    limiter = type(
        "RateLimiter",
        (RateLimiter,),
        {"interval": config.rate_interval, "grace": config.rate_grace},
    )
    return App(
        name="chat",
        title="Chat",
        description="Public and private rooms with history, live presence and rate limiting.",
        objects={ROOMS: room, LIMITERS: limiter},
        routes=routes,
    )


app = make_app()

__all__ = ["ChatConfig", "ChatRoom", "RateLimiter", "app", "make_app"]
