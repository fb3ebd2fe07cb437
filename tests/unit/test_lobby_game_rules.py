"""A game's rules with no sockets: moves, the turn timer, dropped players, rematches.
Input in, effects out."""

from __future__ import annotations

from apps.lobby.effects import Changed, Refuse, Report, Save
from apps.lobby.game_rules import GameRules, Player

PLAYERS = {1: Player("ann", "Ann"), 2: Player("bob", "Bob")}


def started(now: float = 0.0, turn: float = 30.0, grace: float = 60.0) -> GameRules:
    game = GameRules.start(dict(PLAYERS), now, turn, grace)
    assert game.connect(1) == [Changed()]  # away since the start: everyone sees them come
    game.connect(2)
    assert game.connect(2) == []  # (here already: nothing to show)
    return game


def refused(effects: list[object], why: str) -> bool:
    """Whether ``effects`` is exactly one refusal whose words contain ``why``."""
    return len(effects) == 1 and isinstance(effects[0], Refuse) and why in effects[0].reason


def ended(game: GameRules) -> list[object]:
    """The effects of a round that just ended: its result for the lobby, then the state."""
    return [Report(game.result()), Changed()]


def test_moves_restart_the_turn_timer_and_a_four_ends_the_round() -> None:
    game = started()
    assert game.deadline == 30.0 and game.next_deadline() == 30.0
    assert game.move(1, 0, 5.0) == [Changed()]
    assert game.deadline == 35.0 and game.board.turn == 2
    for seat, column, t in [(2, 1, 6), (1, 0, 7), (2, 1, 8), (1, 0, 9), (2, 1, 10)]:
        game.move(seat, column, float(t))
    effects = game.move(1, 0, 11.0)
    assert (game.winner, game.ended_by, game.deadline) == (1, "four", None)
    assert game.ended_at == 11.0
    assert game.scores == {1: 1, 2: 0} and game.next_deadline() is None
    result = {
        "kind": "result",
        "round": 1,
        "winner": "ann",
        "seat": 1,
        "draw": False,
        "ended_by": "four",
        "names": {"1": "Ann", "2": "Bob"},
    }
    assert game.result() == result
    assert effects == [Report(result), Changed()]
    assert refused(game.move(2, 3, 12.0), "over")


def test_refusals_change_nothing() -> None:
    game = started()
    assert refused(game.move(None, 0, 1.0), "spectators")
    assert refused(game.move(2, 0, 1.0), "not your turn")
    assert refused(game.move(1, 7, 1.0), "a column is a whole number")
    assert refused(game.move(1, "3", 1.0), "a column is a whole number")
    assert refused(game.ask_rematch(1, 1.0), "still being played")
    assert game.board.moves == [] and game.deadline == 30.0


def test_the_turn_timer_forfeits_the_seat_to_move_once() -> None:
    game = started()
    game.move(1, 3, 10.0)
    assert game.expire(39.9) == []
    effects = game.expire(40.0)
    assert (game.winner, game.ended_by) == (1, "timeout")  # seat 2 let it run out
    assert effects == ended(game)
    assert game.expire(100.0) == []  # a second alarm finds nothing to do
    assert game.scores == {1: 1, 2: 0}


def test_a_seat_dropped_past_the_grace_period_forfeits_unless_it_returns() -> None:
    game = started(turn=1000.0, grace=60.0)
    assert game.disconnect(2, 10.0) == [Changed()]
    game.disconnect(2, 50.0)  # still the first drop that counts
    assert game.next_deadline() == 70.0
    assert game.view(1, 20.0)["players"]["2"]["connected"] is False
    assert game.connect(2) == [Changed()]
    assert game.expire(80.0) == []
    game.disconnect(2, 100.0)
    assert game.expire(160.0) == ended(game)
    assert (game.winner, game.ended_by) == (1, "left")


def test_both_gone_is_abandoned_and_the_earliest_deadline_decides() -> None:
    game = GameRules.start(dict(PLAYERS), 0.0, 1000.0, 60.0)  # nobody ever connects
    assert game.next_deadline() == 60.0
    assert game.expire(200.0) == ended(game)
    assert (game.winner, game.ended_by) == (None, "abandoned")
    late = started(turn=30.0, grace=60.0)
    late.disconnect(1, 0.0)
    assert late.expire(500.0)  # the alarm came late: the timer ran out first
    assert (late.winner, late.ended_by) == (2, "timeout")


def test_rematch_needs_both_and_alternates_who_opens() -> None:
    game = started()
    for seat, column in [(1, 0), (2, 1), (1, 0), (2, 1), (1, 0), (2, 1), (1, 0)]:
        game.move(seat, column, 1.0)
    assert refused(game.ask_rematch(None, 2.0), "spectators")
    assert game.ask_rematch(2, 2.0) == [Changed()]
    assert game.ask_rematch(2, 2.5) == [Changed()]
    assert game.view(1, 3.0)["rematch"] == [2]
    assert game.ask_rematch(1, 3.0) == [Report({"kind": "round", "round": 2}), Changed()]
    assert game.round == 2 and game.board.turn == 2 and game.deadline == 33.0
    assert game.winner is None and game.ended_by is None and game.board.moves == []
    assert game.ended_at is None
    assert game.scores == {1: 1, 2: 0}


def test_the_view_shows_the_board_top_row_first_and_who_you_are() -> None:
    game = started()
    game.move(1, 3, 10.0)
    view = game.view(2, 15.0)
    assert view["board"][5][3] == 1 and view["board"][0] == [0] * 7
    assert (view["turn"], view["you"], view["winner"], view["draw"]) == (2, 2, None, False)
    assert view["remaining"] == 25.0 and view["last"] == [5, 3] and view["moves"] == 1
    assert view["players"]["1"] == {
        "player": "ann",
        "name": "Ann",
        "connected": True,
        "away_for": None,
    }
    assert game.view(None, 15.0)["you"] is None


def test_dump_and_load_rebuild_the_same_game() -> None:
    game = started()
    for seat, column in [(1, 3), (2, 3), (1, 4)]:
        game.move(seat, column, 5.0)
    game.disconnect(2, 6.0)
    again = GameRules.load(game.dump(), 30.0, 60.0)
    assert again.view(1, 7.0) == game.view(1, 7.0)
    assert again.dump() == game.dump()


def test_seats_without_a_socket_after_a_rebuild_count_as_dropped() -> None:
    game = started()
    assert game.found_without_sockets({1}, 9.0) == [Save()]
    assert game.away == {2: 9.0}
    assert game.found_without_sockets({1}, 12.0) == []  # (away already: the first drop)


def test_resigning_gives_the_other_seat_the_round() -> None:
    game = started()
    game.move(1, 3, 1.0)
    assert refused(game.resign(None, 2.0), "spectators")
    assert game.resign(1, 2.0) == ended(game)
    assert (game.winner, game.ended_by, game.scores) == (2, "resign", {1: 0, 2: 1})
    assert game.result()["winner"] == "bob" and game.next_deadline() is None
    assert refused(game.resign(2, 3.0), "over")


def test_a_draw_is_offered_then_accepted_or_declined_by_moving() -> None:
    game = started()
    assert game.draw(1, True, 1.0) == [Changed()]  # offered (on its own turn, before moving)
    assert refused(game.draw(1, True, 1.5), "already")
    game.move(1, 3, 2.0)
    assert game.draw_offer == 1  # the offerer's own move keeps the offer
    game.move(2, 4, 3.0)
    assert game.draw_offer is None  # the other moved instead of accepting: declined
    assert game.draw(2, True, 4.0) == [Changed()]
    assert game.view(1, 4.0)["draw_offer"] == 2
    assert game.draw(1, True, 5.0) == ended(game)  # accepting ends the round: a draw
    assert (game.winner, game.ended_by, game.draw_offer) == (None, "agreed", None)
    assert game.result()["draw"] is True and game.scores == {1: 0, 2: 0}


def test_a_draw_offer_can_be_withdrawn_or_declined() -> None:
    game = started()
    assert refused(game.draw(2, False, 1.0), "no draw offer")
    game.draw(1, True, 1.0)
    assert game.draw(2, False, 2.0) == [Changed()]  # declined
    assert game.draw_offer is None and not game.over
    game.draw(2, True, 3.0)
    game.draw(2, False, 4.0)  # withdrawn
    assert game.draw_offer is None
    assert refused(game.draw(None, True, 5.0), "spectators")


def test_the_win_is_claimed_only_over_an_opponent_away_long_enough() -> None:
    game = started(turn=30.0, grace=60.0)  # claim_after: 15 s by default
    game.move(1, 3, 1.0)
    assert refused(game.claim_win(2, 2.0), "opponent is here")
    game.disconnect(1, 10.0)
    view = game.view(2, 12.0)
    assert view["players"]["1"]["away_for"] == 2.0 and view["claim_after"] == 15.0
    assert view["players"]["2"]["away_for"] is None
    assert refused(game.claim_win(2, 12.0), "in 13 s")
    assert game.claim_win(2, 25.0) == ended(game)
    assert (game.winner, game.ended_by, game.scores) == (2, "claimed", {1: 0, 2: 1})


def test_a_round_is_aborted_before_both_have_moved_or_when_the_opponent_left() -> None:
    game = started()
    game.move(1, 3, 1.0)
    assert game.abort(2, 2.0) == ended(game)  # only one player has moved: either may
    assert (game.winner, game.ended_by, game.scores) == (None, "aborted", {1: 0, 2: 0})
    assert game.result()["draw"] is False
    game.ask_rematch(1, 3.0)
    game.ask_rematch(2, 3.0)  # round 2
    game.move(2, 0, 4.0)
    game.move(1, 1, 5.0)
    assert refused(game.abort(1, 6.0), "aborted before both")
    game.disconnect(2, 6.0)
    assert refused(game.abort(1, 10.0), "aborted before both")  # away, not long enough yet
    assert game.abort(1, 21.0) == ended(game)
    assert game.ended_by == "aborted" and game.winner is None


def test_a_forfeit_ends_only_a_round_being_played() -> None:
    game = started()
    assert game.forfeit(1, 3.0) == ended(game)
    assert (game.winner, game.ended_by) == (2, "left")
    assert game.forfeit(2, 4.0) == []  # over already


def test_a_draw_offer_is_stored() -> None:
    game = started()
    game.draw(2, True, 1.0)
    loaded = GameRules.load(game.dump(), 30.0, 60.0, 20.0)
    assert loaded.draw_offer == 2 and loaded.claim_after == 20.0
    old = game.dump()
    del old["draw_offer"]  # a game stored before draw offers existed
    assert GameRules.load(old, 30.0, 60.0).draw_offer is None
