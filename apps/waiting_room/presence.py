"""Which visitors have a waiting page open on another node, sans I/O: the primary's side of
waiting pages served by replicas.

A waiting page's socket is watched on the replica of the node it reached (docs/waiting-room.md,
"Read replicas"). The room must still know which queued visitors have a page open (a page
keeps its visitor's place; absence starts when the last one closes: ``RoomRules.attach`` and
``detach``), so each node's replica reports its set of visitors with open pages to the
primary: on change (debounced) and every ``interval`` seconds. :class:`Presence` keeps the
last report of each node and counts it only while it is fresh: a report older than ``ttl``
(its node died, or was cut off) no longer counts, and its visitors' absence starts then.

A report carries the replica's ``session`` (random per replica instance) and a sequence
number within it: a report that arrives after a newer one of the same session is ignored,
and a new session (the replica reloaded, or the node restarted) replaces the old one.

Each call returns what changed for the room's rules: the visitors that gained a node
(``attach`` once each) and those that lost one (``detach`` once each).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: At most this many visitors in one report (a node's pages; MAX_PAGES each, so many more
#: than a node serves).
MAX_REPORT = 200_000


@dataclass(slots=True)
class Report:
    """One node's last report."""

    session: str
    seq: int
    expires: float
    visitors: frozenset[str] = field(default_factory=frozenset)


@dataclass(slots=True)
class Delta:
    """What a report (or an expiry) changed: visitors to attach and to detach, once each."""

    attached: list[str] = field(default_factory=list)
    detached: list[str] = field(default_factory=list)


class Presence:
    """The primary's record of the pages open on other nodes."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self.nodes: dict[str, Report] = {}

    def report(
        self, node: str, session: str, seq: int, visitors: frozenset[str], now: float
    ) -> Delta:
        """``node``'s replica says these visitors have a page open there (all of them)."""
        known = self.nodes.get(node)
        if known is not None and known.session == session and seq <= known.seq:
            return Delta()  # a late report: a newer one is known
        before = known.visitors if known is not None else frozenset()
        self.nodes[node] = Report(session, seq, now + self.ttl, visitors)
        return Delta(sorted(visitors - before), sorted(before - visitors))

    def expire(self, now: float) -> Delta:
        """Reports no longer fresh stop counting: their visitors lose that node."""
        delta = Delta()
        for node in [n for n, r in self.nodes.items() if r.expires <= now]:
            delta.detached.extend(sorted(self.nodes.pop(node).visitors))
        return delta

    def next_expiry(self) -> float | None:
        """When :meth:`expire` next has something to do."""
        return min((r.expires for r in self.nodes.values()), default=None)

    def counted(self, visitor: str) -> int:
        """On how many nodes ``visitor`` has a page open, as fresh reports say."""
        return sum(visitor in r.visitors for r in self.nodes.values())

    def clear(self) -> list[str]:
        """Forget every report (the room was deleted): the visitors they held, once each
        per node."""
        gone = [v for r in self.nodes.values() for v in sorted(r.visitors)]
        self.nodes.clear()
        return gone
