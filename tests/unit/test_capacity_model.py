"""The capacity model: queueing formulas against known values, utilisation arithmetic, the
bottleneck pick, and the measured-costs file round trip."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from tools.capacity import queueing
from tools.capacity.costs import DEFAULTS, Costs, Sitting, load
from tools.capacity.model import Deployment, Resource, Workload, bottleneck, evaluate, max_rate

COSTS = Costs()


def test_mm1_formulas_match_the_closed_form() -> None:
    # rho = 0.5, s = 1: mean wait 1; P(W > t) = 0.5 e^{-t/2}, so the p99 is 2 ln 50.
    assert queueing.mm1_mean_wait(0.5, 1.0) == pytest.approx(1.0)
    assert queueing.mm1_wait_quantile(0.5, 1.0, 0.99) == pytest.approx(2 * math.log(50))
    # Half the arrivals find the server free: the median wait is zero.
    assert queueing.mm1_wait_quantile(0.5, 1.0, 0.5) == 0.0
    assert queueing.mm1_mean_wait(1.0, 1.0) == math.inf


def test_md1_waits_half_as_long_as_mm1_on_average() -> None:
    assert queueing.md1_mean_wait(0.8, 2.0) == pytest.approx(queueing.mm1_mean_wait(0.8, 2.0) / 2)
    assert queueing.md1_wait_quantile(0.8, 2.0, 0.99) < queueing.mm1_wait_quantile(0.8, 2.0, 0.99)


def test_erlang_c_with_one_server_is_the_utilisation_and_falls_with_more_servers() -> None:
    assert queueing.erlang_c(1, 0.7) == pytest.approx(0.7)
    # A textbook value: 2 servers, offered load 1 (rho 0.5): C = 1/3.
    assert queueing.erlang_c(2, 1.0) == pytest.approx(1 / 3)
    # M/M/c with one server is M/M/1.
    assert queueing.mmc_wait_quantile(1, 0.6, 1.0, 0.99) == pytest.approx(
        queueing.mm1_wait_quantile(0.6, 1.0, 0.99)
    )
    assert queueing.mmc_mean_wait(4, 0.6, 1.0) < queueing.mmc_mean_wait(2, 0.6, 1.0)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        queueing.mm1_mean_wait(-0.1, 1.0)
    with pytest.raises(ValueError):
        Deployment(nodes=0)
    with pytest.raises(ValueError):
        Deployment(fsync="never")


def test_utilisation_is_the_sum_of_its_parts_and_linear_in_the_rates() -> None:
    work = Workload(requests=1000, writes=1000, live_objects=10_000)
    one = evaluate(work, Deployment(nodes=1), COSTS)
    node = one.resource("node CPU (one process)")
    assert node.utilisation == pytest.approx(sum(node.parts.values()))
    # One node, no crossing: a request costs HTTP + event, and each commit its share.
    b = one.batch
    expected = 1000 * (COSTS.node_http + COSTS.node_event) + one.commits * (
        COSTS.node_commit + COSTS.node_round_trip / b
    )
    # Writes spread over 10,000 objects are rare per object: nearly one commit each.
    assert one.commits == pytest.approx(1000, rel=1e-3)
    assert node.parts["HTTP requests"] + node.parts["events"] + node.parts["commits"] == (
        pytest.approx(expected)
    )
    assert node.parts["forwarding"] == 0
    # Four nodes: each process carries a quarter of the rates, plus forwarding for the
    # three quarters that reach a node not holding their object.
    four = evaluate(work, Deployment(nodes=4), COSTS).resource("node CPU (one process)")
    assert four.parts["HTTP requests"] == pytest.approx(node.parts["HTTP requests"] / 4)
    assert four.parts["forwarding"] == pytest.approx(
        1000 * 0.75 * (COSTS.node_forward_caller + COSTS.node_forward_owner) / 4
    )


def test_shards_divide_redis_work_but_alarm_polls_stop_spreading_at_the_index_slots() -> None:
    work = Workload(writes=100_000, live_objects=1_000_000)
    at16 = evaluate(work, Deployment(nodes=100, redis_shards=16), COSTS)
    at64 = evaluate(work, Deployment(nodes=100, redis_shards=64), COSTS)
    r16 = at16.resource("Redis CPU (busiest shard)").parts
    r64 = at64.resource("Redis CPU (busiest shard)").parts
    assert r64["lease renewals"] == pytest.approx(r16["lease renewals"] / 4)
    assert r64["alarm polls"] == pytest.approx(r16["alarm polls"])  # 16 slots either way
    assert r64["heartbeats"] == pytest.approx(r16["heartbeats"])  # one slot


def test_an_objects_writes_share_commits_once_they_are_frequent() -> None:
    # One object written 10,000 times a second with a 0.7 ms commit: about one commit in
    # flight all the time, 1 / (1/10,000 + 0.0007) = 1,250 commits a second.
    costs = COSTS.replace(redis_rtt=0.25e-3, fsync=0.45e-3)
    report = evaluate(Workload(writes=10_000, writing_objects=1), Deployment(), costs)
    assert report.commits == pytest.approx(1250)
    everysec = evaluate(
        Workload(writes=10_000, writing_objects=1), Deployment(fsync="everysec"), costs
    )
    assert everysec.commits == pytest.approx(1 / (1e-4 + 0.25e-3))


def test_the_bottleneck_is_the_most_utilised_limiting_resource() -> None:
    resources = [
        Resource("a", 0.4),
        Resource("latency only", 0.9, limits=False),
        Resource("b", 0.7),
        Resource("c", 0.7),
    ]
    assert bottleneck(resources).name == "b"  # the first of a tie
    with pytest.raises(ValueError):
        bottleneck([Resource("x", 1.0, limits=False)])


def test_a_hot_object_is_its_own_bottleneck_and_replicas_move_it() -> None:
    chat = Workload(live_objects=1, hot_events=20, hot_fanout=10_000, socket_messages=20, writes=20)
    plain = evaluate(chat, Deployment(nodes=100), COSTS)
    assert plain.bottleneck.name == "busiest object's thread"
    replicated = evaluate(chat, Deployment(nodes=100, read_replicas=True), COSTS)
    assert replicated.hot is not None and plain.hot is not None
    assert replicated.hot.utilisation < plain.hot.utilisation / 5


def test_max_rate_finds_where_the_bottleneck_saturates() -> None:
    work = Workload(requests=1.0, writes=1.0)
    deployment = Deployment(nodes=1)
    factor = max_rate(work, deployment, COSTS)
    at = evaluate(work.scaled(factor), deployment, COSTS)
    assert at.bottleneck.utilisation == pytest.approx(1.0, rel=1e-3)
    assert evaluate(work.scaled(factor * 1.1), deployment, COSTS).bottleneck.utilisation > 1


def test_shared_cores_count_every_process_and_the_load_generator() -> None:
    work = Workload(requests=1000, writes=1000)
    alone = evaluate(work, Deployment(nodes=3), COSTS)
    shared = evaluate(work, Deployment(nodes=3, shared_cores=2), COSTS)
    pool = shared.resource("shared cores (2)")
    nodes = alone.resource("node CPU (one process)").utilisation * 3
    redis = alone.resource("Redis CPU (busiest shard)").utilisation
    client = 1000 * COSTS.client_http
    assert pool.utilisation == pytest.approx((nodes + redis + client) / 2)
    assert "shared cores (M/M/c)" in shared.latency.stages
    # The load generator is one Python process: a limit of its own.
    assert shared.resource("load generator (one process)").utilisation == pytest.approx(client)


def test_latency_grows_with_load_and_is_infinite_past_saturation() -> None:
    base = Workload(requests=1000, writes=1000)
    d = Deployment(nodes=1)
    light, heavy = evaluate(base, d, COSTS), evaluate(base.scaled(8), d, COSTS)
    assert heavy.latency.p99 > light.latency.p99
    factor = max_rate(base, d, COSTS)
    assert evaluate(base.scaled(factor * 1.2), d, COSTS).latency.p99 == math.inf


def test_costs_files_round_trip_and_unknown_names_are_refused() -> None:
    sitting = Sitting(Costs().replace(node_http=1e-4), {"node_http": (9e-5, 2e-4)}, {"a": "b"})
    again = Sitting.from_json(sitting.to_json())
    assert again.costs.node_http == 1e-4 and again.spread["node_http"] == (9e-5, 2e-4)
    with pytest.raises(ValueError, match="unknown cost names"):
        Sitting.from_json('{"costs": {"node_warp": 1}}')
    assert DEFAULTS.exists() and load().costs.node_http > 0


def test_a_renewal_round_stalls_the_loop_for_a_share_of_events() -> None:
    from tools.capacity.model import stall_quantile

    # 100 ms every second: one event in ten waits, for up to 100 ms.
    assert stall_quantile(0.1, 1.0, 0.5) == 0.0
    assert stall_quantile(0.1, 1.0, 0.99) == pytest.approx(0.09)
    # Past its slack (ttl / 2 - margin = 0.75 s) a round lets the node's leases lapse.
    costs = COSTS.replace(node_renewal_round=10e-6)
    report = evaluate(Workload(live_objects=75_000), Deployment(), costs)
    # (stretched a little by the idle node's own work)
    round_ = report.resource("lease renewal round (one process)")
    assert round_.utilisation == pytest.approx(1.0, rel=0.01)
    assert "lease renewal round (periodic stall)" in report.latency.stages


def test_sizing_finds_the_fewest_nodes_and_shards_and_reports_what_it_cannot_relieve() -> None:
    from tools.capacity import sizing

    work = Workload(requests=200_000, writes=100_000, live_objects=100_000)
    size = sizing.size(sizing.Named("w", work, "test"), COSTS, target=0.6)
    d = size.report.deployment
    assert size.fits
    assert all(r.utilisation <= 0.6 for r in size.report.resources if r.limits)
    # One node fewer, or half the shards, would not fit.
    fewer = evaluate(work, replace(d, nodes=d.nodes - 1), COSTS)
    assert fewer.resource("node CPU (one process)").utilisation > 0.6
    if d.redis_shards > 1:
        half = evaluate(work, replace(d, redis_shards=d.redis_shards // 2), COSTS)
        assert half.resource("Redis CPU (busiest shard)").utilisation > 0.6
    # A hot object no number of nodes relieves is the limit, reported, not searched for.
    hot = sizing.size(sizing.Named("hot", replace(work, hot_events=1e6), "test"), COSTS, target=0.6)
    assert not hot.fits and hot.limit == "busiest object's thread"
    assert hot.report.deployment.nodes == d.nodes
