"""One connection of the script batcher's own to a single Redis: a round trip is one write,
and its replies are parsed as they arrive and handed back in order.

redis-py opens the connection (URL, password, TLS, database, protocol version: its handshake
is the one every other client of the node uses), then the :class:`Pipe` takes over its
transport as an asyncio protocol. The replies of a round trip are parsed by hiredis inside
``data_received`` and the trip's callback is called there, in the same turn of the event
loop: no task, stream reader, future or timeout context per round trip. redis-py's streams
cost the commit path about 18 µs of CPU per round trip on the project's machine (the serial
round trip of a script fell from ~50 to ~32 µs: docs/performance.md).

A pipe carries one round trip at a time (the batcher keeps several pipes for several trips).
When anything goes wrong on it (the server closes it, a reply says the server cannot serve,
no reply within the trip's deadline, a reply nobody asked for), the pipe closes and the trip
in flight hears the error: a pipe is never used again after a failure, so no reply is ever
read as another call's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import hiredis
from redis import exceptions as redis_errors
from redis._parsers import BaseParser
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection

#: A trip's callback gets its replies in order (an error reply as its exception), or the
#: exception that ended the pipe first.
Replied = Callable[[list[Any] | BaseException], None]


class Pipe(asyncio.Protocol):
    """A connection to Redis that runs one round trip at a time (see the module)."""

    def __init__(
        self, writer: asyncio.StreamWriter, encoding: str | None, errors: str = "strict"
    ) -> None:
        # (the writer is kept only because it closes its transport when it is collected)
        self._writer = writer
        self._transport = writer.transport
        self._reader = hiredis.Reader(
            protocolError=redis_errors.InvalidResponse,
            replyError=BaseParser.parse_error,
            encoding=encoding,
            errors=errors,
        )
        self._expected = 0
        self._replies: list[Any] = []
        self._replied: Replied | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False

    @classmethod
    async def open(cls, redis: Redis) -> Pipe:
        """A new connection made by ``redis``'s pool settings, without its per-read timer
        (a trip has a deadline of its own)."""
        pool = redis.connection_pool
        conn: AbstractConnection = pool.connection_class(
            **{**pool.connection_kwargs, "socket_timeout": None}
        )
        await conn.connect()  # type: ignore[no-untyped-call]
        # redis-py keeps the transport behind its stream writer; nothing is buffered in its
        # reader once its handshake is done (it read every reply it asked for).
        writer = getattr(conn, "_writer", None)
        reader = getattr(conn, "_reader", None)
        parsed = getattr(getattr(conn, "_parser", None), "_reader", None)  # (hiredis')
        leftover = parsed is not None and hasattr(parsed, "has_data") and parsed.has_data()
        if writer is None or reader is None or getattr(reader, "_buffer", None) or leftover:
            await conn.disconnect(nowait=True)
            raise redis_errors.ConnectionError("redis-py's connection cannot be taken over")
        encoder = conn.encoder
        encoding = encoder.encoding if encoder.decode_responses else None
        pipe = cls(writer, encoding, encoder.encoding_errors)
        writer.transport.set_protocol(pipe)
        # The transport is the pipe's now: redis-py's object must not close it when it is
        # collected (it would, seeing its writer still set).
        conn._writer = conn._reader = None
        return pipe

    @property
    def busy(self) -> bool:
        return self._replied is not None

    def send(self, data: list[bytes], replies: int, timeout: float, replied: Replied) -> None:
        """Write one round trip (``replies`` commands, RESP-encoded in ``data``); ``replied``
        is called once, with the replies or the error that closed the pipe."""
        assert not self.busy and not self.closed
        self._expected = replies
        self._replies = []
        self._replied = replied
        self._timer = asyncio.get_running_loop().call_later(timeout, self._expired, timeout)
        self._transport.writelines(data)

    def close(self, error: BaseException | None = None) -> None:
        """Close the connection; a trip in flight hears ``error`` (or that it was closed)."""
        if not self.closed:
            self.closed = True
            self._transport.close()
        self._end(error or redis_errors.ConnectionError("the connection to Redis was closed"))

    # ------------------------------------------------------------ asyncio.Protocol

    def data_received(self, data: bytes) -> None:
        # The whole chunk is parsed before the trip hears its replies: its callback may send
        # the next trip on this pipe, and nothing left over may be read as that one's.
        reader = self._reader
        done: list[Any] | None = None
        try:
            reader.feed(data)
            while (reply := reader.gets()) is not False:
                if isinstance(reply, redis_errors.ConnectionError):
                    raise reply  # (LOADING and its kind: the server cannot serve at all)
                if self._replied is None or done is not None:
                    raise redis_errors.InvalidResponse("Redis sent a reply nobody asked for")
                self._replies.append(reply)
                if len(self._replies) == self._expected:
                    done, self._replies = self._replies, []
            if done is not None and reader.has_data():
                raise redis_errors.InvalidResponse("Redis sent more than was asked for")
        except Exception as exc:  # (a protocol error included: the pipe cannot go on)
            self.close(exc)
            return
        if done is not None:
            self._finish(done)

    def eof_received(self) -> bool | None:
        self.close(redis_errors.ConnectionError("Redis closed the connection"))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        cause = f": {exc}" if exc is not None else ""
        self._end(redis_errors.ConnectionError(f"the connection to Redis was lost{cause}"))

    # ------------------------------------------------------------ internals

    def _expired(self, timeout: float) -> None:
        self._timer = None
        error = f"no reply within {timeout:g} s; the connection was closed"
        self.close(redis_errors.TimeoutError(error))

    def _finish(self, result: list[Any] | BaseException) -> None:
        replied, self._replied = self._replied, None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if replied is not None:
            try:
                replied(result)
            except Exception as exc:  # (a bug in the caller's callback: not the pipe's)
                asyncio.get_running_loop().call_exception_handler(
                    {"message": "a Redis round trip's callback failed", "exception": exc}
                )

    def _end(self, error: BaseException) -> None:
        if self._replied is not None:
            self._finish(error)
