"""An object's stored state on the node that hosts it: a coherent cache over fenced,
coalesced Lua commits, and the bookkeeping the record needs (the alarm that fired, the
batches not yet committed). Apps never see it: they call :class:`~runtime.storage.api.Storage`.

Reads look through the writes not yet committed (a transaction's, the running event's, then
the batches in :mod:`runtime.storage.commits`), then the cache, then Redis through
``read.lua`` / ``list.lua``, which refuse to read for a node that lost the lease. The cache
is always coherent because the live instance is the only writer of its keys; values are
cached encoded and decoded on every read, so mutating a returned value never changes the
cache.

Writes made during an event go to that event's own buffer; when the event ends the buffer
joins the object's open batch in one step (so one event's writes are never split across
commits, and an event that runs while another awaits a call to another object does not see
the other's half-done writes).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from ..base import codec
from ..base.config import Settings
from ..base.errors import Fenced, InvalidValue, StorageLimitExceeded
from .batch import MISSING, UNCHANGED, KeyRange, Raw, WriteBatch, _Marker, key_bytes
from .commits import CommitHost, Commits

_PAGE = 1000

# Aliases, because a ``list`` method would shadow the builtin inside class bodies.
_Keys = list[str]
_Pairs = list[tuple[str, bytes]]
_Layers = list[WriteBatch]


class StateHost(CommitHost, Protocol):
    """What an object's state needs from the record that owns it (see record.py)."""

    settings: Settings

    async def confirm_lease(self) -> None: ...
    def event_batch(self, create: bool) -> WriteBatch | None: ...
    def handed_over(self, seq: int) -> None: ...


class ObjectState:
    """An object's stored state on the node hosting it: the cache, the batches on their
    way to Redis, the alarm's bookkeeping. The record owns it; the instance sees it through
    :class:`~runtime.storage.api.Storage`."""

    def __init__(self, host: StateHost) -> None:
        self._host = host
        self._limits = host.settings
        self._cache: OrderedDict[str, Raw] = OrderedDict()
        self._cache_bytes = 0
        self._complete = False  # True when the cache knows every key (after delete_all)
        self._alarm: bytes | _Marker | None = MISSING  # the committed alarm, when known
        self.commits = Commits(host, self._applied)

    def target(self) -> WriteBatch:
        """Where a write goes: the running event's buffer, or (outside events) the open
        batch, committed on its own at the next turn of the loop."""
        self.commits.raise_if_failed()
        event = self._host.event_batch(True)
        if event is not None:
            return event
        asyncio.get_running_loop().call_soon(self.commits.flush)
        return self.commits.open_batch()

    def tell_replicas(self, message: bytes) -> None:
        """Publish ``message`` to the object's replicas (``tell.lua``): not stored, not
        gated, and heard only by replicas loaded when it goes out, in no promised order."""
        k = self._host.keys
        sent = self._host.batcher.submit(self._host.scripts.tell, (k.tell,), (message,))
        sent.add_done_callback(lambda f: f.cancelled() or f.exception())

    def check_writable(self) -> None:
        """Raise the object's failure, if its commits failed (a transaction's writes)."""
        self.commits.raise_if_failed()

    async def sync(self) -> None:
        """Wait until every write made so far (the running event's too) is committed."""
        event = self._host.event_batch(False)
        if event:
            self.absorb(event)
            event.reset()
            self._host.handed_over(self.commits.latest_seq)  # (the event's writes are in it)
        await self.commits.sync()

    # ------------------------------------------------------- for the record

    @property
    def has_uncommitted(self) -> bool:
        return self.commits.has_uncommitted

    def absorb(self, writes: WriteBatch | None) -> None:
        """Add a finished event's writes to the open batch."""
        self.commits.absorb(writes, self._alarm)

    def clear_fired_alarm(self, fired: bytes) -> None:
        """Delete the alarm that just fired, unless another event sets one meanwhile."""
        batch = self.target()
        batch.alarm = None
        batch.alarm_if = fired

    def retry_alarm(self, due_ms: int, retries: int) -> None:
        self.target().set_alarm(codec.encode([due_ms, retries]))

    async def alarm_record(self) -> tuple[bytes, int, int] | None:
        """(raw value, due ms, retry count) of the alarm, or None."""
        raw = await self.alarm_raw(None)
        if raw is None:
            return None
        due, retries = codec.decode(raw)
        return raw, int(due), int(retries)

    def _applied(self, batch: WriteBatch) -> None:
        """A batch was committed: the cache now reflects it."""
        if batch.delete_all:
            self._cache.clear()
            self._cache_bytes = 0
            self._complete = True
        for key, raw in batch.entries.items():
            self._cache_put(key, raw)
        if batch.alarm is not UNCHANGED:
            self._alarm = batch.alarm
        elif batch.delete_all:
            self._alarm = None

    # ------------------------------------------------------------- reads

    def _layers(self, overlay: WriteBatch | None) -> _Layers:
        event = self._host.event_batch(False)
        return [b for b in (overlay, event) if b is not None] + self.commits.layers()

    def _local(self, key: str, overlay: WriteBatch | None) -> Raw | _Marker:
        for layer in self._layers(overlay):
            raw = layer.lookup(key)
            if raw is not MISSING:
                return raw
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        return None if self._complete else MISSING

    async def _ready_to_read(self) -> None:
        self.commits.raise_if_failed()
        if not self._host.lease.live:
            await self._host.confirm_lease()

    async def alarm_raw(self, overlay: WriteBatch | None) -> bytes | None:
        await self._ready_to_read()
        for layer in self._layers(overlay):
            raw = layer.lookup_alarm()
            if raw is not MISSING:
                return raw  # type: ignore[return-value]
        if self._alarm is MISSING:
            await self._fetch([], with_alarm=True)
        return None if isinstance(self._alarm, _Marker) else self._alarm

    async def get_raw(self, key: str, overlay: WriteBatch | None) -> Raw:
        await self._ready_to_read()
        raw = self._local(key, overlay)
        if raw is MISSING:
            return (await self._fetch([key]))[key]
        return raw  # type: ignore[return-value]

    async def get_raws(self, keys: _Keys, overlay: WriteBatch | None) -> dict[str, Raw]:
        await self._ready_to_read()
        out: dict[str, Raw] = {}
        missing: _Keys = []
        for k in keys:
            raw = self._local(k, overlay)
            if raw is MISSING:
                missing.append(k)
            else:
                out[k] = raw  # type: ignore[assignment]
        step = self._limits.max_batch_keys  # keys per read script call (Lua unpack limit)
        for start in range(0, len(missing), step):
            out.update(await self._fetch(missing[start : start + step]))
        return out

    async def _fetch(self, keys: _Keys, with_alarm: bool = False) -> dict[str, Raw]:
        """Read keys from Redis through the fenced read script; cache what is still current."""
        k = self._host.keys
        reply = await self.commits.unless_failed(
            self._host.batcher.submit(
                self._host.scripts.read,
                (k.lease, k.data, k.alarm),
                (self._host.lease.value, "1" if with_alarm else "0", *keys),
            )
        )
        if not reply[0]:
            raise Fenced("this node lost the object's lease; it cannot read the object's storage")
        out: dict[str, Raw] = {}
        for key, raw in zip(keys, reply[2:], strict=True):
            local = self._local(key, None)  # a write may have landed while we waited
            if local is MISSING:
                self._cache_put(key, raw)
                out[key] = raw
            else:
                out[key] = local  # type: ignore[assignment]
        if with_alarm and self._alarm is MISSING:
            self._alarm = reply[1]
        return out

    async def list_raw(
        self,
        overlay: WriteBatch | None,
        start: str | None,
        end: str | None,
        prefix: str | None,
        reverse: bool,
        limit: int | None,
    ) -> _Pairs:
        for name, bound in (("start", start), ("end", end), ("prefix", prefix)):
            if bound is not None:
                self.key(bound, name)
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise InvalidValue("list(limit=...) must be a positive integer")
        span = KeyRange(start, end, prefix)
        await self._ready_to_read()
        if span.empty:
            return []
        local: dict[str, Raw] = {}
        floor = False
        for layer in self._layers(overlay):
            for key, raw in layer.entries.items():
                if key not in local and key_bytes(key) in span:
                    local[key] = raw
            if layer.delete_all:
                floor = True
                break
        merged: dict[str, Raw] = {}
        if not floor:
            # Ask Redis for as many more as there are pending deletes, so `limit` is exact.
            deletes = sum(1 for raw in local.values() if raw is None)
            want = None if limit is None else limit + deletes
            merged = await self._fetch_range(span, reverse, want)
        merged.update(local)
        items = sorted(
            ((k, v) for k, v in merged.items() if v is not None),
            key=lambda kv: key_bytes(kv[0]),
            reverse=reverse,
        )
        return items[:limit] if limit is not None else items

    async def _fetch_range(
        self, span: KeyRange, reverse: bool, limit: int | None
    ) -> dict[str, Raw]:
        k = self._host.keys
        lo, hi = span.lex_bounds()
        out: dict[str, Raw] = {}
        while True:
            page = _PAGE if limit is None else min(_PAGE, limit - len(out))
            reply = await self.commits.unless_failed(
                self._host.batcher.submit(
                    self._host.scripts.list,
                    (k.lease, k.data, k.index),
                    (self._host.lease.value, lo, hi, "1" if reverse else "0", page),
                )
            )
            if not reply[0]:
                raise Fenced("this node lost the object's lease; it cannot list its storage")
            pairs = reply[1:]
            for i in range(0, len(pairs), 2):
                key = pairs[i].decode()
                out[key] = pairs[i + 1]
                if self._local(key, None) is MISSING:
                    self._cache_put(key, pairs[i + 1])
            if len(pairs) // 2 < page or (limit is not None and len(out) >= limit):
                return out
            last = pairs[-2]
            if reverse:
                hi = b"(" + last
            else:
                lo = b"(" + last

    def _cache_put(self, key: str, raw: Raw) -> None:
        old = self._cache.pop(key, MISSING)
        if not isinstance(old, _Marker):
            self._cache_bytes -= len(old or b"") + len(key)
        self._cache[key] = raw
        self._cache_bytes += len(raw or b"") + len(key)
        while self._cache_bytes > self._limits.max_cache_bytes and len(self._cache) > 1:
            gone_key, gone = self._cache.popitem(last=False)
            self._cache_bytes -= len(gone or b"") + len(gone_key)
            self._complete = False

    # ------------------------------------------------------------ validation

    def key(self, key: object, what: str = "key") -> str:
        if not isinstance(key, str):
            raise InvalidValue(f"a storage {what} must be a str, not {type(key).__name__}")
        try:
            size = len(key.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidValue(f"a storage {what} must be valid Unicode text") from None
        if size > self._limits.max_key_bytes:
            raise StorageLimitExceeded(
                f"a storage {what} is {size} bytes; the limit is {self._limits.max_key_bytes}"
            )
        return key

    def keys(self, keys: Iterable[str]) -> _Keys:
        if isinstance(keys, str | bytes):
            raise InvalidValue("pass a list of keys, not a single string")
        return [self.key(k) for k in keys]

    def value(self, value: Any) -> bytes:
        data = codec.encode(value)
        if len(data) > self._limits.max_value_bytes:
            raise StorageLimitExceeded(
                f"a value encodes to {len(data)} bytes; the limit is {self._limits.max_value_bytes}"
            )
        return data

    def staged(self, entries: Mapping[str, Any]) -> dict[str, Raw]:
        if not isinstance(entries, Mapping):
            raise InvalidValue("put_many() takes a mapping of key -> value")
        return {self.key(k): self.value(v) for k, v in entries.items()}
