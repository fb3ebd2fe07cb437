"""Chat: rooms, history, per-address rate limiting, hibernation; the edge chat demo's protocol.

``app`` is the App the suite mounts, with settings read from ``CHAT_*``; ``make_app(config)``
is the same app with other settings (tests use it). docs/chat.md explains it whole.

The parts:

    names.py          the namespaces (ROOMS, LIMITERS)
    config.py         ChatConfig: the app's settings (CHAT_*)
    effects.py        what the rules ask the room's object to do (Send, Broadcast, Store, ...)
    rules.py          ChatRules: a room's sessions and messages, sans I/O (frames in, effects out)
    chat_room.py      ChatRoom: the object that carries ChatRules' effects out (sockets, storage,
                      the pruning alarm)
    rate_limiter.py   RateLimiter: one object per client address, and its Allowance rule
    routes.py         the page, POST /api/room, the room's WebSocket
"""

from __future__ import annotations

from pathlib import Path

from runtime import App

from .chat_room import ChatRoom
from .config import ChatConfig
from .names import LIMITERS, ROOMS
from .rate_limiter import RateLimiter
from .routes import routes

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
