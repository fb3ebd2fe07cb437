"""A waiting room's replica, sans I/O (apps/waiting_room/replica.py): rules that follow the
primary's commits key by key show what the primary's rules show, after every input, for any
sequence of visits, departures, ticks, settings changes, lotteries and shards' leases; and
the status read changes nothing."""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from apps.waiting_room import replica, versions
from apps.waiting_room.effects import Delete, Store
from apps.waiting_room.leasing import REQUEST_FIELDS
from apps.waiting_room.presence import Presence
from apps.waiting_room.room_settings import RoomSettings
from apps.waiting_room.rules import LEASE_PREFIX, VISITOR_PREFIX, RoomRules

T0 = 1_900_000_000.0


def rules_over(settings: RoomSettings, now: float) -> RoomRules:
    return RoomRules(settings, now=now, rng=random.Random(3), window_span=61.0)


class Follower:
    """A replica's rules and its copy of storage, fed each commit as WaitingRoom does."""

    def __init__(self, settings: RoomSettings, now: float) -> None:
        self.stored: dict[str, Any] = {"cfg": settings.as_dict()}
        self.rules = self.build(now)

    def build(self, now: float) -> RoomRules:
        """What load() builds from the copy."""
        rules = rules_over(RoomSettings.from_dict(self.stored["cfg"]), now)
        visitors = [(k[2:], v) for k, v in self.stored.items() if k.startswith(VISITOR_PREFIX)]
        leases = {k[2:]: v for k, v in self.stored.items() if k.startswith(LEASE_PREFIX)}
        rules.restore(visitors, {k: v for k, v in self.stored.items() if "/" not in k}, leases)
        replica.seed_recent(rules, now)
        return rules

    def commit(self, values: dict[str, Any], now: float) -> None:
        for key, value in values.items():
            if value is None:
                self.stored.pop(key, None)
            else:
                self.stored[key] = value
        if replica.needs_rebuild(frozenset(values)):
            old, self.rules = self.rules, self.build(now)
            replica.keep_recent(old, self.rules, now)
        else:
            replica.follow(self.rules, values, now)


def written(effects: list[Any]) -> dict[str, Any]:
    """One input's commit: each key it wrote, None for a deleted one."""
    values: dict[str, Any] = {}
    for effect in effects:
        if isinstance(effect, Store):
            values.update(effect.values)
        elif isinstance(effect, Delete):
            values.update(dict.fromkeys(effect.keys))
    return values


def same(primary: RoomRules, follower: RoomRules, now: float) -> None:
    assert replica.figures_at(follower, now) == replica.figures_at(primary, now)
    assert list(follower.line) == list(primary.line)
    assert list(follower.positions(now)) == list(primary.positions(now))
    # (session ends are stored only when a renewal moves them enough: not compared)
    assert {k: (v.state, v.ticket, v.first_position) for k, v in follower.visitors.items()} == {
        k: (v.state, v.ticket, v.first_position) for k, v in primary.visitors.items()
    }
    assert follower.seq == primary.seq


OPS = st.lists(
    st.tuples(
        st.sampled_from(["visit", "visit", "visit", "leave", "tick", "capacity", "pause", "lease"]),
        st.integers(0, 11),  # which visitor (or shard, or new capacity)
        st.floats(0.0, 40.0),  # seconds passed since the last input
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(
    ops=OPS,
    method=st.sampled_from(["fifo", "random", "passthrough", "reject"]),
    leasing=st.booleans(),
    lottery=st.booleans(),
)
def test_a_follower_shows_what_the_primary_shows_after_every_input(
    ops: list[tuple[str, int, float]], method: str, leasing: bool, lottery: bool
) -> None:
    now = T0
    event = {"event_start": T0 + 100, "prequeue_start": T0} if lottery else {}
    room = RoomSettings(2, 5, 60, method, slot_leasing=leasing, shuffle_at_start=lottery, **event)  # type: ignore[arg-type]
    primary = rules_over(room, now)
    follower = Follower(room, now)
    follower.commit(written(primary.tick(now)), now)
    same(primary, follower.rules, now)
    seqs: dict[str, int] = {}
    for op, n, dt in ops:
        now += dt
        values: dict[str, Any]
        if op == "visit":
            values = written(primary.visit(f"visitor{n:02d}xxxxxxxxx", now))
        elif op == "leave":
            values = written(primary.leave(f"visitor{n:02d}xxxxxxxxx", now))
        elif op == "tick":
            values = written(primary.tick(now))
        elif op in ("capacity", "pause"):
            s = primary.settings
            new = (
                replace(s, total_active_users=1 + n % 4)
                if op == "capacity"
                else replace(s, queue_all=not s.queue_all)
            )
            values = {"cfg": new.as_dict(), **written(primary.update(new, now))}
        elif leasing:
            shard = f"n{n % 3}"
            seqs[shard] = seqs.get(shard, 0) + 1
            request = dict.fromkeys(REQUEST_FIELDS, 0)
            request.update(seq=seqs[shard], want_slots=1 + n % 2, want_permits=1 + n % 2)
            values = written(primary.lease(shard, request, now))
        else:
            continue
        follower.commit(values, now)
        same(primary, follower.rules, now)


def test_the_status_read_changes_nothing_and_time_is_the_alarms_business() -> None:
    primary = rules_over(RoomSettings(1, 100, 60, "fifo"), T0)
    primary.visit("a" * 22, T0)
    primary.visit("b" * 22, T0)
    before = replica.figures_at(primary, T0 + 61)
    assert (before["active"], before["queued"]) == (1, 1)
    # reading long after the session ended changes nothing: the alarm's tick does
    assert replica.figures_at(primary, T0 + 61) == before
    assert primary.next_wake(T0) == T0 + 60  # (and the primary's alarm is set for it)
    primary.tick(T0 + 61)
    after = replica.figures_at(primary, T0 + 61)
    assert (after["active"], after["queued"], after["admitted_total"]) == (1, 0, 2)


def test_a_fresh_replica_counts_the_last_minutes_admissions_from_the_window() -> None:
    primary = rules_over(RoomSettings(10, 100, 60, "fifo"), T0)
    values: dict[str, Any] = {"cfg": primary.settings.as_dict()}
    for i in range(4):
        values.update(written(primary.visit(f"visitor{i:02d}xxxxxxxxx", T0 + i)))
    follower = Follower(primary.settings, T0)
    follower.commit(values, T0 + 5)  # (a settings key: built from the copy whole)
    fresh = replica.figures_at(follower.rules, T0 + 5)
    assert fresh == replica.figures_at(primary, T0 + 5)
    assert fresh["admitted_last_minute"] == 4
    # a leasing room's window counts lent permits too: a fresh replica starts from zero
    leasing = rules_over(RoomSettings(10, 100, 60, "fifo", slot_leasing=True), T0)
    leasing.window.record(T0, 3)
    replica.seed_recent(leasing, T0 + 1)
    assert replica.figures_at(leasing, T0 + 1)["admitted_last_minute"] == 0


def test_a_carried_version_is_an_integer_within_bounds_or_nothing() -> None:
    assert versions.parse("17") == 17
    assert versions.parse(str(versions.MAX_VERSION)) == versions.MAX_VERSION
    for garbage in (None, "", "0", "-1", "+3", " 3", "3 ", "1e3", "0x1", "٣", "³", "9" * 40):
        assert versions.parse(garbage) == 0, garbage
    assert versions.parse(str(versions.MAX_VERSION + 1)) == 0
    assert versions.cookie_name("ab" * 32) == "wr_v_" + "ab" * 16


# ---------------------------------------------------------------- presence (pages on replicas)


def test_a_nodes_report_counts_while_fresh_and_late_reports_change_nothing() -> None:
    p = Presence(ttl=15.0)
    d = p.report("n1", "s1", 1, frozenset({"a", "b"}), T0)
    assert (d.attached, d.detached) == (["a", "b"], [])
    d = p.report("n1", "s1", 2, frozenset({"b", "c"}), T0 + 1)
    assert (d.attached, d.detached) == (["c"], ["a"])
    late = p.report("n1", "s1", 1, frozenset({"a"}), T0 + 2)  # sent before seq 2
    assert (late.attached, late.detached) == ([], []) and p.counted("a") == 0
    d = p.report("n2", "t1", 1, frozenset({"c"}), T0 + 2)
    assert (d.attached, p.counted("c")) == (["c"], 2)
    # a new session of n1 (its replica reloaded, or the node restarted) replaces the old
    d = p.report("n1", "s2", 1, frozenset({"c"}), T0 + 3)
    assert (d.attached, d.detached) == ([], ["b"])
    assert p.next_expiry() == T0 + 2 + 15
    # n2 stops reporting (killed, cut off): its visitors lose it when its report goes stale
    assert p.expire(T0 + 16.9).detached == []
    assert p.expire(T0 + 17).detached == ["c"] and p.counted("c") == 1
    assert p.expire(T0 + 18).detached == ["c"] and p.counted("c") == 0
    assert p.next_expiry() is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["n1", "n2", "n3"]),
            st.sampled_from(["s1", "s2"]),
            st.integers(1, 6),
            st.frozensets(st.sampled_from("abcde")),
            st.floats(0.0, 10.0),
        ),
        max_size=40,
    )
)
def test_the_rules_socket_counts_always_equal_the_fresh_reports(
    reports: list[tuple[str, str, int, frozenset[str], float]],
) -> None:
    """Applying each delta to RoomRules' attach/detach keeps the rules' count of each
    visitor's pages equal to the number of fresh reports naming them."""
    rules = rules_over(RoomSettings(1, 10, 60, "fifo"), T0)
    p, now = Presence(ttl=12.0), T0
    for node, session, seq, visitors, dt in reports:
        now += dt
        for delta in (p.expire(now), p.report(node, session, seq, visitors, now)):
            for v in delta.attached:
                rules.attach(v)
            for v in delta.detached:
                rules.detach(v, now)
        for v in "abcde":
            assert rules.sockets.get(v, 0) == p.counted(v), v
