"""A small client of the lobby's JSON interface, for the integration and cluster tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Message = dict[str, Any]


def inner(state: Message) -> Message:
    """A lobby's state message carries the lobby under "lobby"; a game's is flat."""
    lobby = state.get("lobby")
    return dict(lobby) if isinstance(lobby, dict) else state


class Sock:
    """One JSON WebSocket, read by a background task: ``next``/``until`` take messages in
    order; ``state`` looks at the latest state that arrived."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.seen: list[Message] = []
        self.last_state: Message | None = None
        self.queue: asyncio.Queue[Message | ConnectionClosed] = asyncio.Queue()
        self.changed = asyncio.Event()
        self.reader = asyncio.get_running_loop().create_task(self.read())

    @classmethod
    async def open(cls, url: str) -> Sock:
        return cls(await connect(url, open_timeout=10))

    async def read(self) -> None:
        try:
            async for data in self.ws:
                message: Message = json.loads(data)
                self.seen.append(message)
                if message.get("type") == "state":
                    self.last_state = inner(message)
                    self.changed.set()
                self.queue.put_nowait(message)
            await self.ws.recv()  # (a normal close ends the loop; recv() raises it)
        except ConnectionClosed as exc:
            self.queue.put_nowait(exc)

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def next(self, timeout: float = 5.0) -> Message:
        item = await asyncio.wait_for(self.queue.get(), timeout)
        if isinstance(item, ConnectionClosed):
            self.queue.put_nowait(item)  # (every later read sees the close too)
            raise item
        return item

    async def until(self, predicate: Callable[[Message], bool], timeout: float = 5.0) -> Message:
        """The next message that satisfies ``predicate`` (others are skipped)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.next(max(0.01, deadline - loop.time()))
            if predicate(message):
                return message

    async def expect(self, kind: str, timeout: float = 5.0) -> Message:
        return await self.until(lambda m: m["type"] == kind, timeout)

    async def state(
        self, predicate: Callable[[Message], bool] = lambda s: True, timeout: float = 5.0
    ) -> Message:
        """The latest state (a lobby's "lobby", or a game's) once it satisfies ``predicate``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.last_state is None or not predicate(self.last_state):
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), max(0.01, deadline - loop.time()))
        return self.last_state

    async def error(self, timeout: float = 5.0) -> str:
        return str((await self.expect("error", timeout))["error"])

    async def closed(self, timeout: float = 5.0) -> tuple[int, str]:
        """Wait for the server to close the socket; its code and reason."""
        try:
            while True:
                await self.next(timeout)
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            return (rcvd.code, rcvd.reason) if rcvd else (1006, "")

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader


async def create_lobby(
    http: str, name: str = "Test lobby", public: bool = True, max_players: int = 4
) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=http, timeout=10) as client:
        r = await client.post(
            "/lobby/api/lobbies", json={"name": name, "public": public, "max_players": max_players}
        )
        assert r.status_code == 201, r.text
        return r.json()["lobby"], r.json()["code"]


class Player:
    """A member of a lobby, and (once a game starts) a seat at its game."""

    def __init__(self, lobby: Sock, welcome: Message) -> None:
        self.lobby = lobby
        self.id: str = welcome["player"]
        self.token: str = welcome["token"]
        self.game: Sock | None = None
        self.game_token: str | None = None

    @classmethod
    async def join(cls, ws_base: str, lobby: str, name: str) -> Player:
        sock = await Sock.open(f"{ws_base}/lobby/ws/{lobby}")
        await sock.send(type="join", name=name)
        return cls(sock, await sock.expect("welcome"))

    @classmethod
    async def resume(cls, ws_base: str, lobby: str, token: str) -> Player:
        sock = await Sock.open(f"{ws_base}/lobby/ws/{lobby}")
        await sock.send(type="resume", token=token)
        message = await sock.until(lambda m: m["type"] in ("welcome", "error"))
        if message["type"] == "error":
            raise LookupError(message["error"])
        return cls(sock, message)

    async def sit(self, ws_base: str, game: str, token: str | None = None) -> Sock:
        """Open the game's socket with this player's seat token; returns it after the
        first state."""
        token = token or self.game_token
        self.game = await Sock.open(f"{ws_base}/lobby/ws/game/{game}?token={token}")
        await self.game.expect("state")
        return self.game

    async def move(self, column: int, watcher: Sock | None = None) -> Message:
        """Drop a piece and wait until the move shows (on ``watcher``, or our own socket)."""
        assert self.game is not None
        sock = watcher or self.game
        before = sock.last_state["moves"] if sock.last_state else 0
        await self.game.send(type="move", column=column)
        return await sock.state(lambda s: s["moves"] > before)
