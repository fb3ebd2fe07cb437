"""The ChatRoom object: the room's rules (ChatRules, rules.py) wired to sockets, storage and
alarms.

One object per room. Each socket is one session; its name lives in the socket's attachment
and a named socket carries the tag ``named``, so the roster survives hibernation and a
broadcast reaches exactly the named sessions. Chat messages are stored under
``m/<ISO time>`` (and a count under ``count``); an alarm prunes the history to the newest
``history`` messages.

Rate limiting is per connection, as in the demo (see rate_limiter.py): the connection's cooldown
end lives in its attachment too, so hibernation does not forget it. A refused message gets
the demo's error with an added ``"retry_after"``: whole seconds until the connection may
send again (the page counts them down).
"""

from __future__ import annotations

import json
import logging
import math
import time

from runtime import (
    AlarmInfo,
    DurableObject,
    DurableObjectError,
    Env,
    ObjectContext,
    ObjectWebSocket,
)

from .config import ChatConfig
from .effects import Broadcast, Close, Effect, Named, Send, Store
from .names import LIMITERS
from .rules import BACKLOG, RATE_LIMITED, ChatRules, encode, overflow

log = logging.getLogger("apps.chat")

#: The tag of sockets that have sent their name: broadcasts go to them.
NAMED = "named"


def now_ms() -> int:
    return int(time.time() * 1000)


class ChatRoom(DurableObject):
    """One chat room."""

    def __init__(self, ctx: ObjectContext, env: Env) -> None:
        super().__init__(ctx, env)
        self.config = env.app_settings(ChatConfig)
        self.rules = ChatRules(salt=self.id.hex)
        self.sockets: dict[int, ObjectWebSocket] = {}
        self.count = 0
        for ws in self.get_websockets():  # sockets kept open while the room hibernated
            self.sockets[ws.id] = ws
            kept = ws.attachment or {}
            self.rules.restore(ws.id, kept.get("name"), str(kept.get("id", "")))
        ctx.block_concurrency_while(self.load)

    async def load(self) -> None:
        """Pick the clock and the message count up where the room left them."""
        newest = await self.storage.list(prefix="m/", reverse=True, limit=1)
        for text in newest.values():
            self.rules.last_timestamp = int(json.loads(text)["timestamp"])
        self.count = int(await self.storage.get("count", 0))

    async def history(self) -> list[str]:
        """The last 100 messages, oldest first."""
        newest = await self.storage.list(prefix="m/", reverse=True, limit=BACKLOG)
        return list(reversed(newest.values()))

    # ------------------------------------------------------------- sockets

    async def websocket_connect(self, ws: ObjectWebSocket) -> None:
        """A new session: it hears nothing until it sends its name."""
        history = await self.history()
        self.accept_websocket(ws)
        ws.attachment = {}
        self.sockets[ws.id] = ws
        await self.apply(self.rules.connect(ws.id, history))

    async def websocket_message(self, ws: ObjectWebSocket, message: str | bytes) -> None:
        """A name (first message) or a chat message; refused ones get an {"error"}."""
        if ws.id not in self.rules.sessions:
            return  # closed by us (name too long) while the message was on its way
        cool = float((ws.attachment or {}).get("cool", 0))
        if self.config.rate_limit and time.time() < cool:
            wait = max(1, math.ceil(cool - time.time()))
            ws.send(encode({"error": RATE_LIMITED, "retry_after": wait}))
            return
        history = await self.history() if self.rules.needs_history(ws.id) else None
        await self.apply(self.rules.receive(ws.id, message, now_ms(), history))
        if self.config.rate_limit and not ws.closing:
            await self.cool_down(ws)

    async def websocket_close(self, ws: ObjectWebSocket, code: int, reason: str) -> None:
        """The client left: the others hear {"quit": name}."""
        await self.forget(ws)

    async def websocket_error(self, ws: ObjectWebSocket, error: Exception) -> None:
        """The runtime dropped the socket (a client that stopped reading): same as a quit."""
        await self.forget(ws)

    async def forget(self, ws: ObjectWebSocket) -> None:
        """One departure, one {"quit"}: the runtime tells the room once per socket."""
        self.sockets.pop(ws.id, None)
        # If the room left memory before this socket closed, only its attachment knows it.
        kept = ws.attachment or {}
        await self.apply(self.rules.disconnect(ws.id, kept.get("name"), str(kept.get("id", ""))))

    async def cool_down(self, ws: ObjectWebSocket) -> None:
        """Tell this address's limiter a message went out; keep the cooldown it asks for.
        If the limiter cannot answer, the connection is not held back."""
        address = ws.request.client or "unknown"
        try:
            seconds = await self.env.namespace(LIMITERS).get_by_name(address).spend()
        except DurableObjectError as exc:
            log.warning("rate limiter for %s unavailable: %s", address, exc)
            return
        if seconds > 0 and not (ws.closed or ws.closing):
            ws.attachment = {**(ws.attachment or {}), "cool": time.time() + float(seconds)}

    # ------------------------------------------------------------- effects

    async def apply(self, effects: list[Effect]) -> None:
        """Carry out what the rules decided."""
        for effect in effects:
            if isinstance(effect, Broadcast):
                self.broadcast(effect.text, tag=NAMED)  # encoded once for every socket
            elif isinstance(effect, Send):
                ws = self.sockets.get(effect.session)
                if ws is not None:
                    ws.send(effect.text)
            elif isinstance(effect, Store):
                await self.store(effect)
            elif isinstance(effect, Named):
                ws = self.sockets[effect.session]
                ws.attachment = {**(ws.attachment or {}), "name": effect.name, "id": effect.id}
                ws.tags = [NAMED]
            elif isinstance(effect, Close):
                ws = self.sockets.pop(effect.session)
                ws.close(effect.code, effect.reason)

    async def store(self, effect: Store) -> None:
        """Keep the message; past the history limit, have an alarm prune the oldest."""
        await self.storage.put(effect.key, effect.text)
        self.count += 1
        await self.storage.put("count", self.count)
        if overflow(self.count, self.config.history) and await self.storage.get_alarm() is None:
            await self.storage.set_alarm(time.time() + 1)

    async def alarm(self, info: AlarmInfo) -> None:
        """Prune: keep only the newest ``history`` messages."""
        excess = max(0, self.count - self.config.history)
        if not excess:
            return
        oldest = list(await self.storage.list(prefix="m/", limit=excess))
        await self.storage.delete_many(oldest)
        self.count -= len(oldest)
        await self.storage.put("count", self.count)
