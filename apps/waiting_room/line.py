"""The queue of a room: visitors in ticket order, with positions in O(log n).

Each queued visitor holds a ticket, a number that only grows as visitors arrive; the queue
is the tickets kept sorted. FIFO serves the lowest ticket, random serves any ticket with
equal chance, and a visitor's position is the rank of its ticket (1 is next), found by
bisection. Removing a ticket shifts the list in memory (one C ``memmove``: microseconds for a
queue of 100,000), never a Python loop. Tickets are what the room stores, so the order
survives any restart.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Iterator


class Line:
    """Queued visitors ordered by ticket."""

    def __init__(self) -> None:
        self._tickets: list[int] = []  # sorted
        self._visitor: dict[int, str] = {}
        self._ticket: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._tickets)

    def __contains__(self, visitor: object) -> bool:
        return visitor in self._ticket

    def ticket_of(self, visitor: str) -> int | None:
        return self._ticket.get(visitor)

    def add(self, visitor: str, ticket: int) -> int:
        """Put ``visitor`` in line with ``ticket``; returns its position."""
        if visitor in self._ticket:
            self.remove(visitor)
        if not self._tickets or ticket > self._tickets[-1]:
            self._tickets.append(ticket)  # the usual case: a new, highest ticket
            index = len(self._tickets) - 1
        else:
            index = bisect.bisect_left(self._tickets, ticket)
            if index < len(self._tickets) and self._tickets[index] == ticket:
                raise ValueError(f"ticket {ticket} is taken")
            self._tickets.insert(index, ticket)
        self._visitor[ticket] = visitor
        self._ticket[visitor] = ticket
        return index + 1

    def remove(self, visitor: str) -> bool:
        ticket = self._ticket.pop(visitor, None)
        if ticket is None:
            return False
        del self._tickets[bisect.bisect_left(self._tickets, ticket)]
        del self._visitor[ticket]
        return True

    def position(self, visitor: str) -> int | None:
        """1 for the next visitor in line; None if not in line."""
        ticket = self._ticket.get(visitor)
        if ticket is None:
            return None
        return bisect.bisect_left(self._tickets, ticket) + 1

    def pop_first(self) -> str:
        ticket = self._tickets.pop(0)
        visitor = self._visitor.pop(ticket)
        del self._ticket[visitor]
        return visitor

    def pop_random(self, rng: random.Random) -> str:
        """Any visitor in line, each equally likely."""
        ticket = self._tickets.pop(rng.randrange(len(self._tickets)))
        visitor = self._visitor.pop(ticket)
        del self._ticket[visitor]
        return visitor

    def __iter__(self) -> Iterator[str]:
        """Visitors in order, first in line first."""
        visitor = self._visitor
        return (visitor[t] for t in self._tickets)

    def tickets(self) -> list[int]:
        return list(self._tickets)

    def reassign(self, order: list[str]) -> dict[str, int]:
        """Give the tickets now held to the visitors of ``order`` (a permutation of those in
        line), lowest first: the shuffle of a lottery. Returns each visitor's new ticket."""
        if sorted(order) != sorted(self._ticket):
            raise ValueError("reassign takes exactly the visitors in line")
        tickets = list(self._tickets)
        self._visitor = dict(zip(tickets, order, strict=True))
        self._ticket = {v: t for t, v in self._visitor.items()}
        return dict(self._ticket)
