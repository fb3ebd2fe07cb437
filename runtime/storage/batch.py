"""A batch of writes not yet in Redis, and the ordering rules for keys.

A :class:`WriteBatch` is one layer over the committed state: key -> encoded value, or ``None``
for a delete, plus an optional ``delete_all`` floor and an alarm change. Reads look through the
layers top-down (a transaction's batch, the object's open batch, the batch in flight) before the
cache and Redis. Keys order by their UTF-8 bytes, which is also Redis' lexicographic order.
"""

from __future__ import annotations

from typing import Final


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: "This layer does not know the key": look further down.
MISSING: Final = _Marker("MISSING")
#: "The alarm is not changed by this batch".
UNCHANGED: Final = _Marker("UNCHANGED")

Raw = bytes | None  # an encoded value, or None for "absent"


class WriteBatch:
    """Writes gathered by one or more events, committed by one Lua call."""

    __slots__ = ("alarm", "alarm_if", "delete_all", "entries", "seq")

    def __init__(self, seq: int = 0) -> None:
        self.seq = seq
        self.entries: dict[str, Raw] = {}
        self.delete_all = False
        self.alarm: bytes | _Marker | None = UNCHANGED
        #: When set, the alarm change applies only if the alarm is still this value when the
        #: batch joins the object's open batch (the runtime clearing an alarm that fired).
        self.alarm_if: bytes | None = None

    def __bool__(self) -> bool:
        return bool(self.entries) or self.delete_all or self.alarm is not UNCHANGED

    def lookup(self, key: str) -> Raw | _Marker:
        if key in self.entries:
            return self.entries[key]
        return None if self.delete_all else MISSING

    def lookup_alarm(self) -> bytes | _Marker | None:
        if self.alarm is not UNCHANGED:
            return self.alarm
        return None if self.delete_all else MISSING

    def set_alarm(self, alarm: bytes | None) -> None:
        """An explicit alarm change (set, or None to delete): unconditional."""
        self.alarm = alarm
        self.alarm_if = None

    def reset(self) -> None:
        self.entries.clear()
        self.delete_all = False
        self.alarm = UNCHANGED
        self.alarm_if = None

    def clear_all(self) -> None:
        self.entries.clear()
        self.delete_all = True
        self.set_alarm(None)

    def absorb(self, other: WriteBatch) -> None:
        """Apply ``other`` on top of this batch (a transaction committing into the event)."""
        if other.delete_all:
            self.clear_all()
        self.entries.update(other.entries)
        if other.alarm is not UNCHANGED:
            self.alarm = other.alarm
            self.alarm_if = other.alarm_if

    def script_args(self, lease_value: str) -> list[str | bytes | int]:
        """ARGV for commit.lua (see its header)."""
        puts: list[str | bytes] = []
        deletes: list[str] = []
        for key, value in self.entries.items():
            if value is None:
                deletes.append(key)
            else:
                puts.append(key)
                puts.append(value)
        alarm: str | bytes
        if self.alarm is UNCHANGED:
            alarm = ""
        elif self.alarm is None:
            alarm = "-"
        else:
            assert isinstance(self.alarm, bytes)
            alarm = self.alarm
        return [
            lease_value,
            "1" if self.delete_all else "0",
            alarm,
            len(puts) // 2,
            *puts,
            *deletes,
        ]


def key_bytes(key: str) -> bytes:
    return key.encode("utf-8")


def prefix_successor(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


class KeyRange:
    """[lo, hi) over key bytes; None means unbounded on that side."""

    __slots__ = ("hi", "lo")

    def __init__(
        self, start: str | None = None, end: str | None = None, prefix: str | None = None
    ) -> None:
        lo = key_bytes(start) if start is not None else None
        hi = key_bytes(end) if end is not None else None
        if prefix:
            p = key_bytes(prefix)
            lo = p if lo is None else max(lo, p)
            succ = prefix_successor(p)
            if succ is not None:
                hi = succ if hi is None else min(hi, succ)
        self.lo = lo
        self.hi = hi

    @property
    def empty(self) -> bool:
        return self.lo is not None and self.hi is not None and self.lo >= self.hi

    def __contains__(self, key: bytes) -> bool:
        return (self.lo is None or key >= self.lo) and (self.hi is None or key < self.hi)

    def lex_bounds(self) -> tuple[bytes, bytes]:
        """The bounds as ZRANGEBYLEX arguments."""
        lo = b"-" if self.lo is None else b"[" + self.lo
        hi = b"+" if self.hi is None else b"(" + self.hi
        return lo, hi
