"""What the whiteboard's rules ask the Board object to do: every effect ``BoardRules``
(rules.py) returns. A rules method takes one input (a socket connecting, a message, a socket
leaving, the time) and returns a list of these, in the order to carry them out.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``data`` (one y-websocket message) to one session."""

    session: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send ``data`` to every session but ``exclude`` (the one it came from)."""

    data: bytes
    exclude: int | None = None


@dataclass(frozen=True, slots=True)
class Persist:
    """Append ``update`` to the board's log, before anyone hears of it (the output gate)."""

    update: bytes


@dataclass(frozen=True, slots=True)
class Hold:
    """Store ``update`` under ``key``: Yrs holds (part of) it back, waiting for what it
    depends on, and keeps it in memory only; without a stored copy, a board loaded from
    storage before the rest arrives would never have it."""

    key: int
    update: bytes


@dataclass(frozen=True, slots=True)
class Release:
    """The held updates under ``keys`` are in the document now (or were dropped): their
    stored copies can go."""

    keys: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Close:
    """Close one session's socket with ``code`` (its presence goes, and the others hear)."""

    session: int
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Later:
    """Call ``relay_awareness(now)`` at ``at``: coalesced presence is waiting its turn."""

    at: float


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Store the whole document now, in place of the log: an update left it in a shape that
    replaying its log would not bring back (see ``_take_changes``), or (``unreadable``) a
    stored update would not load, and what did load must be stored before it is lost."""

    unreadable: bool = False


Effect = Send | Broadcast | Persist | Hold | Release | Close | Snapshot | Later
