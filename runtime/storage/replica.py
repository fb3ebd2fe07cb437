"""A replica's copy of an object's stored state: every key in memory, loaded whole from a
snapshot (``snapshot.lua``) and kept current by applying the primary's published commits in
version order. Read-only: every write is a ``ReadOnlyWrite`` error before anything changes.

It answers the same reads as the primary's state (state.py), through the same
:class:`~runtime.storage.api.Storage` face, but never from Redis: it holds every key (an
object over the size bounds gets no replica), so a read is a dictionary lookup.

A published commit (``commit.lua``) is msgpack ``[version, time_ms, delete_all, alarm,
[key, value, ...], [deleted key, ...]]``; :func:`decode_commit` checks its shape.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from ..base.config import Settings
from ..base.errors import InvalidValue, ReadOnlyWrite
from .batch import KeyRange, Raw, WriteBatch, key_bytes


@dataclass(frozen=True, slots=True)
class Published:
    """One commit of the primary, as published on the object's channel."""

    version: int
    time_ms: int
    delete_all: bool
    #: b"" leaves the alarm, b"-" deletes it, anything else is its new value.
    alarm: bytes
    puts: dict[str, bytes]
    deletes: list[str]

    @property
    def keys(self) -> frozenset[str]:
        return frozenset((*self.puts, *self.deletes))


def decode_commit(data: bytes) -> Published:
    """A published commit; ValueError when it is not one (the channel is input)."""
    try:
        raw = msgpack.unpackb(data, raw=True)
        version, time_ms, delete_all, alarm, puts, deletes = raw
        if not (isinstance(version, int) and isinstance(time_ms, int) and len(puts) % 2 == 0):
            raise ValueError("bad header")
        pairs = {puts[i].decode(): bytes(puts[i + 1]) for i in range(0, len(puts), 2)}
        return Published(
            version,
            time_ms,
            delete_all == b"1",
            bytes(alarm),
            pairs,
            [bytes(k).decode() for k in deletes],
        )
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a published commit: {exc}") from None


class ReplicaState:
    """Every key of one object, its alarm and its version, as of the last commit applied."""

    def __init__(self, limits: Settings, what: str) -> None:
        self._limits = limits
        self._what = what
        self.entries: dict[str, bytes] = {}
        self.alarm: bytes | None = None
        self.version = 0
        self.size = 0  # bytes of keys and values held
        self._order: list[bytes] | None = None  # keys in byte order, made when listed

    # ------------------------------------------------------------- loading

    def load(self, version: int, alarm: bytes | None, pairs: list[bytes]) -> None:
        """Replace everything with a snapshot (snapshot.lua's reply, after its header)."""
        self.entries = {pairs[i].decode(): pairs[i + 1] for i in range(0, len(pairs), 2)}
        self.size = sum(len(p) for p in pairs)
        self.alarm = alarm
        self.version = version
        self._order = None

    def apply(self, commit: Published) -> None:
        """Apply the next commit (the caller checks it is the next version)."""
        if commit.delete_all:
            self.entries.clear()
            self.size = 0
            self.alarm = None
            self._order = None
        for key, value in commit.puts.items():
            old = self.entries.get(key)
            if old is None:
                self.size += len(key.encode())
                self._order = None  # (a new key: the order is made again when listed)
            else:
                self.size -= len(old)
            self.entries[key] = value
            self.size += len(value)
        for key in commit.deletes:
            old = self.entries.pop(key, None)
            if old is not None:
                self.size -= len(old) + len(key.encode())
                self._order = None
        if commit.alarm == b"-":
            self.alarm = None
        elif commit.alarm:
            self.alarm = commit.alarm
        self.version = commit.version

    # ------------------------------------------------------------- writes

    def refuse(self) -> ReadOnlyWrite:
        return ReadOnlyWrite(
            f"{self._what} is a replica: it only reads (a read-only method or a watching "
            "socket); write through a method that is not read-only. Nothing was stored"
        )

    def target(self) -> WriteBatch:
        raise self.refuse()

    def check_writable(self) -> None:
        raise self.refuse()

    async def sync(self) -> None:
        """Nothing to wait for: a replica holds no writes."""

    # ------------------------------------------------------------- reads

    async def get_raw(self, key: str, overlay: WriteBatch | None) -> Raw:
        return self.entries.get(key)

    async def get_raws(self, keys: list[str], overlay: WriteBatch | None) -> dict[str, Raw]:
        return {k: self.entries.get(k) for k in keys}

    async def alarm_raw(self, overlay: WriteBatch | None) -> bytes | None:
        return self.alarm

    async def list_raw(
        self,
        overlay: WriteBatch | None,
        start: str | None,
        end: str | None,
        prefix: str | None,
        reverse: bool,
        limit: int | None,
    ) -> list[tuple[str, bytes]]:
        for name, bound in (("start", start), ("end", end), ("prefix", prefix)):
            if bound is not None:
                self.key(bound, name)
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise InvalidValue("list(limit=...) must be a positive integer")
        span = KeyRange(start, end, prefix)
        if span.empty:
            return []
        if self._order is None:
            self._order = sorted(key_bytes(k) for k in self.entries)
        order = self._order
        lo = 0 if span.lo is None else bisect_left(order, span.lo)
        hi = len(order) if span.hi is None else bisect_left(order, span.hi, lo)
        chosen = order[lo:hi]
        if reverse:
            chosen.reverse()
        if limit is not None:
            chosen = chosen[:limit]
        out = []
        for k in chosen:
            key = k.decode()
            out.append((key, self.entries[key]))
        return out

    # ------------------------------------------------------------- validation

    def key(self, key: object, what: str = "key") -> str:
        if not isinstance(key, str):
            raise InvalidValue(f"a storage {what} must be a str, not {type(key).__name__}")
        return key

    def keys(self, keys: Iterable[str]) -> list[str]:
        if isinstance(keys, str | bytes):
            raise InvalidValue("pass a list of keys, not a single string")
        return [self.key(k) for k in keys]

    def value(self, value: Any) -> bytes:
        raise self.refuse()

    def staged(self, entries: Mapping[str, Any]) -> dict[str, Raw]:
        raise self.refuse()
