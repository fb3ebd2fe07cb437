"""An object's writes on their way to Redis: the open batch, the batch in flight, the gate.

Writes of finished events gather in the *open batch*. :meth:`Commits.flush` sends it as one
``commit.lua`` call unless a commit is already in flight; then it follows that one, so under
load many events share one Lua call and one round trip, and per object there is never more
than one commit in flight (order is kept). Every batch gets a sequence number when it first
takes writes; outputs wait with :meth:`Commits.wait_committed` for the newest batch that
existed when they were released: that is the output gate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

from ..base import codec
from ..base.errors import DurableObjectError, Fenced
from .batch import MISSING, UNCHANGED, WriteBatch, _Marker
from .keyspace import ObjectKeys
from .lease import Lease
from .scripts import ScriptBatcher, Scripts

#: How far ahead an alarm index entry must still be for a later alarm to skip re-indexing.
INDEX_MARGIN_MS = 5_000


class CommitHost(Protocol):
    """What commits need from the object's record (see record.py)."""

    keys: ObjectKeys
    lease: Lease
    batcher: ScriptBatcher
    scripts: Scripts

    def on_committed(self, batch: WriteBatch) -> None: ...
    def on_commit_failed(self, error: DurableObjectError) -> None: ...
    def commit_observed(self, seconds: float, keys: int) -> None: ...
    async def index_alarm(self, due_ms: int) -> None: ...


class Commits:
    """Batches of one object between its events and Redis."""

    def __init__(self, host: CommitHost, applied: Callable[[WriteBatch], None]) -> None:
        self._host = host
        self._applied = applied  # updates the cache once a batch is committed
        self.open = WriteBatch()
        self.inflight: WriteBatch | None = None
        self._next_seq = 1
        self.latest_seq = 0  # newest batch that holds writes
        self.committed_seq = 0
        #: The object's version after its last commit here (replicated classes: commit.lua
        #: counts it in Redis; the record loads it at activation). Unused otherwise.
        self.version = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self.failure: DurableObjectError | None = None
        #: The batch the failure came with (batches after it were never sent), and whether
        #: that one may have been stored all the same (sent, and no answer came back).
        self.failed_seq = 0
        self.failed_maybe_stored = True
        #: Reads in flight to Redis: they fail with the object (a read does not wait out
        #: the batcher's own timeout on an object this node has given up).
        self._reads: set[asyncio.Future[Any]] = set()
        #: The due time (ms) this object's alarm index entry was last pointed at from here.
        self.indexed_ms: int | None = None

    @property
    def has_uncommitted(self) -> bool:
        return self.latest_seq > self.committed_seq

    def layers(self) -> list[WriteBatch]:
        """The uncommitted batches, newest first (for reads)."""
        return [self.open] if self.inflight is None else [self.open, self.inflight]

    def open_batch(self) -> WriteBatch:
        """The open batch, numbered: call only right before writing into it."""
        batch = self.open
        if not batch:
            batch.seq = self._next_seq
            self._next_seq += 1
            self.latest_seq = batch.seq
        return batch

    def absorb(self, writes: WriteBatch | None, committed_alarm: Any) -> None:
        """Add a finished event's writes to the open batch, in one step."""
        if not writes or self.failure is not None:
            return
        if writes.alarm_if is not None:
            # The runtime clears an alarm that fired only if nobody set another meanwhile.
            current: bytes | _Marker | None = MISSING
            for layer in self.layers():
                if (current := layer.lookup_alarm()) is not MISSING:
                    break
            if current is MISSING:
                current = committed_alarm
            if current is not MISSING and current != writes.alarm_if:
                writes.alarm = UNCHANGED
            writes.alarm_if = None
            if not writes:
                return
        self.open_batch().absorb(writes)

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

    async def sync(self) -> None:
        """Wait until every batch numbered so far is committed."""
        target = self.latest_seq
        while self.committed_seq < target:
            self.raise_if_failed()
            self.flush()
            await self.wait_committed(self.inflight.seq if self.inflight else target)

    def flush(self) -> None:
        """Send the open batch now, unless a commit is in flight (it follows that one)."""
        if self.inflight is not None or self.failure is not None:
            return
        if not self.open:
            if self.open.seq > self.committed_seq:
                # Numbered for a write that then failed its checks: nothing to commit, but
                # whatever waits for it may go.
                empty, self.open = self.open, WriteBatch()
                self._advance(empty.seq)
                self._host.on_committed(empty)
            return
        batch, self.open = self.open, WriteBatch()
        self.inflight = batch
        if isinstance(batch.alarm, bytes):
            due = int(codec.decode(batch.alarm)[0])
            if self._needs_index(due):
                # Index the alarm *before* committing it: a stale index entry is harmless
                # (the poller checks the object's own alarm), a missing one would lose it.
                asyncio.get_running_loop().create_task(self._commit_indexed(batch, due))
                return
        self._submit(batch)

    def _needs_index(self, due_ms: int) -> bool:
        """Whether the alarm index must be pointed at ``due_ms`` before it is committed.

        Not when an alarm moves later (a turn timer pushed back on every move, say) while
        the entry this object wrote for an earlier one is still well in the future: no node
        claims that entry before it is due, and when one does, the alarm event finds nothing
        due and settling re-points the entry at the alarm then stored (alarms.py). That saves
        one fsync'd round trip before such a commit. (The margin covers clocks that differ
        between nodes, and a claim already on its way.)"""
        indexed = self.indexed_ms
        return (
            indexed is None
            or due_ms < indexed
            or indexed - int(time.time() * 1000) <= INDEX_MARGIN_MS
        )

    async def _commit_indexed(self, batch: WriteBatch, due_ms: int) -> None:
        try:
            await self._host.index_alarm(due_ms)
            self.indexed_ms = due_ms
        except DurableObjectError as exc:
            self.inflight = None
            self.fail(exc, batch.seq, False)  # (the batch itself was never sent)
            return
        if self.failure is not None:  # discarded meanwhile: its waiters heard "not stored"
            self.inflight = None
            return
        self._submit(batch)

    def _submit(self, batch: WriteBatch) -> None:
        k = self._host.keys
        future = self._host.batcher.submit(
            self._host.scripts.commit,
            k.commit,
            batch.script_args(self._host.lease.value),
        )
        sent = time.monotonic()
        future.add_done_callback(lambda f: self._done(batch, f, sent))

    def _done(self, batch: WriteBatch, future: asyncio.Future[Any], sent: float) -> None:
        self.inflight = None
        self._host.commit_observed(time.monotonic() - sent, len(batch.entries))
        if future.cancelled():
            self.fail(
                Fenced("the commit was cancelled; nothing is known to be stored"), batch.seq, True
            )
            return
        error = future.exception()
        if error is not None:
            assert isinstance(error, DurableObjectError)
            self.fail(error, batch.seq, error.may_have_run)
            return
        reply = future.result()
        if not reply:
            # Refused by the lease check, whole: nothing of it was stored.
            self.fail(
                Fenced(
                    "this node lost the object's lease; the writes were not stored",
                    may_have_run=False,
                ),
                batch.seq,
                False,
            )
            return
        self.version = int(reply)  # (1 for a class that is not replicated)
        self._applied(batch)
        self._advance(batch.seq)
        self._host.on_committed(batch)

    def _advance(self, seq: int) -> None:
        self.committed_seq = seq
        ready = [f for s, f in self._waiters if s <= seq]
        self._waiters = [(s, f) for s, f in self._waiters if s > seq]
        for f in ready:
            if not f.done():
                f.set_result(None)

    def fail(
        self, error: DurableObjectError, seq: int | None = None, maybe_stored: bool = True
    ) -> None:
        """Nothing more will be committed: fail every waiter and tell the record (once).

        ``seq`` is the batch that failed and ``maybe_stored`` whether it may have been stored
        all the same; by default, the batch in flight (its answer will not be waited for)."""
        if self.failure is not None:
            return
        if seq is None:
            inflight = self.inflight
            seq = inflight.seq if inflight is not None else self.committed_seq + 1
            maybe_stored = inflight is not None
        self.failed_seq = seq
        self.failed_maybe_stored = maybe_stored
        self.failure = error
        for _, f in self._waiters:
            if not f.done():
                f.set_exception(error)
        self._waiters.clear()
        for read in self._reads:  # (the batcher skips futures already done)
            if not read.done():
                read.set_exception(error.with_outcome(False))
        self._host.on_commit_failed(error)

    async def unless_failed(self, read: asyncio.Future[Any]) -> Any:
        """The answer of ``read`` (a script call in flight), or the failure of the object if
        that comes first."""
        self.raise_if_failed()
        self._reads.add(read)
        try:
            return await read
        finally:
            self._reads.discard(read)

    def may_be_stored(self, seq: int) -> bool:
        """Whether batch ``seq`` is, or may yet be, stored (False only when it surely is not:
        it came after the failed batch, or the failed batch surely was not stored)."""
        if self.failure is None or seq < self.failed_seq or seq <= self.committed_seq:
            return True
        if seq > self.failed_seq:
            return False
        return self.failed_maybe_stored

    def raise_if_failed(self) -> None:
        if self.failure is not None:
            raise type(self.failure)(str(self.failure))
