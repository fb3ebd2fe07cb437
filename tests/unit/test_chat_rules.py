"""The chat room's rules (ChatRules) and the rate limiter, with no sockets and no storage."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.chat.effects import Broadcast, Close, Named, Send, Store
from apps.chat.rate_limiter import Allowance
from apps.chat.rules import (
    BACKLOG,
    BAD_KEY,
    MAX_MISSED,
    MESSAGE_TOO_LONG,
    NAME_TOO_LONG,
    NOT_JSON,
    NOT_TEXT,
    ChatRules,
    encode,
    history_key,
    js_string,
    overflow,
)

NOW = 1_800_000_000_000


def bare(text: str) -> str:
    """A frame without the "id" this app adds (the demo's frame)."""
    data = json.loads(text)
    if isinstance(data, dict):
        data.pop("id", None)
    return encode(data)


def texts(effects, session=None):
    """What ``session`` (or anyone) was sent, without ids (tests of ids look at them)."""
    return [
        bare(e.text)
        for e in effects
        if isinstance(e, Send) and (session is None or e.session == session)
    ]


def broadcasts(effects) -> list[str]:
    return [bare(e.text) for e in effects if isinstance(e, Broadcast)]


def names(effects) -> list[tuple[int, str]]:
    return [(e.session, e.name) for e in effects if isinstance(e, Named)]


def named_room(*names: str) -> ChatRules:
    room = ChatRules()
    for i, name in enumerate(names):
        room.connect(i, [])
        room.receive(i, json.dumps({"name": name}), NOW)
    return room


def test_join_order_roster_then_history_then_missed_then_ready() -> None:
    room = named_room("ann")  # session 0
    room.connect(1, ['{"h":1}', '{"h":2}'])  # bob connects, silent until named
    missed = room.receive(0, '{"message":"while you waited"}', NOW)
    room.connect(2, [])
    room.receive(2, '{"name":"cat"}', NOW + 1)  # cat joins while bob is unnamed
    effects = room.receive(1, '{"name":"bob"}', NOW + 2)
    sent = texts(effects, 1)
    message = broadcasts(missed)[0]
    assert sent == [
        '{"joined":"ann"}',
        '{"h":1}',
        '{"h":2}',
        message,
        '{"joined":"cat"}',
        '{"ready":true}',
    ]
    assert (1, "bob") in names(effects)
    assert '{"joined":"bob"}' in broadcasts(effects)
    # the broadcast comes before "ready" to the joiner, as in the demo
    kinds = [type(e).__name__ for e in effects]
    assert kinds.index("Broadcast") < len(kinds) - 1 and kinds[-1] == "Send"


def test_unnamed_sessions_are_not_addressed() -> None:
    room = named_room("ann")
    room.connect(1, [])
    effects = room.receive(0, '{"message":"hi"}', NOW)
    assert texts(effects, 1) == [] and room.is_named(0) and not room.is_named(1)


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        (None, "anonymous"),
        ("", "anonymous"),
        (0, "anonymous"),
        (False, "anonymous"),
        (5, "5"),
        (True, "true"),
        ({"a": 1}, "[object Object]"),
        ([1, "x"], "1,x"),
        ("é" * 32, "é" * 32),
    ],
)
def test_names_follow_javascript_string_conversion(raw, name) -> None:
    room = ChatRules()
    room.connect(0, [])
    frame = json.dumps({} if raw is None else {"name": raw})
    assert (0, name) in names(room.receive(0, frame, NOW))


def test_a_name_over_32_characters_is_refused_and_closed_with_1009() -> None:
    room = named_room("ann")
    room.connect(1, [])
    effects = room.receive(1, json.dumps({"name": "x" * 33}), NOW)
    assert effects == [Send(1, encode({"error": NAME_TOO_LONG})), Close(1, 1009, NAME_TOO_LONG)]
    assert room.disconnect(1) == []  # never joined, so no {"quit"}
    # 32 UTF-16 units is the limit: 16 emoji are 32 units, 17 are too many
    room.connect(2, [])
    assert (2, "😀" * 16) in names(room.receive(2, json.dumps({"name": "😀" * 16}), NOW))
    room.connect(3, [])
    assert room.receive(3, json.dumps({"name": "😀" * 17}), NOW)[-1].code == 1009


def test_messages_over_256_characters_are_refused_and_the_session_stays() -> None:
    room = named_room("ann")
    assert room.receive(0, json.dumps({"message": "m" * 257}), NOW) == [
        Send(0, encode({"error": MESSAGE_TOO_LONG}))
    ]
    effects = room.receive(0, json.dumps({"message": "m" * 256}), NOW)
    assert any(isinstance(e, Store) for e in effects)


def test_chat_messages_are_stored_and_broadcast_with_increasing_timestamps() -> None:
    room = named_room("ann")
    stamps = []
    for now in (NOW, NOW, NOW - 50, NOW + 10):
        effects = room.receive(0, '{"message":"x"}', now)
        text = next(e for e in effects if isinstance(e, Broadcast)).text
        data = json.loads(text)
        assert list(data) == ["name", "message", "timestamp", "id"]
        store = next(e for e in effects if isinstance(e, Store))
        assert store.text == text and store.key == history_key(data["timestamp"])
        stamps.append(data["timestamp"])
    assert stamps == [NOW, NOW + 1, NOW + 2, NOW + 10]
    assert room.receive(0, "{}", NOW)[0].text.startswith('{"name":"ann","message":"undefined"')


def test_history_keys_sort_by_time_like_toisostring() -> None:
    assert history_key(0) == "m/1970-01-01T00:00:00.000Z"
    assert history_key(1_764_000_000_123) == "m/2025-11-24T16:00:00.123Z"
    stamps = [1, 999, 1000, 59_999, 60_000, 10**12, 10**12 + 1, 4 * 10**12]
    assert sorted(stamps, key=history_key) == stamps
    # The date part is cached per second: going back and forth between seconds (and past
    # the cache's size) must never give one second's prefix to another.
    for stamp in [999, 1000, 999, 61_001, 1_764_000_000_999, 1000, 10**12, 999, 1_001]:
        moment = datetime.fromtimestamp(stamp / 1000, tz=UTC)
        assert history_key(stamp) == f"m/{moment.isoformat(timespec='milliseconds')[:-6]}Z"


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b"\x00\x01", NOT_TEXT),
        ("not json", NOT_JSON),
        ("[" * 10_000, NOT_JSON),
        ("[" * 100_000, MESSAGE_TOO_LONG),
        ("x" * 20_000, MESSAGE_TOO_LONG),
        ('{"name": "a"', NOT_JSON),
    ],
)
def test_garbage_gets_a_short_error_and_changes_nothing(frame, error) -> None:
    room = named_room("ann")
    before = room.last_timestamp
    assert room.receive(0, frame, NOW) == [Send(0, encode({"error": error}))]
    assert room.last_timestamp == before and room.is_named(0)


def test_json_that_is_not_an_object_reads_as_empty() -> None:
    room = ChatRules()
    room.connect(0, [])
    assert (0, "anonymous") in names(room.receive(0, "42", NOW))
    assert json.loads(room.receive(0, '"text"', NOW)[0].text)["message"] == "undefined"


def test_a_silent_session_cannot_grow_memory_for_ever() -> None:
    room = named_room("ann")
    room.connect(1, ['{"h":0}'])
    for i in range(MAX_MISSED + BACKLOG + 50):
        room.receive(0, json.dumps({"message": str(i)}), NOW)
    assert room.needs_history(1)  # its backlog was dropped; it is made afresh at naming
    sent = texts(room.receive(1, '{"name":"late"}', NOW, history=['{"h":9}']))
    assert sent == ['{"joined":"ann"}', '{"h":9}', '{"ready":true}']


@pytest.mark.parametrize(
    "frame",
    [
        '{"name":NaN}',
        '{"name":Infinity}',
        '{"name":"\\ud800"}',
        "null",
        '{"name":' + "[" * 500 + "]" * 500 + "}",
    ],
)
def test_odd_json_gets_an_error_frame_not_an_exception(frame) -> None:
    room = ChatRules()
    room.connect(0, [])
    assert room.receive(0, frame, NOW) == [Send(0, encode({"error": NOT_JSON}))]
    named = named_room("ann")
    for message in ['{"message":"\\udfff"}', '{"message":' + "[" * 500 + "]" * 500 + "}"]:
        assert named.receive(0, message, NOW) == [Send(0, encode({"error": NOT_JSON}))]
    assert json.loads(named.receive(0, '{"message":1e999}', NOW)[0].text)["message"] == "Infinity"


def test_a_quit_for_a_session_the_instance_never_saw() -> None:
    room = ChatRules()  # rebuilt after hibernation; the closed socket was not restored
    assert room.disconnect(7, name="bob", id="0a1b2c3d4e5f") == [
        Broadcast('{"quit":"bob","id":"0a1b2c3d4e5f"}')
    ]
    assert room.disconnect(8) == []


def test_an_empty_name_is_still_in_the_roster() -> None:
    room = named_room("ann")
    room.connect(1, [])
    room.receive(1, '{"name":[""]}', NOW)
    room.connect(2, [])
    assert '{"joined":""}' in texts(room.receive(2, '{"name":"cat"}', NOW))


def test_quit_is_broadcast_for_named_sessions_only() -> None:
    room = named_room("ann", "bob")
    room.connect(2, [])
    assert room.disconnect(2) == []
    assert broadcasts(room.disconnect(1)) == ['{"quit":"bob"}']
    assert room.disconnect(1) == []


def test_a_room_rebuilt_after_hibernation_makes_the_backlog_at_naming() -> None:
    room = ChatRules(last_timestamp=NOW)
    room.restore(0, "ann", "0a1b2c3d4e5f")
    room.restore(1, None)
    assert room.needs_history(1) and not room.needs_history(0)
    effects = room.receive(1, '{"name":"bob"}', NOW, history=['{"h":1}'])
    assert texts(effects, 1) == ['{"joined":"ann"}', '{"h":1}', '{"ready":true}']
    stamp = json.loads(room.receive(0, '{"message":"x"}', NOW - 5)[0].text)["timestamp"]
    assert stamp == NOW + 1  # the clock survived


def test_pruning_waits_for_a_batch() -> None:
    assert overflow(1000, 1000) == 0
    assert overflow(1100, 1000) == 0
    assert overflow(1101, 1000) == 101
    assert overflow(111, 100) == 11 and overflow(110, 100) == 0


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "1"), (1.5, "1.5"), (-0.0, "0"), ([None, 1], ",1"), ("s", "s"), (None, "null")],
)
def test_js_string(value, text) -> None:
    assert js_string(value) == text


@given(
    st.one_of(
        st.text(max_size=300),
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=40),
            lambda c: (
                st.lists(c, max_size=3)
                | st.dictionaries(st.sampled_from(["name", "message", "x"]), c, max_size=3)
            ),
            max_leaves=10,
        ).map(json.dumps),
    )
)
def test_any_frame_gives_effects_and_never_raises(frame) -> None:
    room = named_room("ann")
    room.connect(1, [])
    for session in (0, 1):
        for effect in room.receive(session, frame, NOW):
            assert isinstance(effect, Send | Broadcast | Close | Store | Named)


def test_rate_limit_allows_a_burst_of_five_then_one_per_interval() -> None:
    limit = Allowance(interval=5, grace=20)
    # Each message spent says how long its connection cools down (the demo's limiter).
    assert [limit.spend(100.0) for _ in range(5)] == [0, 0, 0, 0, 5]
    assert limit.spend(105.0) == 5  # the connection waited out its 5 s: one more, then 5 s
    assert limit.spend(110.0) == 5
    assert [limit.spend(500.0) for _ in range(5)] == [0, 0, 0, 0, 5]  # rested


def ids(effects, session=None) -> dict[str, str]:
    """Name -> id of the {"joined"} frames sent to ``session``."""
    out = {}
    for e in effects:
        if isinstance(e, Send) and (session is None or e.session == session):
            data = json.loads(e.text)
            if "joined" in data:
                out[data["joined"]] = data["id"]
    return out


def test_two_people_with_one_name_have_different_ids_everywhere() -> None:
    room = ChatRules(salt="room-a")
    room.connect(0, [])
    first = room.receive(0, json.dumps({"name": "Ada", "key": "a" * 22}), NOW)
    mine = json.loads(first[-1].text)  # {"ready": true} says who you are
    assert mine["ready"] is True and len(mine["id"]) == 12
    room.connect(1, [])
    second = room.receive(1, json.dumps({"name": "Ada", "key": "b" * 22}), NOW)
    other = json.loads(second[-1].text)["id"]
    assert other != mine["id"]
    # The newcomer's roster names the first Ada by her id, and everyone hears the second's.
    assert ids(second, 1) == {"Ada": mine["id"]}
    assert json.loads(next(e for e in second if isinstance(e, Broadcast)).text) == {
        "joined": "Ada",
        "id": other,
    }
    # Messages and quits say whose they are.
    said = room.receive(0, '{"message":"hi"}', NOW)
    assert json.loads(next(e for e in said if isinstance(e, Broadcast)).text)["id"] == mine["id"]
    assert json.loads(room.disconnect(1)[0].text) == {"quit": "Ada", "id": other}


def test_a_key_gives_the_same_id_on_every_visit_to_a_room_and_another_in_another_room() -> None:
    def id_of(salt: str, key: str | None) -> str:
        room = ChatRules(salt=salt)
        room.connect(0, [])
        frame = {"name": "Ada"} if key is None else {"name": "Ada", "key": key}
        return str(json.loads(room.receive(0, json.dumps(frame), NOW)[-1].text)["id"])

    key = "Zx-_" * 6
    assert id_of("room-a", key) == id_of("room-a", key)
    assert id_of("room-a", key) != id_of("room-b", key)
    assert id_of("room-a", key) != id_of("room-a", "Q" * 24)
    assert id_of("room-a", None) != id_of("room-a", None)  # no key: random per connection


@pytest.mark.parametrize("key", ["short", "x" * 65, "has space in it!!", 12345678901234567, []])
def test_a_bad_key_is_refused_and_the_session_stays_unnamed(key) -> None:
    room = ChatRules()
    room.connect(0, [])
    frame = json.dumps({"name": "Ada", "key": key})  # ("key": null reads as no key)
    assert room.receive(0, frame, NOW) == [Send(0, encode({"error": BAD_KEY}))]
    assert not room.is_named(0)
    assert names(room.receive(0, json.dumps({"name": "Ada"}), NOW)) == [(0, "Ada")]


def test_ids_survive_hibernation_in_the_roster_and_in_quits() -> None:
    room = ChatRules(salt="s")
    room.restore(0, "ann", "0a1b2c3d4e5f")
    room.connect(1, [])
    sent = room.receive(1, '{"name":"bob"}', NOW, history=[])
    assert ids(sent, 1)["ann"] == "0a1b2c3d4e5f"
    assert json.loads(room.disconnect(0)[0].text) == {"quit": "ann", "id": "0a1b2c3d4e5f"}
