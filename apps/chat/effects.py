"""What the chat's rules ask the ChatRoom object to do: every effect ``ChatRules`` (rules.py)
returns. A rules method takes one input (a socket connecting, a frame, a socket leaving)
and returns a list of these, in the order to carry them out; a refused frame is answered
with a ``Send`` of the demo's {"error"} and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``text`` to one session."""

    session: int
    text: str


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send ``text`` to every named session (unnamed ones got it queued already)."""

    text: str


@dataclass(frozen=True, slots=True)
class Close:
    session: int
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Store:
    """Keep a chat message in the history, under a key that sorts by time."""

    key: str
    text: str


@dataclass(frozen=True, slots=True)
class Named:
    """The session chose this name and has this id (the adapter keeps both with the socket)."""

    session: int
    name: str
    id: str


Effect = Send | Broadcast | Close | Store | Named
