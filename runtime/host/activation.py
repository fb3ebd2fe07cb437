"""How an object comes to life on a node, and how it is given up when the node cannot
prove its lease.

``ready`` is the start of every event: the live instance, or one built now — the lease
taken (routing.acquire_lease places the object) or confirmed if its local deadline passed,
the state and the ``Storage`` face made, the constructor run with anything it asked to run
first (``block_concurrency_while``). ``confirm`` renews a lease past its local deadline,
waiting at most ``confirm_timeout``; ``fence`` gives the object up when that, or the node's
renewal round, fails: before the lease can run out in Redis.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..base.errors import DurableObjectError, Fenced, RecordGone, StorageUnavailable
from ..objects.object import DurableObject, ObjectContext
from ..sockets.websocket import CloseCode
from ..storage.api import Storage
from ..storage.lease import confirm_timeout
from ..storage.state import ObjectState

if TYPE_CHECKING:
    from .record import ObjectRecord


async def ready(record: ObjectRecord) -> DurableObject:
    """The live instance, activating it (lease, constructor, init) when needed."""
    instance = record.instance
    if instance is not None:
        if not record.lease.live:
            await _confirm_or_gone(record)
            if record.gone or record.instance is not instance:  # discarded meanwhile
                raise RecordGone
        return instance
    if not record.lease.value:
        record.lease = await record.host.acquire_lease(record)
    elif not record.lease.live:
        await _confirm_or_gone(record)
    if record.gone:  # discarded or fenced while it waited for the lease: build nothing
        raise RecordGone
    if record.state is None:
        state = ObjectState(record)
        if record.namespace.replicated:  # its commits count on from the stored version
            state.commits.version = await _stored_version(record)
        record.state = state
        record.storage = Storage(state)
    record.pending_init = []
    try:
        instance = record.namespace.cls(ObjectContext(record), record.namespace.env)
    finally:
        init, record.pending_init = record.pending_init, None
    for fn, future in init:
        try:
            future.set_result(await fn())
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: it is raised to the event instead
            raise
    record.instance = instance
    record.host.stats.activations += 1
    return instance


async def _stored_version(record: ObjectRecord) -> int:
    """The object's version in Redis (replicated classes): no commit of it is in flight
    while it activates, so this is the version of what it will read."""
    try:
        raw = await asyncio.wait_for(
            record.store.redis.get(record.keys.version), record.settings.lease_ttl / 2
        )
    except (Exception, TimeoutError) as exc:
        raise StorageUnavailable(
            f"{record.describe()} could not be activated: its version could not be read ({exc})",
            may_have_run=False,
        ) from None
    return int(raw or 0)


async def _confirm_or_gone(record: ObjectRecord) -> None:
    try:
        await confirm(record)
    except Fenced:
        raise RecordGone from None


async def confirm(record: ObjectRecord) -> None:
    """Renew the lease now (its local deadline passed). If it is lost, or cannot be
    renewed within ``confirm_timeout`` (Redis unreachable), the record is given up
    (``Fenced``): the event goes wherever the object is now."""
    try:
        kept = await asyncio.wait_for(
            record.store.leases.renew(record.keys, record.lease), confirm_timeout(record.settings)
        )
    except (DurableObjectError, TimeoutError) as exc:
        why = "no answer in time" if isinstance(exc, TimeoutError) else str(exc)
        fence(record, f"its lease could not be renewed ({why})")
        raise Fenced(f"{record.describe()} was given up: {why}", may_have_run=False) from None
    if not kept:
        error = Fenced(
            f"{record.describe()} lost its lease; another node may own it now",
            may_have_run=False,
        )
        record.host.stats.leases_lost += 1
        record.discard(error, CloseCode.SERVICE_RESTART)
        raise error


def fence(record: ObjectRecord, why: str) -> None:
    """This node can no longer prove it holds the lease (renewals failed until its local
    deadline): stop serving the object before the lease may run out in Redis. Its
    sockets close with 1012 so their clients reconnect (through another node, if the
    balancer sends them there), what waited for a commit hears whether its writes may
    have been stored, and the next event here takes the object again (or goes where it
    lives by then)."""
    if record.gone:
        return
    record.host.stats.self_fenced += 1
    record.discard(
        Fenced(f"{record.describe()} was given up by this node: {why}", may_have_run=False),
        CloseCode.SERVICE_RESTART,
    )
