"""A waiting room's read replica (docs/replicas.md): its rules follow the primary's commits.

A replica of a room (an instance on a node that does not host the room) builds its
``RoomRules`` from the stored copy, as the primary does when it activates, and then keeps
them current from each commit the primary publishes (:func:`follow`): every changed visitor
record, the counters, the leases, the settings. It never decides and never ticks: the
primary's alarms keep the committed state moving (sessions ending, the line served, the
event starting), and each of their commits reaches the replica like any other.

What is not stored cannot be followed exactly: the admissions of the last minute (the
primary keeps them in memory only) are counted here from the growth of the stored total,
at the moment each commit is applied (:func:`follow`), and a replica that has just loaded
starts them from the stored rate window where that window counts exactly the admissions (a
room that neither leases slots nor passes everyone through: :func:`seed_recent`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .leasing import ShardLease
from .rules import ACTIVE, LEASE_PREFIX, VISITOR_PREFIX, RoomRules, Visitor

#: Keys whose change makes the replica rebuild the whole room from its copy (rare: a
#: settings change, the event's start), rather than follow key by key.
REBUILD_KEYS = frozenset({"cfg", "ev"})


def figures_at(rules: RoomRules, now: float) -> dict[str, Any]:
    """The room's figures and settings (``GET /api/rooms/<room>``) from its committed
    state at ``now``, changing nothing (a read-only call: on the primary and on replicas).
    What time would change by ``now`` is the primary alarm's to commit."""
    return {**rules.figures(now), **rules.settings.as_dict()}


def needs_rebuild(keys: frozenset[str]) -> bool:
    """Whether a commit of ``keys`` changes what the rules were built from."""
    return not keys.isdisjoint(REBUILD_KEYS)


@dataclass(slots=True)
class Followed:
    """What a commit changed for the replica's waiting pages."""

    #: Visitors admitted from the line (their pages are told at once).
    admitted: list[str] = field(default_factory=list)
    #: The line or the wait estimates moved (pages get their new status, batched).
    reordered: bool = False


def follow(rules: RoomRules, values: dict[str, Any], now: float) -> Followed:
    """Apply one commit of the primary to a replica's ``rules``: ``values`` maps each key
    the commit wrote to its new value, or to None if it deleted it (keys outside the
    room's records are ignored). Changed visitors are all taken out before any is put
    back, so tickets dealt anew in one commit (a lottery) never collide."""
    followed = Followed()
    visitors = {
        k[len(VISITOR_PREFIX) :]: v for k, v in values.items() if k.startswith(VISITOR_PREFIX)
    }
    queued = set()  # (visitors who were in line before this commit)
    for visitor_id in visitors:
        if _drop(rules, visitor_id):
            queued.add(visitor_id)
    for visitor_id, data in sorted(visitors.items(), key=lambda item: _ticket(item[1])):
        if data is None:
            continue
        v = Visitor.from_wire(visitor_id, data)
        _add(rules, v)
        if v.state == ACTIVE and visitor_id in queued:
            followed.admitted.append(visitor_id)
        elif v.state != ACTIVE:
            queued.add(visitor_id)
    followed.reordered = bool(queued)
    leases = {k[len(LEASE_PREFIX) :]: v for k, v in values.items() if k.startswith(LEASE_PREFIX)}
    if leases:
        for shard, data in leases.items():
            if data is None:
                rules.ledger.shards.pop(shard, None)
            else:
                rules.ledger.shards[shard] = ShardLease.from_wire(data)
        rules.leased = sum(lease.held for lease in rules.ledger.shards.values())
    if values.get("seq") is not None:
        rules.seq = max(rules.seq, int(values["seq"]))
    admissions = values.get("adm")
    if isinstance(admissions, dict):
        rules.window.load(admissions.get("w"))
        total = int(admissions.get("n", 0))
        if total > rules.admitted_total:
            rules.recent.record(now, total - rules.admitted_total)
            followed.reordered = bool(rules.line)  # (waits are estimated from admissions)
        rules.admitted_total = total
    return followed


def admitted_between(old: RoomRules, new: RoomRules) -> list[str]:
    """Visitors in ``old``'s line whom ``new`` holds admitted (a rebuild's admissions)."""
    return [v for v in old.line if (now := new.visitors.get(v)) is not None and now.state == ACTIVE]


def seed_recent(rules: RoomRules, now: float) -> None:
    """Start a freshly loaded replica's admissions of the last minutes from the stored rate
    window, where it holds exactly the room's admissions (not slots lent to shards, which
    it counts too, nor a passthrough room's, which it does not count)."""
    s = rules.settings
    if s.slot_leasing or s.counts_only:
        return
    for second, count in rules.window.buckets.items():
        rules.recent.record(float(second), count)
    rules.recent.prune(now)


def keep_recent(old: RoomRules, new: RoomRules, now: float) -> None:
    """A rebuilt replica keeps the admissions it had counted (they are stored nowhere), and
    counts those the commit that rebuilt it made."""
    new.recent.buckets = dict(old.recent.buckets)
    new.since = old.since  # (wait estimates divide what was counted by how long it was)
    if new.admitted_total > old.admitted_total:
        new.recent.record(now, new.admitted_total - old.admitted_total)


def _ticket(data: Any) -> int:
    return int(data[1]) if isinstance(data, list | tuple) and len(data) > 1 else 0


def _drop(rules: RoomRules, visitor_id: str) -> bool:
    """Take a visitor out (to be put back as the commit says): whether they were in line."""
    v = rules.visitors.pop(visitor_id, None)
    if v is None:
        return False
    if v.state == ACTIVE:
        rules.active_count -= 1
        return False
    rules.line.remove(visitor_id)
    rules.last_seen.pop(visitor_id, None)
    return True


def _add(rules: RoomRules, v: Visitor) -> None:
    rules.visitors[v.id] = v
    if v.state == ACTIVE:
        rules.active_count += 1
    else:
        rules.line.add(v.id, v.ticket)
