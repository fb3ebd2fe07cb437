"""A y-websocket client for tests: a real WebSocket, our protocol codec, and a Yjs document
from either pycrdt or y-py (an independent binding of an older Yrs), behind one interface."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import y_py
from pycrdt import Doc, Map
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from apps.whiteboard import protocol


class PycrdtDoc:
    def __init__(self) -> None:
        self.doc = Doc()
        self.shapes = self.doc.get("shapes", type=Map)

    def state(self) -> bytes:
        return self.doc.get_state()

    def diff(self, state: bytes = b"\x00") -> bytes:
        return self.doc.get_update(state)

    def apply(self, update: bytes) -> None:
        self.doc.apply_update(update)

    def add(self, key: str, value: Any) -> bytes:
        """Set shapes[key] = value; the update that made."""
        before = self.state()
        self.shapes[key] = Map(value) if isinstance(value, dict) else value
        return self.diff(before)

    def remove(self, key: str) -> bytes:
        before = self.state()
        del self.shapes[key]
        return self.diff(before)

    def names(self) -> set[str]:
        return set(self.shapes.keys())


class YpyDoc:
    def __init__(self) -> None:
        self.doc = y_py.YDoc()
        self.shapes = self.doc.get_map("shapes")

    def state(self) -> bytes:
        return bytes(y_py.encode_state_vector(self.doc))

    def diff(self, state: bytes = b"\x00") -> bytes:
        return bytes(y_py.encode_state_as_update(self.doc, state))

    def apply(self, update: bytes) -> None:
        y_py.apply_update(self.doc, update)

    def add(self, key: str, value: Any) -> bytes:
        before = self.state()
        with self.doc.begin_transaction() as txn:
            # (y-py 0.6 cannot nest a prelim array inside a prelim map; plain values are fine)
            self.shapes.set(txn, key, y_py.YMap(value) if isinstance(value, dict) else value)
        return self.diff(before)

    def names(self) -> set[str]:
        return set(self.shapes.keys())


class YClient:
    """One y-websocket session: answers the server's step 1, applies what arrives."""

    def __init__(self, ws: ClientConnection, doc: PycrdtDoc | YpyDoc) -> None:
        self.ws = ws
        self.doc = doc
        self.synced = asyncio.Event()
        self.denied: str | None = None
        self.awareness: dict[int, Any] = {}  # remote client id -> state (None: gone)
        self.received: list[protocol.Message] = []
        self.changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, doc: PycrdtDoc | YpyDoc | None = None, **kwargs: Any) -> YClient:
        client = cls(await connect(url, **kwargs), doc or PycrdtDoc())
        await client.ws.send(protocol.sync(protocol.STEP1, client.doc.state()))
        return client

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                assert isinstance(frame, bytes), "the server sends binary frames only"
                message = protocol.decode(frame)
                self.received.append(message)
                if isinstance(message, protocol.Sync):
                    if message.step == protocol.STEP1:
                        await self.ws.send(
                            protocol.sync(protocol.STEP2, self.doc.diff(message.data))
                        )
                    else:
                        self.doc.apply(message.data)
                        if message.step == protocol.STEP2:
                            self.synced.set()
                elif isinstance(message, protocol.Awareness):
                    for entry in message.entries:
                        self.awareness[entry.client] = json.loads(entry.state)
                elif isinstance(message, protocol.Auth):
                    self.denied = message.reason
                self.changed.set()
        except ConnectionClosed:
            pass
        finally:
            self.changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds (checked after each message)."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    async def send_update(self, update: bytes) -> None:
        await self.ws.send(protocol.sync(protocol.UPDATE, update))

    async def add(self, key: str, value: Any) -> None:
        await self.send_update(self.doc.add(key, value))

    async def set_presence(self, client: int, clock: int, state: Any) -> None:
        entry = protocol.AwarenessEntry(client, clock, json.dumps(state))
        await self.ws.send(protocol.awareness([entry]))

    async def close(self) -> None:
        await self.ws.close()
        await self._reader

    async def closed(self, timeout: float = 5.0) -> tuple[int, str]:
        """Wait for the server to close the socket: (code, reason)."""
        await asyncio.wait_for(self._reader, timeout)
        code = self.ws.protocol.close_rcvd
        assert code is not None, "the connection dropped without a close frame"
        return code.code, code.reason
