"""The Lua scripts, registered once per Redis client, and the pipeline that sends them.

Every script lives in ``runtime/lua/<name>.lua`` with a header naming its KEYS, ARGV and return
value. :class:`Scripts` registers each one once with redis-py's ``register_script``.

:class:`ScriptBatcher` is the node's group commit: every script call made during one turn of
the event loop (commits of many objects, cache-miss reads, lease acquisitions) goes to Redis in
one pipelined round trip. While that round trip is in flight, new calls gather for the next.
Per object there is never more than one commit in flight, so order per object is kept.

With a single server (not a cluster), each round trip goes out on a connection the batcher
keeps for itself (pipe.py), as the calls' RESP encoding in one write, and the replies are
parsed in order as they arrive, without a task or a stream per trip: redis-py's pipeline
costs about three times the CPU per call (taking a pooled connection, a timer per read and
per write, packing each command), and the commit path is the node's busiest. redis-py still
makes the connections (URL, password, TLS, database).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from functools import partial
from importlib import resources
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from ..base.errors import StorageUnavailable
from .pipe import Pipe

SCRIPT_NAMES = (
    "acquire",
    "renew",
    "release",
    "commit",
    "read",
    "list",
    "claim_alarms",
    "settle_alarm",
    "index_alarm",
    "snapshot",
    "tell",
)

Arg = str | bytes | int | float


def load_source(name: str) -> str:
    return resources.files("runtime.storage").joinpath("lua", f"{name}.lua").read_text()


class Scripts:
    """One registered script per Lua file."""

    acquire: AsyncScript
    renew: AsyncScript
    release: AsyncScript
    commit: AsyncScript
    read: AsyncScript
    list: AsyncScript
    claim_alarms: AsyncScript
    settle_alarm: AsyncScript
    index_alarm: AsyncScript
    snapshot: AsyncScript
    tell: AsyncScript

    def __init__(self, redis: Redis) -> None:
        for name in SCRIPT_NAMES:
            setattr(self, name, redis.register_script(load_source(name)))


class _Call:
    __slots__ = ("args", "future", "keys", "script", "wire")

    def __init__(
        self,
        script: AsyncScript,
        keys: Sequence[str],
        args: Sequence[Arg],
        future: asyncio.Future[Any],
        wire: list[bytes],
    ) -> None:
        self.script = script
        self.keys = keys
        self.args = args
        self.future = future
        self.wire = wire  # (the call as EVALSHA in RESP, for a single server's pipes)


def _packed(batch: list[_Call]) -> list[bytes]:
    """A round trip's calls as EVALSHA commands, in RESP."""
    packed: list[bytes] = []
    for call in batch:
        packed += call.wire
    return packed


def pack(items: Sequence[Arg]) -> list[bytes]:
    """One command in RESP: an array of bulk strings (numbers as redis-py writes them)."""
    out = [b"*%d\r\n" % len(items)]
    for item in items:
        if isinstance(item, str):
            data = item.encode()
        elif isinstance(item, bytes):
            data = item
        elif isinstance(item, int | float) and not isinstance(item, bool):
            data = repr(item).encode()
        else:  # as redis-py refuses them: a bug in the caller, not something to guess at
            raise TypeError(f"a script argument is str, bytes, int or float, not {item!r}")
        out += (b"$%d\r\n" % len(data), data, b"\r\n")
    return out


class NotSent(Exception):
    """A round trip failed before any of it was written to Redis (wraps the cause)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


def storage_error(exc: BaseException) -> StorageUnavailable:
    """Turn a redis-py failure into the runtime's retryable error, without leaking URLs. A
    call that was never sent (``NotSent``) is known not to have run."""
    if isinstance(exc, NotSent):
        cause = exc.cause
        return StorageUnavailable(
            f"Redis failed: {type(cause).__name__}: {cause} (nothing was sent)",
            may_have_run=False,
        )
    return StorageUnavailable(f"Redis failed: {type(exc).__name__}: {exc}")


class ScriptBatcher:
    """Runs script calls in pipelines: one round trip per event-loop turn, not per call.

    Up to ``max_inflight`` round trips may be in flight at once (each on its own connection):
    a commit made while another round trip waits for Redis' fsync goes out at once instead
    of waiting for it, and Redis, which fsyncs once per turn of its own loop, often takes
    both in one fsync. Order between calls is the callers' to keep, and they do: an object
    has one commit in flight at a time, and a call that depends on another awaits it."""

    def __init__(
        self,
        redis: Redis,
        max_batch: int = 2000,
        observe: Callable[[float], None] | None = None,
        max_inflight: int = 4,
        timeout: float = 5.0,
    ) -> None:
        self.redis = redis
        self.max_batch = max_batch
        self.max_inflight = max_inflight
        #: Told how long each round trip took (the node's metrics).
        self.observe = observe
        self._pending: list[_Call] = []
        self._scheduled = False
        self._inflight = 0
        #: A single server gets round trips on connections of the batcher's own (at most
        #: max_inflight); a cluster's go through redis-py's pipeline, which routes each
        #: call by its keys.
        self._direct = isinstance(redis, Redis)
        self._idle: list[Pipe] = []
        self._pipes: set[Pipe] = set()  # every one open, idle or not
        self._tasks: set[asyncio.Task[None]] = set()  # round trips that await
        self._closed = False
        self.timeout = timeout  # for a whole round trip (redis-py's would be per read)
        #: Round trips made and calls sent, for the benchmarks and tests.
        self.round_trips = 0
        self.calls = 0

    def submit(
        self, script: AsyncScript, keys: Sequence[str], args: Sequence[Arg]
    ) -> asyncio.Future[Any]:
        """Queue one call; the returned future resolves with the script's reply. An
        argument of a type Redis does not take raises TypeError here, in the caller, and
        nothing is queued (it would otherwise fail the round trip of every call with it)."""
        wire = pack(("EVALSHA", script.sha, len(keys), *keys, *args))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append(_Call(script, keys, args, future, wire))
        if not self._scheduled:  # at the end of this turn: everything submitted in it, at once
            self._scheduled = True
            loop.call_soon(self._launch)
        return future

    async def call(self, script: AsyncScript, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        return await self.submit(script, keys, args)

    def _launch(self) -> None:
        self._scheduled = False
        while self._pending and self._inflight < self.max_inflight:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            self._inflight += 1
            self.round_trips += 1
            self.calls += len(batch)
            pipe = self._idle_pipe()
            if pipe is not None:  # the usual case: written now, answered in data_received
                sent = time.monotonic()
                pipe.send(_packed(batch), len(batch), self.timeout,
                          partial(self._replied, pipe, batch, sent))  # fmt: skip
            else:  # a connection to make first, or a cluster's pipeline
                self._spawn(self._send(batch), batch)

    def _spawn(self, work: Coroutine[Any, Any, None], batch: list[_Call]) -> None:
        """Run a round trip that must await (a connection to make, scripts to load again)
        as a task, held here: the loop keeps only weak references to tasks, and one waiting
        for a connection is otherwise reachable from nothing (it would be collected)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(partial(self._ended, batch))

    def _ended(self, batch: list[_Call], _: object) -> None:
        """A round trip's task ended: whatever its calls did not hear (it was cancelled as
        the store closed, say), they hear now; and the next trip may go."""
        self._fail(batch, storage_error(redis_errors.ConnectionError("the round trip stopped")))
        self._landed()

    def _landed(self, _: object = None) -> None:
        self._inflight -= 1
        if self._pending and not self._scheduled:  # what waited for a free round trip
            self._launch()

    def _replied(
        self, pipe: Pipe, batch: list[_Call], sent: float, result: list[Any] | BaseException
    ) -> None:
        """A round trip written by _launch came back (or its pipe failed)."""
        awaits = False
        try:
            if isinstance(result, BaseException):
                self._drop(pipe)
                self._fail(batch, storage_error(result))
                return
            self._reuse(pipe)
            if self.observe is not None:
                self.observe(time.monotonic() - sent)
            if any(isinstance(r, redis_errors.NoScriptError) for r in result):
                awaits = True  # (the task lands the trip when it is done)
                self._spawn(self._complete(batch, result), batch)
                return
            self._settle(batch, result)
        finally:
            if not awaits:
                self._landed()

    async def _send(self, batch: list[_Call]) -> None:
        sent = time.monotonic()
        try:
            results = await self._execute(batch)
            if self.observe is not None:
                self.observe(time.monotonic() - sent)
            if len(results) != len(batch):
                raise RuntimeError(f"{len(results)} replies to {len(batch)} calls")
        except Exception as exc:  # whatever went wrong, no caller may be left waiting
            self._fail(batch, storage_error(exc))
            return
        await self._complete(batch, results)

    async def _complete(self, batch: list[_Call], results: list[Any]) -> None:
        """Settle the calls of a round trip; those refused for a script Redis did not know
        (it lost its script cache: a restart or SCRIPT FLUSH) are loaded and sent again (the
        others ran: they keep their replies, whatever happens)."""
        missing = [i for i, r in enumerate(results) if isinstance(r, redis_errors.NoScriptError)]
        if missing:
            again: list[Any]
            try:
                for script in {id(batch[i].script): batch[i].script for i in missing}.values():
                    await self._load(script)
            except Exception as exc:  # (those calls were refused, and not sent again)
                again = [storage_error(NotSent(exc))] * len(missing)
            else:
                try:
                    again = await self._execute([batch[i] for i in missing])
                except Exception as exc:
                    again = [storage_error(exc)] * len(missing)
            for i, r in zip(missing, again, strict=True):
                results[i] = r
        self._settle(batch, results)

    @staticmethod
    def _settle(batch: list[_Call], results: list[Any]) -> None:
        for call, result in zip(batch, results, strict=True):
            if call.future.done():  # the caller gave up waiting
                continue
            if isinstance(result, StorageUnavailable):
                call.future.set_exception(result)
            elif isinstance(result, Exception):
                call.future.set_exception(storage_error(result))
            else:
                call.future.set_result(result)

    @staticmethod
    def _fail(batch: list[_Call], error: StorageUnavailable) -> None:
        for call in batch:
            if not call.future.done():
                call.future.set_exception(error)

    async def _load(self, script: AsyncScript) -> None:
        """SCRIPT LOAD, tried twice: after a restart the client's pool may hand out a
        connection the server closed (loading a script twice is harmless)."""
        try:
            await self.redis.script_load(script.script)
        except redis_errors.ConnectionError:
            await self.redis.script_load(script.script)

    async def _execute(self, batch: list[_Call]) -> list[Any]:
        if self._direct:
            return await self._round_trip(batch)
        pipe = self.redis.pipeline(transaction=False)
        for call in batch:
            # execute_command, not pipe.evalsha: redis-py's cluster pipeline refuses the
            # latter, yet routes EVALSHA by its first key, which is all one slot here.
            pipe.execute_command("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
        result: list[Any] = await pipe.execute(raise_on_error=False)
        return result

    async def _round_trip(self, batch: list[_Call]) -> list[Any]:
        """The calls in one write on a pipe of our own (pipe.py), awaited; their replies, in
        order (an error reply as its exception). Nothing is ever sent twice: a pipe that
        fails is closed, and the trip's callers hear of it (the scripts are not all
        idempotent: acquiring a lease counts an epoch, claiming alarms hides them a while)."""
        packed = _packed(batch)
        try:
            pipe = await self._ready_pipe()
        except (redis_errors.RedisError, OSError) as exc:  # (not a cancellation)
            raise NotSent(exc) from exc
        answer: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()

        def replied(result: list[Any] | BaseException) -> None:
            if answer.done():
                return
            if isinstance(result, BaseException):
                answer.set_exception(result)
            else:
                answer.set_result(result)

        pipe.send(packed, len(batch), self.timeout, replied)
        try:
            replies = await answer
        except BaseException:
            self._drop(pipe)
            raise
        self._reuse(pipe)
        return replies

    def _idle_pipe(self) -> Pipe | None:
        """An idle pipe fit to send on (one the server closed meanwhile, at a restart, has
        closed itself), if any."""
        while self._idle:
            pipe = self._idle.pop()
            if not pipe.closed:
                return pipe
            self._pipes.discard(pipe)
        return None

    async def _ready_pipe(self) -> Pipe:
        """An idle pipe, else a new one."""
        if self._closed:
            raise redis_errors.ConnectionError("the store was closed")
        pipe = self._idle_pipe()
        if pipe is not None:
            return pipe
        pipe = await Pipe.open(self.redis)
        if self._closed:  # closed while connecting: send nothing
            pipe.close()
            raise redis_errors.ConnectionError("the store was closed")
        self._pipes.add(pipe)
        return pipe

    def _reuse(self, pipe: Pipe) -> None:
        if self._closed or pipe.closed:
            self._drop(pipe)
        else:
            self._idle.append(pipe)

    def _drop(self, pipe: Pipe) -> None:
        self._pipes.discard(pipe)
        pipe.close()

    async def aclose(self) -> None:
        """Close the batcher's own connections, and open no more (the client's pool is the
        store's to close). A trip in flight fails: its connection is closed under it."""
        self._closed = True
        pipes, self._pipes, self._idle = self._pipes, set(), []
        for pipe in pipes:
            pipe.close()
        tasks = list(self._tasks)  # (trips still connecting or loading scripts again)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
