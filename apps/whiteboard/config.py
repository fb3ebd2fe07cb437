"""Whiteboard settings: ``WHITEBOARD_<FIELD NAME IN CAPITALS>`` in the environment."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

from runtime import BaseSettings, ConfigurationError

MiB = 1024 * 1024


@dataclass(frozen=True)
class WhiteboardConfig(BaseSettings):
    env_prefix: ClassVar[str] = "WHITEBOARD_"

    #: One update (a sync step 2 or update message) at most this big.
    max_update_bytes: int = 1 * MiB
    #: A board's stored form (snapshot + log) at most this big.
    max_board_bytes: int = 32 * MiB
    #: Presence not refreshed for this long expires (y-protocols' outdatedTimeout).
    awareness_timeout: float = 30.0
    #: One awareness client's states are relayed at most this often (seconds); states that
    #: come faster are coalesced: only the newest is relayed, when its turn comes.
    awareness_interval: float = 0.05
    #: One client's awareness state (its JSON) at most this big.
    max_awareness_state_bytes: int = 16 * 1024
    #: Awareness client IDs one socket may introduce (a tab has one; a reload makes another).
    max_awareness_clients: int = 8
    #: Compaction folds the update log into the snapshot once the log holds this many
    #: updates or this many bytes, and the board has been quiet for compact_quiet seconds...
    compact_updates: int = 500
    compact_bytes: int = 1 * MiB
    compact_quiet: float = 5.0
    #: ...or, however busy the board is, once the log reaches this many updates.
    compact_force_updates: int = 5000
    #: An update that deletes items the board has never seen needs a snapshot to be stored
    #: (see rules.Snapshot); such snapshots are taken at most this often (seconds), so a
    #: writer sending them on purpose cannot make the board rewrite itself on every update.
    snapshot_interval: float = 5.0

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise ConfigurationError(f"{self.env_name(f.name)} must be positive")
        if self.max_update_bytes > self.max_board_bytes:
            raise ConfigurationError("WHITEBOARD_MAX_UPDATE_BYTES exceeds the board limit")
