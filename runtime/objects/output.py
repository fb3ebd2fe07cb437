"""The output gate: what an object sends waits until the writes made before it are committed.

Each held item remembers the newest write batch that existed when it was sent; when that
batch is committed, the item goes to its socket. If a commit fails, everything held is
dropped with the instance: nobody hears of a write that may not have been stored.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from ..sockets.websocket import ObjectWebSocket, Output


class OutputGate:
    """Socket sends and closes of one object, in order, each behind its writes."""

    __slots__ = ("_deliver", "_held")

    def __init__(self, deliver: Callable[[ObjectWebSocket, Output], None]) -> None:
        self._deliver = deliver
        self._held: deque[tuple[int, ObjectWebSocket, Output]] = deque()

    def __bool__(self) -> bool:
        return bool(self._held)

    def send(self, ws: ObjectWebSocket, item: Output, after: int | None) -> None:
        """Deliver ``item`` once batch ``after`` is committed (None: nothing is pending, so
        nothing is held either, and it goes now)."""
        if after is None:
            self._deliver(ws, item)
        else:
            self._held.append((after, ws, item))

    def release(self, committed: int) -> None:
        """Batch ``committed`` (and all before it) is stored: deliver what waited for it."""
        held = self._held
        while held and held[0][0] <= committed:
            _, ws, item = held.popleft()
            self._deliver(ws, item)

    def clear(self) -> None:
        self._held.clear()
