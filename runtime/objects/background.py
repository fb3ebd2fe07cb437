"""An object's background work (``ctx.wait_until``): each piece runs outside any event, in a
context of its own, and starts once the event that asked for it has ended.

Why a context of its own: inheriting the event's, the task would put its writes in that
event and open its input gate whenever it called another object. Why after the event: the
event's writes are then in storage's batches, so a ``storage.sync()`` in the work waits for
them too. The record neither hibernates nor leaves memory while any piece runs (it asks
``bool(work)``), and cancels what is left when it goes.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from .gate import _blocking, _current

log = logging.getLogger("runtime.background")
T = TypeVar("T")


class BackgroundWork:
    """The pieces of background work of one object still running."""

    __slots__ = ("_on_done", "_owner", "_tasks")

    def __init__(self, owner: str, log_fields: dict[str, str], on_done: Callable[[], None]):
        self._owner = (owner, log_fields)  # (for the log line of a piece that failed)
        self._on_done = on_done
        self._tasks: set[asyncio.Task[Any]] | None = None  # (most objects never have any)

    def __bool__(self) -> bool:
        return bool(self._tasks)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(list(self._tasks or ()))

    def start(
        self, work: Coroutine[Any, Any, Any], ended: asyncio.Future[None] | None
    ) -> asyncio.Task[Any]:
        """Run ``work`` once ``ended`` (the asking event's end; None: at once)."""
        context = contextvars.copy_context()
        context.run(_current.set, None)
        context.run(_blocking.set, False)
        task = asyncio.get_running_loop().create_task(_after(ended, work), context=context)
        if self._tasks is None:
            self._tasks = set()
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    async def wait(self, timeout: float) -> None:
        """Let the pieces still running finish, for at most ``timeout`` seconds."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)

    def cancel(self) -> None:
        for task in list(self._tasks or ()):
            task.cancel()

    def _done(self, task: asyncio.Task[Any]) -> None:
        if self._tasks is not None:
            self._tasks.discard(task)
        self._on_done()
        if not task.cancelled() and task.exception() is not None:
            owner, fields = self._owner
            log.error(
                "background work of %s failed", owner, exc_info=task.exception(), extra=fields
            )


async def _after(ended: asyncio.Future[None] | None, work: Coroutine[Any, Any, T]) -> T:
    """``work``, started once its event has ``ended``."""
    if ended is not None:
        try:
            await asyncio.shield(ended)
        except BaseException:
            work.close()  # (never started: no "never awaited" warning)
            raise
    return await work
