"""The lobby's rules with no sockets: joining, readiness, the host, kicks, starting,
grace periods and results."""

from __future__ import annotations

import pytest

from apps.lobby.rules import OPEN, PLAYING, Lobby, Refused


def lobby(max_players: int = 4, grace: float = 60.0) -> Lobby:
    return Lobby.create("Friday night", True, max_players, "ABC234", 0.0, grace=grace)


def filled(*names: str, **kwargs: float) -> Lobby:
    room = lobby(**kwargs)  # type: ignore[arg-type]
    for i, name in enumerate(names):
        room.join(name.lower(), name, float(i))
    return room


def test_creation_checks_name_visibility_and_size() -> None:
    room = Lobby.create("  Friday\n  night \u202e", False, 2, "ABC234", 5.0)
    assert (room.name, room.public, room.max_players) == ("Friday night", False, 2)
    assert room.empty_since == 5.0 and room.members == {} and room.host is None
    for name, public, size, why in [
        ("", True, 4, "must not be empty"),
        ("x" * 41, True, 4, "too long"),
        (3, True, 4, "must be a string"),
        ("ok", "yes", 4, '"public"'),
        ("ok", True, 1, "from 2 to 8"),
        ("ok", True, 9, "from 2 to 8"),
        ("ok", True, True, "from 2 to 8"),
        ("ok", True, 4.0, "from 2 to 8"),
    ]:
        with pytest.raises(Refused, match=why):
            Lobby.create(name, public, size, "ABC234", 0.0)


def test_the_first_member_hosts_and_names_are_made_unique() -> None:
    room = filled("Ann", "Bob")
    room.join("ann2", "ANN", 3.0)
    assert room.host == "ann"
    view = room.view(spectators=2)
    assert [p["name"] for p in view["players"]] == ["Ann", "Bob", "ANN (2)"]
    assert [p["host"] for p in view["players"]] == [True, False, False]
    assert view["host"] == "ann" and view["status"] == OPEN and view["spectators"] == 2
    assert all(p["connected"] and not p["ready"] for p in view["players"])


def test_a_full_lobby_refuses_players_and_a_member_cannot_join_twice() -> None:
    room = filled("Ann", "Bob", max_players=2)
    with pytest.raises(Refused, match="full"):
        room.join("cy", "Cy", 9.0)
    with pytest.raises(Refused, match="already"):
        room.join("ann", "Ann", 9.0)
    assert len(room.members) == 2


def test_ready_toggles_and_only_while_open() -> None:
    room = filled("Ann", "Bob")
    room.set_ready("bob", True)
    assert room.members["bob"].ready
    room.set_ready("bob", False)
    assert not room.members["bob"].ready
    with pytest.raises(Refused, match="not a member"):
        room.set_ready("zed", True)
    room.set_ready("ann", True)
    room.set_ready("bob", True)
    room.begin("g1", *room.start("ann"))
    with pytest.raises(Refused, match="being played"):
        room.set_ready("bob", False)


def test_start_needs_the_host_ready_and_two_ready_players() -> None:
    room = filled("Ann", "Bob", "Cy", "Dee")
    with pytest.raises(Refused, match="only the host"):
        room.start("bob")
    with pytest.raises(Refused, match="at least 2"):
        room.start("ann")
    room.set_ready("cy", True)
    room.set_ready("dee", True)
    with pytest.raises(Refused, match="host plays too"):
        room.start("ann")
    room.set_ready("ann", True)
    first, second = room.start("ann")
    assert (first.player, second.player) == ("ann", "cy")  # longest-present ready member
    assert room.status == OPEN  # start only checks; begin makes it so
    rev = room.rev
    room.begin("g1", first, second)
    assert room.status == PLAYING and room.game == "g1" and room.rev == rev + 1
    seats = {p["player"]: p["seat"] for p in room.view()["players"]}
    assert seats == {"ann": 1, "bob": None, "cy": 2, "dee": None}
    with pytest.raises(Refused, match="already being played"):
        room.start("ann")


def test_kick_is_for_the_host_only() -> None:
    room = filled("Ann", "Bob", "Cy")
    with pytest.raises(Refused, match="only the host can kick"):
        room.kick("bob", "cy", 5.0)
    with pytest.raises(Refused, match="yourself"):
        room.kick("ann", "ann", 5.0)
    with pytest.raises(Refused, match="no such player"):
        room.kick("ann", "zed", 5.0)
    room.kick("ann", "cy", 5.0)
    assert list(room.members) == ["ann", "bob"]


def test_the_host_hands_over_the_role() -> None:
    room = filled("Ann", "Bob")
    with pytest.raises(Refused, match="only the host"):
        room.transfer("bob", "bob")
    with pytest.raises(Refused, match="host already"):
        room.transfer("ann", "ann")
    room.transfer("ann", "bob")
    assert room.host == "bob"
    room.kick("bob", "ann", 3.0)  # the new host has the host's powers
    assert list(room.members) == ["bob"]


def test_the_host_leaving_passes_the_role_to_the_longest_present_connected() -> None:
    room = filled("Ann", "Bob", "Cy", "Dee")
    room.disconnect("bob", 10.0)  # present longer than Cy, but not connected
    room.leave("ann", 11.0)
    assert room.host == "cy"
    room.leave("cy", 12.0)
    assert room.host == "dee"
    room.leave("dee", 13.0)
    assert room.host == "bob"  # nobody connected: the longest-present
    room.leave("bob", 14.0)
    assert room.host is None and room.empty_since == 14.0


def test_a_dropped_member_keeps_the_place_for_the_grace_period() -> None:
    room = filled("Ann", "Bob", "Cy", grace=60.0)
    room.disconnect("ann", 100.0)
    room.disconnect("ann", 130.0)  # a second report does not restart the clock
    assert room.view()["players"][0]["connected"] is False
    assert room.next_deadline() == 160.0
    assert room.expire(159.9) == [] and room.host == "ann"
    room.reconnect("ann")
    assert room.next_deadline() is None and room.expire(1000.0) == []
    room.disconnect("ann", 200.0)
    room.disconnect("cy", 210.0)
    assert room.expire(260.0) == ["ann"]
    assert room.host == "bob"  # the host stayed away past the grace period: migrated
    assert room.next_deadline() == 270.0
    with pytest.raises(Refused, match="gone"):
        room.reconnect("ann")


def test_an_empty_lobby_is_due_to_close_after_its_ttl() -> None:
    room = lobby()
    room.empty_ttl = 30.0
    assert room.next_deadline() == 30.0 and not room.due_to_close(29.0)
    assert room.due_to_close(30.0)
    room.join("ann", "Ann", 10.0)
    assert room.next_deadline() is None and not room.due_to_close(100.0)
    room.leave("ann", 50.0)
    assert room.next_deadline() == 80.0 and room.due_to_close(80.0)
    room.close()
    assert not room.due_to_close(200.0) and room.next_deadline() is None
    with pytest.raises(Refused, match="closed"):
        room.join("bob", "Bob", 201.0)


def test_results_reset_readiness_count_wins_once_and_rounds_flip_the_status() -> None:
    room = filled("Ann", "Bob", "Cy")
    for p in ("ann", "bob"):
        room.set_ready(p, True)
    room.begin("g1", *room.start("ann"))
    result = {"kind": "result", "round": 1, "winner": "bob", "seat": 2, "draw": False}
    assert room.game_event("g1", 1, result)
    assert not room.game_event("g1", 1, result)  # delivered twice: counted once
    assert room.status == OPEN and room.members["bob"].wins == 1
    assert not any(m.ready for m in room.members.values())
    assert room.results[0]["game"] == "g1" and room.results[0]["winner"] == "bob"
    assert room.game_event("g1", 2, {"kind": "round", "round": 2})  # a rematch
    assert room.status == PLAYING
    assert not room.game_event("old", 1, {"kind": "round", "round": 5})  # not the current game
    draw = {**result, "round": 2, "winner": None, "draw": True}
    assert room.game_event("g1", 3, draw)
    assert room.status == OPEN and len(room.results) == 2
    # The reports 2 and 3 delivered again, in order: the old rematch changes nothing.
    assert not room.game_event("g1", 2, {"kind": "round", "round": 2})
    assert not room.game_event("g1", 3, draw)
    assert room.status == OPEN and len(room.results) == 2


def test_rev_moves_with_what_the_directory_shows_only() -> None:
    room = filled("Ann", "Bob")
    rev = room.rev
    room.set_ready("ann", True)
    room.disconnect("bob", 1.0)
    room.transfer("ann", "bob")
    assert room.rev == rev
    room.leave("bob", 2.0)
    assert room.rev == rev + 1
    assert room.summary() == {
        "name": "Friday night",
        "players": 1,
        "max_players": 4,
        "status": OPEN,
    }


def test_chat_is_limited_per_member() -> None:
    room = filled("Ann")
    for i in range(5):
        msg = room.chat("ann", f"hi {i}", 10.0 + i * 0.1, burst=5, window=5.0)
    assert msg == {"player": "ann", "name": "Ann", "text": "hi 4", "at": 10400}
    with pytest.raises(Refused, match="too fast"):
        room.chat("ann", "more", 11.0, burst=5, window=5.0)
    room.chat("ann", "later", 15.05, burst=5, window=5.0)
    with pytest.raises(Refused, match="not a member"):
        room.chat("zed", "hello", 20.0, burst=5, window=5.0)


def test_dump_and_load_keep_everything() -> None:
    room = filled("Ann", "Bob", "Cy")
    room.set_ready("ann", True)
    room.set_ready("cy", True)
    room.disconnect("bob", 7.0)
    room.begin("g1", *room.start("ann"))
    again = Lobby.load(room.dump(), grace=60.0, empty_ttl=30.0)
    assert again.view(1) == room.view(1)
    assert again.dump() == room.dump()
    assert again.next_deadline() == room.next_deadline() == 67.0
