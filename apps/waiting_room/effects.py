"""What the waiting room's rules ask their objects to do: every effect ``RoomRules``
(rules.py) and ``ShardRules`` (leasing.py) return, and the ``Status`` a visitor is told.

A rules method takes one input (a visit, a departure, a shard's request, the time) and
returns a list of these, in the order to carry them out; the object (WaitingRoom,
RoomShard) does exactly that and nothing more. What changed is stored once per input,
whatever the number of changes it made (a visitor's record once, however often it moved).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ADMITTED = "admitted"
WAITING = "queued"
REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Status:
    """What a visitor is told: admitted, queued (position 1 is next), or rejected; while
    the room is paused, a queued visitor is told that too (``"paused": true``, a field
    present only then)."""

    status: str
    position: int | None = None
    eta_s: int | None = None
    paused: bool = False

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "status": self.status,
            "position": self.position,
            "eta_s": self.eta_s,
        }
        if self.paused:
            out["paused"] = True
        return out


ADMITTED_STATUS = Status(ADMITTED)
REJECTED_STATUS = Status(REJECTED)

# ------------------------------------------------------------------ both


@dataclass(frozen=True, slots=True)
class Store:
    """Put these keys (one write for the lot)."""

    values: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete these keys."""

    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Left:
    """The visitor who asked to leave was known, and is gone."""

    visitor: str


# ------------------------------------------------------------------ a room


@dataclass(frozen=True, slots=True)
class Told:
    """The answer to a visit: what the visitor is told, and where they joined the line (for
    the waiting page's progress bar; 0 if they never queued)."""

    status: Status
    first_position: int = 0


@dataclass(frozen=True, slots=True)
class Admitted:
    """A visitor waiting in line was admitted: tell their open pages now."""

    visitor: str


@dataclass(frozen=True, slots=True)
class Reordered:
    """Queued visitors' positions or waits changed: push them to their pages (batched)."""


@dataclass(frozen=True, slots=True)
class Granted:
    """The answer to a shard's lease request (slots, permits, what the room knows)."""

    answer: dict[str, Any]


# ------------------------------------------------------------------ a room's shard


@dataclass(frozen=True, slots=True)
class Ask:
    """Send this request to the room (``WaitingRoom.lease``), and its answer to
    ``ShardRules.granted``."""

    request: dict[str, int]


@dataclass(frozen=True, slots=True)
class InSlot:
    """The visitor holds one of this shard's slots (renewed, or admitted with a leased slot
    and permit): answer "admitted"."""

    visitor: str


RoomEffect = Store | Delete | Left | Told | Admitted | Reordered | Granted
ShardEffect = Store | Delete | Left | Ask | InSlot
