"""The simulation's logic: its single-server queue against the M/M/1 closed form, and each
scenario on small cases whose answer is known without it."""

from __future__ import annotations

import pytest
import simpy

from tools.capacity import hot, leases, queueing, rolling, storm
from tools.capacity.costs import Costs
from tools.capacity.simulation import Machine, Thread, mm1, quantile

COSTS = Costs()


def test_the_simulated_single_server_queue_matches_the_mm1_closed_form() -> None:
    rate, service = 0.7, 1.0
    waits = mm1(rate, service, customers=60_000, seed=3)
    assert waits.mean == pytest.approx(queueing.mm1_mean_wait(0.7, service), rel=0.1)
    assert waits.q(0.99) == pytest.approx(queueing.mm1_wait_quantile(0.7, service, 0.99), rel=0.1)


def test_two_threads_on_one_shared_core_take_turns() -> None:
    env = simpy.Environment()
    machine = Machine(env, cores=1)
    a, b = Thread(env, "a", machine), Thread(env, "b", machine)
    env.process(a.run(1.0))
    env.process(b.run(1.0))
    env.run()
    assert env.now == pytest.approx(2.0)  # one core: one after the other
    env2 = simpy.Environment()
    own = Machine(env2, cores=None)
    c, d = Thread(env2, "c", own), Thread(env2, "d", own)
    env2.process(c.run(1.0))
    env2.process(d.run(1.0))
    env2.run()
    assert env2.now == pytest.approx(1.0)


def test_quantile_is_nearest_rank() -> None:
    assert quantile([3.0, 1.0, 2.0, 4.0], 0.5) == 2.0
    assert quantile([1.0] * 99 + [100.0], 0.99) == 1.0
    assert quantile([1.0] * 98 + [100.0, 100.0], 0.99) == 100.0


def test_crc16_is_redis_clusters_key_slot_hash() -> None:
    # Redis' own test vector for its CRC16 (cluster.c): "123456789" -> 0x31C3.
    assert leases.crc16(b"123456789") == 0x31C3
    assert leases.crc16(b"foo") % 16384 == 12182  # CLUSTER KEYSLOT foo


def test_renewal_rounds_cost_each_shard_its_share_and_none_is_late() -> None:
    setup = leases.RenewalSetup(objects=100_000, nodes=10, shards=4, seconds=5)
    result = leases.simulate(setup, COSTS)
    # Each shard renews a quarter of the leases every second.
    expected = (100_000 / 4 * COSTS.redis_renewal + 10 * COSTS.redis_round_trip) / 1.0
    assert result.shard_utilisation_mean == pytest.approx(expected, rel=0.1)
    assert result.late_rounds == 0 and result.rounds == pytest.approx(50, abs=10)
    # All 10 nodes poll all 16 index shards twice a second.
    assert result.claims_per_s == pytest.approx(10 * 16 * 2, rel=0.1)


def test_aligned_rounds_queue_behind_each_other() -> None:
    base = leases.RenewalSetup(objects=200_000, nodes=20, shards=2, seconds=3)
    spread = leases.simulate(base, COSTS)
    aligned = leases.simulate(leases.RenewalSetup(**{**vars(base), "aligned": True}), COSTS)
    # Lined up, the last node's pipeline waits for all 20 on its shard: the node's own
    # encoding, then 20 shard jobs of 5,000 renewals each, then the reply's round trip.
    job = 10_000 / 2 * COSTS.redis_renewal + COSTS.redis_round_trip
    last = 10_000 * COSTS.node_renewal + 20 * job + COSTS.redis_rtt
    assert aligned.round_max == pytest.approx(last, rel=0.1)
    assert spread.round_max < last / 2


def test_a_single_object_comes_back_when_its_lease_expires() -> None:
    # One object, renewed 0.5 s before the death: its lease expires 1.5 s after it. A
    # client polling from the start is served within one backoff step (0.1 s) after that.
    setup = storm.StormSetup(
        survivors=1, objects=1, shards=1, renewed_before_death=0.5, clients=1, horizon=10
    )
    result = storm.simulate(setup, COSTS)
    assert result.expiry == pytest.approx(1.5)
    assert 1.5 < result.all_back < 1.5 + storm.MAX_DELAY + 0.01
    assert result.failed == 0 and result.served == 1


def test_waiting_for_the_expiry_polls_less_than_backing_off() -> None:
    common = {"survivors": 4, "objects": 200, "shards": 2, "renewed_before_death": 0.0}
    polled = storm.simulate(storm.StormSetup(**common), COSTS)
    waited = storm.simulate(storm.StormSetup(**common, wait_for_expiry=True), COSTS)
    assert polled.served == waited.served == 200
    assert waited.polls < polled.polls / 3
    assert waited.all_back <= polled.all_back + 0.01


def test_an_event_waiting_longer_than_the_activation_timeout_fails() -> None:
    setup = storm.StormSetup(
        survivors=1, objects=1, renewed_before_death=-10.0, activation_timeout=1.0, horizon=5
    )
    result = storm.simulate(setup, COSTS)
    assert result.failed == 1 and result.served == 0


def test_a_hot_object_batches_commits_as_its_rate_grows() -> None:
    slow = hot.simulate(hot.HotSetup(rate=50, nodes=1, events=500), COSTS)
    fast = hot.simulate(hot.HotSetup(rate=5000, nodes=1, events=5000), COSTS)
    assert slow.batch == pytest.approx(1.0, abs=0.1)
    assert fast.batch > 2
    assert fast.completed_share > 0.99


def test_the_hot_objects_cap_is_where_its_thread_saturates() -> None:
    # No commits, no fan-out, local callers: an M/D/1 queue of service s = 1 ms, whose
    # p99 wait reaches 50 ms near rho = 0.95: a cap near 950/s.
    costs = COSTS.replace(node_event=1e-3)
    setup = hot.HotSetup(nodes=1, write_share=0.0, entry="http", events=8000)
    rate, run = hot.cap(setup, costs, p99_target=0.05)
    assert 850 < rate < 1000
    assert run.owner_utilisation == pytest.approx(rate * 1e-3, rel=0.1)


def test_read_replicas_take_reads_off_the_owner() -> None:
    setup = hot.HotSetup(rate=2000, nodes=10, write_share=0.1, entry="http", events=3000)
    plain = hot.simulate(setup, COSTS)
    replicated = hot.simulate(hot.HotSetup(**{**vars(setup), "read_replicas": True}), COSTS)
    assert replicated.owner_utilisation < plain.owner_utilisation / 2


def test_rolling_restart_moves_objects_once_when_placed_on_restarted_nodes() -> None:
    common = {"nodes": 8, "objects_per_node": 200, "group": 10, "boot": 0.5, "settle": 0.1}
    random_ = rolling.simulate(rolling.RollingSetup(**common), COSTS)
    restarted = rolling.simulate(rolling.RollingSetup(**common, placement="restarted"), COSTS)
    # The first node's objects have nowhere restarted to go: they may move again.
    assert restarted.moves_mean < random_.moves_mean
    assert restarted.moves_mean <= 1 + 1 / 8 + 0.01
    assert random_.moves_mean > 1.3
    assert random_.activations == pytest.approx(random_.moves_mean * 8 * 200, rel=0.01)
