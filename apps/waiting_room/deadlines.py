"""One pending time per key, earliest first: when each admitted visitor's session may end,
when each queued visitor may have left the line (sans I/O).

A visitor's time moves often (every renewal, every reload), so moving it later costs
nothing: the entry stays where it is and, when it comes up, the caller looks at the
visitor and sets the later time again. Only a time moved *earlier* adds an entry, and the
one it replaces is recognised as stale and dropped when it comes up. So the heap holds
about one entry per key however often a visitor leaves and comes back (a cookie that
leaves and returns in a loop must not grow the room's memory).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator


class Deadlines:
    """A heap of (time, key) with at most one live entry per key."""

    __slots__ = ("_heap", "_live")

    def __init__(self) -> None:
        self._heap: list[tuple[float, str]] = []
        self._live: dict[str, float] = {}  # key -> the time of its live entry

    def __len__(self) -> int:
        return len(self._heap)

    def set(self, key: str, at: float) -> None:
        """Make sure ``key`` comes up at ``at`` or before (the caller checks it then)."""
        live = self._live.get(key)
        if live is not None and live <= at:
            return  # an entry comes up earlier: the caller sets the later time then
        self._live[key] = at
        heapq.heappush(self._heap, (at, key))

    def due(self, now: float) -> Iterator[str]:
        """Pop every key whose time has come. Each key leaves the heap: set it again if it
        still needs a time."""
        heap, live = self._heap, self._live
        while heap and heap[0][0] <= now:
            at, key = heapq.heappop(heap)
            if live.get(key) != at:
                continue  # replaced by an earlier entry
            del live[key]
            yield key

    def next(self) -> float | None:
        """The earliest live time (None: nothing pending)."""
        heap, live = self._heap, self._live
        while heap and live.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)  # stale: drop it now, or it would wake the room for nothing
        return heap[0][0] if heap else None
