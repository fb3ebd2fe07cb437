"""``/metrics``: the node's counters and state in the Prometheus text format.

prometheus-client does the exposition. Histograms (commit latency and size, Redis round
trips) live in the node's own registry (``stats.py``); everything else is read when a
scrape comes, by :class:`NodeCollector`, from the node's plain counters and its tables
(objects, sockets, input gates, links), so nothing is counted twice and the hot paths only
add to ints. Labels are bounded: namespaces, apps, peer nodes, kinds and outcomes, never
object IDs.

Metric names (all prefixed ``do_``) are listed in docs/operations.md with what to alert on.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from ..base.stats import NodeStats
    from ..host.record import ObjectRecord
    from ..host.replicas import Replicas

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsHost(Protocol):
    """What the collector reads from its node."""

    node_id: str
    stats: NodeStats
    replicas: Replicas

    @property
    def namespaces(self) -> Iterable[str]: ...
    def all_records(self) -> Iterable[ObjectRecord]: ...
    def tunnel_counts(self) -> dict[tuple[str, str], int]: ...


class NodeCollector(Collector):
    """Reads the node's counters and tables at scrape time."""

    def __init__(self, node: MetricsHost) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        node, stats = self.node, self.node.stats
        info = GaugeMetricFamily("do_node_info", "This node.", labels=["node"])
        info.add_metric([node.node_id], 1)
        yield info
        started = GaugeMetricFamily(
            "do_node_start_time_seconds", "When this node started (Unix time)."
        )
        started.add_metric([], stats.started)
        yield started

        objects = GaugeMetricFamily(
            "do_objects",
            "Objects this node holds, live or hibernated.",
            labels=["namespace", "state"],
        )
        sockets = GaugeMetricFamily("do_client_sockets", "Open client sockets.", labels=["app"])
        live: dict[str, int] = dict.fromkeys(node.namespaces, 0)
        sleeping: dict[str, int] = dict.fromkeys(node.namespaces, 0)
        open_sockets: dict[str, int] = {}
        waiting = deepest = 0
        for record in node.all_records():
            name = record.namespace.name
            if record.instance is not None:
                live[name] = live.get(name, 0) + 1
            else:
                sleeping[name] = sleeping.get(name, 0) + 1
            if record.sockets:
                open_sockets[record.app_name] = open_sockets.get(record.app_name, 0) + len(
                    record.sockets
                )
            queued = record.gate.waiting
            waiting += queued
            deepest = max(deepest, queued)
        for name in sorted(live):
            objects.add_metric([name, "live"], live[name])
            objects.add_metric([name, "hibernated"], sleeping[name])
        yield objects
        for app, count in sorted(open_sockets.items()):
            sockets.add_metric([app], count)
        yield sockets
        gate = GaugeMetricFamily(
            "do_input_gate_waiting",
            "Events waiting at input gates: in all, and the most at one object.",
            labels=["scope"],
        )
        gate.add_metric(["total"], waiting)
        gate.add_metric(["max"], deepest)
        yield gate

        yield _counter(
            "do_events", "Events run on this node.", ["kind", "outcome"], stats.events.items()
        )
        yield _counter(
            "do_forwarded_events",
            "Events this node sent to their object's node.",
            ["peer", "kind", "outcome"],
            stats.forwarded.items(),
        )
        yield _counter(
            "do_client_socket_handshakes",
            "Client socket handshakes objects accepted or refused.",
            ["app", "outcome"],
            stats.sockets.items(),
        )
        yield _counter(
            "do_client_socket_bytes",
            "Bytes of client socket messages, in and out.",
            ["app", "direction"],
            stats.socket_bytes.items(),
        )
        tunnels = GaugeMetricFamily(
            "do_tunnels", "Client sockets tunnelled over node links.", labels=["peer", "side"]
        )
        for (peer, side), count in sorted(node.tunnel_counts().items()):
            tunnels.add_metric([peer, side], count)
        yield tunnels

        leases = CounterMetricFamily("do_leases", "Lease events of this node.", labels=["event"])
        for event, value in (
            ("acquired", stats.leases_acquired),
            ("takeover", stats.lease_takeovers),
            ("renewed", stats.leases_renewed),
            ("lost", stats.leases_lost),
            ("fenced", stats.commits_fenced),
            ("self_fenced", stats.self_fenced),
        ):
            leases.add_metric([event], value)
        yield leases
        alarms = CounterMetricFamily("do_alarms", "Alarms this node handled.", labels=["event"])
        for event, value in (
            ("claimed", stats.alarms_claimed),
            ("fired", stats.alarms_fired),
            ("retried", stats.alarms_retried),
            ("dropped", stats.alarms_dropped),
        ):
            alarms.add_metric([event], value)
        yield alarms
        yield GaugeMetricFamily(
            "do_alarms_due",
            "Alarm-index entries due at this node's last poll, all namespaces.",
            value=stats.alarms_due,
        )
        links = CounterMetricFamily(
            "do_node_links",
            "Node links: accepted from others, re-authenticated, timed out (ours, to others).",
            labels=["event"],
        )
        links.add_metric(["accepted"], stats.links_accepted)
        links.add_metric(["reauthenticated"], stats.link_reauthentications)
        links.add_metric(["timed_out"], stats.link_timeouts)
        yield links
        lifecycle = CounterMetricFamily(
            "do_object_lifecycle", "Activations, hibernations, evictions, resets.", labels=["event"]
        )
        for event, value in (
            ("activated", stats.activations),
            ("hibernated", stats.hibernations),
            ("evicted", stats.evictions),
            ("reset", stats.events_reset),
        ):
            lifecycle.add_metric([event], value)
        yield lifecycle
        yield from _replicas(node)


def _replicas(node: MetricsHost) -> Iterator[Metric]:
    """Replicas held (by namespace), their worst lag, and what they did."""
    stats = node.stats
    held = GaugeMetricFamily(
        "do_replicas", "Replicas this node holds, by namespace.", labels=["namespace"]
    )
    counts: dict[str, int] = {}
    for replica in node.replicas.table.values():
        counts[replica.namespace.name] = counts.get(replica.namespace.name, 0) + 1
    for name, count in sorted(counts.items()):
        held.add_metric([name], count)
    yield held
    figures = node.replicas.figures()
    yield GaugeMetricFamily(
        "do_replica_lag_commits",
        "The most commits a replica here knows it has not applied.",
        value=figures["lag_commits_max"],
    )
    yield GaugeMetricFamily(
        "do_replica_lag_ms",
        "The longest a replica here has gone without being known current (ms).",
        value=figures["lag_ms_max"],
    )
    events = CounterMetricFamily(
        "do_replica_events", "Replicas' reads, commits applied, reloads.", labels=["event"]
    )
    events.add_metric(["read"], stats.replica_reads)
    events.add_metric(["applied"], stats.replica_applied)
    events.add_metric(["reload"], stats.replica_reloads)
    yield events
    yield _counter(
        "do_replica_forwards",
        "Read-only calls sent to the primary instead of a replica here, by reason.",
        ["reason"],
        [((reason,), n) for reason, n in stats.replica_forwards.items()],
    )


def _counter(
    name: str, doc: str, labels: list[str], values: Iterable[tuple[tuple[str, ...], int]]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=labels)
    for key, value in sorted(values):
        family.add_metric(list(key), value)
    return family


#: Nodes whose registry holds their NodeCollector already.
_exposed: weakref.WeakSet[MetricsHost] = weakref.WeakSet()


def expose(node: MetricsHost) -> None:
    """Add the node's collector to its registry (once): what /metrics shows beyond the
    histograms the node keeps itself."""
    if node not in _exposed:
        node.stats.registry.register(NodeCollector(node))
        _exposed.add(node)


def render(node: MetricsHost) -> bytes:
    """The node's metrics in the Prometheus text format."""
    expose(node)
    return generate_latest(node.stats.registry)
