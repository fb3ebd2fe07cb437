"""Alarms: one per object, at-least-once, retried with exponential backoff, surviving nodes.

The truth is the object's own alarm key (written by commit.lua with the object's other writes,
fenced like them). A sharded index, ``do:alarms:{n}``, tells nodes which objects to wake and
when. Every node polls every shard (and wakes early for alarms its own objects set): it
*claims* due entries by pushing their score forward by ``alarm_claim_timeout``, delivers an
``alarm`` event to each object (activating it here if its lease is free), and removes the
entry once the object's alarm is gone. A node that dies mid-alarm leaves the claimed entry
behind, and another node delivers it when the claim runs out.

A failing ``alarm()`` is retried ``alarm_max_retries`` times with delays of
``alarm_retry_base * 2**n`` (2, 4, 8, 16, 32, 64 s by default); the retry count is stored with
the alarm, so retries survive the node too.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from redis import exceptions as redis_errors

from . import codec
from .errors import DurableObjectError, InvalidObjectId, UnknownNamespace
from .keyspace import alarm_shard_key, alarm_shard_of
from .object import AlarmInfo, DurableObject
from .scripts import storage_error

if TYPE_CHECKING:
    from .node import Node
    from .record import ObjectRecord

log = logging.getLogger("runtime.alarms")

_CLAIM_LIMIT = 100


def now_ms() -> int:
    return int(time.time() * 1000)


class AlarmService:
    """The node's alarm poller and deliverer."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.settings = node.settings
        self._wake = asyncio.Event()
        self._next_local_ms: int | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self.fired = 0

    def shard_key(self, member: str) -> str:
        shard = alarm_shard_of(member, self.settings.alarm_shards)
        return alarm_shard_key(self.settings.key_prefix, shard)

    async def index(self, member: str, due_ms: int) -> None:
        """Point the index at an alarm (done before the alarm itself is committed)."""
        try:
            await self.node.redis.zadd(self.shard_key(member), {member: due_ms})
        except (redis_errors.RedisError, OSError) as exc:
            raise storage_error(exc) from None

    def committed(self, record: ObjectRecord, alarm: Any) -> None:
        """An object on this node committed an alarm change: wake up in time for it."""
        if not isinstance(alarm, bytes):
            return
        due = int(codec.decode(alarm)[0])
        if self._next_local_ms is None or due < self._next_local_ms:
            self._next_local_ms = due
            self._wake.set()

    async def run(self) -> None:
        """Poll until the node stops."""
        while not self.node.stopping:
            timeout = self.settings.alarm_poll_interval
            if self._next_local_ms is not None:
                timeout = min(timeout, max(0.0, (self._next_local_ms - now_ms()) / 1000))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
            self._wake.clear()
            if self._next_local_ms is not None and self._next_local_ms <= now_ms():
                self._next_local_ms = None
            try:
                await self.poll()
            except DurableObjectError as exc:
                log.warning("alarm poll failed: %s", exc)
                await asyncio.sleep(self.settings.alarm_poll_interval)

    async def poll(self) -> int:
        """Claim the due entries of every shard and start delivering them."""
        now = now_ms()
        claim_until = now + int(self.settings.alarm_claim_timeout * 1000)
        node = self.node
        futures = [
            node.batcher.submit(
                node.scripts.claim_alarms,
                (alarm_shard_key(self.settings.key_prefix, shard),),
                (now, claim_until, _CLAIM_LIMIT),
            )
            for shard in range(self.settings.alarm_shards)
        ]
        started = 0
        for future in futures:
            for member in await future:
                task = asyncio.get_running_loop().create_task(
                    self.deliver(member.decode(), claim_until)
                )
                self._deliveries.add(task)
                task.add_done_callback(self._deliveries.discard)
                started += 1
        return started

    async def deliver(self, member: str, claimed_ms: int) -> None:
        """Run one object's alarm event; fix up the index afterwards."""
        ns_name, _, hex_id = member.partition(":")
        try:
            namespace = self.node.namespace(ns_name)
            object_id = namespace.id_from_string(hex_id)
        except UnknownNamespace:
            return  # another node (running other apps) will deliver it
        except InvalidObjectId:
            log.warning("dropping malformed alarm index entry %r", member)
            await self._unindex(member, claimed_ms)
            return
        takes_info = namespace.alarm_takes_info
        settings = self.settings

        async def on_alarm(instance: DurableObject) -> int | None:
            storage = instance.storage
            record = await storage.alarm_record()
            now = now_ms()
            if record is None:
                return None
            due, retries = record
            if due > now:
                return due  # not due yet: the index entry was early (or claimed); re-point it
            await storage.delete_alarm()
            try:
                if takes_info:
                    await instance.alarm(AlarmInfo(retries))
                else:
                    await instance.alarm()  # type: ignore[call-arg]
                self.fired += 1
            except Exception:
                if retries < settings.alarm_max_retries:
                    delay = settings.alarm_retry_base * 2**retries
                    log.warning(
                        "alarm of %s raised (try %d); retrying in %.1fs",
                        member,
                        retries + 1,
                        delay,
                        exc_info=True,
                    )
                    storage.set_alarm_record(now + int(delay * 1000), retries + 1)
                else:
                    log.error(
                        "alarm of %s raised %d times; giving up",
                        member,
                        retries + 1,
                        exc_info=True,
                    )
            after = await storage.alarm_record()
            return None if after is None else after[0]

        try:
            remaining = await self.node.dispatch(namespace, object_id, on_alarm)
        except DurableObjectError as exc:
            log.warning("alarm of %s not delivered (%s); it will be retried", member, exc)
            return
        try:
            if remaining is None:
                await self._unindex(member, claimed_ms)
            else:
                await self.index(member, remaining)
        except DurableObjectError as exc:
            log.warning("alarm index of %s not updated: %s", member, exc)

    async def _unindex(self, member: str, claimed_ms: int) -> None:
        await self.node.batcher.call(
            self.node.scripts.unindex_alarm, (self.shard_key(member),), (member, claimed_ms)
        )

    async def stop(self) -> None:
        for task in list(self._deliveries):
            task.cancel()
        if self._deliveries:
            await asyncio.gather(*self._deliveries, return_exceptions=True)
