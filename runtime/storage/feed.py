"""The node's subscription to one store's published commits: one connection, every channel
of the replicas the node holds on that store.

A connection in subscribed mode only hears: ``message`` (a commit on a channel), the
confirmations of ``SUBSCRIBE``/``UNSUBSCRIBE``, and ``pong``. The feed pings it every
``ping_interval``; a pong answers a ping sent at a known time, and Redis sends it after every
message published before it read that ping, so when the pong of a ping sent at T arrives, the
node has heard every commit made before T: ``confirmed`` is that T, and a replica that has
applied all it heard is current as of it (``Replicas`` bounds staleness with it). A ping
unanswered for ``dead_after`` (a frozen path: no reset ever comes) ends the connection.

Whatever ends the connection, every channel's messages may have been missed: the listener
hears ``feed_lost`` (each replica reloads once the feed is back) and the feed reconnects,
with backoff, while anyone still listens. On a Redis Cluster the connection goes to the node
the URL names: classic ``PUBLISH`` reaches subscribers on every node of the cluster (over the
cluster bus: docs/replicas.md says what that costs).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any, Protocol

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

from ..base.errors import StorageUnavailable

log = logging.getLogger("runtime.feed")


class FeedListener(Protocol):
    """Who hears the feed (host/replica.Replicas)."""

    def published(self, channel: str, data: bytes) -> None: ...
    def feed_lost(self, feed: Feed) -> None: ...


class Feed:
    """One subscribed connection to a store's Redis."""

    def __init__(
        self,
        url: str,
        listener: FeedListener,
        ping_interval: float,
        dead_after: float,
        connect_timeout: float = 5.0,
    ) -> None:
        self.url = url
        self.listener = listener
        self.ping_interval = ping_interval
        self.dead_after = dead_after
        self.connect_timeout = connect_timeout
        #: Channels wanted, and the confirmations awaited for them.
        self.channels: set[str] = set()
        self._confirming: dict[str, list[asyncio.Future[None]]] = {}
        self._conn: AbstractConnection | None = None
        self._pings: deque[float] = deque()  # when each unanswered ping was sent
        #: Monotonic time of the last answered ping's sending: every commit published
        #: before it has been heard. 0: not live.
        self.confirmed = 0.0
        self._task: asyncio.Task[None] | None = None
        self._up: asyncio.Future[None] | None = None
        self._closed = False
        #: How many times the connection was lost (the metrics' "reloads" follow it).
        self.losses = 0

    @property
    def live(self) -> bool:
        return self._conn is not None and self.confirmed > 0

    async def subscribe(self, channel: str) -> None:
        """Listen on ``channel``; returns once Redis confirmed it (commits published from then
        on will be heard, or the feed will say it lost them)."""
        self.channels.add(channel)
        self._start()
        conn = await self._connected()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirming.setdefault(channel, []).append(future)
        try:
            await conn.send_command("SUBSCRIBE", channel, check_health=False)
            await asyncio.wait_for(asyncio.shield(future), self.connect_timeout)
        except (redis_errors.RedisError, OSError, TimeoutError) as exc:
            raise StorageUnavailable(f"could not subscribe to a replica's channel: {exc}") from None

    def unsubscribe(self, channel: str) -> None:
        self.channels.discard(channel)
        conn = self._conn
        if conn is not None:
            task = asyncio.get_running_loop().create_task(self._send(conn, "UNSUBSCRIBE", channel))
            task.add_done_callback(_quiet)

    async def close(self) -> None:
        self._closed = True
        self.channels.clear()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # ------------------------------------------------------------------ the connection

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._up = asyncio.get_running_loop().create_future()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="replica-feed")

    async def _connected(self) -> AbstractConnection:
        if self._conn is not None:
            return self._conn
        assert self._up is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._up), self.connect_timeout)
        except TimeoutError:
            raise StorageUnavailable("the replicas' feed could not reach Redis") from None
        assert self._conn is not None
        return self._conn

    async def _run(self) -> None:
        """Connect, listen and ping until closed or nobody listens; after a loss, again."""
        delay = 0.05
        while not self._closed and self.channels:
            client: Any = Redis.from_url(self.url)
            pool = client.connection_pool
            conn: AbstractConnection = pool.connection_class(
                **{**pool.connection_kwargs, "socket_timeout": None, "protocol": 2}
            )
            try:
                await asyncio.wait_for(conn.connect(), self.connect_timeout)  # type: ignore[no-untyped-call]
                for channel in self.channels:  # (all of them again, after a loss)
                    await conn.send_command("SUBSCRIBE", channel, check_health=False)
                self._conn, self._pings = conn, deque()
                self.confirmed = time.monotonic()  # (nothing published before now is owed)
                if self._up is not None and not self._up.done():
                    self._up.set_result(None)
                delay = 0.05
                pinger = asyncio.get_running_loop().create_task(self._ping(conn))
                try:
                    await self._listen(conn)
                finally:
                    pinger.cancel()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # (any failure: the same recovery)
                if self._conn is not None:
                    log.warning("the replicas' feed from Redis was lost (%s); reconnecting", exc)
                elif self._up is not None and not self._up.done():  # (could not connect)
                    self._up.set_exception(StorageUnavailable(f"Redis out of reach: {exc}"))
                    self._up.exception()  # (retrieved: each waiter raises it itself)
            finally:
                lost = self._conn is not None
                self._conn, self.confirmed = None, 0.0
                await conn.disconnect(nowait=True)
                await client.aclose()
                for waiting in self._confirming.values():
                    for future in waiting:
                        if not future.done():
                            future.set_exception(StorageUnavailable("the feed was lost"))
                self._confirming.clear()
                if lost and not self._closed:
                    self.losses += 1
                    self.listener.feed_lost(self)
            if self._up is None or self._up.done():
                self._up = asyncio.get_running_loop().create_future()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _listen(self, conn: AbstractConnection) -> None:
        while True:
            reply = await conn.read_response()
            if not isinstance(reply, list) or not reply:
                continue
            kind = bytes(reply[0])
            if kind == b"message" and len(reply) == 3:
                self.listener.published(bytes(reply[1]).decode(), bytes(reply[2]))
            elif kind == b"pong":
                if self._pings:
                    self.confirmed = self._pings.popleft()
            elif kind == b"subscribe" and len(reply) >= 2:
                for future in self._confirming.pop(bytes(reply[1]).decode(), []):
                    if not future.done():
                        future.set_result(None)

    async def _ping(self, conn: AbstractConnection) -> None:
        while True:
            if self._pings and time.monotonic() - self._pings[0] > self.dead_after:
                await conn.disconnect(nowait=True)  # (the reader then fails: a loss)
                return
            self._pings.append(time.monotonic())
            await conn.send_command("PING", check_health=False)
            await asyncio.sleep(self.ping_interval)

    async def _send(self, conn: AbstractConnection, *args: str) -> None:
        await conn.send_command(*args, check_health=False)


def _quiet(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # (a lost connection says so through the reader)
