"""Alarms: one per object, at-least-once, retried with exponential backoff, surviving nodes.

The truth is the object's own alarm key (written by commit.lua with the object's other writes,
fenced like them). A sharded index, ``do:alarms:{n}``, tells nodes which objects to wake and
when. Every node polls every shard (and wakes early for alarms its own objects set): it
*claims* due entries of the namespaces it serves by pushing their score forward by
``alarm_claim_timeout``, delivers an ``alarm`` event to each object (activating it here if its
lease is free), and then *settles* the entry: removed when the object has no alarm left,
re-pointed at its next one, untouched if someone indexed a newer alarm meanwhile. (An alarm
moved later may keep its earlier entry, commits.py says when: the early claim finds nothing
due and settles the entry onto the new time.) A node that dies mid-alarm leaves the claimed
entry behind, and another node delivers it when the claim runs out.

A failing ``alarm()`` is retried ``alarm_max_retries`` times with delays of
``alarm_retry_base * 2**n`` (2, 4, 8, 16, 32, 64 s by default); the retry count is stored with
the alarm, so retries survive the node too.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Protocol

from redis import exceptions as redis_errors

from ..base import codec
from ..base.errors import DurableObjectError, InvalidObjectId, UnknownNamespace
from ..objects.events import AlarmEvent
from ..storage.keyspace import ObjectKeys, alarm_shard_key, alarm_shard_of

if TYPE_CHECKING:
    from ..base.config import Settings
    from ..objects.namespace import Dispatcher, Namespace
    from ..storage.store import RedisStore

log = logging.getLogger("runtime.alarms")

_CLAIM_LIMIT = 100
#: Per shard, how many due times of alarms committed here are kept (the earliest): a later
#: one waits for the periodic poll, as every other node's alarms do.
_LOCAL_TIMES = 16


def now_ms() -> int:
    return int(time.time() * 1000)


class AlarmHost(Protocol):
    """What the alarm service needs from its node."""

    settings: Settings
    stopping: bool

    @property
    def router(self) -> Dispatcher: ...
    @property
    def namespaces(self) -> Collection[str]: ...
    def namespace(self, name: str) -> Namespace: ...
    def alarm_report(self, what: str, count: int = 1) -> None: ...
    def alarms_waiting(self, count: int) -> None: ...


class AlarmService:
    """The node's alarm poller and deliverer (one per store)."""

    def __init__(self, node: AlarmHost, store: RedisStore) -> None:
        self.node = node
        self.store = store
        self.settings = node.settings
        self._wake = asyncio.Event()
        #: Per shard, the earliest (due ms, member) of alarms committed here and not yet
        #: claimed, sorted; and each such member's due time (a new commit replaces it).
        self._local: dict[int, list[tuple[int, str]]] = {}
        self._local_due: dict[str, int] = {}
        self._deliveries: set[asyncio.Task[None]] = set()

    def shard_key(self, member: str) -> str:
        shard = alarm_shard_of(member, self.settings.alarm_shards)
        return alarm_shard_key(self.settings.key_prefix, shard)

    async def index(self, member: str, due_ms: int) -> None:
        """Point the index at an alarm (done before the alarm itself is committed)."""
        await self.store.batcher.call(
            self.store.scripts.index_alarm, [self.shard_key(member)], [member, due_ms]
        )

    def committed(self, member: str, alarm: bytes | None) -> None:
        """An object on this node committed an alarm (None: deleted): its shard is claimed
        when the alarm falls due (only that shard: the others wait for the next poll)."""
        shard = alarm_shard_of(member, self.settings.alarm_shards)
        old = self._local_due.pop(member, None)
        times = self._local.get(shard)
        if old is not None and times is not None:  # (moved or deleted: its time goes)
            at = bisect.bisect_left(times, (old, member))
            if at < len(times) and times[at] == (old, member):
                del times[at]
            if not times:
                del self._local[shard]
        if alarm is None:
            return
        entry = (int(codec.decode(alarm)[0]), member)
        times = self._local.setdefault(shard, [])
        if len(times) >= _LOCAL_TIMES and entry > times[-1]:
            return  # (the periodic poll claims it)
        bisect.insort(times, entry)
        self._local_due[member] = entry[0]
        if len(times) > _LOCAL_TIMES:
            self._local_due.pop(times.pop()[1], None)
        if times[0] == entry:
            self._wake.set()  # (the poller's wait may now be too long)

    async def run(self) -> None:
        """Poll until the node stops: every shard every ``alarm_poll_interval``, and a
        shard as soon as an alarm committed here in it falls due. A commit of an alarm
        further off only shortens the wait: a busy game re-arms its turn timer on every
        move, and its results are sent by an alarm due at once; claiming all 16 shards each
        time cost Valkey 16 scripts for one alarm."""
        interval = self.settings.alarm_poll_interval
        next_poll = 0.0  # (monotonic)
        while not self.node.stopping:
            timeout = max(0.0, next_poll - time.monotonic())
            if self._local:
                soonest = min(times[0][0] for times in self._local.values())
                timeout = min(timeout, max(0.0, (soonest - now_ms()) / 1000))
            if timeout > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout)
                except TimeoutError:
                    pass
                self._wake.clear()
            now = now_ms()
            due = [shard for shard, times in self._local.items() if times[0][0] <= now]
            everything = time.monotonic() >= next_poll
            if not (due or everything):
                continue  # (woken by an alarm not yet due: wait again, for less)
            for shard in due:  # (a later alarm of the shard keeps its time: claimed then)
                times = self._local[shard]
                while times and times[0][0] <= now:
                    self._local_due.pop(times.pop(0)[1], None)
                if not times:
                    del self._local[shard]
            try:
                await self.poll(None if everything else due)
            except DurableObjectError as exc:
                log.warning("alarm poll failed: %s", exc)
                await asyncio.sleep(interval)
            if everything:  # (timed from its end: a slow poll is not run again at once)
                next_poll = time.monotonic() + interval

    async def poll(self, shards: Collection[int] | None = None) -> int:
        """Claim the due entries of ``shards`` (None: every shard) and start delivering
        them; the number started."""
        now = now_ms()
        claim_until = now + int(self.settings.alarm_claim_timeout * 1000)
        served = sorted(self.node.namespaces)
        futures = [
            self.store.batcher.submit(
                self.store.scripts.claim_alarms,
                (alarm_shard_key(self.settings.key_prefix, shard),),
                (now, claim_until, _CLAIM_LIMIT, *served),
            )
            for shard in (range(self.settings.alarm_shards) if shards is None else shards)
        ]
        started = 0
        due = 0
        for future in futures:
            try:
                members, waiting = await future
            except DurableObjectError as exc:  # that shard waits for the next poll
                log.warning("alarm claim failed: %s", exc)
                continue
            due += int(waiting)
            if members:
                self.node.alarm_report("claimed", len(members))
            for member in members:
                task = asyncio.get_running_loop().create_task(
                    self.deliver(member.decode(), claim_until)
                )
                self._deliveries.add(task)
                task.add_done_callback(self._deliveries.discard)
                started += 1
        if shards is None:  # (the gauge counts every shard's waiting alarms)
            self.node.alarms_waiting(due)
        return started

    async def deliver(self, member: str, claimed_ms: int) -> None:
        """Run one object's alarm event, then settle its index entry."""
        ns_name, _, hex_id = member.partition(":")
        try:
            namespace = self.node.namespace(ns_name)
            object_id = namespace.id_from_string(hex_id)
        except (UnknownNamespace, InvalidObjectId):
            log.warning("dropping alarm index entry %r: no such object here", member)
            await self._settle(member, claimed_ms, None)
            return
        try:
            event = AlarmEvent(namespace, self.node.settings, self.node.alarm_report)
            await self.node.router.dispatch(namespace, object_id, event)
        except Exception as exc:
            # Left claimed: delivered again (here or elsewhere) when the claim runs out.
            log.warning("alarm of %s not delivered (%s); it will be retried", member, exc)
            return
        keys = ObjectKeys.of(self.settings.key_prefix, ns_name, hex_id)
        try:
            raw = await self.store.redis.get(keys.alarm)  # what the object committed
            due = None if raw is None else int(codec.decode(raw)[0])
            await self._settle(member, claimed_ms, due)
        except (DurableObjectError, redis_errors.RedisError, OSError) as exc:
            log.warning("alarm index of %s not settled: %s", member, exc)

    async def _settle(self, member: str, claimed_ms: int, due_ms: int | None) -> None:
        await self.store.batcher.call(
            self.store.scripts.settle_alarm,
            (self.shard_key(member),),
            (member, claimed_ms, "" if due_ms is None else due_ms),
        )

    async def stop(self) -> None:
        for task in list(self._deliveries):
            task.cancel()
        if self._deliveries:
            await asyncio.gather(*self._deliveries, return_exceptions=True)
