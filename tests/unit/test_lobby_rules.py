"""The lobby's rules with no sockets: joining, readiness, the host, kicks, starting,
grace periods and results. Input in, effects out."""

from __future__ import annotations

from apps.lobby.effects import (
    Changed,
    ChatLine,
    Forfeit,
    Kicked,
    Left,
    Refuse,
    Save,
    ShowGame,
    StartGame,
    Welcome,
)
from apps.lobby.rules import OPEN, PLAYING, LobbyRules, Terms, check_terms


def lobby(max_players: int = 4, grace: float = 60.0) -> LobbyRules:
    terms = check_terms("Friday night", True, max_players, 40)
    assert isinstance(terms, Terms)
    return LobbyRules.create(terms, "ABC234", 0.0, grace=grace)


def filled(*names: str, **kwargs: float) -> LobbyRules:
    room = lobby(**kwargs)  # type: ignore[arg-type]
    for i, name in enumerate(names):
        room.join(name.lower(), name, float(i))
    return room


def refused(effects: list[object], why: str) -> bool:
    """Whether ``effects`` is exactly one refusal whose words contain ``why``."""
    return len(effects) == 1 and isinstance(effects[0], Refuse) and why in effects[0].reason


def started(room: LobbyRules, host: str, game: str = "g1") -> list[object]:
    [start] = room.start(host)
    assert isinstance(start, StartGame)
    (first, _), (second, _) = start.players
    return list(room.begin(game, first, second))


def test_creation_checks_name_visibility_and_size() -> None:
    terms = check_terms("  Friday\n  night \u202e", False, 2, 40)
    assert terms == Terms("Friday night", False, 2)
    assert isinstance(terms, Terms)
    room = LobbyRules.create(terms, "ABC234", 5.0)
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
        refusal = check_terms(name, public, size, 40)
        assert isinstance(refusal, Refuse) and why in refusal.reason, (name, refusal)


def test_the_first_member_hosts_and_names_are_made_unique() -> None:
    room = filled("Ann", "Bob")
    assert room.join("ann2", "ANN", 3.0) == [Welcome("ann2"), Changed()]
    assert room.host == "ann"
    view = room.view(spectators=2)
    assert [p["name"] for p in view["players"]] == ["Ann", "Bob", "ANN (2)"]
    assert [p["host"] for p in view["players"]] == [True, False, False]
    assert view["host"] == "ann" and view["status"] == OPEN and view["spectators"] == 2
    assert all(p["connected"] and not p["ready"] for p in view["players"])


def test_a_full_lobby_refuses_players_and_a_member_cannot_join_twice() -> None:
    room = filled("Ann", "Bob", max_players=2)
    assert refused(room.join("cy", "Cy", 9.0), "full")
    assert refused(room.join("ann", "Ann", 9.0), "already")
    assert len(room.members) == 2


def test_ready_toggles_and_only_while_open() -> None:
    room = filled("Ann", "Bob")
    assert room.set_ready("bob", True) == [Changed()]
    assert room.members["bob"].ready
    room.set_ready("bob", False)
    assert not room.members["bob"].ready
    assert refused(room.set_ready("zed", True), "not a member")
    room.set_ready("ann", True)
    room.set_ready("bob", True)
    started(room, "ann")
    assert refused(room.set_ready("bob", False), "being played")
    assert room.members["bob"].ready


def test_start_needs_the_host_ready_and_two_ready_players() -> None:
    room = filled("Ann", "Bob", "Cy", "Dee")
    assert refused(room.start("bob"), "only the host")
    assert refused(room.start("ann"), "at least 2")
    room.set_ready("cy", True)
    room.set_ready("dee", True)
    assert refused(room.start("ann"), "host plays too")
    room.set_ready("ann", True)
    # the longest-present ready member takes seat 2
    assert room.start("ann") == [StartGame((("ann", "Ann"), ("cy", "Cy")))]
    assert room.status == OPEN  # start only asks for a game; begin makes it so
    rev = room.rev
    assert room.begin("g1", "ann", "cy") == [Changed(), ShowGame("g1")]
    assert room.status == PLAYING and room.game == "g1" and room.rev == rev + 1
    seats = {p["player"]: p["seat"] for p in room.view()["players"]}
    assert seats == {"ann": 1, "bob": None, "cy": 2, "dee": None}
    assert refused(room.start("ann"), "already being played")
    # Someone taking their place meanwhile is sent the game being played.
    assert refused(room.join("eve", "Eve", 9.0), "full")
    room.disconnect("bob", 10.0)
    assert room.resume("bob") == [Welcome("bob"), Changed(), ShowGame("g1", everyone=False)]


def test_kick_is_for_the_host_only_and_a_kicked_player_forfeits_the_game() -> None:
    room = filled("Ann", "Bob", "Cy")
    assert refused(room.kick("bob", "cy", 5.0), "only the host can kick")
    assert refused(room.kick("ann", "ann", 5.0), "yourself")
    assert refused(room.kick("ann", "zed", 5.0), "no such player")
    assert refused(room.kick("zed", "bob", 5.0), "not a member")
    assert room.kick("ann", "cy", 5.0) == [Kicked("cy"), Changed()]
    assert list(room.members) == ["ann", "bob"]
    room.set_ready("ann", True)
    room.set_ready("bob", True)
    started(room, "ann")
    assert room.kick("ann", "bob", 6.0) == [Kicked("bob"), Changed(), Forfeit("g1", "bob")]


def test_the_host_hands_over_the_role() -> None:
    room = filled("Ann", "Bob")
    assert refused(room.transfer("bob", "bob"), "only the host")
    assert refused(room.transfer("ann", "ann"), "host already")
    assert refused(room.transfer("ann", "zed"), "no such player")
    assert room.transfer("ann", "bob") == [Changed()]
    assert room.host == "bob"
    room.kick("bob", "ann", 3.0)  # the new host has the host's powers
    assert list(room.members) == ["bob"]


def test_the_host_leaving_passes_the_role_to_the_longest_present_connected() -> None:
    room = filled("Ann", "Bob", "Cy", "Dee")
    room.disconnect("bob", 10.0)  # present longer than Cy, but not connected
    assert room.leave("ann", 11.0) == [Left("ann"), Changed()]
    assert room.host == "cy"
    room.leave("cy", 12.0)
    assert room.host == "dee"
    room.leave("dee", 13.0)
    assert room.host == "bob"  # nobody connected: the longest-present
    room.leave("bob", 14.0)
    assert room.host is None and room.empty_since == 14.0


def test_a_seated_player_leaving_gives_the_round_up() -> None:
    room = filled("Ann", "Bob", "Cy")
    room.set_ready("ann", True)
    room.set_ready("bob", True)
    started(room, "ann")
    assert room.leave("cy", 1.0) == [Left("cy"), Changed()]  # watching: no game to tell
    assert room.leave("bob", 2.0) == [Left("bob"), Changed(), Forfeit("g1", "bob")]


def test_a_dropped_member_keeps_the_place_for_the_grace_period() -> None:
    room = filled("Ann", "Bob", "Cy", grace=60.0)
    assert room.disconnect("ann", 100.0) == [Changed()]
    room.disconnect("ann", 130.0)  # a second report does not restart the clock
    assert room.disconnect("zed", 130.0) == []
    assert room.view()["players"][0]["connected"] is False
    assert room.next_deadline() == 160.0
    assert room.expire(159.9) == [] and room.host == "ann"
    assert room.resume("ann") == [Welcome("ann"), Changed()]
    assert room.next_deadline() is None and room.expire(1000.0) == []
    room.disconnect("ann", 200.0)
    room.disconnect("cy", 210.0)
    assert room.expire(260.0) == [Changed()]
    assert list(room.members) == ["bob", "cy"]
    assert room.host == "bob"  # the host stayed away past the grace period: migrated
    assert room.next_deadline() == 270.0
    assert refused(room.resume("ann"), "gone")


def test_members_without_a_socket_after_a_rebuild_count_as_dropped() -> None:
    room = filled("Ann", "Bob", "Cy")
    room.disconnect("cy", 5.0)
    assert room.found_without_sockets({"ann"}, 50.0) == [Save()]
    assert [m.away_since for m in room.members.values()] == [None, 50.0, 5.0]
    assert room.found_without_sockets({"ann"}, 60.0) == []


def test_an_empty_lobby_is_due_to_close_after_its_ttl() -> None:
    room = lobby()
    room.empty_ttl = 30.0
    assert room.next_deadline() == 30.0 and not room.due_to_close(29.0)
    assert room.due_to_close(30.0)
    room.join("ann", "Ann", 10.0)
    assert room.next_deadline() is None and not room.due_to_close(100.0)
    room.leave("ann", 50.0)
    assert room.next_deadline() == 80.0 and room.due_to_close(80.0)
    rev = room.rev
    assert room.close() == [Save()]
    assert room.rev == rev + 1
    assert not room.due_to_close(200.0) and room.next_deadline() is None
    assert refused(room.join("bob", "Bob", 201.0), "closed")


def test_results_reset_readiness_count_wins_once_and_rounds_flip_the_status() -> None:
    room = filled("Ann", "Bob", "Cy")
    for p in ("ann", "bob"):
        room.set_ready(p, True)
    started(room, "ann")
    result = {"kind": "result", "round": 1, "winner": "bob", "seat": 2, "draw": False}
    assert room.game_event("g1", 1, result) == [Changed()]
    assert room.game_event("g1", 1, result) == []  # delivered twice: counted once
    assert room.status == OPEN and room.members["bob"].wins == 1
    assert not any(m.ready for m in room.members.values())
    assert room.results[0]["game"] == "g1" and room.results[0]["winner"] == "bob"
    assert room.game_event("g1", 2, {"kind": "round", "round": 2}) == [Changed()]  # a rematch
    assert room.status == PLAYING
    assert room.game_event("old", 1, {"kind": "round", "round": 5}) == []  # not the current
    draw = {**result, "round": 2, "winner": None, "draw": True}
    assert room.game_event("g1", 3, draw) == [Changed()]
    assert room.status == OPEN and len(room.results) == 2
    # The reports 2 and 3 delivered again, in order: the old rematch changes nothing.
    assert room.game_event("g1", 2, {"kind": "round", "round": 2}) == []
    assert room.game_event("g1", 3, draw) == []
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
        effects = room.chat("ann", f"hi {i}", 10.0 + i * 0.1, burst=5, window=5.0)
    assert effects == [ChatLine({"player": "ann", "name": "Ann", "text": "hi 4", "at": 10400})]
    assert refused(room.chat("ann", "more", 11.0, burst=5, window=5.0), "too fast")
    assert isinstance(room.chat("ann", "later", 15.05, burst=5, window=5.0)[0], ChatLine)
    assert refused(room.chat("zed", "hello", 20.0, burst=5, window=5.0), "not a member")


def test_dump_and_load_keep_everything() -> None:
    room = filled("Ann", "Bob", "Cy")
    room.set_ready("ann", True)
    room.set_ready("cy", True)
    room.disconnect("bob", 7.0)
    started(room, "ann")
    again = LobbyRules.load(room.dump(), grace=60.0, empty_ttl=30.0)
    assert again.view(1) == room.view(1)
    assert again.dump() == room.dump()
    assert again.next_deadline() == room.next_deadline() == 67.0
