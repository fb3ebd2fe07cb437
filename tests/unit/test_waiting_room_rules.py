"""The waiting room's rules with no sockets and no storage: capacity, the rate window, each
queueing method, sessions and renewals, abandonment, events with a pre-queue and a lottery.
Input in, effects out: what a room stores is what its effects store, replayed here."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apps.waiting_room.effects import Admitted, Delete, Left, Reordered, Status, Store, Told
from apps.waiting_room.line import Line
from apps.waiting_room.room_settings import RoomSettings
from apps.waiting_room.rules import ACTIVE, QUEUED, RoomRules, Visitor
from apps.waiting_room.window import RateWindow

T0 = 1_900_000_000.0


def make_room(
    capacity: int = 2,
    rate: int = 100,
    session: int = 60,
    method: str = "fifo",
    now: float = T0,
    seed: int = 1,
    queue_timeout: float = 120.0,
    **extra: object,
) -> RoomRules:
    settings = RoomSettings(capacity, rate, session, method, **extra)  # type: ignore[arg-type]
    return RoomRules(settings, now=now, rng=random.Random(seed), queue_timeout=queue_timeout)


def told(effects: list[object]) -> Status:
    """What the visitor who asked is told (the one ``Told`` of a visit)."""
    [answer] = [e for e in effects if isinstance(e, Told)]
    return answer.status


def visit(room: RoomRules, visitor: str, now: float) -> Status:
    return told(room.visit(visitor, now))


def statuses(room: RoomRules, visitors: list[str], now: float) -> list[str]:
    return [visit(room, v, now).status for v in visitors]


def replay(effects: list[object]) -> dict[str, object]:
    """What storage holds after these effects, from empty (``Store`` and ``Delete``, in
    order)."""
    held: dict[str, object] = {}
    for effect in effects:
        if isinstance(effect, Store):
            held.update(effect.values)
        elif isinstance(effect, Delete):
            for key in effect.keys:
                held.pop(key, None)
    return held


def saved(effects: list[object]) -> dict[str, object]:
    """Visitors' records stored by these effects (and not deleted after)."""
    return {k[2:]: v for k, v in replay(effects).items() if k.startswith("v/")}


def meta(effects: list[object]) -> dict[str, object]:
    """The room's other stored keys (seq, adm, ev)."""
    return {k: v for k, v in replay(effects).items() if "/" not in k}


def deleted(effects: list[object]) -> list[str]:
    return [k[2:] for e in effects if isinstance(e, Delete) for k in e.keys]


def admitted(effects: list[object]) -> list[str]:
    """Visitors admitted from the line (their pages are told at once)."""
    return [e.visitor for e in effects if isinstance(e, Admitted)]


def reordered(effects: list[object]) -> bool:
    return any(isinstance(e, Reordered) for e in effects)


# ---------------------------------------------------------------- capacity


def test_capacity_admits_up_to_the_limit_then_queues_in_order() -> None:
    room = make_room(capacity=2)
    visits = [room.visit(v, T0) for v in "abcd"]
    assert [told(e).status for e in visits] == ["admitted", "admitted", "queued", "queued"]
    effects = [e for each in visits for e in each]
    assert room.active_count == 2 and room.queued_count == 2
    assert visit(room, "c", T0) == Status("queued", 1, room.eta(1, T0))
    assert visit(room, "d", T0).position == 2
    assert set(saved(effects)) == {"a", "b", "c", "d"}
    assert meta(effects)["seq"] == 3 and meta(effects)["adm"]["n"] == 2  # type: ignore[index]


def test_a_newcomer_never_jumps_the_line_even_when_a_slot_is_free() -> None:
    room = make_room(capacity=1, rate=1)  # the rate, not the capacity, holds the line
    assert statuses(room, ["a", "b"], T0) == ["admitted", "queued"]
    room.leave("a", T0 + 1)
    assert room.active_count == 0 and room.queued_count == 1  # rate-limited: still queued
    assert visit(room, "c", T0 + 1).status == "queued"
    assert visit(room, "c", T0 + 1).position == 2


def test_a_freed_slot_goes_to_the_head_of_the_line_at_once() -> None:
    room = make_room(capacity=1)
    statuses(room, ["a", "b", "c"], T0)
    effects = room.leave("a", T0 + 5)
    assert Left("a") in effects
    assert admitted(effects) == ["b"] and reordered(effects)
    assert deleted(effects) == ["a"] and saved(effects)["b"][0] == ACTIVE  # type: ignore[index]
    assert visit(room, "b", T0 + 5).status == "admitted"
    assert visit(room, "c", T0 + 5).position == 1
    assert room.leave("nobody", T0 + 5) == []


def test_lowering_capacity_evicts_nobody_and_raising_it_admits_from_the_line() -> None:
    room = make_room(capacity=3)
    statuses(room, ["a", "b", "c", "d", "e"], T0)
    room.update(RoomSettings(1, 100, 60, "fifo"), T0 + 1)
    assert room.active_count == 3  # nobody is thrown out...
    room.leave("a", T0 + 2)
    assert room.active_count == 2 and room.queued_count == 2  # ...and nobody comes in
    assert admitted(room.update(RoomSettings(4, 100, 60, "fifo"), T0 + 3)) == ["d", "e"]
    assert room.active_count == 4 and room.queued_count == 0


@given(st.lists(st.tuples(st.sampled_from("vlwt"), st.integers(0, 9)), max_size=120))
@settings(max_examples=150, deadline=None)
def test_active_never_exceeds_capacity_and_the_window_never_overflows(ops) -> None:
    room = make_room(capacity=3, rate=4, session=5)
    now = T0
    admissions: list[float] = []
    for op, who in ops:
        visitor = f"v{who}"
        before = room.admitted_total
        if op == "v":
            room.visit(visitor, now)
        elif op == "l":
            room.leave(visitor, now)
        elif op == "w":
            now += who * 1.7
            room.tick(now)
        else:
            now += 0.3
            room.tick(now)
        admissions += [now] * (room.admitted_total - before)
        assert room.active_count <= 3
        assert room.active_count == sum(v.state == ACTIVE for v in room.visitors.values())
        assert room.queued_count == sum(v.state == QUEUED for v in room.visitors.values())
    for start in admissions:
        assert sum(start <= t <= start + 60 for t in admissions) <= 4


# ---------------------------------------------------------------- rate window


def test_rate_window_allows_the_limit_in_any_60_seconds() -> None:
    window = RateWindow(3)
    for t in (0.0, 10.5, 59.9):
        assert window.available(T0 + t) > 0
        window.record(T0 + t)
    assert window.available(T0 + 60.0) == 0
    # the first admission's second stops counting once floor(now - 60) passes it
    assert window.next_free(T0 + 60.0) == T0 + 61.0
    assert window.available(T0 + 60.99) == 0 and window.available(T0 + 61.0) == 1
    assert window.unrecord(int(T0 + 10), 5) == 1
    assert window.available(T0 + 61.0) == 2
    restored = RateWindow(3)
    restored.load(window.to_wire())
    assert restored.buckets == window.buckets


@given(st.lists(st.floats(0, 400, allow_nan=False), max_size=200), st.integers(1, 6))
@settings(max_examples=200, deadline=None)
def test_no_closed_60_second_window_ever_holds_more_than_the_limit(times, limit) -> None:
    window = RateWindow(limit)
    admitted = []
    for t in sorted(times):
        if window.available(T0 + t):
            window.record(T0 + t)
            admitted.append(t)
    for start in admitted:
        assert sum(start <= t <= start + 60 for t in admitted) <= limit


def test_the_rate_limit_holds_the_line_and_a_wake_up_is_scheduled() -> None:
    room = make_room(capacity=10, rate=2)
    assert statuses(room, ["a", "b", "c"], T0) == ["admitted", "admitted", "queued"]
    assert room.next_wake(T0) == pytest.approx(T0 + 61)
    room.tick(T0 + 60.5)
    assert visit(room, "c", T0 + 60.5).status == "queued"
    room.tick(T0 + 61)
    assert visit(room, "c", T0 + 61).status == "admitted"


# ---------------------------------------------------------------- queueing methods


def test_random_serves_every_queued_visitor_with_equal_chance() -> None:
    firsts: Counter[str] = Counter()
    for seed in range(1200):
        room = make_room(capacity=1, method="random", seed=seed)
        statuses(room, ["a", "b", "c", "d"], T0)
        firsts[admitted(room.leave("a", T0 + 1))[0]] += 1
    assert set(firsts) == {"b", "c", "d"}
    assert all(330 <= n <= 470 for n in firsts.values()), firsts  # 400 each expected


def test_random_shows_no_position_but_an_expected_wait() -> None:
    room = make_room(capacity=1, method="random")
    statuses(room, ["a", "b", "c"], T0)
    status = visit(room, "b", T0)
    assert status.status == "queued" and status.position is None and status.eta_s
    assert {s.position for _, s in room.positions(T0)} == {None}


def test_passthrough_admits_everyone_and_only_counts() -> None:
    room = make_room(capacity=1, rate=1, method="passthrough")
    assert statuses(room, ["a", "b", "c"], T0) == ["admitted"] * 3
    assert room.active_count == 3 and room.window.count(T0) == 0
    assert room.figures(T0)["active"] == 3


def test_switching_to_passthrough_lets_the_whole_line_in() -> None:
    room = make_room(capacity=1)
    statuses(room, ["a", "b", "c"], T0)
    assert admitted(room.update(RoomSettings(1, 100, 60, "passthrough"), T0 + 1)) == ["b", "c"]


def test_reject_turns_away_whoever_cannot_come_in_at_once() -> None:
    room = make_room(capacity=1, method="reject")
    assert statuses(room, ["a", "b"], T0) == ["admitted", "rejected"]
    assert "b" not in room.visitors and room.queued_count == 0
    assert visit(room, "b", T0) == Status("rejected")
    room.leave("a", T0 + 1)
    assert visit(room, "b", T0 + 1).status == "admitted"


def test_switching_fifo_to_reject_still_serves_those_already_in_line() -> None:
    room = make_room(capacity=1)
    statuses(room, ["a", "b"], T0)
    room.update(RoomSettings(1, 100, 60, "reject"), T0 + 1)
    assert visit(room, "c", T0 + 1).status == "rejected"
    assert visit(room, "b", T0 + 1).position == 1
    room.leave("a", T0 + 2)
    assert visit(room, "b", T0 + 2).status == "admitted"


# ---------------------------------------------------------------- sessions


def test_a_session_ends_after_its_duration_without_requests() -> None:
    room = make_room(capacity=1, session=30)
    statuses(room, ["a", "b"], T0)
    assert room.next_wake(T0) == T0 + 30
    room.tick(T0 + 29.9)
    assert visit(room, "b", T0 + 29.9).status == "queued"
    effects = room.tick(T0 + 30)
    assert "a" in deleted(effects) and admitted(effects) == ["b"]
    assert visit(room, "a", T0 + 30).status == "queued"  # back of the line: a newcomer


def test_every_request_renews_the_session() -> None:
    room = make_room(capacity=1, session=30)
    room.visit("a", T0)
    for t in (20, 40, 60):
        assert visit(room, "a", T0 + t).status == "admitted"
    room.tick(T0 + 89)
    assert room.visitors["a"].state == ACTIVE
    room.tick(T0 + 90)
    assert "a" not in room.visitors


def test_a_visitor_admitted_from_the_line_must_come_back_within_the_session() -> None:
    room = make_room(capacity=1, session=10)
    statuses(room, ["a", "b", "c"], T0)
    room.leave("a", T0 + 1)  # b is admitted at T0 + 1, but never comes back
    room.tick(T0 + 11)
    assert "b" not in room.visitors
    assert visit(room, "c", T0 + 11).status == "admitted"


# ---------------------------------------------------------------- the line


def test_a_queued_visitor_with_no_page_open_loses_their_place() -> None:
    room = make_room(capacity=1, session=10_000)
    statuses(room, ["a", "b", "c"], T0)
    room.attach("c")
    room.tick(T0 + 119)
    assert room.queued_count == 2
    room.visit("b", T0 + 100)  # a reload counts as being there
    room.tick(T0 + 219)
    assert room.queued_count == 2
    room.tick(T0 + 221)
    assert room.queued_count == 1 and "b" not in room.visitors  # c's page is still open
    room.detach("c", T0 + 300)
    room.tick(T0 + 419)
    assert "c" in room.visitors
    room.tick(T0 + 420)
    assert "c" not in room.visitors


def test_restore_keeps_the_line_in_ticket_order() -> None:
    room = make_room(capacity=1)
    effects = [e for v in "abcd" for e in room.visit(v, T0)]
    effects += room.leave("c", T0)
    stored = saved(effects)
    assert "c" not in stored
    meta = {"seq": room.seq, "adm": {"w": room.window.to_wire(), "n": room.admitted_total}}
    again = make_room(capacity=1, now=T0 + 5)
    again.restore(sorted(stored.items(), key=lambda kv: kv[0], reverse=True), meta)
    assert list(again.line) == ["b", "d"] and again.active_count == 1
    assert visit(again, "e", T0 + 5).position == 3 and again.seq == 5
    assert again.admitted_total == 1


def test_positions_are_one_pass_in_order() -> None:
    room = make_room(capacity=1)
    statuses(room, [f"v{i}" for i in range(6)], T0)
    got = list(room.positions(T0))
    assert [(v, s.position) for v, s in got] == [(f"v{i}", i) for i in range(1, 6)]
    etas = [s.eta_s for _, s in got]
    assert etas == sorted(etas) and etas[0] > 0


def test_the_wait_estimate_follows_observed_admissions_within_the_rate_limit() -> None:
    room = make_room(capacity=1, rate=60, session=600)
    assert room.throughput(T0) == pytest.approx(1 / 600)  # no history: a slot per session
    for i in range(12):
        room.visit(f"v{i}", T0 + i * 10)
        room.leave(f"v{i}", T0 + i * 10)
    assert room.throughput(T0 + 120) == pytest.approx(12 / 120)  # what was observed
    assert room.eta(3, T0 + 120) == 30
    room.update(RoomSettings(1, 3, 600), T0 + 120)
    assert room.throughput(T0 + 120) == pytest.approx(3 / 60)  # never above the rate


# ---------------------------------------------------------------- events


def test_the_prequeue_holds_everyone_until_the_start_then_serves_in_order() -> None:
    start = T0 + 600
    room = make_room(capacity=2, event_start=start, prequeue_start=T0, queue_timeout=1e6)
    assert statuses(room, ["a", "b", "c"], T0 + 1) == ["queued"] * 3
    assert visit(room, "a", T0 + 1).eta_s >= 599
    assert room.next_wake(T0 + 1) == start
    room.tick(start - 0.1)
    assert room.active_count == 0
    assert admitted(room.tick(start)) == ["a", "b"]
    assert visit(room, "c", start).position == 1


def test_before_the_prequeue_the_room_runs_as_usual() -> None:
    room = make_room(capacity=2, event_start=T0 + 600, prequeue_start=T0 + 300)
    assert visit(room, "a", T0).status == "admitted"
    assert visit(room, "b", T0 + 300).status == "queued"


def test_a_reject_room_queues_the_prequeue_and_rejects_after_the_start() -> None:
    room = make_room(capacity=1, method="reject", event_start=T0 + 60, prequeue_start=T0)
    assert statuses(room, ["a", "b"], T0 + 1) == ["queued", "queued"]
    room.tick(T0 + 60)
    assert visit(room, "a", T0 + 60).status == "admitted"
    assert visit(room, "c", T0 + 60).status == "rejected"


def test_the_lottery_shuffles_the_prequeue_once_at_the_start() -> None:
    start = T0 + 60
    orders = set()
    for seed in range(20):
        room = make_room(
            capacity=1, event_start=start, prequeue_start=T0, shuffle_at_start=True, seed=seed
        )
        names = [f"v{i}" for i in range(6)]
        statuses(room, names, T0 + 1)
        assert visit(room, "v3", T0 + 1).position is None  # no order before the draw
        effects = room.tick(start)
        assert len(admitted(effects)) == 1 and meta(effects)["ev"] == {"started": True}
        order = [admitted(effects)[0], *room.line]
        assert sorted(order) == names
        assert [visit(room, v, start).position for v in order[1:]] == [1, 2, 3, 4, 5]
        # stored tickets carry the drawn order, so a restart keeps it
        tickets = {v: room.visitors[v].ticket for v in order[1:]}
        assert sorted(tickets, key=tickets.__getitem__) == order[1:]
        late = visit(room, "late", start + 1)
        assert late.position == 6  # after the start: the back of the line
        orders.add(tuple(order))
        room.tick(start + 100)
        assert list(room.line)[-1] == "late"  # shuffled once only
    assert len(orders) > 10


def test_a_room_rebuilt_after_the_start_still_draws_the_lottery() -> None:
    start = T0 + 60
    settings = {"event_start": start, "prequeue_start": T0, "shuffle_at_start": True}
    names = [f"v{i}" for i in range(8)]
    drawn = set()
    for seed in range(10):
        room = make_room(capacity=2, seed=seed, queue_timeout=1e6, **settings)
        effects = room.tick(T0)  # (the first input: it stores what the room's creation does)
        assert meta(effects) == {"ev": {"started": False}}
        effects += [e for v in names for e in room.visit(v, T0 + 1)]
        # the room's node goes away before the start; another rebuilds it after
        again = make_room(capacity=2, now=start + 5, seed=seed, queue_timeout=1e6, **settings)
        again.restore(saved(effects).items(), meta(effects))
        assert not again.started and again.next_wake(start + 5) == start
        after = again.tick(start + 5)
        assert meta(after)["ev"] == {"started": True} and len(admitted(after)) == 2
        drawn.add(tuple(admitted(after)))
    assert len(drawn) > 5  # a draw, not the arrival order ("v0", "v1") every time
    # a room stored before "ev" was stored at creation: the start counts as not handled
    legacy = make_room(capacity=2, now=start + 5, queue_timeout=1e6, **settings)
    legacy.restore([], {"seq": 1})
    assert not legacy.started
    # one whose start was handled stays started, and its line is not shuffled again
    done = make_room(capacity=2, now=start + 5, queue_timeout=1e6, **settings)
    done.restore([], {"ev": {"started": True}})
    assert done.started and "ev" not in meta(done.tick(start + 5))


def test_moving_the_start_to_a_moment_already_past_still_draws_the_lottery() -> None:
    # The admin's "start now": the time sent is past by the time the change is applied.
    settings = RoomSettings(
        1, 100, 60, event_start=T0 + 3600, prequeue_start=T0, shuffle_at_start=True
    )
    names = [f"v{i}" for i in range(8)]
    firsts = set()
    for seed in range(20):
        room = RoomRules(settings, now=T0, rng=random.Random(seed), queue_timeout=1e6)
        statuses(room, names, T0 + 1)
        moved = RoomSettings(**{**settings.as_dict(), "event_start": T0 + 10})
        effects = room.update(moved, T0 + 10.4)
        assert room.started and meta(effects)["ev"] == {"started": True}
        firsts.add(admitted(effects)[0])
        # a start moved again, to another past moment, does not draw a second time
        line = list(room.line)
        room.update(RoomSettings(**{**settings.as_dict(), "event_start": T0 + 5}), T0 + 11)
        assert list(room.line) == line
    assert len(firsts) > 3  # drawn, not "v0" (the arrival order) every time


def test_moving_the_event_rearms_its_start() -> None:
    room = make_room(capacity=1, event_start=T0 - 10)
    assert room.started
    effects = room.update(RoomSettings(1, 100, 60, event_start=T0 + 30, prequeue_start=T0), T0)
    assert not room.started and room.prequeue(T0 + 1)
    assert meta(effects)["ev"] == {"started": False}


# ---------------------------------------------------------------- pieces


def test_line_positions_removal_and_reassignment() -> None:
    line = Line()
    for i, v in enumerate("abcde"):
        assert line.add(v, 10 + i) == i + 1
    line.remove("c")
    assert [line.position(v) for v in "abde"] == [1, 2, 3, 4]
    assert line.position("c") is None and "c" not in line
    assert line.add("z", 5) == 1  # a lower ticket goes in front
    with pytest.raises(ValueError):
        line.add("y", 11)
    assert line.pop_first() == "z"
    new = line.reassign(["e", "d", "b", "a"])
    assert list(line) == ["e", "d", "b", "a"] and new["e"] == 10
    assert line.pop_random(random.Random(3)) in "edba" and len(line) == 3


def test_visitor_wire_round_trip_and_refuses_unknown_states() -> None:
    v = Visitor("abc", QUEUED, ticket=4, expiry=0.0, first_position=2)
    assert Visitor.from_wire("abc", v.wire()) == v
    with pytest.raises(ValueError):
        Visitor.from_wire("abc", ["x", 1, 0.0, 0])


def test_renewals_are_stored_when_they_move_the_end_enough_and_a_restart_never_ends_early() -> None:
    room = make_room(capacity=1, session=100)  # a slack of 10 s
    room.visit("a", T0)
    assert "a" not in saved(room.visit("a", T0 + 5))  # a page view: no write
    stored = saved(room.visit("a", T0 + 10))["a"]
    assert stored[2] == T0 + 110  # type: ignore[index]
    room.visit("a", T0 + 19)  # the real end is now T0 + 119; the stored one T0 + 110
    again = make_room(capacity=1, session=100, now=T0 + 20)
    again.restore([("a", stored)], {})
    again.tick(T0 + 119.5)
    assert "a" in again.visitors  # never before the real end...
    again.tick(T0 + 120)
    assert "a" not in again.visitors  # ...and at most the slack after it


# ---------------------------------------------------------------- memory


def test_leaving_and_coming_back_in_a_loop_keeps_one_timer_per_visitor() -> None:
    # A cookie still valid after /leave brings the same visitor back at once, as often as
    # a script likes: the room's timers must not grow with every round.
    room = make_room(capacity=1, session=3600, queue_timeout=120)
    assert visit(room, "holder", T0).status == "admitted"  # full: a line forms
    room.attach("x")  # x's waiting page stays open
    now = T0
    for _ in range(5_000):
        now += 0.001
        room.visit("x", now)
        room.leave("x", now)
    room.visit("x", now)
    assert len(room._deadlines) <= 3 and list(room.line) == ["x"]
    for _ in range(10):  # hours later, the page still open: still one timer, still queued
        now += 600
        room.visit("holder", now)
        room.tick(now)
    assert len(room._deadlines) <= 2 and list(room.line) == ["x"]
    # admitted visitors the same: leave, come back in, over and over
    open_room = make_room(capacity=10, rate=1_000_000, session=3600)
    for _ in range(5_000):
        now += 0.001
        open_room.visit("y", now)
        open_room.leave("y", now)
    open_room.visit("y", now)
    assert open_room.active_count == 1 and len(open_room._expiries) <= 2
    now += 3601
    open_room.tick(now)  # and the session still ends on time
    assert open_room.active_count == 0 and len(open_room._expiries) == 0


# ---------------------------------------------------------------- pausing (queue all)


def test_a_paused_room_admits_nobody_and_queues_everybody_new() -> None:
    room = make_room(capacity=3)
    assert statuses(room, ["a"], T0) == ["admitted"]
    room.update(RoomSettings(3, 100, 60, "fifo", queue_all=True), T0 + 1)
    assert visit(room, "a", T0 + 2).status == "admitted"  # on the site: kept
    paused = visit(room, "b", T0 + 2)
    assert paused == Status("queued", 1, None, paused=True)  # no wait can be promised
    assert paused.as_json() == {"status": "queued", "position": 1, "eta_s": None, "paused": True}
    room.leave("a", T0 + 3)  # a slot frees, and still nobody goes in
    assert room.queued_count == 1 and room.active_count == 0
    assert not room.admits_newcomer(T0 + 3)
    assert [s.paused for _, s in room.positions(T0 + 3)] == [True]
    resumed = room.update(RoomSettings(3, 100, 60, "fifo"), T0 + 4)  # the line is served
    assert visit(room, "b", T0 + 4).status == "admitted"
    assert admitted(resumed) == ["b"]
    assert Status("queued", 2, 30).as_json() == {"status": "queued", "position": 2, "eta_s": 30}


def test_a_paused_room_queues_rather_than_rejects_and_counts_nobody_through() -> None:
    room = make_room(capacity=1, method="reject", queue_all=True)
    assert visit(room, "a", T0).status == "queued"
    passthrough = make_room(capacity=1, method="passthrough", queue_all=True)
    assert statuses(passthrough, ["a", "b"], T0) == ["queued", "queued"]


def test_the_progress_bar_is_never_full_while_waiting() -> None:
    from apps.waiting_room.rules import progress

    assert progress(1, 1) == 0  # joined at the head: waiting still, not done
    assert progress(10, 10) == 0
    assert progress(10, 5) == 50
    assert progress(10, 1) == 90
    assert progress(100, 1) == 95  # capped: full only once admitted
    assert progress(3, 5) == 0  # (pushed back by a lottery: never negative)
    assert progress(0, 3) == 0 and progress(5, None) == 0
