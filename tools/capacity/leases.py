"""Scenario: lease renewal and alarm claiming at scale (10^6 objects, 100 nodes, 16-64
Redis Cluster shards).

What a formula misses here is the shape of the load: a node renews all its leases in one
pipelined round every ``ttl / 2``, which a Redis Cluster client splits into one pipeline
per shard, so each shard receives a burst per node per second rather than a smooth stream;
and when the nodes start together (a deploy, a recovery) their rounds line up. Every node
polls every alarm-index shard every ``alarm_poll_interval``, and those shards are
``alarm_shards`` fixed Redis Cluster slots, so on more Redis shards than slots the polls do
not spread: CRC16 of each slot's hash tag decides which shard takes them, as in Redis.

A renewal round must be answered within ``ttl / 2 - margin`` (0.75 s by default) of being
sent, or the node's local deadline passes and it stops serving from memory until the next
round succeeds; the simulation counts rounds that missed it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import simpy

from .costs import Costs
from .simulation import Process, Tally, Thread

SLOTS = 16384


def crc16(data: bytes) -> int:
    """CRC16-CCITT (XModem), the checksum Redis Cluster hashes keys with."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def shard_of_tag(tag: str, shards: int) -> int:
    """The shard serving a hash tag's slot, with slots split evenly in ranges (what
    ``redis-cli --cluster create`` does)."""
    return crc16(tag.encode()) % SLOTS * shards // SLOTS


@dataclass(frozen=True)
class RenewalSetup:
    objects: int = 1_000_000
    nodes: int = 100
    shards: int = 16
    lease_ttl: float = 2.0
    lease_margin: float = 0.25
    alarm_shards: int = 16
    alarm_poll_interval: float = 0.5
    #: Alarms fired per second over the deployment.
    alarms: float = 0.0
    #: Every node's renewal round starts at the same instant (nodes started together).
    aligned: bool = False
    #: Each alarm-index shard is polled by this many nodes (None: every node polls every
    #: shard, as the runtime does today).
    pollers_per_shard: int | None = None
    #: Entries one claim takes at most (claim_alarms.lua's limit: 100 in the runtime).
    claim_limit: int = 100
    #: Utilisation of each Redis shard by other work (commits), simulated as 1 ms pieces.
    background: float = 0.0
    seconds: float = 10.0
    seed: int = 1


@dataclass(frozen=True)
class RenewalResult:
    setup: RenewalSetup
    shard_utilisation_max: float
    shard_utilisation_mean: float
    #: From a round's first send to its last reply, seconds.
    round_p50: float
    round_p99: float
    round_max: float
    rounds: int
    late_rounds: int
    #: Claim polls per second over the deployment, and on the busiest shard.
    claims_per_s: float
    claim_shard_max_share: float
    #: From an alarm's due time to its claim, seconds.
    alarm_delay_p99: float


def simulate(setup: RenewalSetup, costs: Costs) -> RenewalResult:
    env = simpy.Environment()
    rng = random.Random(setup.seed)
    shards = [Thread(env, f"shard{i}") for i in range(setup.shards)]
    interval = setup.lease_ttl / 2
    slack = interval - setup.lease_margin
    per_node = setup.objects / setup.nodes
    rounds = Tally()
    late = 0
    alarm_delays = Tally()
    claim_counts = [0] * setup.shards
    # Which Redis shard holds each alarm-index shard (its key's hash tag is its number).
    alarm_home = [shard_of_tag(str(i), setup.shards) for i in range(setup.alarm_shards)]
    due: list[list[float]] = [[] for _ in range(setup.alarm_shards)]

    def renewal_round(node: int) -> Process:
        nonlocal late
        sent = env.now
        # The node encodes every SET IFEQ of the round before the pipelines leave.
        yield env.timeout(per_node * costs.node_renewal)
        counts = _split(per_node, setup.shards, rng)
        jobs = [
            env.process(shards[s].run(costs.redis_round_trip + counts[s] * costs.redis_renewal))
            for s in range(setup.shards)
            if counts[s]
        ]
        yield simpy.AllOf(env, jobs)
        yield env.timeout(costs.redis_rtt)
        took = env.now - sent
        rounds.add(took)
        if took > slack:
            late += 1

    def renewer(node: int) -> Process:
        yield env.timeout(0.0 if setup.aligned else rng.uniform(0, interval))
        while True:
            env.process(renewal_round(node))
            yield env.timeout(interval)

    def claim(alarm_shard: int) -> Process:
        home = alarm_home[alarm_shard]
        claim_counts[home] += 1
        # Entries are due in the order they were added: claim the oldest, up to the limit.
        queue = due[alarm_shard]
        k = 0
        while k < len(queue) and k < setup.claim_limit and queue[k] <= env.now:
            k += 1
        ready, due[alarm_shard] = queue[:k], queue[k:]
        yield env.process(
            shards[home].run(costs.redis_claim_empty + len(ready) * costs.redis_alarm)
        )
        for t in ready:
            alarm_delays.add(env.now - t)

    def poller(node: int) -> Process:
        if setup.pollers_per_shard is None:
            mine = list(range(setup.alarm_shards))
        else:
            mine = [
                a
                for a in range(setup.alarm_shards)
                if (node - a) % setup.nodes < setup.pollers_per_shard
            ]
        yield env.timeout(rng.uniform(0, setup.alarm_poll_interval))
        while True:
            for a in mine:
                env.process(claim(a))
            yield env.timeout(setup.alarm_poll_interval)

    def alarm_source() -> Process:
        while True:
            yield env.timeout(rng.expovariate(setup.alarms))
            due[rng.randrange(setup.alarm_shards)].append(env.now)

    def background(shard: Thread) -> Process:
        piece = 1e-3
        while True:
            yield env.timeout(rng.expovariate(setup.background / piece))
            env.process(shard.run(piece))

    for node in range(setup.nodes):
        env.process(renewer(node))
        env.process(poller(node))
    if setup.alarms > 0:
        env.process(alarm_source())
    if setup.background > 0:
        for shard in shards:
            env.process(background(shard))
    env.run(until=setup.seconds)
    utilisations = [s.utilisation() for s in shards]
    total_claims = sum(claim_counts)
    return RenewalResult(
        setup,
        max(utilisations),
        sum(utilisations) / len(utilisations),
        rounds.q(0.5),
        rounds.q(0.99),
        rounds.max,
        rounds.count,
        late,
        total_claims / setup.seconds,
        max(claim_counts) / total_claims if total_claims else 0.0,
        alarm_delays.q(0.99) if alarm_delays.count else 0.0,
    )


def _split(total: float, parts: int, rng: random.Random) -> list[int]:
    """``total`` leases over ``parts`` shards by hash: even on average, with the binomial
    spread of random keys (normal approximation; exact for the sizes simulated)."""
    n = int(total)
    p = 1 / parts
    sd = (n * p * (1 - p)) ** 0.5
    return [max(0, round(rng.gauss(n * p, sd))) for _ in range(parts)]
