"""Checkers for histories (history.py): is what the clients saw possible for one correct object?

Two kinds, both run on every key separately (linearizability is compositional: a history is
linearizable when each object's part of it is):

- :func:`linearizable`: the Wing & Gong search with Lowe's memoisation, as Knossos and
  Porcupine do it. Operations are put in some order, one after another, each placed between
  its invocation and its completion, and a model of the object (:class:`Register`,
  :class:`Counter`) says whether each would have returned what the client saw. A ``fail``
  operation never happened, so it is left out; an ``info`` one may take effect at any time
  after its invocation, or never. The search backtracks when an operation that completed
  cannot be placed; a (placed set, model state) pair seen before is not tried again. It can
  take exponential time when many operations are unknown at once, so it has a budget of
  steps: past it the answer is "unknown", never a pass.
- :func:`check_counter`: the checks of a fetch-and-increment counter that run in
  O(n log n) however many operations are unknown: no value handed out twice, values in
  real-time order, no acknowledged increment lost, nothing applied twice, no read from the
  past and no read that goes back, and nothing applied that was said not to have run (no
  value counts more increments than had begun, "not-run" ones left out, by its return).

Each returns a list of anomalies in words (empty: none found).
"""

from __future__ import annotations

import bisect
from collections import Counter as Tally
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tests.nemesis.history import FAIL, INFO, OK, Op

# ------------------------------------------------------------------------- models


class Model(Protocol):
    """A sequential object: its first state, and one operation applied to a state."""

    def init(self) -> Any: ...
    def step(self, state: Any, op: Op) -> tuple[bool, Any]:
        """(whether ``op`` could have returned what it returned from ``state``, next state).
        An info operation's return value is unknown: only its effect counts."""
        ...


class Register:
    """A register holding one value: read, write, compare-and-set. Starts as None."""

    def init(self) -> Any:
        return None

    def step(self, state: Any, op: Op) -> tuple[bool, Any]:
        if op.f == "read":
            return (op.status == INFO or op.value == state), state
        if op.f == "write":
            return True, op.arg
        if op.f == "cas":
            expected, new = op.arg
            if op.status == INFO:  # placed here, it succeeds exactly when the value matches
                return True, new if state == expected else state
            if op.value:  # it said it swapped
                return state == expected, new
            return state != expected, state
        raise ValueError(f"a register has no {op.f!r} operation")


class Counter:
    """A fetch-and-increment counter from 0: "inc" returns the new value, "read" the value."""

    def init(self) -> Any:
        return 0

    def step(self, state: Any, op: Op) -> tuple[bool, Any]:
        if op.f == "inc":
            return (op.status == INFO or op.value == state + 1), state + 1
        if op.f == "read":
            return (op.status == INFO or op.value == state), state
        raise ValueError(f"a counter has no {op.f!r} operation")


# ------------------------------------------------------------------ linearizability


class _Entry:
    """A call or a return in the doubly linked list the search walks."""

    __slots__ = ("call", "match", "next", "op", "prev", "slot")

    def __init__(self, op: Op | None, call: bool, slot: int) -> None:
        self.op = op
        self.call = call
        self.slot = slot  # the operation's bit in the "placed" set
        self.match: _Entry | None = None  # a call's return
        self.prev: _Entry | None = None
        self.next: _Entry | None = None


def _entries(ops: Sequence[Op]) -> _Entry:
    """The list head: calls and returns in time order. At equal times calls come first
    (touching operations count as concurrent: the more generous reading). An info
    operation's return is at the end: it may take effect any time after its call."""
    events: list[tuple[float, int, int, _Entry]] = []
    for slot, op in enumerate(ops):
        call, ret = _Entry(op, True, slot), _Entry(op, False, slot)
        call.match = ret
        events.append((op.invoke, 0, slot, call))
        events.append((op.end, 1, slot, ret))
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    head = _Entry(None, False, -1)
    last = head
    for *_, entry in events:
        last.next, entry.prev = entry, last
        last = entry
    return head


def _lift(entry: _Entry) -> None:
    """Take a call and its return out of the list."""
    for e in (entry, entry.match):
        assert e is not None and e.prev is not None
        e.prev.next = e.next
        if e.next is not None:
            e.next.prev = e.prev


def _unlift(entry: _Entry) -> None:
    """Put them back, return first (the reverse of _lift)."""
    for e in (entry.match, entry):
        assert e is not None and e.prev is not None
        e.prev.next = e
        if e.next is not None:
            e.next.prev = e


@dataclass
class Verdict:
    """What the search found: linearizable (True, False, or None past its budget)."""

    linearizable: bool | None
    steps: int
    why: str = ""


def linearizable(ops: Sequence[Op], model: Model, budget: int = 2_000_000) -> Verdict:
    """Whether the operations of one key can be put in one order that respects real time and
    that ``model`` accepts. ``fail`` operations and info reads (no effect) are left out."""
    kept = [
        op for op in ops if op.status in (OK, INFO) and not (op.status == INFO and op.f == "read")
    ]
    head = _entries(kept)
    state = model.init()
    placed = 0
    seen: set[tuple[int, Any]] = set()
    stack: list[tuple[_Entry, Any]] = []
    entry = head.next
    steps = 0
    deepest: Op | None = None
    while head.next is not None:
        steps += 1
        if steps > budget:
            return Verdict(None, steps, f"gave up after {budget} steps ({len(kept)} operations)")
        assert entry is not None
        if entry.call:
            assert entry.op is not None
            ok, after = model.step(state, entry.op)
            if ok:
                grown = placed | (1 << entry.slot)
                if (grown, after) not in seen:
                    seen.add((grown, after))
                    stack.append((entry, state))
                    state, placed = after, grown
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
            continue
        # A return: its operation is not placed yet and cannot be placed any later.
        assert entry.op is not None
        if entry.op.status == INFO:
            return Verdict(True, steps)  # every operation that completed is placed
        if deepest is None or entry.op.end > deepest.end:
            deepest = entry.op
        if not stack:
            return Verdict(False, steps, _explain(deepest))
        top, state = stack.pop()
        placed &= ~(1 << top.slot)
        _unlift(top)
        entry = top.next
    return Verdict(True, steps)


def _explain(op: Op | None) -> str:
    if op is None:
        return "not linearizable"
    return (
        f"not linearizable: no order explains op #{op.index} ({op.f} {op.arg!r} -> "
        f"{op.value!r} by process {op.process} via {op.node or '?'})"
    )


# ------------------------------------------------------------------ counters


def check_counter(ops: Sequence[Op], final: int | None) -> list[str]:
    """Anomalies of one fetch-and-increment counter (from 0). ``final`` is its value read
    once every fault had healed and every operation had ended (None: not read)."""
    anomalies: list[str] = []
    incs = [op for op in ops if op.f == "inc"]
    ok_incs = [op for op in incs if op.status == OK]
    unknown = sum(1 for op in incs if op.status == INFO)
    reads = [op for op in ops if op.f == "read" and op.status == OK]

    values = Tally(op.value for op in ok_incs)
    for value, times in sorted(values.items()):
        if times > 1:
            who = [op.index for op in ok_incs if op.value == value]
            anomalies.append(f"value {value} was handed out {times} times (ops {who})")

    # Real time: an increment that completed before another began has the smaller value,
    # and a read returns at least every value handed out before it began.
    by_end = sorted(ok_incs, key=lambda op: op.end)
    ends = [op.end for op in by_end]
    highest: list[int] = []  # highest value among the first i completed increments
    for op in by_end:
        highest.append(max(op.value, highest[-1] if highest else 0))
    for op in ok_incs + reads:
        before = bisect.bisect_left(ends, op.invoke)  # completed strictly before it began
        if before and highest[before - 1] >= op.value + (1 if op.f == "read" else 0):
            kind = "increment" if op.f == "inc" else "read"
            anomalies.append(
                f"{kind} op #{op.index} returned {op.value} after {highest[before - 1]} had "
                "been handed out (stale: it went back in time)"
            )

    # Reads never go back: a read that began after another ended sees at least as much.
    by_read_end = sorted(reads, key=lambda op: op.end)
    read_ends = [op.end for op in by_read_end]
    read_high: list[int] = []
    for op in by_read_end:
        read_high.append(max(op.value, read_high[-1] if read_high else 0))
    for op in reads:
        before = bisect.bisect_left(read_ends, op.invoke)
        if before and read_high[before - 1] > op.value:
            anomalies.append(
                f"read op #{op.index} returned {op.value} after another read had seen "
                f"{read_high[before - 1]}"
            )

    # No value counts more increments than had begun by the time it was returned, leaving
    # out those said not to have run: a "not-run" increment that was applied shows here.
    invoked = sorted(op.invoke for op in incs if op.status != FAIL)
    for op in ok_incs + reads:
        possible = bisect.bisect_right(invoked, op.end)
        if op.value > possible:
            kind = "increment" if op.f == "inc" else "read"
            anomalies.append(
                f"{kind} op #{op.index} returned {op.value} though only {possible} increments "
                "that may have run had begun"
            )

    if final is not None:
        top = max(values, default=0)
        if top > final:
            anomalies.append(
                f"acknowledged increment lost: {top} was handed out, the final value is {final}"
            )
        if final < len(ok_incs):
            anomalies.append(
                f"acknowledged increments lost: {len(ok_incs)} acknowledged, final value {final}"
            )
        extra = final - len(ok_incs)
        if extra > unknown:
            anomalies.append(
                f"{extra} increments applied beyond the {len(ok_incs)} acknowledged, but only "
                f"{unknown} had an unknown outcome: something said not-run was applied, or "
                "something was applied twice"
            )
    return anomalies


def check_register_reads(ops: Sequence[Op]) -> list[str]:
    """A read never returns a value that no write (ok or unknown) had written by its end
    (cheap; the full check is :func:`linearizable`)."""
    anomalies: list[str] = []
    writes = [op for op in ops if op.f in ("write", "cas") and op.status in (OK, INFO)]
    for read in (op for op in ops if op.f == "read" and op.status == OK):
        if read.value is None:
            continue
        if not any(
            w.invoke <= read.end and (w.arg if w.f == "write" else w.arg[1]) == read.value
            for w in writes
        ):
            anomalies.append(f"read op #{read.index} returned {read.value!r}, never written")
    return anomalies


def check_sessions(ops: Sequence[Op], final: int | None, bound: float | None = None) -> list[str]:
    """Anomalies of one append-only log read on replicas (the replica workload), per client:

    - read-your-writes: a read returns at least as many lines as the client's own last
      acknowledged append had made (its answer: the count with its line);
    - monotonic reads: a read returns at least as many lines as the client's earlier reads;
    - nothing made up: a read counts no more lines than appends that may have run had begun;
    - and, with ``final`` (the primary's count once all had healed): no acknowledged append
      lost, nothing applied beyond the acknowledged and the unknown ones;
    - with ``bound`` (seconds): bounded staleness across clients: a read returns at least
      every line whose append was acknowledged (to anyone) ``bound`` before it began."""
    anomalies: list[str] = []
    appends = [op for op in ops if op.f == "append"]
    ok_appends = [op for op in appends if op.status == OK]
    clients: dict[int, list[Op]] = {}
    for op in ops:
        clients.setdefault(op.client, []).append(op)
    for client, mine in sorted(clients.items()):
        wrote = seen = 0  # the client's own last acknowledged append; its newest read
        for op in sorted(mine, key=lambda o: o.invoke):
            if op.status != OK:
                continue
            if op.f == "append":
                wrote = max(wrote, op.value)
            elif op.f == "read":
                if op.value < wrote:
                    anomalies.append(
                        f"client {client}: read op #{op.index} saw {op.value} lines after its "
                        f"own append had made {wrote} (read-your-writes broken; {op.detail})"
                    )
                if op.value < seen:
                    anomalies.append(
                        f"client {client}: read op #{op.index} saw {op.value} lines after it "
                        f"had read {seen} (monotonic reads broken; {op.detail})"
                    )
                seen = max(seen, op.value)
    if bound is not None:
        by_end = sorted(ok_appends, key=lambda o: o.end)
        ends = [o.end for o in by_end]
        highest: list[int] = []
        for o in by_end:
            highest.append(max(o.value, highest[-1] if highest else 0))
        for op in ops:
            if op.status == OK and op.f == "read":
                before = bisect.bisect_left(ends, op.invoke - bound)
                if before and highest[before - 1] > op.value:
                    anomalies.append(
                        f"read op #{op.index} saw {op.value} lines, {bound:g} s after "
                        f"{highest[before - 1]} had been acknowledged (staler than the bound; "
                        f"{op.detail})"
                    )
    invoked = sorted(op.invoke for op in appends if op.status != FAIL)
    for op in ops:
        if op.status == OK and op.f in ("append", "read"):
            possible = bisect.bisect_right(invoked, op.end)
            if op.value > possible:
                anomalies.append(
                    f"op #{op.index} saw {op.value} lines though only {possible} appends that "
                    "may have run had begun"
                )
    if final is not None:
        unknown = sum(1 for op in appends if op.status == INFO)
        if final < len(ok_appends):
            anomalies.append(
                f"acknowledged appends lost: {len(ok_appends)} acknowledged, {final} lines"
            )
        if final - len(ok_appends) > unknown:
            anomalies.append(
                f"{final - len(ok_appends)} lines beyond the {len(ok_appends)} acknowledged "
                f"appends, but only {unknown} had an unknown outcome"
            )
    return anomalies
