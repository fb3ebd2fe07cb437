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
        self._next_local_ms: int | None = None
        self._deliveries: set[asyncio.Task[None]] = set()

    def shard_key(self, member: str) -> str:
        shard = alarm_shard_of(member, self.settings.alarm_shards)
        return alarm_shard_key(self.settings.key_prefix, shard)

    async def index(self, member: str, due_ms: int) -> None:
        """Point the index at an alarm (done before the alarm itself is committed)."""
        await self.store.batcher.call(
            self.store.scripts.index_alarm, [self.shard_key(member)], [member, due_ms]
        )

    def committed(self, alarm: bytes | None) -> None:
        """An object on this node committed an alarm (None: deleted): wake up in time."""
        if alarm is None:
            return
        due = int(codec.decode(alarm)[0])
        if self._next_local_ms is None or due < self._next_local_ms:
            self._next_local_ms = due
            self._wake.set()

    async def run(self) -> None:
        """Poll until the node stops: every ``alarm_poll_interval``, and when an alarm
        committed here falls due. A commit of an alarm further off only shortens the wait:
        a busy game re-arms its turn timer on every move, and polling each of the store's
        shards each time cost more than the move's own commit."""
        interval = self.settings.alarm_poll_interval
        next_poll = 0.0  # (monotonic)
        while not self.node.stopping:
            timeout = max(0.0, next_poll - time.monotonic())
            if self._next_local_ms is not None:
                timeout = min(timeout, max(0.0, (self._next_local_ms - now_ms()) / 1000))
            if timeout > 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout)
                except TimeoutError:
                    pass
                self._wake.clear()
            local_due = self._next_local_ms is not None and self._next_local_ms <= now_ms()
            if not local_due and time.monotonic() < next_poll:
                continue  # (woken by an alarm not yet due: wait again, for less)
            if local_due:
                self._next_local_ms = None
            try:
                await self.poll()
            except DurableObjectError as exc:
                log.warning("alarm poll failed: %s", exc)
                await asyncio.sleep(interval)
            next_poll = (
                time.monotonic() + interval
            )  # (after it: a slow poll is not run again at once)

    async def poll(self) -> int:
        """Claim the due entries of every shard and start delivering them."""
        now = now_ms()
        claim_until = now + int(self.settings.alarm_claim_timeout * 1000)
        served = sorted(self.node.namespaces)
        futures = [
            self.store.batcher.submit(
                self.store.scripts.claim_alarms,
                (alarm_shard_key(self.settings.key_prefix, shard),),
                (now, claim_until, _CLAIM_LIMIT, *served),
            )
            for shard in range(self.settings.alarm_shards)
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
