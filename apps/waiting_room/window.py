"""The admission rate limit: at most ``limit`` admissions in any window of ``span`` seconds.

Admissions are counted in one-second buckets (second -> count), so the state is at most
``span + 1`` small entries however high the limit, and it fits one stored value.

Why this is exact. At time ``now`` the window counts every bucket ``s`` with
``s >= floor(now - span)``: a superset of the admissions made in ``[now - span, now]``. An
admission is made only while that count is below the limit. Take any closed window
``[a, a + span]`` and its last admission, at ``t``: everything admitted in the window lies in
``[t - span, t]`` (as ``t - span <= a``), which was counted, below the limit, when ``t`` was
admitted; so the window holds at most ``limit``. The price of whole-second buckets is at most
one second of extra wait per window (a steady ``limit`` per ``span + 1`` seconds).
"""

from __future__ import annotations

import math
from typing import Any


class RateWindow:
    """Admission counts per second over the last ``span`` seconds."""

    def __init__(self, limit: int, span: float = 60.0) -> None:
        self.limit = limit
        self.span = span
        self.buckets: dict[int, int] = {}

    def _floor(self, now: float) -> int:
        return math.floor(now - self.span)

    def prune(self, now: float) -> None:
        """Forget buckets no window ending now or later can count."""
        oldest = self._floor(now)
        if self.buckets and min(self.buckets) < oldest:
            self.buckets = {s: c for s, c in self.buckets.items() if s >= oldest}

    def count(self, now: float) -> int:
        oldest = self._floor(now)
        return sum(c for s, c in self.buckets.items() if s >= oldest)

    def count_since(self, now: float, seconds: float) -> int:
        """Admissions counted in the buckets of the last ``seconds`` (for figures, not limits)."""
        oldest = math.floor(now - seconds)
        return sum(c for s, c in self.buckets.items() if s >= oldest)

    def available(self, now: float) -> int:
        """How many more admissions may be made at ``now``."""
        return max(0, self.limit - self.count(now))

    def record(self, now: float, n: int = 1) -> None:
        """``n`` admissions (or permits handed out) at ``now``."""
        if n <= 0:
            return
        self.prune(now)
        second = math.floor(now)
        self.buckets[second] = self.buckets.get(second, 0) + n

    def unrecord(self, second: int, n: int) -> int:
        """Take back up to ``n`` permits counted in ``second`` that were never used (it only
        lowers counts, so every guarantee holds). Returns how many were taken back."""
        have = self.buckets.get(second, 0)
        back = max(0, min(n, have))
        if back:
            if have == back:
                del self.buckets[second]
            else:
                self.buckets[second] = have - back
        return back

    def next_free(self, now: float) -> float:
        """The earliest time at which one more admission may be made (``now`` if already)."""
        excess = self.count(now) - self.limit + 1
        if excess <= 0:
            return now
        oldest = self._floor(now)
        for second in sorted(s for s in self.buckets if s >= oldest):
            excess -= self.buckets[second]
            if excess <= 0:
                # bucket `second` stops counting once floor(t - span) > second
                return second + 1 + self.span
        return now  # (unreachable: the counts summed to the excess)

    def to_wire(self) -> list[list[int]]:
        return [[s, c] for s, c in sorted(self.buckets.items())]

    def load(self, data: Any) -> None:
        self.buckets = {}
        for item in data or ():
            second, count = int(item[0]), int(item[1])
            if count > 0:
                self.buckets[second] = self.buckets.get(second, 0) + count
