"""Slot leasing, with no I/O: a room lends batches of slots and admission permits to one
shard per node, so a node admits and renews its own visitors without asking the room each
time. The room keeps both global limits exact:

- **Capacity.** The room counts every lent slot as in use (``RoomRules.leased``), used or
  not, so ``active in the room + slots lent <= total_active_users``; a shard admits only
  into the slots it holds. A shard tells the room how many slots it holds with every request (an
  absolute figure, numbered), so a lost answer or a shard restarted from storage is
  corrected by its next request, never double-counted.
- **Rate.** A permit handed out at time ``g`` is counted in the room's rate window at ``g``
  and is good for ``lease_seconds`` (``d``) after the shard *sent* its request (so before
  ``g + d``, whatever the clocks say). Every admission in a 60-second window was therefore
  counted within a window of ``60 + d`` seconds, and the room limits those instead. Permits
  a shard did not use are given back and uncounted (that only lowers counts).

Fairness: a shard admits on its own only while the room's line was empty at its last
contact, at most ``d`` seconds ago; otherwise newcomers go to the room's line, and a shard
gives back its free slots at its next contact, when the line is not empty, or ``d`` after
its permits ran out, whichever comes first.

Messages (plain data over RPC):

    shard -> room   {"seq", "held", "active", "admitted", "want_slots", "want_permits",
                     "unused"}
    room -> shard   {"slots", "permits", "held", "queued", "recall", "method",
                     "session_duration", "lease_seconds", "stale", "seq"}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from .deadlines import Deadlines
from .effects import Ask, Delete, InSlot, Left, ShardEffect, Store
from .line import Line
from .room_settings import RoomSettings
from .window import RateWindow

REQUEST_FIELDS = ("seq", "held", "active", "admitted", "want_slots", "want_permits", "unused")


def renewal_slack(session_duration: int) -> float:
    """How far a session's stored end may lag its real end. A renewal is stored only once it
    moves the end this much, and a room or shard rebuilt from storage adds it to every
    stored end, so a session never ends early after a restart (at most this much late), and
    a visitor browsing page after page costs a write every few seconds, not one per page."""
    return min(10.0, session_duration / 10)


def check_request(data: Any) -> dict[str, int]:
    """A shard's request, as non-negative integers (ValueError otherwise)."""
    if not isinstance(data, dict):
        raise ValueError("a lease request is a dict")
    out: dict[str, int] = {}
    for name in REQUEST_FIELDS:
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"lease request field {name!r} must be a non-negative int")
        out[name] = value
    return out


@dataclass(slots=True)
class ShardLease:
    """What the room knows of one shard."""

    held: int = 0
    seq: int = 0
    active: int = 0
    admitted: int = 0
    #: The last permits handed out: the second they were counted in and how many.
    grant_second: int = 0
    grant_permits: int = 0

    def wire(self) -> list[int]:
        return [
            self.held,
            self.seq,
            self.active,
            self.admitted,
            self.grant_second,
            self.grant_permits,
        ]

    @classmethod
    def from_wire(cls, data: Any) -> ShardLease:
        return cls(*(int(x) for x in data))


class LendingRoom(Protocol):
    """What the ledger needs of the room's rules (RoomRules, which holds the ledger)."""

    settings: RoomSettings
    leased: int
    admitted_total: int
    window: RateWindow
    recent: RateWindow
    line: Line

    @property
    def paused(self) -> bool: ...
    @property
    def in_use(self) -> int: ...
    @property
    def queued_count(self) -> int: ...
    def prequeue(self, now: float) -> bool: ...
    def fill(self, now: float) -> None: ...
    def touch_meta(self, *keys: str) -> None: ...


class Ledger:
    """The room's side: slots and permits lent to each shard (part of RoomRules: its
    ``lease`` input comes here, and what changed is stored with that input's effects)."""

    def __init__(self, room: LendingRoom, lease_seconds: float) -> None:
        self.room = room
        self.lease_seconds = lease_seconds
        self.shards: dict[str, ShardLease] = {}
        self._dirty: set[str] = set()

    def restore(self, items: dict[str, Any]) -> None:
        for shard, data in items.items():
            self.shards[shard] = ShardLease.from_wire(data)
        self.room.leased = sum(s.held for s in self.shards.values())

    def changed(self) -> dict[str, list[int]]:
        """The leases changed since the last call, as stored (and forget them)."""
        changed = {s: self.shards[s].wire() for s in self._dirty}
        self._dirty = set()
        return changed

    @property
    def shard_active(self) -> int:
        """Visitors admitted by shards, as they last said."""
        return sum(s.active for s in self.shards.values())

    def request(self, shard: str, req: dict[str, int], now: float) -> dict[str, Any]:
        """A shard's request: take its figures, give back what it returns, lend what the
        limits allow while the line is empty."""
        room = self.room
        s = room.settings
        lease = self.shards.get(shard)
        if lease is None:
            lease = self.shards[shard] = ShardLease()
        answer: dict[str, Any] = {
            "method": s.queueing_method,
            "session_duration": s.session_duration,
            "lease_seconds": self.lease_seconds,
            "slots": 0,
            "permits": 0,
        }
        if req["seq"] <= lease.seq:  # a late message, or a shard restarted from storage
            return {**answer, "stale": True, "seq": lease.seq, "held": lease.held,
                    "queued": room.queued_count, "recall": False}  # fmt: skip
        self._dirty.add(shard)
        if req["unused"] and lease.grant_permits:
            room.window.unrecord(lease.grant_second, min(req["unused"], lease.grant_permits))
            room.touch_meta("adm")
        lease.grant_permits = 0
        # A shard's visitors each hold a slot, whatever it says it holds (a figure restored
        # from an older write, say): the room never counts fewer slots than that.
        held = max(req["held"], req["active"])
        room.leased += held - lease.held
        lease.held, lease.seq, lease.active = held, req["seq"], req["active"]
        if req["admitted"] > lease.admitted:
            made = req["admitted"] - lease.admitted
            lease.admitted = req["admitted"]
            room.admitted_total += made
            room.recent.record(now, made)
            room.touch_meta("adm")
        room.fill(now)  # slots given back go to the line first
        lendable = not (room.line or room.prequeue(now) or room.paused or s.counts_only)
        if lendable:
            slots = max(0, min(req["want_slots"], s.total_active_users - room.in_use))
            permits = max(0, min(req["want_permits"], room.window.available(now)))
            if permits:
                room.window.record(now, permits)
                lease.grant_second, lease.grant_permits = math.floor(now), permits
                room.touch_meta("adm")
            lease.held += slots
            room.leased += slots
            answer.update(slots=slots, permits=permits)
        return {
            **answer,
            "stale": False,
            "seq": lease.seq,
            "held": lease.held,
            "queued": room.queued_count,
            "recall": not lendable or room.in_use > s.total_active_users,
        }


class ShardRules:
    """A node's side, the rules of one RoomShard: its visitors, the slots and permits it
    holds, and what it last heard from the room. ``mono`` is the node's monotonic clock
    (permits), ``now`` wall time (sessions). Each input returns the effects (effects.py) for
    the RoomShard object to carry out; what changed is stored once per input.

    Stored: ``m`` (held slots, request number, admissions, session length, room and node),
    ``v/<visitor>`` (session end)."""

    def __init__(self, *, lease_seconds: float, batch: int) -> None:
        self.lease_seconds = lease_seconds
        self.batch = batch
        #: Which room and node this shard is (its name says so; every call repeats it).
        self.room = ""
        self.node = ""
        self.held = 0
        self.seq = 0
        self.admitted = 0
        self.visitors: dict[str, float] = {}  # visitor -> session end
        self.saved: dict[str, float] = {}  # visitor -> session end as restored
        self._expiries = Deadlines()  # when each visitor's session may end
        self.permits = 0
        self.deadline = 0.0  # permits and the room's word hold until then (monotonic)
        self.method = "fifo"
        self.session_duration = 0
        self.queued = 0
        self.recall = False
        self.demand = 0  # newcomers since the last request (sizes the next batch)
        self._dirty: set[str] = set()
        self._meta_dirty = False

    # ------------------------------------------------------------ state

    def restore(self, visitors: dict[str, float], meta: dict[str, Any]) -> None:
        """Rebuild from storage (nothing to store: it is stored)."""
        self.room = str(meta.get("room", ""))
        self.node = str(meta.get("node", ""))
        self.held = int(meta.get("held", 0))
        self.seq = int(meta.get("seq", 0))
        self.admitted = int(meta.get("admitted", 0))
        self.session_duration = int(meta.get("session_duration", 0))
        slack = renewal_slack(self.session_duration)
        for visitor, expiry in visitors.items():
            self.saved[visitor] = float(expiry)
            self.visitors[visitor] = float(expiry) + slack
            self._expiries.set(visitor, float(expiry) + slack)
        # Every stored visitor holds a slot, even if the stored figure says fewer.
        self.held = max(self.held, len(self.visitors))

    def bind(self, room: str, node: str) -> bool:
        """Whether a call naming ``room`` and ``node`` is for this shard (the first call
        teaches it which it is)."""
        if not self.room:
            self.room, self.node = room, node
            self._meta_dirty = True
        return (self.room, self.node) == (room, node)

    def meta(self) -> dict[str, Any]:
        return {
            "held": self.held,
            "seq": self.seq,
            "admitted": self.admitted,
            "session_duration": self.session_duration,
            "room": self.room,
            "node": self.node,
        }

    def _effects(self, *answer: ShardEffect) -> list[ShardEffect]:
        """What this input changed, as effects (each visitor once), then ``answer``."""
        stored: dict[str, Any] = {}
        deleted: list[str] = []
        for visitor in self._dirty:
            expiry = self.visitors.get(visitor)
            if expiry is None:
                deleted.append(f"v/{visitor}")
            else:
                stored[f"v/{visitor}"] = expiry
        self._dirty = set()
        if self._meta_dirty:
            self._meta_dirty = False
            stored["m"] = self.meta()
        effects: list[ShardEffect] = [Store(stored)] if stored else []
        if deleted:
            effects.append(Delete(tuple(deleted)))
        effects.extend(answer)
        return effects

    @property
    def spare(self) -> int:
        return self.held - len(self.visitors)

    def informed(self, mono: float) -> bool:
        """The room's word (line empty or not, method, session length) is fresh."""
        return mono < self.deadline and self.session_duration > 0

    # ------------------------------------------------------------ decisions

    def renew(self, visitor: str, now: float) -> list[ShardEffect]:
        """A request of a visitor: if this shard admitted it, its session goes on
        (``InSlot``)."""
        self._expire(now)
        if visitor not in self.visitors or self.session_duration <= 0:
            return self._effects()
        expiry = self.visitors[visitor] = now + self.session_duration
        if expiry - self.saved.get(visitor, 0.0) >= renewal_slack(self.session_duration):
            self._dirty.add(visitor)
        return self._effects(InSlot(visitor))

    def try_admit(self, visitor: str, now: float, mono: float) -> list[ShardEffect]:
        """Admit a newcomer with a held slot and permit (``InSlot``), if the room's line was
        empty at its last word; else nothing: the room decides."""
        self.demand += 1
        if not self.informed(mono):
            return self._effects()
        if self.method == "passthrough":
            self._admit(visitor, now)
            return self._effects(InSlot(visitor))
        if self.queued or self.recall or self.spare <= 0 or self.permits <= 0:
            return self._effects()
        self.permits -= 1
        self._admit(visitor, now)
        return self._effects(InSlot(visitor))

    def wants_lease(self, mono: float) -> bool:
        """Whether asking the room could let a newcomer in here."""
        if not self.informed(mono):
            return True
        if self.method == "passthrough" or self.queued or self.recall:
            return False
        return self.spare <= 0 or self.permits <= 0

    def leave(self, visitor: str) -> list[ShardEffect]:
        """The visitor leaves (``Left``, if this shard held it)."""
        if self.visitors.pop(visitor, None) is None:
            return self._effects()
        self._dirty.add(visitor)
        return self._effects(Left(visitor))

    def expire(self, now: float) -> list[ShardEffect]:
        """Sessions that ended go."""
        self._expire(now)
        return self._effects()

    def _expire(self, now: float) -> None:
        for visitor in self._expiries.due(now):
            expiry = self.visitors.get(visitor)
            if expiry is None:
                continue
            if expiry > now:
                self._expiries.set(visitor, expiry)
                continue
            del self.visitors[visitor]
            self._dirty.add(visitor)

    def should_return(self, mono: float) -> bool:
        """Free slots go back: the room has a line (or asks for them back), or this shard
        has been quiet for a lease period."""
        if self.spare <= 0:
            return False
        return bool(self.queued or self.recall) or mono >= self.deadline + self.lease_seconds

    # ------------------------------------------------------------ talking to the room

    def request(self, mono: float, want: bool = True) -> list[ShardEffect]:
        """The next request to the room (``Ask``). Unused permits are void from now on, and
        free slots go back when the room needs them or this shard is idle. (What it changes
        here is stored with the effects of the answer, ``granted``.)"""
        self.seq += 1
        unused, self.permits = self.permits, 0
        if self.should_return(mono) or not want:
            self.held = len(self.visitors)  # counted as returned even if the answer is lost
        want_permits = min(self.batch, self.demand * 2 + 1) if want else 0
        want_slots = max(0, want_permits - max(0, self.spare)) if want else 0
        self._meta_dirty = True
        request = {
            "seq": self.seq,
            "held": self.held,
            "active": len(self.visitors),
            "admitted": self.admitted,
            "want_slots": want_slots,
            "want_permits": want_permits,
            "unused": unused,
        }
        return [Ask(request)]

    def granted(self, answer: dict[str, Any] | None, sent: float) -> list[ShardEffect]:
        """The room's answer to a request sent at monotonic time ``sent`` (None: it was
        lost or refused; the next request corrects whatever it would have said)."""
        if answer is None:
            return self._effects()
        self.method = str(answer.get("method", "fifo"))
        self.session_duration = int(answer.get("session_duration", 0))
        # The room's period, not this node's setting: its rate window is widened by it.
        self.lease_seconds = min(self.lease_seconds, float(answer.get("lease_seconds", 0)) or 1e9)
        self.queued = int(answer.get("queued", 0))
        self.recall = bool(answer.get("recall", False))
        if answer.get("stale"):
            self.seq = max(self.seq, int(answer.get("seq", 0)))
            self.deadline = 0.0  # ask again, with a fresh number
            return self._effects()
        self.held += int(answer.get("slots", 0))
        self.permits = int(answer.get("permits", 0))
        self.deadline = sent + self.lease_seconds
        self.demand = 0
        self._meta_dirty = True
        return self._effects()

    def next_wake(self, now: float, mono: float) -> float | None:
        """Wall time of the next expiry, or of giving back idle slots."""
        first = self._expiries.next()
        times = [first] if first is not None else []
        if self.spare > 0:
            times.append(now + max(0.0, self.deadline + self.lease_seconds - mono))
        return min(times) if times else None

    def _admit(self, visitor: str, now: float) -> None:
        expiry = now + self.session_duration
        self.visitors[visitor] = expiry
        self._expiries.set(visitor, expiry)
        self.admitted += 1
        self._dirty.add(visitor)
        self._meta_dirty = True
