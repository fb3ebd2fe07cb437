"""How an object leaves a node in order: evicted when idle, shut down with its node.

Both hold the object's input gate, so events arriving meanwhile queue up and then move to a
fresh record, which finds the lease released: nothing is lost, and nothing waits for a TTL.
(A failure leaves otherwise: ObjectRecord.discard and fence drop everything at once.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from ..base.errors import DurableObjectError
from ..sockets.websocket import CloseCode

if TYPE_CHECKING:
    from .record import ObjectRecord

log = logging.getLogger("runtime.record")


async def evict(record: ObjectRecord) -> bool:
    """Leave memory and give the lease back (no events and no sockets for a while).

    Everything happens while holding the gate, so events arriving meanwhile queue up
    and then move to a fresh record, which finds the lease released."""
    if not record.idle or record.sockets:
        return False
    async with record.gate:
        quiet = time.monotonic() - record.last_active
        if (
            record.gone
            or record.running
            or record.gate.waiting
            or record.sockets
            or record.background
            or quiet < record.settings.idle_timeout
        ):
            return False
        if not await retire(record, CloseCode.SERVICE_RESTART, "evicted"):
            return False
    record.host.stats.evictions += 1
    return True


async def shut_down(record: ObjectRecord, code: int, reason: str, timeout: float = 5.0) -> None:
    """Node is stopping: let running events and background work finish, commit what is
    pending, close the sockets, release the lease."""
    deadline = time.monotonic() + timeout
    # Events awaiting another object need the gate back to finish: wait for them first.
    while record.running and time.monotonic() < deadline:  # noqa: ASYNC110 (rare, short)
        await asyncio.sleep(0.02)
    await record.background.wait(max(0.01, deadline - time.monotonic()))
    try:
        await asyncio.wait_for(record.gate.reenter(), max(0.01, deadline - time.monotonic()))
        held = True
    except TimeoutError:
        held = False
        log.warning(
            "%s still busy after %.0fs; stopping it anyway",
            record.describe(),
            timeout,
            extra=record.log_fields,
        )
    try:
        await retire(record, code, reason)
    finally:
        if held:
            record.gate.leave()


async def retire(record: ObjectRecord, code: int, reason: str) -> bool:
    """Leave for good in order (the gate held): no more events, commit what is pending,
    close the sockets with ``code``, release the lease. False if the commit failed (the
    record was discarded instead)."""
    record.leave()
    committed = True
    state = record.state
    if state is not None and state.has_uncommitted:
        try:
            await state.commits.sync()
        except DurableObjectError as exc:
            log.warning(
                "could not commit %s as it left: %s",
                record.describe(),
                exc,
                extra=record.log_fields,
            )
            committed = False
    record.sockets.abort_all(code, reason)
    record.state = record.storage = None
    if record.lease.value:
        try:
            await record.store.leases.release(record.keys, record.lease)
        except DurableObjectError:
            pass  # it expires by itself
    return committed
