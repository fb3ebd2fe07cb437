"""The rules of a waiting room, with no sockets and no storage: time and visitors in,
decisions and changes out.

A visitor is *active* (admitted: holding one of ``total_active_users`` slots until
``session_duration`` seconds pass without a request) or *queued* (holding a ticket in the
line). Every decision keeps two limits, whatever happens:

- ``active + leased <= total_active_users`` at every instant (``leased``: slots lent to
  per-node shards, see leasing.py), except in passthrough, which admits all and only counts;
- at most ``new_users_per_minute`` admissions in any 60-second window (window.py).

Queueing methods: ``fifo`` serves the line in ticket order; ``random`` serves any queued
visitor with equal chance; ``passthrough`` admits everyone; ``reject`` turns away whoever
cannot be admitted at once. ``queue_all`` pauses the room, whatever the method: nobody is
admitted and every newcomer queues (visitors on the site keep their sessions), until it is
turned off, when the line is served again. A scheduled event (``event_start``,
``prequeue_start``) queues everyone from the pre-queue's start and opens the line at
``event_start``, shuffling it first when ``shuffle_at_start`` is set (a lottery).

Slot leasing's room side (the ledger of slots and permits lent to per-node shards) is part
of these rules; its code is leasing.py.

:class:`RoomRules` takes each input (a visit, a departure, new settings, a shard's lease
request, the time) and returns the effects (effects.py) for the WaitingRoom object
(waiting_room.py) to carry out: what to store (each changed visitor once, however often it
changed), admissions to push at once, queue positions to push in one batched pass
(:meth:`RoomRules.positions`), and the answer for whoever asked.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .deadlines import Deadlines
from .effects import (
    ADMITTED_STATUS,
    REJECTED_STATUS,
    WAITING,
    Admitted,
    Delete,
    Granted,
    Left,
    Reordered,
    RoomEffect,
    Status,
    Store,
    Told,
)
from .leasing import Ledger, renewal_slack
from .line import Line
from .room_settings import RoomSettings
from .window import RateWindow

ACTIVE = "a"
QUEUED = "q"


#: Admissions observed over this long feed the wait estimate.
ESTIMATE_SPAN = 300.0


@dataclass(slots=True)
class Visitor:
    """One visitor the room knows: admitted (with its session's end) or queued."""

    id: str
    state: str
    ticket: int = 0
    expiry: float = 0.0
    #: Position when the visitor joined the line (the waiting page's progress bar).
    first_position: int = 0
    #: The session end last stored (renewals are stored only when they move it enough).
    saved_expiry: float = 0.0

    def wire(self) -> list[Any]:
        return [self.state, self.ticket, self.expiry, self.first_position]

    @classmethod
    def from_wire(cls, visitor: str, data: Any) -> Visitor:
        state, ticket, expiry, first = data
        if state not in (ACTIVE, QUEUED):
            raise ValueError(f"unknown visitor state {state!r}")
        return cls(visitor, str(state), int(ticket), float(expiry), int(first), float(expiry))


def progress(first_position: int, position: int | None) -> int:
    """How far along the line a queued visitor is, in percent, for the waiting page's bar:
    0 where they joined, never 100 while they wait (position 1 still waits: the bar is
    full only once they are in)."""
    if position is None or first_position <= 0:
        return 0
    first = max(first_position, position)
    return max(0, min(95, round(100 * (first - position) / first)))


Effects = list[RoomEffect]

#: Where a visitor's record is stored (``v/<visitor>``), and a shard's lease (``l/<shard>``);
#: the room's other keys: ``seq``, ``adm``, ``ev``.
VISITOR_PREFIX = "v/"
LEASE_PREFIX = "l/"


@dataclass
class _Changes:
    """What the room's current input changed besides stored records (which ``_dirty`` and
    ``_meta_dirty`` note)."""

    #: Visitors admitted from the line: tell them now.
    admitted: list[str] = field(default_factory=list)
    #: Positions or waits of queued visitors changed: push them (batched).
    reordered: bool = False


class RoomRules:
    """One room's visitors, line, limits and clock-driven changes, and the slots it lends."""

    def __init__(
        self,
        settings: RoomSettings,
        *,
        now: float,
        rng: random.Random | None = None,
        window_span: float = 60.0,
        queue_timeout: float = 120.0,
        lease_seconds: float = 1.0,
    ) -> None:
        self.settings = settings
        self.rng = rng or random.Random()
        self.queue_timeout = queue_timeout
        self.visitors: dict[str, Visitor] = {}
        self.line = Line()
        self.active_count = 0
        #: Slots lent to per-node shards (leasing.py keeps the ledger).
        self.leased = 0
        self.window = RateWindow(settings.new_users_per_minute, window_span)
        self.seq = 1
        self.admitted_total = 0
        self.started = not (settings.event_start is not None and settings.event_start > now)
        self.since = now
        #: Admissions per second over the last ESTIMATE_SPAN (figures and wait estimates).
        self.recent = RateWindow(0, ESTIMATE_SPAN)
        self.sockets: dict[str, int] = {}
        self.last_seen: dict[str, float] = {}
        self._expiries = Deadlines()  # when each active visitor's session may end
        self._deadlines = Deadlines()  # when each queued visitor may have left the line
        self._changes = _Changes()
        self._dirty: set[str] = set()
        self._meta_dirty: set[str] = set()
        #: The slots and permits lent to per-node shards (slot leasing).
        self.ledger = Ledger(self, lease_seconds)
        if settings.event_start is not None:
            # Stored from the start: a room rebuilt after event_start must know whether the
            # start (and its lottery) was handled, and "not stored" reads as "not handled".
            self.touch_meta("ev")

    # ------------------------------------------------------------ state

    def restore(
        self,
        visitors: Iterable[tuple[str, Any]],
        meta: dict[str, Any],
        leases: dict[str, Any] | None = None,
    ) -> None:
        """Rebuild from storage (nothing to store: it is stored). Queued visitors count as
        just seen: their pages reconnect."""
        now = self.since
        slack = renewal_slack(self.settings.session_duration)
        for visitor_id, data in visitors:
            v = Visitor.from_wire(visitor_id, data)
            self.visitors[v.id] = v
            if v.state == ACTIVE:
                v.expiry += slack  # renewals since the last stored one may be missing
                self.active_count += 1
                self._expiries.set(v.id, v.expiry)
            else:
                self.line.add(v.id, v.ticket)
                self._track_queued(v.id, now)
                self.seq = max(self.seq, v.ticket + 1)
        self.seq = max(self.seq, int(meta.get("seq", 1)))
        admissions = meta.get("adm") or {}
        self.window.load(admissions.get("w"))
        self.admitted_total = int(admissions.get("n", 0))
        if isinstance(meta.get("ev"), dict):
            self.started = bool(meta["ev"].get("started", False))
            self._meta_dirty.discard("ev")  # (as stored already)
        elif self.settings.event_start is not None:
            # Never stored: the start was never handled (it stores "ev" when it is), so
            # it is handled now, lottery and all, even if event_start has passed. (The
            # first input's effects store it.)
            self.started = False
        self.ledger.restore(leases or {})

    def _effects(self, *answer: RoomEffect) -> Effects:
        """What this input changed, as effects, then ``answer``: every changed visitor and
        stored figure once (with its latest value), the admissions, the reordering."""
        changes, self._changes = self._changes, _Changes()
        stored: dict[str, Any] = {key: self._meta_value(key) for key in self._meta_dirty}
        self._meta_dirty = set()
        deleted: list[str] = []
        for visitor_id in self._dirty:
            v = self.visitors.get(visitor_id)
            if v is None:
                deleted.append(VISITOR_PREFIX + visitor_id)
            else:
                stored[VISITOR_PREFIX + visitor_id] = v.wire()
                v.saved_expiry = v.expiry
        self._dirty = set()
        for shard, lease in self.ledger.changed().items():
            stored[LEASE_PREFIX + shard] = lease
        effects: Effects = [Store(stored)] if stored else []
        if deleted:
            effects.append(Delete(tuple(deleted)))
        effects.extend(Admitted(visitor) for visitor in changes.admitted)
        if changes.reordered:
            effects.append(Reordered())
        effects.extend(answer)
        return effects

    def touch_meta(self, *keys: str) -> None:
        """Note stored keys other than visitors as changed (their values are read when the
        input's effects are made, so what is stored is the latest)."""
        self._meta_dirty.update(keys)

    def _meta_value(self, key: str) -> Any:
        if key == "seq":
            return self.seq
        if key == "adm":
            return {"w": self.window.to_wire(), "n": self.admitted_total}
        if key == "ev":
            return {"started": self.started}
        raise KeyError(key)

    @property
    def queued_count(self) -> int:
        return len(self.line)

    @property
    def in_use(self) -> int:
        """Slots in use or lent out: what the capacity limit applies to."""
        return self.active_count + self.leased

    # ------------------------------------------------------------ phases

    def prequeue(self, now: float) -> bool:
        """Between the pre-queue's start and the event's start everyone is queued."""
        s = self.settings
        return (
            s.event_start is not None
            and s.prequeue_start is not None
            and s.prequeue_start <= now < s.event_start
        )

    def order_hidden(self, now: float) -> bool:
        """Positions mean nothing yet (random order, or a lottery still to be drawn)."""
        s = self.settings
        return s.queueing_method == "random" or (s.shuffle_at_start and not self.started)

    @property
    def paused(self) -> bool:
        """Queue all: nobody is admitted, everybody new queues."""
        return self.settings.queue_all

    def can_admit(self, now: float) -> bool:
        """A slot is free and the rate window has room (and the room is not paused)."""
        if self.paused:
            return False
        if self.settings.counts_only:
            return True
        return (
            self.in_use < self.settings.total_active_users
            and self.window.available(now) > 0
            and not self.prequeue(now)
        )

    # ------------------------------------------------------------ decisions

    def visit(self, visitor_id: str, now: float, join: bool = True) -> Effects:
        """A request of ``visitor_id``: renews an admitted visitor's session, tells a queued
        one its place, and decides for a newcomer (admit, queue or reject); ``Told`` says
        which. Without ``join`` (a request that cannot show the waiting page), a newcomer
        who cannot be admitted at once is turned away: a ticket nobody waits on would only
        be admitted later into a slot nobody uses."""
        self.tick_notes(now)
        v = self.visitors.get(visitor_id)
        if v is None and not join and not self.admits_newcomer(now):
            return self._effects(Told(REJECTED_STATUS))
        if v is not None and v.state == ACTIVE:
            v.expiry = now + self.settings.session_duration
            if v.expiry - v.saved_expiry >= renewal_slack(self.settings.session_duration):
                self._dirty.add(v.id)
            return self._effects(Told(ADMITTED_STATUS, v.first_position))
        if v is not None:
            self.last_seen[v.id] = now
            return self._effects(Told(self.status_of(v, now), v.first_position))
        status = self._arrive(visitor_id, now)
        v = self.visitors.get(visitor_id)
        return self._effects(Told(status, v.first_position if v is not None else 0))

    def admits_newcomer(self, now: float) -> bool:
        """Whether a newcomer arriving now would be admitted at once (everyone, in
        passthrough; else a free slot, the rate allowing, and nobody in line)."""
        if self.paused:
            return False
        return self.settings.counts_only or (not self.line and self.can_admit(now))

    def _arrive(self, visitor_id: str, now: float) -> Status:
        s = self.settings
        if self.admits_newcomer(now):
            self._admit(visitor_id, now)
            return ADMITTED_STATUS
        if s.queueing_method == "reject" and not self.prequeue(now) and not self.paused:
            return REJECTED_STATUS
        v = self._enqueue(visitor_id, now)
        return self.status_of(v, now)

    def status(self, visitor_id: str, now: float) -> Status | None:
        """What ``visitor_id`` would be told now, changing nothing; None if unknown."""
        v = self.visitors.get(visitor_id)
        return None if v is None else self.status_of(v, now)

    def status_of(self, v: Visitor, now: float) -> Status:
        if v.state == ACTIVE:
            return ADMITTED_STATUS
        hidden = self.order_hidden(now)
        position = None if hidden else self.line.position(v.id)
        return Status(WAITING, position, self.eta(position, now), self.paused)

    def leave(self, visitor_id: str, now: float) -> Effects:
        """The visitor leaves (``Left``, if known): an admitted one frees its slot for the
        line at once."""
        v = self.visitors.pop(visitor_id, None)
        if v is None:
            return []
        self._dirty.add(visitor_id)
        if v.state == ACTIVE:
            self.active_count -= 1
        else:
            self.line.remove(visitor_id)
            self._forget_queued(visitor_id)
            self._changes.reordered = True
        self.tick_notes(now)
        return self._effects(Left(visitor_id))

    def update(self, settings: RoomSettings, now: float) -> Effects:
        """New settings, live: more capacity admits from the line at once."""
        old, self.settings = self.settings, settings
        self.window.limit = settings.new_users_per_minute
        if settings.event_start != old.event_start:
            if settings.event_start is None:
                self.started = True
            elif settings.event_start > now:
                self.started = False  # re-armed: a pre-queue again, and its lottery
            # A start moved to a moment already past ("start now") is left to tick() below,
            # which starts the event (drawing the lottery) unless that was done already.
            self.touch_meta("ev")
        self._changes.reordered = True  # waits and positions may read differently now
        return self.tick(now)

    def lease(self, shard: str, request: dict[str, int], now: float) -> Effects:
        """A node's shard asks for slots and permits (``request`` checked by
        leasing.check_request), and gives back what it does not use: ``Granted`` answers."""
        self.tick_notes(now)
        return self._effects(Granted(self.ledger.request(shard, request, now)))

    # ------------------------------------------------------------ sockets

    def attach(self, visitor_id: str) -> None:
        """A page of the visitor is open (a socket): a queued visitor keeps their place."""
        self.sockets[visitor_id] = self.sockets.get(visitor_id, 0) + 1

    def detach(self, visitor_id: str, now: float) -> None:
        left = self.sockets.get(visitor_id, 0) - 1
        if left > 0:
            self.sockets[visitor_id] = left
        else:
            self.sockets.pop(visitor_id, None)
            if visitor_id in self.last_seen:
                self.last_seen[visitor_id] = now

    # ------------------------------------------------------------ time

    def tick(self, now: float) -> Effects:
        """Everything time decides: the event's start, sessions ending, visitors who left
        the line, and admissions from the line."""
        self.tick_notes(now)
        return self._effects()

    def tick_notes(self, now: float) -> None:
        """What :meth:`tick` does, noted for the effects of the input that asked (every
        input lets time decide first)."""
        self._start_event(now)
        self._expire(now)
        self._abandon(now)
        self.fill(now)

    def fill(self, now: float) -> None:
        """Admit from the line while a slot is free and the rate allows (noted for the
        effects of the input that asked)."""
        s = self.settings
        if self.prequeue(now) or not self.line:
            return
        while self.line and self.can_admit(now):
            if s.queueing_method == "random":
                visitor_id = self.line.pop_random(self.rng)
            else:
                visitor_id = self.line.pop_first()
            self._forget_queued(visitor_id)
            self._admit(visitor_id, now)
            self._changes.admitted.append(visitor_id)
            self._changes.reordered = True

    def next_wake(self, now: float) -> float | None:
        """When :meth:`tick` next has something to do (None: nothing scheduled)."""
        times = [t for t in (self._expiries.next(), self._deadlines.next()) if t is not None]
        s = self.settings
        if s.event_start is not None and not self.started:
            times.append(s.event_start)
        if (
            self.line
            and not self.prequeue(now)
            and not self.paused
            and not s.counts_only
            and self.in_use < s.total_active_users
            and self.window.available(now) == 0
        ):
            times.append(self.window.next_free(now))
        return min(times) if times else None

    def _start_event(self, now: float) -> None:
        s = self.settings
        if self.started or s.event_start is None or now < s.event_start:
            return
        self.started = True
        self.touch_meta("ev")
        if s.shuffle_at_start and len(self.line) > 1:
            order = list(self.line)
            self.rng.shuffle(order)
            for position, (visitor_id, ticket) in enumerate(
                sorted(self.line.reassign(order).items(), key=lambda item: item[1]), 1
            ):
                v = self.visitors[visitor_id]
                v.ticket, v.first_position = ticket, position
                self._dirty.add(visitor_id)
        self._changes.reordered = True

    def _expire(self, now: float) -> None:
        for visitor_id in self._expiries.due(now):
            v = self.visitors.get(visitor_id)
            if v is None or v.state != ACTIVE:
                continue  # left meanwhile
            if v.expiry > now:
                self._expiries.set(visitor_id, v.expiry)  # renewed since
                continue
            del self.visitors[visitor_id]
            self.active_count -= 1
            self._dirty.add(visitor_id)

    def _abandon(self, now: float) -> None:
        for visitor_id in self._deadlines.due(now):
            v = self.visitors.get(visitor_id)
            if v is None or v.state != QUEUED:
                continue
            if self.sockets.get(visitor_id):
                self._deadlines.set(visitor_id, now + self.queue_timeout)
                continue
            deadline = self.last_seen.get(visitor_id, 0.0) + self.queue_timeout
            if deadline > now:
                self._deadlines.set(visitor_id, deadline)
                continue
            del self.visitors[visitor_id]
            self.line.remove(visitor_id)
            self._forget_queued(visitor_id)
            self._dirty.add(visitor_id)
            self._changes.reordered = True

    # ------------------------------------------------------------ helpers

    def _admit(self, visitor_id: str, now: float) -> None:
        v = Visitor(visitor_id, ACTIVE, expiry=now + self.settings.session_duration)
        self.visitors[visitor_id] = v
        self.active_count += 1
        self._expiries.set(visitor_id, v.expiry)
        self._dirty.add(visitor_id)
        self.admitted_total += 1
        self.recent.record(now)
        if not self.settings.counts_only:
            self.window.record(now)
        self.touch_meta("adm")

    def _enqueue(self, visitor_id: str, now: float) -> Visitor:
        ticket = self.seq
        self.seq += 1
        position = self.line.add(visitor_id, ticket)
        v = Visitor(visitor_id, QUEUED, ticket=ticket, first_position=position)
        self.visitors[visitor_id] = v
        self._track_queued(visitor_id, now)
        self._dirty.add(visitor_id)
        self.touch_meta("seq")
        if self.order_hidden(now):
            self._changes.reordered = True  # everyone's expected wait grew
        return v

    def _track_queued(self, visitor_id: str, now: float) -> None:
        self.last_seen[visitor_id] = now
        self._deadlines.set(visitor_id, now + self.queue_timeout)

    def _forget_queued(self, visitor_id: str) -> None:
        self.last_seen.pop(visitor_id, None)  # its deadline is skipped when it comes up

    # ------------------------------------------------------------ figures

    def throughput(self, now: float) -> float:
        """Admissions per second the line can expect: what was observed lately, never more
        than the rate limit; before enough is observed, a full turnover of the capacity
        per session."""
        s = self.settings
        limit = s.new_users_per_minute / 60.0
        observed = self.recent.count_since(now, ESTIMATE_SPAN)
        if observed >= 10:
            span = min(ESTIMATE_SPAN, max(30.0, now - self.since))
            return min(limit, observed / span)
        return min(limit, s.total_active_users / s.session_duration)

    def eta(self, position: int | None, now: float, rate: float | None = None) -> int | None:
        """Seconds until a queued visitor at ``position`` is likely admitted (for a hidden
        order, the expected wait of a random pick)."""
        s = self.settings
        if self.paused:
            return None  # nobody moves until the room is resumed
        if s.counts_only:
            return 0
        rate = rate if rate is not None else self.throughput(now)
        if rate <= 0:
            return None
        wait = 0.0
        if s.event_start is not None and now < s.event_start and self.prequeue(now):
            wait = s.event_start - now
        ahead = (len(self.line) + 1) / 2 if position is None else position
        return math.ceil(wait + ahead / rate)

    def positions(self, now: float) -> Iterator[tuple[str, Status]]:
        """Every queued visitor's status, in one pass over the line (O(n))."""
        rate = self.throughput(now)
        paused = self.paused
        if self.order_hidden(now):
            status = Status(WAITING, None, self.eta(None, now, rate), paused)
            for visitor_id in self.line:
                yield visitor_id, status
            return
        for position, visitor_id in enumerate(self.line, 1):
            yield visitor_id, Status(WAITING, position, self.eta(position, now, rate), paused)

    def figures(self, now: float) -> dict[str, Any]:
        """The room's figures for its admin page and the JSON interface."""
        return {
            "active": self.in_use,
            "queued": len(self.line),
            "admitted_last_minute": self.recent.count_since(now, 60),
            "admitted_total": self.admitted_total,
            "leased": self.leased,
            "admitted_by_room": self.active_count,
            "admitted_by_shards": self.ledger.shard_active,
        }
