"""The chat's namespaces, declared once (object IDs and stored keys derive from the names:
never rename one)."""

from __future__ import annotations

from runtime import Binding

#: One ChatRoom per room (chat_room.py): named for a public room, unique for a private one.
ROOMS = Binding("chat_room")
#: One RateLimiter per client address (rate_limiter.py).
LIMITERS = Binding("chat_limiter")
