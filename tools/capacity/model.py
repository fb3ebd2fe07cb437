"""The capacity model: a workload on a deployment -> each resource's utilisation, the first
bottleneck, and the latency queueing adds.

Pure arithmetic on measured costs (costs.py), no runtime import. Every rate is per second
over the whole deployment; the model spreads it evenly over the node processes (objects
are placed on the first node that needs them, and a balancer without affinity spreads
clients evenly), and over the Redis shards by hash slot, except where the key layout puts
work on few slots (the registry's one slot, the alarm index's ``alarm_shards`` slots).

A node process is one Python event loop: it uses one core at most, so a machine with
``cores_per_node`` cores runs that many processes. Utilisation is the share of that one
core (or of a Redis shard's one thread) the work keeps busy; 1.0 is the ceiling.

What is not modelled: the network (bandwidth, packet rates; links are taken as fast and
local), TLS, the size of messages (costs were measured with small ones), garbage
collection pauses, and Redis replication. Those bound real deployments too; see
docs/scale.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from . import queueing
from .costs import Costs

GIB = 1024**3
#: A node process's own memory before any object (interpreter, modules, buffers).
NODE_BASE_BYTES = 80 * 1024**2


@dataclass(frozen=True)
class Workload:
    """What the application does, per second over the whole deployment."""

    name: str = "workload"
    #: Objects in memory (each holds a lease and an instance).
    live_objects: float = 0.0
    #: Objects held only by their sockets, out of memory (each holds a lease).
    hibernated_objects: float = 0.0
    #: Objects stored in Redis, live or not (default: live + hibernated).
    stored_objects: float | None = None
    #: Bytes each object stores in Redis beyond the runtime's own keys.
    state_bytes: float = 0.0
    #: HTTP requests, each running one event (a fetch or an RPC) on one object.
    requests: float = 0.0
    #: Calls between objects (RPC events not carried by a request).
    rpcs: float = 0.0
    #: Client socket messages in, each one event on its object (with one send back).
    socket_messages: float = 0.0
    #: Socket messages out beyond one per message in (a broadcast's other receivers).
    deliveries: float = 0.0
    #: Events that write, per second. An object's writes made while its commit is in flight
    #: share its next commit, so commits can be fewer (see ``commits``).
    writes: float = 0.0
    #: How many objects the writes spread over, evenly (None: every live object).
    writing_objects: float | None = None
    #: Alarms fired per second.
    alarms: float = 0.0
    #: Alarms set (or moved) per second: each is an entry in the alarm index, written
    #: before the commit that sets it (one more script call on an index shard).
    alarm_sets: float = 0.0
    #: Open client sockets.
    sockets: float = 0.0
    #: Client sockets opened per second (handshakes, reconnections).
    socket_opens: float = 0.0
    #: Objects activated per second (as many are evicted, in a steady state).
    activations: float = 0.0
    #: Share of requests, calls and socket traffic reaching a node that does not host the
    #: object (forwarded, tunnelled). None: a balancer without affinity, 1 - 1/processes.
    cross_node: float | None = None
    #: The application's own CPU per event (its rules), seconds.
    app_cpu: float = 0.0
    #: The busiest single object: its events per second, and what each costs beyond the
    #: runtime's event (its app CPU is ``app_cpu``).
    hot_events: float = 0.0
    #: Sockets each event of the busiest object is sent to.
    hot_fanout: float = 0.0
    #: Share of the busiest object's events that commit.
    hot_write_share: float = 1.0
    #: Callers in a closed loop (each waits for its answer, then calls again); 0: open.
    concurrency: int = 0

    def scaled(self, factor: float) -> Workload:
        """The same workload with every rate (not the populations) times ``factor``."""
        return replace(
            self,
            requests=self.requests * factor,
            rpcs=self.rpcs * factor,
            socket_messages=self.socket_messages * factor,
            deliveries=self.deliveries * factor,
            writes=self.writes * factor,
            alarms=self.alarms * factor,
            alarm_sets=self.alarm_sets * factor,
            activations=self.activations * factor,
            socket_opens=self.socket_opens * factor,
            hot_events=self.hot_events * factor,
        )


@dataclass(frozen=True)
class Deployment:
    """Where it runs."""

    nodes: int = 1
    #: Cores per node machine: one runtime process per core.
    cores_per_node: int = 1
    redis_shards: int = 1
    fsync: str = "always"  # or "everysec"
    memory_per_node: float = 8 * GIB
    memory_per_shard: float = 8 * GIB
    #: What a shard's disk writes to its append-only file, bytes per second (sustained).
    disk_bytes_per_s: float = 200e6
    lease_ttl: float = 2.0
    #: A lease's local deadline is this much short of its TTL (LEASE_MARGIN).
    lease_margin: float = 0.25
    heartbeat_interval: float = 1.0
    alarm_poll_interval: float = 0.5
    alarm_shards: int = 16
    #: Round trips a node's batcher keeps in flight (REDIS_PIPELINES).
    max_inflight: int = 4
    #: All processes (nodes, Redis, load generators) share this many cores, as on a laptop
    #: or this benchmark machine; None: each has its own.
    shared_cores: float | None = None
    #: Read replicas of the busiest object: read-only events run on a replica on the
    #: caller's node, and each commit is published once to every node.
    read_replicas: bool = False

    @property
    def processes(self) -> int:
        return self.nodes * self.cores_per_node

    def __post_init__(self) -> None:
        if self.nodes < 1 or self.cores_per_node < 1 or self.redis_shards < 1:
            raise ValueError("a deployment has at least one node, core and shard")
        if self.fsync not in ("always", "everysec"):
            raise ValueError(f"fsync is 'always' or 'everysec', not {self.fsync!r}")


@dataclass(frozen=True)
class Resource:
    """One resource's load: ``utilisation`` of its capacity (1.0 = saturated)."""

    name: str
    utilisation: float
    #: What the figure is made of: part -> utilisation.
    parts: dict[str, float] = field(default_factory=dict)
    #: False for resources that add latency but do not cap throughput by themselves.
    limits: bool = True


@dataclass(frozen=True)
class Latency:
    """Queueing delay added to one event (seconds), beside the fixed floor."""

    p50: float
    p99: float
    #: The round trips an event waits for anyway (Redis, fsync, a link), not queueing.
    floor: float
    #: Per stage: (p50, p99) of its wait.
    stages: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    workload: Workload
    deployment: Deployment
    resources: list[Resource]
    latency: Latency
    #: Calls per pipelined round trip to Redis assumed for commits.
    batch: float
    #: Commits per second (fewer than writes when an object's writes share commits).
    commits: float
    #: The busiest object's own thread, and its latency (separate from the deployment).
    hot: Resource | None = None
    hot_latency: Latency | None = None

    @property
    def bottleneck(self) -> Resource:
        """The limiting resource with the highest utilisation."""
        return bottleneck(self.resources)

    @property
    def headroom(self) -> float:
        """How many times the rates could grow before the bottleneck saturates."""
        u = self.bottleneck.utilisation
        return math.inf if u == 0 else 1 / u

    def resource(self, name: str) -> Resource:
        for r in self.resources:
            if r.name == name:
                return r
        raise KeyError(name)


def bottleneck(resources: list[Resource]) -> Resource:
    """The limiting resource with the highest utilisation (the first one listed wins a tie)."""
    limiting = [r for r in resources if r.limits]
    if not limiting:
        raise ValueError("no limiting resource")
    return max(limiting, key=lambda r: r.utilisation)


def cross_share(workload: Workload, deployment: Deployment) -> float:
    if workload.cross_node is not None:
        return workload.cross_node
    return 1 - 1 / deployment.processes


def commit_trip(c: Costs, d: Deployment) -> float:
    """How long a commit is in flight: a round trip, and an fsync under ``always``."""
    return c.redis_rtt + (c.fsync if d.fsync == "always" else 0.0)


def coalesced(rate: float, trip: float) -> float:
    """Commits per second of one object receiving ``rate`` writes per second: one commit in
    flight at a time, and what arrives meanwhile goes in the next. The commit rate is
    ``rate`` when writes are rare and ``1 / trip`` when they are not; between the two,
    ``rate / (1 + rate * trip)`` (each commit's cycle lasts a trip, plus the wait for its
    first write when none arrived during the previous one)."""
    return rate / (1 + rate * trip)


def commits(w: Workload, c: Costs, d: Deployment) -> float:
    """Commits per second over the deployment."""
    if w.writes <= 0:
        return 0.0
    objects = w.writing_objects if w.writing_objects is not None else w.live_objects
    objects = max(1.0, objects)
    return objects * coalesced(w.writes / objects, commit_trip(c, d))


def commit_batch(commits_per_process: float, c: Costs, d: Deployment, concurrency: float) -> float:
    """Commits per pipelined round trip: one while round trips are free; once all
    ``max_inflight`` are busy, what arrives during one round trip shares the next (Little's
    law: rate x round-trip time / round trips in flight). In a closed loop of n callers per
    process, n / max_inflight (measured: 7.4 for 32 callers, 4 round trips in flight)."""
    if concurrency > 0:
        # A closed loop keeps its callers busy: once the node is loaded most of them wait
        # on a commit, spread over the round trips in flight.
        return max(1.0, concurrency / d.max_inflight)
    return max(1.0, commits_per_process * commit_trip(c, d) / d.max_inflight)


def _node_parts(w: Workload, d: Deployment, c: Costs, b: float, made: float) -> dict[str, float]:
    """CPU seconds per second of one node process, by part."""
    p = d.processes
    x = cross_share(w, d)
    holders = w.live_objects + w.hibernated_objects
    parts = {
        "HTTP requests": w.requests * c.node_http,
        "events": (w.requests + w.rpcs) * c.node_event
        + w.alarms * c.node_alarm
        + w.socket_messages * c.node_socket_message
        + w.socket_opens * c.node_socket_open,
        "app rules": (w.requests + w.rpcs + w.alarms + w.socket_messages) * w.app_cpu,
        "deliveries": w.deliveries * c.node_delivery,
        "commits": made * (c.node_commit + c.node_round_trip / b),
        "alarm index": w.alarm_sets * c.node_commit,
        "forwarding": (w.requests + w.rpcs) * x * (c.node_forward_caller + c.node_forward_owner),
        "tunnels": (w.socket_messages * 2 + w.deliveries)
        * x
        * (c.node_tunnel_entry + c.node_tunnel_owner),
        "activations": w.activations * (c.node_activation + c.node_eviction),
        "lease renewals": holders * c.node_renewal / (d.lease_ttl / 2),
        "idle sockets": w.sockets * c.node_idle_socket_per_s,
    }
    per_process = {k: v / p for k, v in parts.items()}
    # An event that finds the loop idle wakes it, which costs more than one that joins a
    # busy turn of the loop: the share of arrivals finding it idle is 1 - rho.
    busy = sum(per_process.values())
    # (A Redis reply's wake-up is in node_round_trip, measured alone and under load.)
    wakes = (w.requests + w.rpcs + w.socket_messages + w.alarms) / p
    per_process["wake-ups"] = wakes * c.node_wakeup * max(0.0, 1 - busy)
    # What every process does whatever the load (timers, the sweep, alarm polls every
    # poll interval, a heartbeat every heartbeat interval), measured on an idle node.
    per_process["idle process"] = c.node_idle_per_s
    return per_process


def _redis_parts(w: Workload, d: Deployment, c: Costs, b: float, made: float) -> dict[str, float]:
    """CPU seconds per second of the busiest Redis shard, by part."""
    s = d.redis_shards
    holders = w.live_objects + w.hibernated_objects
    uniform = {
        "commits": made * (c.redis_commit + c.redis_round_trip / b),
        "lease renewals": holders * c.redis_renewal / (d.lease_ttl / 2),
        "activations": w.activations * c.redis_activation,
        "alarms fired": w.alarms * c.redis_alarm,
    }
    parts = {k: v / s for k, v in uniform.items()}
    # Every process polls every alarm-index shard; the index lives on alarm_shards slots,
    # so on more Redis shards than that the polls do not spread further.
    claims = d.processes * d.alarm_shards / d.alarm_poll_interval * c.redis_claim_empty
    parts["alarm polls"] = claims / min(s, d.alarm_shards)
    # Setting an alarm writes its index entry: on those same few slots.
    parts["alarm index"] = w.alarm_sets * c.redis_claim_empty / min(s, d.alarm_shards)
    parts["server's own timers"] = c.redis_idle_per_s
    # The registry is one slot: one shard takes every heartbeat.
    parts["heartbeats"] = d.processes / d.heartbeat_interval * c.redis_heartbeat
    return parts


def _memory(w: Workload, d: Deployment, c: Costs) -> tuple[dict[str, float], dict[str, float]]:
    p = d.processes
    per_process = {
        "process base": NODE_BASE_BYTES,
        "live objects": w.live_objects / p * (c.mem_live_object + w.state_bytes),
        "hibernated objects": w.hibernated_objects / p * c.mem_hibernated_object,
        "sockets": w.sockets / p * c.mem_socket,
    }
    node = {k: v * d.cores_per_node / d.memory_per_node for k, v in per_process.items()}
    stored = (
        w.stored_objects if w.stored_objects is not None else w.live_objects + w.hibernated_objects
    )
    shard = {"objects": stored * (c.redis_mem_object + w.state_bytes) / d.redis_shards}
    return node, {k: v / d.memory_per_shard for k, v in shard.items()}


def hot_service(w: Workload, d: Deployment, c: Costs, b: float) -> dict[str, float]:
    """CPU seconds one event of the busiest object costs its owner's thread, by part.
    Without replicas every event runs on the owner, and each receiver of a socket on
    another node costs a tunnelled frame. With replicas, read-only events run on the
    caller's node and the owner runs the writes, publishing each commit once per node
    (a frame over a link), so its sockets are served by their own nodes."""
    x = cross_share(w, d)
    writes = w.hot_write_share
    # The object's own commits: several of its writes share one once they are frequent.
    rate = w.hot_events * writes
    per_event = coalesced(rate, commit_trip(c, d)) / w.hot_events if w.hot_events else 0.0
    commit = (c.node_commit + c.node_round_trip / b) * per_event / writes if writes else 0.0
    if not d.read_replicas:
        return {
            "event": c.node_event + w.app_cpu,
            "commit": writes * commit,
            "fan-out": w.hot_fanout * (c.node_delivery + x * c.node_tunnel_owner),
        }
    return {
        "event": writes * (c.node_event + w.app_cpu),
        "commit": writes * commit,
        "publish": per_event * (d.processes - 1) * c.node_tunnel_owner,
        "fan-out (its own node's sockets)": writes * w.hot_fanout / d.processes * c.node_delivery,
    }


def evaluate(w: Workload, d: Deployment, c: Costs) -> Report:
    """Utilisation of every resource, the bottleneck and the added latency."""
    p = d.processes
    made = commits(w, c, d)
    b = commit_batch(made / p, c, d, w.concurrency / p if w.concurrency else 0)
    node_parts = _node_parts(w, d, c, b, made)
    redis_parts = _redis_parts(w, d, c, b, made)
    node_mem, shard_mem = _memory(w, d, c)
    holders = (w.live_objects + w.hibernated_objects) / p
    round_time = (
        holders
        * c.node_renewal_round
        / max(0.05, 1 - sum(node_parts.values()) + node_parts["lease renewals"])
    )
    resources = [
        Resource("node CPU (one process)", sum(node_parts.values()), node_parts),
        # A renewal round lasts its measured time per lease, stretched by the node's other
        # work. Past its slack (ttl / 2 - margin) the node's local deadlines lapse and each
        # event renews its own lease first (a round trip); past the TTL, leases expire in
        # Redis between two renewals and other nodes may take the objects over.
        Resource(
            "lease renewal round (one process)",
            round_time / (d.lease_ttl / 2 - d.lease_margin),
            {"round": round_time},
        ),
        Resource("Redis CPU (busiest shard)", sum(redis_parts.values()), redis_parts),
        Resource("node memory", sum(node_mem.values()), node_mem),
        # Every renewal and every commit is appended to the AOF (and fsync'd with always).
        Resource(
            "Redis AOF writes (per shard)",
            (
                (w.live_objects + w.hibernated_objects) / (d.lease_ttl / 2) * c.aof_renewal
                + made * c.aof_commit
            )
            / d.redis_shards
            / d.disk_bytes_per_s,
        ),
        Resource("Redis memory (per shard)", sum(shard_mem.values()), shard_mem),
    ]
    hot: Resource | None = None
    hot_latency: Latency | None = None
    if w.hot_events:
        parts = {k: v * w.hot_events for k, v in hot_service(w, d, c, b).items()}
        hot = Resource("busiest object's thread", sum(parts.values()), parts)
        resources.append(hot)
    if d.shared_cores is not None:
        total = sum(node_parts.values()) * p + sum(redis_parts.values()) * d.redis_shards
        total += w.requests * c.client_http  # this machine's load generator
        resources.append(
            Resource(
                f"shared cores ({d.shared_cores:g})",
                total / d.shared_cores,
                {
                    "nodes": sum(node_parts.values()) * p / d.shared_cores,
                    "Redis": sum(redis_parts.values()) * d.redis_shards / d.shared_cores,
                    "load generator": w.requests * c.client_http / d.shared_cores,
                },
            )
        )
        if w.requests:
            # This machine's benchmarks drive the nodes from one Python process.
            resources.append(Resource("load generator (one process)", w.requests * c.client_http))
    latency = _latency(w, d, c, b, made, resources)
    if hot is not None:
        service = sum(hot_service(w, d, c, b).values())
        hot_latency = Latency(
            queueing.mm1_wait_quantile(hot.utilisation, service, 0.5),
            queueing.mm1_wait_quantile(hot.utilisation, service, 0.99),
            0.0,
        )
    return Report(w, d, resources, latency, b, made, hot, hot_latency)


def renewal_stall(w: Workload, d: Deployment, c: Costs) -> float:
    """Seconds one process's renewal round holds its loop in one go, every ``ttl / 2``."""
    return (w.live_objects + w.hibernated_objects) / d.processes * c.node_renewal_stall


def stall_quantile(stall: float, interval: float, p: float) -> float:
    """The ``p`` quantile of the wait an event arriving at a random moment finds when the
    server stops for ``stall`` seconds every ``interval`` (a periodic vacation): it waits
    only if it lands in one, and then for what is left of it (uniform)."""
    share = min(1.0, stall / interval)
    if share <= 1 - p:
        return 0.0
    return stall * (1 - (1 - p) / share)


def _events_per_process(w: Workload, d: Deployment) -> float:
    return (w.requests + w.rpcs + w.socket_messages + w.alarms + w.activations) / d.processes


def _latency(
    w: Workload, d: Deployment, c: Costs, b: float, made: float, res: list[Resource]
) -> Latency:
    """Waits at the node's loop (M/M/1), behind its lease renewal round (a periodic stall),
    at the Redis shard (M/D/1) and, on shared cores, for a CPU (M/M/c); each stage's
    quantile is computed alone and the stages are summed, which bounds the quantile of the
    sum from above."""
    stages: dict[str, tuple[float, float]] = {}
    node = res[0]
    events = _events_per_process(w, d)
    if events > 0:
        service = node.utilisation / events
        stages["node loop (M/M/1)"] = (
            queueing.mm1_wait_quantile(node.utilisation, service, 0.5),
            queueing.mm1_wait_quantile(node.utilisation, service, 0.99),
        )
    shard = res[1]
    trips = (made / b + w.activations) / d.redis_shards
    if trips > 0:
        service = shard.utilisation / trips
        stages["Redis shard (M/D/1)"] = (
            queueing.md1_wait_quantile(shard.utilisation, service, 0.5),
            queueing.md1_wait_quantile(shard.utilisation, service, 0.99),
        )
    stall = renewal_stall(w, d, c)
    if stall > 0:
        interval = d.lease_ttl / 2
        stages["lease renewal round (periodic stall)"] = (
            stall_quantile(stall, interval, 0.5),
            stall_quantile(stall, interval, 0.99),
        )
    shared = [r for r in res if r.name.startswith("shared cores")]
    if shared and events > 0 and d.shared_cores is not None:
        servers = max(1, int(d.shared_cores))
        service = shared[0].utilisation * d.shared_cores / (events * d.processes)
        stages["shared cores (M/M/c)"] = (
            queueing.mmc_wait_quantile(servers, shared[0].utilisation, service, 0.5),
            queueing.mmc_wait_quantile(servers, shared[0].utilisation, service, 0.99),
        )
    floor = 0.0
    if w.writes:
        floor += commit_trip(c, d)
    x = cross_share(w, d)
    floor += x * c.link_rtt if (w.requests or w.rpcs or w.socket_messages) else 0.0
    return Latency(
        sum(s[0] for s in stages.values()), sum(s[1] for s in stages.values()), floor, stages
    )


def max_rate(w: Workload, d: Deployment, c: Costs, limit: float = 1.0) -> float:
    """The factor by which ``w``'s rates can be multiplied before the bottleneck reaches
    ``limit`` utilisation (rates and utilisation are linear but for commit batching, which
    depends on the rate: found by bisection)."""
    lo, hi = 0.0, 1.0
    while evaluate(w.scaled(hi), d, c).bottleneck.utilisation < limit:
        hi *= 2
        if hi > 1e12:
            return math.inf
    for _ in range(60):
        mid = (lo + hi) / 2
        if evaluate(w.scaled(mid), d, c).bottleneck.utilisation < limit:
            lo = mid
        else:
            hi = mid
    return lo
