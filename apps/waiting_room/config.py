"""Waiting room settings of the node: ``WAITING_ROOM_<FIELD NAME IN CAPITALS>``.

These are the app's own knobs, the same for every room on a node. A room's settings
(capacity, admission rate, session length, queueing method...) live in the room itself and
change live through its admin page or the JSON interface (see settings.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from runtime import BaseSettings, ConfigurationError


@dataclass(frozen=True)
class WaitingRoomConfig(BaseSettings):
    env_prefix: ClassVar[str] = "WAITING_ROOM_"

    #: Position updates for queued visitors are gathered for this long, then pushed in one
    #: pass over the queue (WAITING_ROOM_PUSH_INTERVAL, seconds). Admissions go out at once.
    push_interval: float = 0.25
    #: ...and spread so that a room sends at most about this many position updates per
    #: second (WAITING_ROOM_PUSH_RATE): with 10,000 open pages, a batch every 2 s. The work
    #: per batch is one pass over the line, so pushes cost the same whatever the line's size.
    push_rate: int = 5000
    #: A queued visitor with no open page (no socket, no reload) for this long loses their
    #: place (WAITING_ROOM_QUEUE_TIMEOUT, seconds; pages without scripts reload every 20 s).
    queue_timeout: float = 120.0
    #: How long a queued visitor's cookie stays valid (WAITING_ROOM_QUEUED_COOKIE_TTL).
    queued_cookie_ttl: int = 86_400
    #: Each node caches the prefix -> room map of gated apps for this long (seconds).
    gate_cache_seconds: float = 3.0
    #: Slot leasing: admission permits a room lends a node's shard are good for this long
    #: (WAITING_ROOM_LEASE_SECONDS); the rate window is widened by as much to stay exact.
    lease_seconds: float = 1.0
    #: ...and a shard asks for at most this many slots or permits at a time.
    lease_batch: int = 64
    #: Admin pages get a sample of the room's figures this often (seconds).
    sample_interval: float = 1.0
    #: Waiting pages watched on a node's replica: the node reports its visitors with open
    #: pages to the room this often (WAITING_ROOM_PRESENCE_INTERVAL, seconds; and on change)...
    presence_interval: float = 5.0
    #: ...and the room counts a report this long (WAITING_ROOM_PRESENCE_TTL): a dead or cut
    #: off node's pages start their visitors' absence within it (presence.py).
    presence_ttl: float = 15.0

    def __post_init__(self) -> None:
        names = ("push_interval", "queue_timeout", "gate_cache_seconds", "sample_interval")
        for name in (*names, "presence_interval"):
            if not getattr(self, name) > 0:
                raise ConfigurationError(f"{self.env_name(name)} must be positive")
        if not 0.1 <= self.lease_seconds <= 30:
            raise ConfigurationError("WAITING_ROOM_LEASE_SECONDS must be between 0.1 and 30")
        if self.push_rate < 1:
            raise ConfigurationError("WAITING_ROOM_PUSH_RATE must be at least 1")
        if not 1 <= self.lease_batch <= 10_000:
            raise ConfigurationError("WAITING_ROOM_LEASE_BATCH must be between 1 and 10000")
        if self.queued_cookie_ttl < 60:
            raise ConfigurationError("WAITING_ROOM_QUEUED_COOKIE_TTL must be at least 60")
        if not self.presence_interval * 2 <= self.presence_ttl <= self.queue_timeout:
            # (a report missed or late must not end a page's presence; nor a dead node's
            # pages outlive the absence they should start)
            raise ConfigurationError(
                "WAITING_ROOM_PRESENCE_TTL must be between twice WAITING_ROOM_PRESENCE_INTERVAL"
                " and WAITING_ROOM_QUEUE_TIMEOUT"
            )
        if self.queue_timeout < 30:
            # Pages without scripts reload every 20 s: a shorter timeout would drop them.
            raise ConfigurationError("WAITING_ROOM_QUEUE_TIMEOUT must be at least 30")
