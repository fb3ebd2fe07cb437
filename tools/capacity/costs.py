"""What each operation costs: the measured parameters of the model and the simulation.

``bench/capacity.py`` measures every figure on a real node and a real Valkey (medians of
several runs) and writes them as JSON; ``costs.json`` beside this module holds the figures
of the last quiet sitting, so the model and the simulation run without measuring first.

Times are CPU seconds of one core (or wall seconds where the name says latency), sizes are
bytes. "Node" figures are the runtime process's CPU, "redis" figures the Valkey server's.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULTS = Path(__file__).resolve().parent / "costs.json"


@dataclass(frozen=True)
class Costs:
    """Per-operation costs, one core's seconds (or bytes)."""

    # --- node CPU per operation ------------------------------------------------------
    #: An HTTP request through the node's stack to a route that touches no object (under
    #: load: many requests share each turn of the event loop).
    node_http: float = 60e-6
    #: What waking an idle event loop adds (epoll, the loop's own bookkeeping, the kernel's
    #: scheduling): paid by an event or a reply that finds the node with nothing else to do.
    node_wakeup: float = 40e-6
    #: One event on a live object (an RPC, or a fetch) beyond the request that carried it.
    node_event: float = 40e-6
    #: A fetch event (a request handed to the object's ``fetch``), for reference: the model
    #: charges ``node_event`` for every request.
    node_fetch: float = 45e-6
    #: An alarm delivered: claimed, run (a handler that does nothing), settled.
    node_alarm: float = 150e-6
    #: One commit's share of the node's work beyond its round trip: the batch, the Lua
    #: call's encoding, the output gate's release.
    node_commit: float = 25e-6
    #: One pipelined round trip to Redis (the batcher's fixed cost, shared by its calls).
    node_round_trip: float = 100e-6
    #: Activating an object: lease acquisition, a new instance, its first read.
    node_activation: float = 150e-6
    #: Evicting an idle object: its last commit and the lease's release.
    node_eviction: float = 60e-6
    #: A forwarded event, on the node that forwards it (link out and back).
    node_forward_caller: float = 60e-6
    #: A forwarded event, on its owner (link in and out), beyond the event itself.
    node_forward_owner: float = 50e-6
    #: A client socket opened and accepted by its object (handshake, connect event).
    node_socket_open: float = 300e-6
    #: A client socket message in, handled by an object (no storage), with one send back.
    node_socket_message: float = 45e-6
    #: One more socket a message is sent to (a broadcast's cost per receiver).
    node_delivery: float = 4e-6
    #: A tunnelled frame, on the node the client is connected to (each direction).
    node_tunnel_entry: float = 40e-6
    #: A tunnelled frame, on the owner, beyond a direct socket's cost.
    node_tunnel_owner: float = 35e-6
    #: One poll of a lease another node holds (acquire.lua answering "held"), node side.
    node_lease_poll: float = 30e-6
    #: Renewing one lease (the node's side of the batched renewal round), with the sweep's
    #: visit to its record (both once a second; measured together on idle objects).
    node_renewal: float = 3e-6
    #: How long a renewal round lasts per lease it renews (wall time of the runtime's own
    #: renew_many on an otherwise idle node: its CPU, and waiting for Redis' replies).
    node_renewal_round: float = 20e-6
    #: The part of that which holds the loop in one go (the pipeline's encoding): other
    #: events wait behind it; the rest (reading the replies) interleaves with them.
    node_renewal_stall: float = 0.5e-6
    #: Per second, a node process with nothing to do (its timers, sweep, polls, heartbeats).
    node_idle_per_s: float = 3e-3
    #: Per second, per idle socket whose object hibernated (keepalive pings, the sweep).
    node_idle_socket_per_s: float = 0.05e-6

    # --- Redis (Valkey) CPU per operation ----------------------------------------------
    #: Per second, the Redis server itself with no client (its own timers: expiry, cron).
    redis_idle_per_s: float = 1e-3
    #: One commit (commit.lua with one put), sent in a pipeline with others.
    redis_commit: float = 12e-6
    #: Redis commands one commit makes (EVALSHA and the calls inside it).
    redis_commit_ops: float = 4.0
    #: One lease renewal (SET IFEQ PX, batched in the renewal round's pipeline).
    redis_renewal: float = 1.2e-6
    #: One alarm-index shard claimed by one poll of one node, nothing due.
    redis_claim_empty: float = 6e-6
    #: One alarm claimed and settled (beyond the empty claim).
    redis_alarm: float = 25e-6
    #: One heartbeat of one node (SET with a TTL and SADD, pipelined).
    redis_heartbeat: float = 8e-6
    #: One activation: acquire.lua and the object's first read.
    redis_activation: float = 20e-6
    #: One poll of a held lease (acquire.lua finding it taken).
    redis_lease_poll: float = 6e-6
    #: One pipelined round trip's fixed cost on the server (read, parse, reply, wake-up).
    redis_round_trip: float = 15e-6

    #: Bytes the append-only file grows by per lease renewal (a renewal is a write).
    aof_renewal: float = 120.0
    #: Bytes the append-only file grows by per commit (one small put).
    aof_commit: float = 200.0

    # --- latency (wall seconds) ----------------------------------------------------------
    #: One round trip to Redis, nothing else in flight (PING).
    redis_rtt: float = 0.25e-3
    #: What appendfsync always adds to a write round trip (one fsync of the AOF).
    fsync: float = 0.45e-3
    #: What forwarding adds to one event's latency (the link's round trip).
    link_rtt: float = 0.4e-3

    # --- memory (bytes) --------------------------------------------------------------------
    #: Node RSS per live object with a small cached state.
    mem_live_object: float = 6_000.0
    #: Node RSS per hibernated object (its record: lease, socket set), sockets apart.
    mem_hibernated_object: float = 4_000.0
    #: Node RSS per idle client socket.
    mem_socket: float = 9_300.0
    #: Redis memory per object with one small key (lease, epoch, data hash, key index).
    redis_mem_object: float = 400.0

    # --- the load generator of this machine's benchmarks ----------------------------------
    #: The benchmark's own keep-alive HTTP client, per request (its process's CPU).
    client_http: float = 50e-6

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def replace(self, **changes: float) -> Costs:
        return Costs(**{**asdict(self), **changes})


@dataclass
class Sitting:
    """Costs as measured in one sitting, with what the machine was doing meanwhile."""

    costs: Costs
    #: How each figure spread over the runs: name -> (min, max).
    spread: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: When, where and how quiet: free text (date, cores, load averages, runs).
    conditions: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "conditions": self.conditions,
            "costs": asdict(self.costs),
            "spread": {k: list(v) for k, v in self.spread.items()},
        }
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Sitting:
        data = json.loads(text)
        known = set(Costs.names())
        unknown = sorted(set(data["costs"]) - known)
        if unknown:
            raise ValueError(f"unknown cost names {unknown}: is the file from another version?")
        costs = Costs(**{k: float(v) for k, v in data["costs"].items()})
        spread = {k: (float(a), float(b)) for k, (a, b) in data.get("spread", {}).items()}
        return cls(costs, spread, dict(data.get("conditions", {})))


def load(path: Path | None = None) -> Sitting:
    """The sitting in ``path`` (the checked-in defaults when None)."""
    return Sitting.from_json((path or DEFAULTS).read_text())
