"""The node's counters (read by /_cluster/objects, the tests and the benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class NodeStats:
    activations: int = 0
    hibernations: int = 0
    evictions: int = 0
    leases_lost: int = 0
    #: Commits Redis refused because this node no longer held the lease (zombie writes).
    commits_fenced: int = 0
    #: Events whose writes were dropped because their object was reset while they ran.
    events_reset: int = 0
    alarms_fired: int = 0
