"""The storage API an object calls (``self.storage``): get, put, delete, list, transactions,
the alarm. It is a thin face over the object's state on its node (state.py), which holds the
cache and the batches on their way to Redis, and which only the runtime sees.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Protocol

from ..base import codec
from ..base.errors import InvalidValue
from .batch import Raw, WriteBatch


class StateView(Protocol):
    """What the storage API reads and writes through: the primary's state (state.py), or a
    replica's copy (replica.py), which refuses every write."""

    async def get_raw(self, key: str, overlay: WriteBatch | None) -> Raw: ...
    async def get_raws(self, keys: list[str], overlay: WriteBatch | None) -> dict[str, Raw]: ...
    async def alarm_raw(self, overlay: WriteBatch | None) -> bytes | None: ...
    async def list_raw(
        self,
        overlay: WriteBatch | None,
        start: str | None,
        end: str | None,
        prefix: str | None,
        reverse: bool,
        limit: int | None,
    ) -> list[tuple[str, bytes]]: ...
    async def sync(self) -> None: ...
    def target(self) -> WriteBatch: ...
    def check_writable(self) -> None: ...
    def key(self, key: object, what: str = "key") -> str: ...
    def keys(self, keys: Iterable[str]) -> list[str]: ...
    def value(self, value: Any) -> bytes: ...
    def staged(self, entries: Mapping[str, Any]) -> dict[str, Raw]: ...


class _Operations:
    """The operations a Storage and a Transaction share; subclasses say where writes go."""

    _state: StateView
    _overlay: WriteBatch | None = None

    def _target(self) -> WriteBatch:
        raise NotImplementedError

    async def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        raw = await self._state.get_raw(self._state.key(key), self._overlay)
        return default if raw is None else codec.decode(raw)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The stored values of ``keys``; absent keys are left out."""
        wanted = self._state.keys(keys)
        raws = await self._state.get_raws(wanted, self._overlay)
        return {k: codec.decode(v) for k in wanted if (v := raws[k]) is not None}

    async def list(
        self,
        *,
        start: str | None = None,
        end: str | None = None,
        prefix: str | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """Keys in ``[start, end)`` starting with ``prefix``, in key order, with values."""
        raws = await self._state.list_raw(self._overlay, start, end, prefix, reverse, limit)
        return {k: codec.decode(v) for k, v in raws}

    async def put(self, key: str, value: Any) -> None:
        k, v = self._state.key(key), self._state.value(value)  # check before writing
        self._target().entries[k] = v

    async def put_many(self, entries: Mapping[str, Any]) -> None:
        """Store ``entries``, all or none: every one is checked first, and they commit with
        the rest of the event's writes."""
        staged = self._state.staged(entries)
        self._target().entries.update(staged)

    async def delete(self, key: str) -> bool:
        """Delete ``key``; True if it existed."""
        k = self._state.key(key)
        existed = await self._state.get_raw(k, self._overlay) is not None
        self._target().entries[k] = None
        return existed

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete ``keys``; returns how many existed."""
        wanted = self._state.keys(keys)
        raws = await self._state.get_raws(wanted, self._overlay)
        batch = self._target()
        for k in wanted:
            batch.entries[k] = None
        return sum(1 for k in wanted if raws[k] is not None)

    async def get_alarm(self) -> float | None:
        """When the alarm is due, in seconds since the epoch, or None."""
        raw = await self._state.alarm_raw(self._overlay)
        return None if raw is None else codec.decode(raw)[0] / 1000

    async def set_alarm(self, when: float | datetime) -> None:
        """Run ``alarm()`` at ``when`` (seconds since the epoch, or an aware datetime)."""
        value = codec.encode([_alarm_ms(when), 0])  # check before writing
        self._target().set_alarm(value)

    async def delete_alarm(self) -> None:
        self._target().set_alarm(None)


class Storage(_Operations):
    """The API an object sees as ``self.storage``."""

    def __init__(self, state: StateView) -> None:
        self._state = state

    def _target(self) -> WriteBatch:
        return self._state.target()

    async def delete_all(self) -> None:
        """Delete every key and the alarm."""
        self._state.target().clear_all()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """All-or-nothing writes: applied when the block exits normally, dropped if it raises
        or calls ``rollback()``. Reads inside see the transaction's own writes."""
        txn = Transaction(self._state)
        yield txn
        if not txn.rolled_back and txn.overlay:
            self._state.target().absorb(txn.overlay)

    async def sync(self) -> None:
        """Wait until every write made so far (this event's too) is committed to Redis."""
        await self._state.sync()


class Transaction(_Operations):
    """Reads and writes inside ``async with storage.transaction() as txn``."""

    def __init__(self, state: StateView) -> None:
        self._state = state
        self._overlay = self.overlay = WriteBatch()
        self.rolled_back = False

    def rollback(self) -> None:
        """Drop every write of this transaction (the block goes on, writing nothing more)."""
        self.rolled_back = True
        self._overlay = self.overlay = WriteBatch()

    def _target(self) -> WriteBatch:
        if self.rolled_back:
            raise InvalidValue("this transaction was rolled back; it takes no more writes")
        self._state.check_writable()
        return self.overlay


def _alarm_ms(when: float | datetime) -> int:
    """Milliseconds since the epoch for an alarm time; a clear error for anything else."""
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise InvalidValue("set_alarm() needs a timezone-aware datetime")
        when = when.timestamp()
    if not isinstance(when, int | float) or isinstance(when, bool) or when != when:
        raise InvalidValue("set_alarm() takes seconds since the epoch or a datetime")
    if abs(when) > 1e11:
        raise InvalidValue("set_alarm() takes seconds since the epoch, not milliseconds")
    return int(when * 1000)
