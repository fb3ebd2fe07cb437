"""A room's settings: what an operator sets, checked field by field, with no I/O.

The JSON interface takes these fields (``POST /api/rooms`` needs the first four; ``PATCH``
takes any of them):

    total_active_users    int   capacity: visitors on the site at once
    new_users_per_minute  int   admissions in any 60-second window
    session_duration      int   seconds of inactivity after which a slot is freed
    queueing_method       str   fifo | random | passthrough | reject
    name, title, message, reject_message    str   texts of the site and the waiting page
    event_start           float | null   epoch seconds: the queue opens to the site then...
    prequeue_start        float | null   ...and from here until then, everyone is queued
    shuffle_at_start      bool  at event_start, the pre-queue is shuffled (a lottery)
    queue_all             bool  paused: nobody is admitted, every newcomer queues (those
                                on the site stay); Cloudflare Waiting Room's "queue all"
    gate_prefix           str | null     a path of another app this room stands in front of
    slot_leasing          bool  per-node shards admit with slots leased from the room
                                (chosen at creation; it cannot change later)

Every problem is a :class:`SettingsError` naming the field; routes answer it with 422.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

METHODS = ("fifo", "random", "passthrough", "reject")
REQUIRED = ("total_active_users", "new_users_per_minute", "session_duration", "queueing_method")

#: (lowest, highest) of each integer field.
INT_RANGES = {
    "total_active_users": (1, 1_000_000),
    "new_users_per_minute": (1, 1_000_000),
    "session_duration": (1, 86_400),
}
#: Longest value of each text field (characters).
TEXT_LIMITS = {"name": 80, "title": 120, "message": 2000, "reject_message": 2000}
#: Event times must fall between 2000 and 2200 (epoch seconds): anything else is a typo.
TIME_RANGE = (946_684_800.0, 7_258_118_400.0)
MAX_PREFIX = 200
_PREFIX_RE = re.compile(r"(/[A-Za-z0-9._~-]+)+")


class SettingsError(ValueError):
    """A field the operator sent does not make a valid room."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def as_json(self) -> dict[str, str]:
        return {"error": self.message, "field": self.field}


@dataclass(frozen=True, slots=True)
class RoomSettings:
    total_active_users: int
    new_users_per_minute: int
    session_duration: int
    queueing_method: str = "fifo"
    name: str = "Demo shop"
    title: str = "You are in line"
    message: str = (
        "The site is busy. You will be let in automatically when it is your turn; "
        "keep this page open."
    )
    reject_message: str = "The site is full right now. Please try again in a few minutes."
    event_start: float | None = None
    prequeue_start: float | None = None
    shuffle_at_start: bool = False
    queue_all: bool = False
    gate_prefix: str | None = None
    slot_leasing: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoomSettings:
        """Settings as stored (already checked when they were accepted)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def counts_only(self) -> bool:
        """Passthrough: everyone is admitted and only counted."""
        return self.queueing_method == "passthrough"


FIELDS = {f.name for f in fields(RoomSettings)}


def _int(name: str, value: Any) -> int:
    # bool is an int in Python, and 3.0 is not an int in JSON terms: refuse both.
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(name, "must be a whole number")
    low, high = INT_RANGES[name]
    if not low <= value <= high:
        raise SettingsError(name, f"must be between {low} and {high}")
    return value


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise SettingsError(name, "must be a string")
    text = value.strip()
    if len(text) > TEXT_LIMITS[name]:
        raise SettingsError(name, f"must be at most {TEXT_LIMITS[name]} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in text):
        raise SettingsError(name, "must not contain control characters")
    return text


def _time(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SettingsError(name, "must be a time in epoch seconds, or null")
    if not TIME_RANGE[0] <= value <= TIME_RANGE[1]:
        raise SettingsError(name, "must be a time in epoch seconds between 2000 and 2200")
    return float(value)


def normal_prefix(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_PREFIX:
        raise SettingsError("gate_prefix", f"must be a path of at most {MAX_PREFIX} characters")
    path = value.rstrip("/") if value != "/" else value
    if not _PREFIX_RE.fullmatch(path) or any(s in (".", "..") for s in path.split("/")):
        raise SettingsError(
            "gate_prefix", "must be a local path such as /chat (letters, digits, . _ ~ -)"
        )
    return path


def _check(name: str, value: Any) -> Any:
    """One field's value, checked and normalised."""
    if name in INT_RANGES:
        return _int(name, value)
    if name in TEXT_LIMITS:
        return _text(name, value)
    if name == "queueing_method":
        if value not in METHODS:
            raise SettingsError(name, f"must be one of {', '.join(METHODS)}")
        return value
    if name in ("event_start", "prequeue_start"):
        return _time(name, value)
    if name in ("shuffle_at_start", "slot_leasing", "queue_all"):
        if not isinstance(value, bool):
            raise SettingsError(name, "must be true or false")
        return value
    if name == "gate_prefix":
        return normal_prefix(value)
    raise SettingsError(name, "is not a room setting")


def _whole(settings: RoomSettings) -> RoomSettings:
    """Checks across fields."""
    if settings.prequeue_start is not None:
        if settings.event_start is None:
            raise SettingsError("prequeue_start", "needs an event_start")
        if settings.prequeue_start >= settings.event_start:
            raise SettingsError("prequeue_start", "must be before event_start")
    return settings


def _fields_of(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SettingsError("settings", "expected a JSON object")
    unknown = sorted(k for k in data if k not in FIELDS)
    if unknown:
        raise SettingsError(str(unknown[0])[:64], "is not a room setting")
    return {name: _check(name, value) for name, value in data.items()}


def create(data: Any) -> RoomSettings:
    """The settings of a new room, from the body of ``POST /api/rooms``."""
    checked = _fields_of(data)
    for name in REQUIRED:
        if name not in checked:
            raise SettingsError(name, "is required")
    return _whole(RoomSettings(**checked))


def change(current: RoomSettings, data: Any) -> RoomSettings:
    """``current`` with the fields of a ``PATCH`` body changed."""
    checked = _fields_of(data)
    if "slot_leasing" in checked and checked["slot_leasing"] != current.slot_leasing:
        raise SettingsError("slot_leasing", "is chosen when the room is created")
    return _whole(replace(current, **checked))
