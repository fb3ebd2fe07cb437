"""The waiting room's other plain parts: room settings, signed cookies, and slot leasing
(a room and several shards exchanging messages that may be lost or arrive late)."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import Signer

from apps.waiting_room import room_settings
from apps.waiting_room.cookies import (
    CookieSigner,
    Pass,
    cookie_name,
    new_visitor,
    signer_for,
    valid_room,
)
from apps.waiting_room.deadlines import Deadlines
from apps.waiting_room.effects import Ask, Granted, InSlot, Left, Told
from apps.waiting_room.leasing import ShardRules, check_request
from apps.waiting_room.room_settings import RoomSettings, SettingsError
from apps.waiting_room.rules import RoomRules

T0 = 1_900_000_000.0
ROOM = "ab" * 32
OTHER = "cd" * 32
BASE = {
    "total_active_users": 10,
    "new_users_per_minute": 100,
    "session_duration": 60,
    "queueing_method": "fifo",
}

# ---------------------------------------------------------------- settings


def test_create_takes_the_four_required_fields_and_defaults_the_rest() -> None:
    s = room_settings.create(BASE)
    assert (s.total_active_users, s.queueing_method, s.gate_prefix) == (10, "fifo", None)
    assert s.as_dict()["session_duration"] == 60 and not s.slot_leasing
    assert RoomSettings.from_dict({**s.as_dict(), "stray": 1}) == s


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"total_active_users": 0}, "total_active_users"),
        ({"total_active_users": True}, "total_active_users"),
        ({"total_active_users": 2.0}, "total_active_users"),
        ({"new_users_per_minute": "5"}, "new_users_per_minute"),
        ({"session_duration": 86_401}, "session_duration"),
        ({"queueing_method": "lifo"}, "queueing_method"),
        ({"title": "x" * 121}, "title"),
        ({"message": "bell\x07"}, "message"),
        ({"event_start": "tomorrow"}, "event_start"),
        ({"event_start": float("inf")}, "event_start"),
        ({"event_start": 12}, "event_start"),
        ({"prequeue_start": T0}, "prequeue_start"),
        ({"event_start": T0, "prequeue_start": T0 + 1}, "prequeue_start"),
        ({"shuffle_at_start": 1}, "shuffle_at_start"),
        ({"gate_prefix": "chat"}, "gate_prefix"),
        ({"gate_prefix": "/"}, "gate_prefix"),
        ({"gate_prefix": "/a/../b"}, "gate_prefix"),
        ({"gate_prefix": "/a b"}, "gate_prefix"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_settings_name_their_field(change: dict, field: str) -> None:
    with pytest.raises(SettingsError) as info:
        room_settings.create({**BASE, **change})
    assert info.value.field == field
    assert info.value.as_json() == {"error": info.value.message, "field": field}


def test_missing_fields_and_non_objects_are_refused() -> None:
    for body, field in (({"total_active_users": 1}, "new_users_per_minute"), ([], "settings")):
        with pytest.raises(SettingsError) as info:
            room_settings.create(body)
        assert info.value.field == field


def test_change_is_partial_checked_whole_and_keeps_leasing_fixed() -> None:
    s = room_settings.create({**BASE, "gate_prefix": "/chat/"})
    assert s.gate_prefix == "/chat"
    t = room_settings.change(s, {"total_active_users": 50, "gate_prefix": None})
    assert (t.total_active_users, t.new_users_per_minute, t.gate_prefix) == (50, 100, None)
    assert room_settings.change(s, {"event_start": T0, "prequeue_start": T0 - 60}).event_start
    with pytest.raises(SettingsError):
        room_settings.change(s, {"slot_leasing": True})
    assert room_settings.change(s, {"slot_leasing": False}) == s


# ---------------------------------------------------------------- cookies


def test_a_signed_cookie_reads_back_on_any_node_with_the_same_key() -> None:
    key = bytes(range(32))
    visitor = new_visitor()
    text = CookieSigner(key).sign(Pass(ROOM, visitor, "queued", int(T0) + 60, "n2"))
    assert signer_for(key).read(text, ROOM, T0) == Pass(ROOM, visitor, "queued", int(T0) + 60, "n2")
    assert cookie_name(ROOM) == "wr_" + ROOM[:32] and cookie_name(ROOM) != cookie_name(OTHER)


def test_forged_expired_and_other_rooms_cookies_read_as_no_cookie() -> None:
    key, visitor = b"k" * 32, new_visitor()
    signer = CookieSigner(key)
    good = signer.sign(Pass(ROOM, visitor, "admitted", int(T0) + 60))
    assert signer.read(good, ROOM, T0) is not None
    assert signer.read(good, ROOM, T0 + 60) is None  # expired
    assert signer.read(good, OTHER, T0) is None  # another room's
    assert CookieSigner(b"x" * 32).read(good, ROOM, T0) is None  # another key
    payload, sig = good.rsplit(".", 1)
    assert signer.read(payload + "." + sig[::-1], ROOM, T0) is None  # a tampered signature
    guessed = Signer(b"guess", key_derivation="none", digest_method=hashlib.sha256)
    forged = guessed.sign(f"{ROOM}|{visitor}|admitted|{2**40}|").decode()
    assert signer.read(forged, ROOM, T0) is None
    assert signer.read(payload.replace("admitted", "queued") + "." + sig, ROOM, T0) is None
    right_key = Signer(key, key_derivation="none", digest_method=hashlib.sha256)
    for data in (
        f"{ROOM}|{visitor}|admitted",
        f"{ROOM}|short|admitted|{2**40}|",
        f"{ROOM}|{visitor}|boss|{2**40}|",
        f"{ROOM}|{visitor}|admitted|-5|",
        f"{ROOM}|{visitor}|admitted|1e99|",
        f"{ROOM}|{visitor}|admitted|{2**40}|../x",
        f"{ROOM}|{visitor}|admitted|{2**40}||",
    ):
        assert signer.read(right_key.sign(data).decode(), ROOM, T0) is None
    for text in (None, "", "x" * 600, "not.a.cookie", "\u00e9\u00e9.x"):
        assert signer.read(text, ROOM, T0) is None
    assert valid_room(ROOM) and not valid_room("AB" * 32) and not valid_room(ROOM[:-1])


# ---------------------------------------------------------------- slot leasing


def test_check_request_refuses_anything_but_non_negative_ints() -> None:
    good = dict.fromkeys(
        ("seq", "held", "active", "admitted", "want_slots", "want_permits", "unused"), 1
    )
    assert check_request(good) == good
    for bad in ({**good, "held": -1}, {**good, "seq": True}, {**good, "unused": None}, []):
        with pytest.raises(ValueError):
            check_request(bad)


def lease_room(capacity: int, rate: int, method: str = "fifo") -> RoomRules:
    return RoomRules(
        RoomSettings(capacity, rate, 30, method, slot_leasing=True),
        now=T0,
        rng=random.Random(0),
        window_span=61.0,
        lease_seconds=1.0,
    )


def ask(shard: ShardRules, mono: float, want: bool = True) -> dict[str, int]:
    """The shard's next request to the room (its one ``Ask``)."""
    [request] = shard.request(mono, want)
    assert isinstance(request, Ask)
    return request.request


def lease(room: RoomRules, shard: str, request: dict[str, int], now: float) -> dict:
    """The room's answer to a shard's request (its ``Granted``)."""
    [answer] = [e for e in room.lease(shard, request, now) if isinstance(e, Granted)]
    return answer.answer


def admits(shard: ShardRules, visitor: str, now: float, mono: float) -> bool:
    """Whether the shard admits a newcomer on its own (``InSlot``)."""
    return InSlot(visitor) in shard.try_admit(visitor, now, mono)


def renews(shard: ShardRules, visitor: str, now: float) -> bool:
    return InSlot(visitor) in shard.renew(visitor, now)


def test_a_shard_admits_with_leased_slots_and_permits_and_gives_slots_back() -> None:
    room = lease_room(capacity=5, rate=100)
    shard = ShardRules(lease_seconds=1.0, batch=4)
    assert not admits(shard, "v0", T0, 0.0)  # knows nothing yet
    answer = lease(room, "n1", ask(shard, 0.0), T0)
    shard.granted(answer, sent=0.0)
    assert answer["slots"] == answer["permits"] == 3 and room.in_use == 3
    assert all(admits(shard, f"v{i}", T0, 0.5) for i in range(1, 4))
    assert not admits(shard, "v4", T0, 0.5) and shard.wants_lease(0.5)
    assert room.in_use == 3 and room.active_count == 0  # the room counts lent slots
    assert renews(shard, "v1", T0 + 10) and not renews(shard, "v9", T0 + 10)
    assert shard.leave("v2")[-1] == Left("v2") and shard.leave("v2") == []
    assert shard.spare == 1
    # the room gets a line: the shard's free slot goes back at its next contact
    room.visit("g1", T0 + 1)
    room.visit("g2", T0 + 1)
    room.visit("g3", T0 + 1)
    assert room.queued_count == 1
    shard.granted(lease(room, "n1", ask(shard, 2.0), T0 + 2), sent=2.0)
    assert shard.held == 2 and room.in_use == 5 and room.queued_count == 0
    assert room.visitors["g3"].state == "a"
    assert not admits(shard, "v5", T0 + 2, 2.1)  # the room had a line: go there


def test_an_idle_shard_returns_its_free_slots_after_a_lease_period() -> None:
    room = lease_room(capacity=5, rate=100)
    shard = ShardRules(lease_seconds=1.0, batch=8)
    shard.demand = 2
    shard.granted(lease(room, "n1", ask(shard, 0.0), T0), sent=0.0)
    admits(shard, "v1", T0, 0.2)
    assert shard.spare == 4 and not shard.should_return(1.5) and shard.should_return(2.0)
    assert shard.next_wake(T0, 0.2) == pytest.approx(T0 + 1.8)
    shard.granted(lease(room, "n1", ask(shard, 2.0, want=False), T0 + 2), sent=2.0)
    assert shard.held == 1 and room.leased == 1


def test_unused_permits_come_back_and_lost_answers_are_corrected() -> None:
    room = lease_room(capacity=50, rate=10)
    shard = ShardRules(lease_seconds=1.0, batch=8)
    shard.demand = 10
    shard.granted(lease(room, "n1", ask(shard, 0.0), T0), sent=0.0)
    assert shard.permits == 8 and room.window.available(T0) == 2
    admits(shard, "v1", T0, 0.1)
    answer = lease(room, "n1", ask(shard, 1.5), T0 + 1.5)  # 7 unused come back
    assert room.window.available(T0 + 1.5) == 9 - answer["permits"]
    shard.granted(answer, sent=1.5)
    shard.demand = 20  # busy: wants 8 permits, and a slot more than it has free
    lease(room, "n1", ask(shard, 2.0), T0 + 2)  # slots lent, but the answer is lost
    assert room.ledger.shards["n1"].held == shard.held + 1
    shard.granted(lease(room, "n1", ask(shard, 3.0, want=False), T0 + 3), sent=3.0)
    assert room.ledger.shards["n1"].held == shard.held == room.leased  # corrected


def test_late_or_repeated_requests_change_nothing() -> None:
    room = lease_room(capacity=10, rate=100)
    shard = ShardRules(lease_seconds=1.0, batch=4)
    first = ask(shard, 0.0)
    shard.granted(lease(room, "n1", first, T0), sent=0.0)
    leased = room.leased
    late = lease(room, "n1", first, T0 + 1)
    assert late["stale"] and late["slots"] == 0 and room.leased == leased
    restarted = ShardRules(lease_seconds=1.0, batch=4)  # lost its number with its memory
    answer = lease(room, "n1", ask(restarted, 5.0), T0 + 5)
    restarted.granted(answer, sent=5.0)
    assert answer["stale"] and restarted.seq == 1 and not restarted.informed(5.1)
    restarted.granted(lease(room, "n1", ask(restarted, 5.2), T0 + 5.2), sent=5.2)
    assert room.ledger.shards["n1"].seq == 2 and not room.ledger.shards["n1"].held - restarted.held


def test_a_shard_never_counts_fewer_slots_than_its_visitors() -> None:
    room = lease_room(capacity=3, rate=100)
    shard = ShardRules(lease_seconds=1.0, batch=64)
    shard.demand = 3
    shard.granted(lease(room, "n1", ask(shard, 0.0), T0), sent=0.0)
    assert all(admits(shard, f"visitor-{i}", T0, 0.1) for i in range(3))
    # rebuilt from storage whose figures an older write overwrote (held 0, an older number)
    again = ShardRules(lease_seconds=1.0, batch=64)
    again.restore(dict(shard.visitors), {**shard.meta(), "held": 0, "seq": shard.seq - 1})
    assert again.held == 3
    mono = 50.0
    for _ in range(3):
        again.granted(lease(room, "n1", ask(again, mono), T0 + 50), sent=mono)
        mono += 0.1
    assert room.in_use == 3
    told = [e for i in range(3) for e in room.visit(f"newcomer-{i}", T0 + 51)]
    assert [e.status.status for e in told if isinstance(e, Told)] == ["queued"] * 3
    # and the room counts a shard's visitors even when the shard says it holds fewer
    request = {**ask(again, mono), "held": 0}
    lease(room, "n1", request, T0 + 52)
    assert room.ledger.shards["n1"].held == 3 and room.in_use == 3


@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["arrive", "leave", "lease", "lose", "tick", "restart", "regress", "room"]
            ),
            st.integers(0, 2),
            st.integers(0, 30),
        ),
        max_size=150,
    )
)
@settings(max_examples=120, deadline=None)
def test_capacity_and_rate_hold_across_shards_whatever_is_lost(ops) -> None:
    capacity, rate, period = 6, 9, 1.0
    room = lease_room(capacity, rate)
    shards = [ShardRules(lease_seconds=period, batch=4) for _ in range(3)]
    now, mono = T0, 0.0
    admissions: list[float] = []
    visitors = 0

    def made() -> int:  # the room's own admissions, and each shard's
        reported = sum(lent.admitted for lent in room.ledger.shards.values())
        return room.admitted_total - reported + sum(s.admitted for s in shards)

    for op, i, n in ops:
        shard, name = shards[i], f"n{i}"
        before = made()
        if op == "arrive":
            visitors += 1
            v = f"v{visitors}"
            if not admits(shard, v, now, mono):
                room.visit(v, now)  # the room decides: admit or queue
        elif op == "leave":
            if shard.visitors:
                shard.leave(sorted(shard.visitors)[n % len(shard.visitors)])
            elif room.active_count:
                room.leave(next(v for v, x in room.visitors.items() if x.state == "a"), now)
        elif op in ("lease", "lose"):
            answer = lease(room, name, ask(shard, mono, want=n % 3 != 0), now)
            if op == "lease":
                shard.granted(answer, sent=mono)
        elif op in ("restart", "regress"):  # the shard's node died: back from storage...
            meta = shard.meta()
            if op == "regress":  # ...whose figures an older write overwrote
                meta.update(held=n % (shard.held + 1), seq=max(0, shard.seq - 1))
            again = ShardRules(lease_seconds=period, batch=4)
            again.restore(dict(shard.visitors), meta)
            shards[i] = again
        elif op == "room":
            room.tick(now)
        else:
            now += n / 10
            mono += n / 10
            room.tick(now)
            for s in shards:
                s.expire(now)
        admissions += [now] * (made() - before)
        assert room.active_count + sum(len(s.visitors) for s in shards) <= capacity
        assert sum(s.held for s in shards) <= room.leased and room.in_use <= capacity
    for start in admissions:
        assert sum(start <= t <= start + 60 for t in admissions) <= rate


# ---------------------------------------------------------------- the gate's plain parts


def test_return_paths_must_be_local() -> None:
    from apps.waiting_room.gates import local_path

    for good in ("/chat/", "/chat/?room=a%20b", "/a/b#c"):
        assert local_path(good) == good
    for bad in (
        None,
        "",
        "chat/",
        "//evil.example/",
        "/\\evil.example",
        "/%2F/evil.example",
        "/%5Cevil",
        "https://evil.example/",
        "/a\nb",
        "/" + "x" * 3000,
    ):
        assert local_path(bad) is None, bad


def test_the_longest_gated_prefix_wins_and_only_other_apps_can_be_gated() -> None:
    from apps.waiting_room.gates import check_prefix, match

    gates = {"/chat": "r1", "/chat/api": "r2"}
    assert match(gates, "/chat") == ("/chat", "r1")
    assert match(gates, "/chat/") == ("/chat", "r1")
    assert match(gates, "/chat/api/room") == ("/chat/api", "r2")
    assert match(gates, "/chatter") is None and match(gates, "/") is None
    others = {"chat": True, "lobby": False}  # the node's other apps (with static files?)
    for prefix in ("/chat", "/chat/api", "/lobby", "/lobby/static", None):
        check_prefix(prefix, others)
    for prefix in (
        "/waiting-room",  # (not in others: the waiting room itself)
        "/waiting-room/x",
        "/static",
        "/_cluster/link",
        "/healthz",
        "/api",  # the node's /api/apps
        "/ops",
        "/chatter",
        "/chat/static",  # the chat's static files always pass
        "/chat/static/chat.js",
    ):
        with pytest.raises(SettingsError) as info:
            check_prefix(prefix, others)
        assert info.value.field == "gate_prefix"
    with pytest.raises(SettingsError):
        check_prefix("/chat", {})


def test_deadlines_keep_one_live_time_per_key() -> None:
    d = Deadlines()
    d.set("a", 10.0)
    d.set("a", 50.0)  # later: the entry at 10 comes up first, and the caller sets 50 then
    d.set("b", 20.0)
    assert len(d) == 2 and d.next() == 10.0
    assert list(d.due(15.0)) == ["a"]  # "a" left the heap: set again if still needed
    d.set("a", 50.0)
    d.set("b", 5.0)  # earlier: a second entry, the one at 20 is now stale
    assert d.next() == 5.0 and list(d.due(30.0)) == ["b"]  # the stale 20 is not reported
    assert d.next() == 50.0 and len(d) == 1
    for i in range(1_000):  # a key moved later and later never grows the heap
        d.set("a", 60.0 + i)
    assert len(d) == 1 and list(d.due(100.0)) == ["a"]  # at 50, its first time
    d.set("a", 1059.0)  # (the caller, seeing it is not due yet)
    assert list(d.due(1000.0)) == [] and list(d.due(1e9)) == ["a"]
    assert d.next() is None and len(d) == 0
