"""An object's durable storage: a coherent cache over fenced, coalesced Lua commits.

Reads look through the writes not yet committed, then the cache, then Redis (a fenced read
script: a node that lost the lease cannot read either). The cache is always coherent because
the live instance is the only writer of its keys.

Writes made during an event go to that event's own buffer; when the event ends the buffer
joins the object's *open batch* (so one event's writes are never split across commits, and an
event that runs while another awaits a call to another object does not see the other's
half-done writes). The open batch is sent as one ``commit.lua`` call at once unless a commit is
already in flight; then it follows that one, so under load many events share one Lua call and
one round trip. Every batch has a sequence number; outputs wait with
:meth:`Storage.wait_committed` for the newest batch that existed when they were released (the
output gate).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Protocol

from . import codec
from .batch import MISSING, UNCHANGED, KeyRange, Raw, WriteBatch, _Marker, key_bytes
from .config import Settings
from .errors import DurableObjectError, Fenced, InvalidValue, StorageLimitExceeded
from .keyspace import ObjectKeys
from .lease import Lease
from .scripts import ScriptBatcher, Scripts

_PAGE = 1000

# Aliases, because Storage.list shadows the builtin inside the class body.
_Keys = list[str]
_Pairs = list[tuple[str, bytes]]
_Layers = list[WriteBatch]


class StorageHost(Protocol):
    """What storage needs from the record that owns it (see record.py)."""

    keys: ObjectKeys
    lease: Lease
    batcher: ScriptBatcher
    scripts: Scripts
    settings: Settings

    async def confirm_lease(self) -> None: ...
    def event_batch(self, create: bool) -> WriteBatch | None: ...
    def on_committed(self, batch: WriteBatch) -> None: ...
    def on_commit_failed(self, error: DurableObjectError) -> None: ...
    async def index_alarm(self, due_ms: int) -> None: ...


class Storage:
    """The API an object sees as ``self.storage``."""

    def __init__(self, host: StorageHost) -> None:
        self._host = host
        self._limits = host.settings
        self._cache: OrderedDict[str, Raw] = OrderedDict()
        self._cache_bytes = 0
        self._complete = False  # True when the cache knows every key (after delete_all)
        self._alarm: bytes | _Marker | None = MISSING
        self._open = WriteBatch()
        self._inflight: WriteBatch | None = None
        self._next_seq = 1
        self.latest_seq = 0  # newest batch that holds writes
        self.committed_seq = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.failure: DurableObjectError | None = None

    # ----------------------------------------------------------------- reads

    async def get(self, key: str, default: Any = None) -> Any:
        """The value stored under ``key``, or ``default``."""
        raw = await self._get_raw(self._key(key), None)
        return default if raw is None else codec.decode(raw)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        """The stored values of up to ``max_batch_keys`` keys; absent keys are left out."""
        wanted = self._keys(keys)
        raws = await self._get_raws(wanted, None)
        return {k: codec.decode(raws[k]) for k in wanted if raws[k] is not None}  # type: ignore[arg-type]

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
        raws = await self._list_raw(None, start, end, prefix, reverse, limit)
        return {k: codec.decode(v) for k, v in raws}

    async def get_alarm(self) -> float | None:
        """When the alarm is due, in seconds since the epoch, or None."""
        record = await self.alarm_record()
        return None if record is None else record[0] / 1000

    # ---------------------------------------------------------------- writes

    async def put(self, key: str, value: Any) -> None:
        self._write(None).entries[self._key(key)] = self._value(value)

    async def put_many(self, entries: Mapping[str, Any]) -> None:
        """Store up to ``max_batch_keys`` entries, all or none (every one is checked first)."""
        staged = self._staged(entries)
        self._write(None).entries.update(staged)

    async def delete(self, key: str) -> bool:
        """Delete ``key``; True if it existed."""
        k = self._key(key)
        existed = await self._get_raw(k, None) is not None
        self._write(None).entries[k] = None
        return existed

    async def delete_many(self, keys: Iterable[str]) -> int:
        """Delete up to ``max_batch_keys`` keys; returns how many existed."""
        wanted = self._keys(keys)
        raws = await self._get_raws(wanted, None)
        batch = self._write(None)
        for k in wanted:
            batch.entries[k] = None
        return sum(1 for k in wanted if raws[k] is not None)

    async def delete_all(self) -> None:
        """Delete every key and the alarm."""
        self._write(None).clear_all()

    async def set_alarm(self, when: float | datetime) -> None:
        """Run ``alarm()`` at ``when`` (seconds since the epoch, or an aware datetime)."""
        self._write(None).alarm = codec.encode([_alarm_ms(when), 0])

    async def delete_alarm(self) -> None:
        self._write(None).alarm = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """All-or-nothing writes: applied when the block exits normally, dropped if it raises
        or calls ``rollback()``. Reads inside see the transaction's own writes."""
        txn = Transaction(self)
        yield txn
        if not txn.rolled_back and txn.overlay:
            self._write(None).absorb(txn.overlay)

    async def sync(self) -> None:
        """Wait until every write made so far (this event's too) is committed to Redis."""
        event = self._host.event_batch(False)
        if event:
            self.absorb(event)
            event.reset()
        target = self.latest_seq
        while self.committed_seq < target:
            self._raise_if_failed()
            self.flush()
            waiting = self._inflight.seq if self._inflight else target
            await self.wait_committed(waiting)

    # -------------------------------------------------------- output gate

    @property
    def has_uncommitted(self) -> bool:
        return self.latest_seq > self.committed_seq

    def wait_committed(self, seq: int) -> asyncio.Future[None]:
        """A future resolved when batch ``seq`` (and all before it) is committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.failure is not None:
            future.set_exception(self.failure)
        elif seq <= self.committed_seq:
            future.set_result(None)
        else:
            self._waiters.append((seq, future))
        return future

    def flush(self) -> None:
        """Send the open batch now, unless a commit is in flight (it follows that one)."""
        if self._inflight is not None or not self._open or self.failure is not None:
            return
        batch, self._open = self._open, WriteBatch()
        self._inflight = batch
        if isinstance(batch.alarm, bytes):
            # Index the alarm *before* committing it: a stale index entry is harmless (the
            # poller checks the object's own alarm), a missing one would lose the alarm.
            asyncio.get_running_loop().create_task(self._commit_indexed(batch))
        else:
            self._submit(batch)

    async def _commit_indexed(self, batch: WriteBatch) -> None:
        assert isinstance(batch.alarm, bytes)
        try:
            await self._host.index_alarm(codec.decode(batch.alarm)[0])
        except DurableObjectError as exc:
            self._inflight = None
            self._fail(exc)
            return
        self._submit(batch)

    def _submit(self, batch: WriteBatch) -> None:
        k = self._host.keys
        future = self._host.batcher.submit(
            self._host.scripts.commit,
            (k.lease, k.data, k.index, k.alarm),
            batch.script_args(self._host.lease.value),
        )
        future.add_done_callback(lambda f: self._committed(batch, f))

    def _committed(self, batch: WriteBatch, future: asyncio.Future[Any]) -> None:
        self._inflight = None
        if future.cancelled():
            self._fail(Fenced("the commit was cancelled; nothing is known to be stored"))
            return
        error = future.exception()
        if error is not None:
            assert isinstance(error, DurableObjectError)
            self._fail(error)
            return
        if not future.result():
            self._fail(Fenced("this node lost the object's lease; the writes were not stored"))
            return
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
        self.committed_seq = batch.seq
        ready = [f for s, f in self._waiters if s <= batch.seq]
        self._waiters = [(s, f) for s, f in self._waiters if s > batch.seq]
        for f in ready:
            if not f.done():
                f.set_result(None)
        self._host.on_committed(batch)

    def fail(self, error: DurableObjectError) -> None:
        """Mark the storage unusable (the instance is being discarded) and fail all waiters."""
        self._fail(error)

    def _fail(self, error: DurableObjectError) -> None:
        if self.failure is not None:
            return
        self.failure = error
        for _, f in self._waiters:
            if not f.done():
                f.set_exception(error)
        self._waiters.clear()
        self._host.on_commit_failed(error)

    def _raise_if_failed(self) -> None:
        if self.failure is not None:
            raise type(self.failure)(str(self.failure))

    # ------------------------------------------------------------ internals

    def _write(self, overlay: WriteBatch | None) -> WriteBatch:
        """The batch a write goes into: a transaction's, the event's, or the open batch."""
        self._raise_if_failed()
        if overlay is not None:
            return overlay
        event = self._host.event_batch(True)
        if event is not None:
            return event
        # A write outside any event (a background task): it commits on its own.
        batch = self._open_batch()
        asyncio.get_running_loop().call_soon(self.flush)
        return batch

    def _open_batch(self) -> WriteBatch:
        batch = self._open
        if not batch:
            batch.seq = self._next_seq
            self._next_seq += 1
            self.latest_seq = batch.seq
        return batch

    def absorb(self, writes: WriteBatch | None) -> None:
        """Add an event's writes to the open batch (at the end of the event)."""
        if writes and self.failure is None:
            self._open_batch().absorb(writes)

    def set_alarm_record(self, due_ms: int, retries: int) -> None:
        self._write(None).alarm = codec.encode([due_ms, retries])

    async def alarm_record(self) -> tuple[int, int] | None:
        """(due ms, retry count) of the alarm, or None."""
        raw: bytes | _Marker | None = MISSING
        for layer in self._layers(None):
            if (raw := layer.lookup_alarm()) is not MISSING:
                break
        if raw is MISSING:
            raw = self._alarm
        if raw is MISSING:
            await self._fetch([], with_alarm=True)
            raw = self._alarm
        if raw is None or isinstance(raw, _Marker):
            return None
        due, retries = codec.decode(raw)
        return int(due), int(retries)

    def _layers(self, overlay: WriteBatch | None) -> _Layers:
        event = self._host.event_batch(False)
        return [b for b in (overlay, event, self._open, self._inflight) if b is not None]

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
        self._raise_if_failed()
        if not self._host.lease.live:
            await self._host.confirm_lease()

    async def _get_raw(self, key: str, overlay: WriteBatch | None) -> Raw:
        await self._ready_to_read()
        raw = self._local(key, overlay)
        if raw is MISSING:
            return (await self._fetch([key]))[key]
        return raw  # type: ignore[return-value]

    async def _get_raws(self, keys: _Keys, overlay: WriteBatch | None) -> dict[str, Raw]:
        await self._ready_to_read()
        out: dict[str, Raw] = {}
        missing: _Keys = []
        for k in keys:
            raw = self._local(k, overlay)
            if raw is MISSING:
                missing.append(k)
            else:
                out[k] = raw  # type: ignore[assignment]
        if missing:
            out.update(await self._fetch(missing))
        return out

    async def _fetch(self, keys: _Keys, with_alarm: bool = False) -> dict[str, Raw]:
        """Read keys from Redis through the fenced read script, and cache what is still current."""
        k = self._host.keys
        reply = await self._host.batcher.call(
            self._host.scripts.read,
            (k.lease, k.data, k.alarm),
            (self._host.lease.value, "1" if with_alarm else "0", *keys),
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
        if with_alarm and self._alarm is MISSING and self._open.lookup_alarm() is MISSING:
            self._alarm = reply[1]
        return out

    async def _list_raw(
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
                self._key(bound, name)
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
            reply = await self._host.batcher.call(
                self._host.scripts.list,
                (k.lease, k.data, k.index),
                (self._host.lease.value, lo, hi, "1" if reverse else "0", page),
            )
            if not reply[0]:
                raise Fenced("this node lost the object's lease; it cannot list its storage")
            pairs = reply[1:]
            for i in range(0, len(pairs), 2):
                key = pairs[i].decode()
                out[key] = pairs[i + 1]
                if self._local(key, None) is MISSING:
                    self._cache_put(key, pairs[i + 1])
            got = len(pairs) // 2
            if got < page or (limit is not None and len(out) >= limit):
                return out
            last = pairs[-2]
            if reverse:
                hi = b"(" + last
            else:
                lo = b"(" + last

    def _cache_put(self, key: str, raw: Raw) -> None:
        old = self._cache.pop(key, MISSING)
        if isinstance(old, bytes):
            self._cache_bytes -= len(old) + len(key)
        self._cache[key] = raw
        self._cache_bytes += len(raw or b"") + len(key)
        while self._cache_bytes > self._limits.max_cache_bytes and len(self._cache) > 1:
            gone_key, gone = self._cache.popitem(last=False)
            self._cache_bytes -= len(gone or b"") + len(gone_key)
            self._complete = False

    # ------------------------------------------------------------ validation

    def _key(self, key: object, what: str = "key") -> str:
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

    def _keys(self, keys: Iterable[str]) -> _Keys:
        if isinstance(keys, str | bytes):
            raise InvalidValue("pass a list of keys, not a single string")
        wanted = [self._key(k) for k in keys]
        if len(wanted) > self._limits.max_batch_keys:
            raise StorageLimitExceeded(
                f"{len(wanted)} keys in one call; the limit is {self._limits.max_batch_keys}"
            )
        return wanted

    def _value(self, value: Any) -> bytes:
        data = codec.encode(value)
        if len(data) > self._limits.max_value_bytes:
            raise StorageLimitExceeded(
                f"a value encodes to {len(data)} bytes; the limit is {self._limits.max_value_bytes}"
            )
        return data

    def _staged(self, entries: Mapping[str, Any]) -> dict[str, Raw]:
        if not isinstance(entries, Mapping):
            raise InvalidValue("put_many() takes a mapping of key -> value")
        if len(entries) > self._limits.max_batch_keys:
            raise StorageLimitExceeded(
                f"{len(entries)} keys in one call; the limit is {self._limits.max_batch_keys}"
            )
        return {self._key(k): self._value(v) for k, v in entries.items()}


class Transaction:
    """Reads and writes inside ``async with storage.transaction() as txn``."""

    def __init__(self, storage: Storage) -> None:
        self._s = storage
        self.overlay = WriteBatch()
        self.rolled_back = False

    def rollback(self) -> None:
        """Drop every write of this transaction (the block goes on, writing nothing more)."""
        self.rolled_back = True
        self.overlay = WriteBatch()

    async def get(self, key: str, default: Any = None) -> Any:
        raw = await self._s._get_raw(self._s._key(key), self.overlay)
        return default if raw is None else codec.decode(raw)

    async def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        wanted = self._s._keys(keys)
        raws = await self._s._get_raws(wanted, self.overlay)
        return {k: codec.decode(raws[k]) for k in wanted if raws[k] is not None}  # type: ignore[arg-type]

    async def list(
        self,
        *,
        start: str | None = None,
        end: str | None = None,
        prefix: str | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> dict[str, Any]:
        raws = await self._s._list_raw(self.overlay, start, end, prefix, reverse, limit)
        return {k: codec.decode(v) for k, v in raws}

    async def put(self, key: str, value: Any) -> None:
        self._live().entries[self._s._key(key)] = self._s._value(value)

    async def put_many(self, entries: Mapping[str, Any]) -> None:
        staged = self._s._staged(entries)
        self._live().entries.update(staged)

    async def delete(self, key: str) -> bool:
        k = self._s._key(key)
        existed = await self._s._get_raw(k, self.overlay) is not None
        self._live().entries[k] = None
        return existed

    async def set_alarm(self, when: float | datetime) -> None:
        self._live().alarm = codec.encode([_alarm_ms(when), 0])

    async def delete_alarm(self) -> None:
        self._live().alarm = None

    def _live(self) -> WriteBatch:
        if self.rolled_back:
            raise InvalidValue("this transaction was rolled back; it takes no more writes")
        self._s._raise_if_failed()
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
