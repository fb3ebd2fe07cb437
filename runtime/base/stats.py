"""The node's counters: plain numbers where the code is hot, Prometheus histograms where a
distribution matters. ``metrics.py`` turns them (and the node's state) into ``/metrics``.

Hot paths (every event, every socket message) only add to ints and ``Counter`` entries, so
metrics cost next to nothing. Latencies go to :class:`Distribution`: histogram buckets kept
as plain ints (a bisect and an increment, ~0.3 µs) that prometheus-client exposes at scrape
time, because its own ``Histogram.observe`` takes a lock per call (~2 µs): three per commit
cost the 50-rooms chat 5 % of its throughput. They also feed a short window of recent values
for the ops page's quantiles.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

#: Seconds buckets for commit and Redis latency: from a fraction of a millisecond (an
#: in-memory commit on a fast disk) to seconds (a Redis in trouble).
LATENCY_BUCKETS = (
    0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
#: Keys written per commit (many events' writes share one commit under load).
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)
#: How many recent latencies the ops page's quantiles are taken over.
WINDOW = 2000


class Distribution(Collector):
    """A Prometheus histogram as plain ints, registered with ``registry`` (single-threaded:
    the node's event loop is its only writer)."""

    def __init__(
        self, name: str, doc: str, bounds: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self.name, self.doc = name, doc
        self.bounds = list(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last: above every bound (+Inf)
        self.sum = 0.0
        registry.register(self)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # the first bound >= value: "le"
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def collect(self) -> Iterator[Metric]:
        cumulative, buckets = 0, []
        for bound, n in zip([*self.bounds, float("inf")], self.counts, strict=True):
            cumulative += n
            buckets.append((("+Inf" if bound == float("inf") else repr(float(bound))), cumulative))
        yield HistogramMetricFamily(self.name, self.doc, buckets=buckets, sum_value=self.sum)


def quantile(values: deque[float] | list[float], q: float) -> float | None:
    """The q-quantile (0..1) of ``values``, or None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class NodeStats:
    #: False (METRICS=0): the labelled counters and the histograms are not kept (the plain
    #: counters still are: tests and the ops page read them).
    enabled: bool = True
    activations: int = 0
    hibernations: int = 0
    evictions: int = 0
    leases_acquired: int = 0
    #: Leases taken after waiting out another holder's (a dead or stopped node's) expiry.
    lease_takeovers: int = 0
    leases_renewed: int = 0
    leases_lost: int = 0
    #: Objects this node gave up because it could not renew their leases in time (Redis
    #: out of reach, or too slow): it fenced itself before the leases could run out.
    self_fenced: int = 0
    #: Links to other nodes closed because the other node stopped answering pings within
    #: the liveness timeout (paused, cut off, or gone without a word).
    link_timeouts: int = 0
    #: Commits Redis refused because this node no longer held the lease (zombie writes).
    commits_fenced: int = 0
    #: Events whose writes were dropped because their object was reset while they ran.
    events_reset: int = 0
    alarms_claimed: int = 0
    alarms_fired: int = 0
    alarms_retried: int = 0
    alarms_dropped: int = 0
    #: Alarm-index entries due at this node's last poll, of every namespace (a backlog that
    #: stays up: alarms nobody delivers, a namespace no node serves, nodes too slow).
    alarms_due: int = 0
    #: Links other nodes opened to this one whose first challenge was answered.
    links_accepted: int = 0
    #: Later challenges (one every LINK_REAUTH_INTERVAL) peers answered on open links: how
    #: an operator (and a test) sees that links keep proving the secret.
    link_reauthentications: int = 0
    #: Read replicas (host/replicas.py): read-only calls served by a replica here, commits
    #: replicas applied, reloads (after a lost feed or missed commits), and calls sent to
    #: the primary instead, by reason (behind, stale, loading, too_big, no_redis, gone).
    replica_reads: int = 0
    replica_applied: int = 0
    replica_reloads: int = 0
    replica_forwards: Counter[str] = field(default_factory=Counter)
    #: (kind, outcome) -> events run here: kind rpc/fetch/alarm/connect/message/close/error,
    #: outcome ok/error/overloaded/reset.
    events: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (peer node, kind, outcome) -> events this node forwarded: ok/error/unknown.
    forwarded: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    #: (app, outcome) -> client socket handshakes: accepted/refused.
    sockets: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: (app, direction) -> client socket message bytes: in/out.
    socket_bytes: Counter[tuple[str, str]] = field(default_factory=Counter)
    started: float = field(default_factory=time.time)
    registry: CollectorRegistry = field(
        default_factory=lambda: CollectorRegistry(auto_describe=True)
    )
    recent_commits: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    recent_round_trips: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    recent_staleness: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    #: While someone tails this node (tail.py): told of each event's end, as (the object's
    #: record, kind, the exception it ended with or None, seconds it took). None otherwise,
    #: and then an event pays one attribute read for it.
    tap: Callable[[Any, str, BaseException | None, float], None] | None = None

    def __post_init__(self) -> None:
        self.commit_seconds = Distribution(
            "do_commit_seconds",
            "Time from sending a commit to Redis to its answer.",
            LATENCY_BUCKETS,
            self.registry,
        )
        self.commit_keys = Distribution(
            "do_commit_keys", "Keys written (and deleted) per commit.", BATCH_BUCKETS, self.registry
        )
        self.replica_seconds = Distribution(
            "do_replica_staleness_seconds",
            "Time from a commit of a primary to a replica on this node applying it.",
            LATENCY_BUCKETS,
            self.registry,
        )
        self.redis_seconds = Distribution(
            "do_redis_round_trip_seconds",
            "Time of one pipelined round trip of script calls to Redis.",
            LATENCY_BUCKETS,
            self.registry,
        )

    def replica_staleness(self, seconds: float) -> None:
        """A replica applied a commit ``seconds`` after the primary made it."""
        if not self.enabled:
            return
        self.replica_seconds.observe(seconds)
        self.recent_staleness.append(seconds)

    def committed(self, seconds: float, keys: int) -> None:
        if not self.enabled:
            return
        self.commit_seconds.observe(seconds)
        self.commit_keys.observe(keys)
        self.recent_commits.append(seconds)

    def round_trip(self, seconds: float) -> None:
        if not self.enabled:
            return
        self.redis_seconds.observe(seconds)
        self.recent_round_trips.append(seconds)

    def as_dict(self) -> dict[str, int]:
        """The plain counters (for /_cluster/objects and tests)."""
        return {
            name: value
            for name, value in vars(self).items()
            if isinstance(value, int) and not isinstance(value, bool)
        }
