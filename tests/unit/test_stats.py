"""The node's histograms are plain ints, exposed exactly as prometheus-client's own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from runtime.base.stats import LATENCY_BUCKETS, NodeStats


def test_a_distribution_reads_exactly_as_a_prometheus_histogram() -> None:
    stats = NodeStats()
    theirs = CollectorRegistry()
    reference = Histogram("do_commit_seconds", "x", buckets=LATENCY_BUCKETS, registry=theirs)
    # on a bound, between bounds, below the first and above the last
    for value in (0.0, 0.0002, 0.0003, 0.001, 0.0011, 0.7, 5.0, 9.0):
        stats.committed(value, 3)
        reference.observe(value)

    def lines(registry: CollectorRegistry) -> list[str]:
        text = generate_latest(registry).decode()
        return [
            line
            for line in text.splitlines()
            if line.startswith("do_commit_seconds") and "_created" not in line
        ]

    assert lines(stats.registry) == lines(theirs)
    assert stats.commit_seconds.count == 8 and stats.commit_keys.sum == 24


def test_metrics_off_keeps_no_distribution() -> None:
    stats = NodeStats(enabled=False)
    stats.committed(0.001, 3)
    stats.round_trip(0.001)
    assert stats.commit_seconds.count == stats.redis_seconds.count == 0
