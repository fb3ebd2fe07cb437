"""A client of the chat's WebSocket protocol (docs/chat.md), for tests that reach the chat
from outside a node: through the balancer, or in containers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

Frame = dict[str, Any]


class ChatClient:
    """One chat session on one socket."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, ws_base: str, room: str, **kwargs: Any) -> ChatClient:
        return cls(await connect(f"{ws_base}/chat/api/room/{room}/websocket", **kwargs))

    async def join(self, name: str) -> list[Frame]:
        """Send the name; everything received up to and including ``{"ready": true}``."""
        await self.ws.send(json.dumps({"name": name}))
        got = [await self.next()]
        while not got[-1].get("ready"):
            got.append(await self.next())
        return got

    async def say(self, text: str) -> None:
        await self.ws.send(json.dumps({"message": text}))

    async def next(self, timeout: float = 10) -> Frame:
        frame: Frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return frame

    async def until(self, predicate: Callable[[Frame], bool], timeout: float = 10) -> Frame:
        """The first frame that satisfies ``predicate`` (earlier ones are dropped)."""
        async with asyncio.timeout(timeout):
            while not predicate(frame := await self.next(timeout)):
                pass
        return frame

    async def close(self) -> None:
        await self.ws.close()
