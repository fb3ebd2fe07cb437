"""A match with no sockets: moves, the turn timer, dropped players, rematches."""

from __future__ import annotations

import pytest

from apps.lobby.connect4 import IllegalMove
from apps.lobby.match import Match, Player

PLAYERS = {1: Player("ann", "Ann"), 2: Player("bob", "Bob")}


def started(now: float = 0.0, turn: float = 30.0, grace: float = 60.0) -> Match:
    match = Match.start(dict(PLAYERS), now, turn, grace)
    match.connect(1)
    match.connect(2)
    return match


def test_moves_restart_the_turn_timer_and_a_four_ends_the_round() -> None:
    match = started()
    assert match.deadline == 30.0 and match.next_deadline() == 30.0
    match.move(1, 0, 5.0)
    assert match.deadline == 35.0 and match.board.turn == 2
    for seat, column, t in [(2, 1, 6), (1, 0, 7), (2, 1, 8), (1, 0, 9), (2, 1, 10)]:
        match.move(seat, column, float(t))
    match.move(1, 0, 11.0)
    assert (match.winner, match.ended_by, match.deadline) == (1, "four", None)
    assert match.ended_at == 11.0
    assert match.scores == {1: 1, 2: 0} and match.next_deadline() is None
    assert match.result() == {
        "kind": "result",
        "round": 1,
        "winner": "ann",
        "seat": 1,
        "draw": False,
        "ended_by": "four",
        "names": {"1": "Ann", "2": "Bob"},
    }
    with pytest.raises(IllegalMove, match="over"):
        match.move(2, 3, 12.0)


def test_refusals_change_nothing() -> None:
    match = started()
    with pytest.raises(IllegalMove, match="spectators"):
        match.move(None, 0, 1.0)
    with pytest.raises(IllegalMove, match="not your turn"):
        match.move(2, 0, 1.0)
    with pytest.raises(IllegalMove, match="still being played"):
        match.ask_rematch(1, 1.0)
    assert match.board.moves == [] and match.deadline == 30.0


def test_the_turn_timer_forfeits_the_seat_to_move_once() -> None:
    match = started()
    match.move(1, 3, 10.0)
    assert not match.expire(39.9)
    assert match.expire(40.0)
    assert (match.winner, match.ended_by) == (1, "timeout")  # seat 2 let it run out
    assert not match.expire(100.0)  # a second alarm finds nothing to do
    assert match.scores == {1: 1, 2: 0}


def test_a_seat_dropped_past_the_grace_period_forfeits_unless_it_returns() -> None:
    match = started(turn=1000.0, grace=60.0)
    match.disconnect(2, 10.0)
    match.disconnect(2, 50.0)  # still the first drop that counts
    assert match.next_deadline() == 70.0
    assert match.view(1, 20.0)["players"]["2"]["connected"] is False
    match.connect(2)
    assert not match.expire(80.0)
    match.disconnect(2, 100.0)
    assert match.expire(160.0)
    assert (match.winner, match.ended_by) == (1, "left")


def test_both_gone_is_abandoned_and_the_earliest_deadline_decides() -> None:
    match = Match.start(dict(PLAYERS), 0.0, 1000.0, 60.0)  # nobody ever connects
    assert match.next_deadline() == 60.0
    assert match.expire(200.0)
    assert (match.winner, match.ended_by) == (None, "abandoned")
    late = started(turn=30.0, grace=60.0)
    late.disconnect(1, 0.0)
    assert late.expire(500.0)  # the alarm came late: the timer ran out first
    assert (late.winner, late.ended_by) == (2, "timeout")


def test_rematch_needs_both_and_alternates_who_opens() -> None:
    match = started()
    for seat, column in [(1, 0), (2, 1), (1, 0), (2, 1), (1, 0), (2, 1), (1, 0)]:
        match.move(seat, column, 1.0)
    with pytest.raises(IllegalMove, match="spectators"):
        match.ask_rematch(None, 2.0)
    assert not match.ask_rematch(2, 2.0)
    assert not match.ask_rematch(2, 2.5)
    assert match.view(1, 3.0)["rematch"] == [2]
    assert match.ask_rematch(1, 3.0)
    assert match.round == 2 and match.board.turn == 2 and match.deadline == 33.0
    assert match.winner is None and match.ended_by is None and match.board.moves == []
    assert match.ended_at is None
    assert match.scores == {1: 1, 2: 0}


def test_the_view_shows_the_board_top_row_first_and_who_you_are() -> None:
    match = started()
    match.move(1, 3, 10.0)
    view = match.view(2, 15.0)
    assert view["board"][5][3] == 1 and view["board"][0] == [0] * 7
    assert (view["turn"], view["you"], view["winner"], view["draw"]) == (2, 2, None, False)
    assert view["remaining"] == 25.0 and view["last"] == [5, 3] and view["moves"] == 1
    assert view["players"]["1"] == {
        "player": "ann",
        "name": "Ann",
        "connected": True,
        "away_for": None,
    }
    assert match.view(None, 15.0)["you"] is None


def test_dump_and_load_rebuild_the_same_match() -> None:
    match = started()
    for seat, column in [(1, 3), (2, 3), (1, 4)]:
        match.move(seat, column, 5.0)
    match.disconnect(2, 6.0)
    again = Match.load(match.dump(), 30.0, 60.0)
    assert again.view(1, 7.0) == match.view(1, 7.0)
    assert again.dump() == match.dump()


def test_resigning_gives_the_other_seat_the_round() -> None:
    match = started()
    match.move(1, 3, 1.0)
    with pytest.raises(IllegalMove, match="spectators"):
        match.resign(None, 2.0)
    match.resign(1, 2.0)
    assert (match.winner, match.ended_by, match.scores) == (2, "resign", {1: 0, 2: 1})
    assert match.result()["winner"] == "bob" and match.next_deadline() is None
    with pytest.raises(IllegalMove, match="over"):
        match.resign(2, 3.0)


def test_a_draw_is_offered_then_accepted_or_declined_by_moving() -> None:
    match = started()
    assert match.draw(1, True, 1.0) is False  # offered (on its own turn, before moving)
    with pytest.raises(IllegalMove, match="already"):
        match.draw(1, True, 1.5)
    match.move(1, 3, 2.0)
    assert match.draw_offer == 1  # the offerer's own move keeps the offer
    match.move(2, 4, 3.0)
    assert match.draw_offer is None  # the other moved instead of accepting: declined
    assert match.draw(2, True, 4.0) is False
    assert match.view(1, 4.0)["draw_offer"] == 2
    assert match.draw(1, True, 5.0) is True  # accepting ends the round: a draw
    assert (match.winner, match.ended_by, match.draw_offer) == (None, "agreed", None)
    assert match.result()["draw"] is True and match.scores == {1: 0, 2: 0}


def test_a_draw_offer_can_be_withdrawn_or_declined() -> None:
    match = started()
    with pytest.raises(IllegalMove, match="no draw offer"):
        match.draw(2, False, 1.0)
    match.draw(1, True, 1.0)
    match.draw(2, False, 2.0)  # declined
    assert match.draw_offer is None and not match.over
    match.draw(2, True, 3.0)
    match.draw(2, False, 4.0)  # withdrawn
    assert match.draw_offer is None
    with pytest.raises(IllegalMove, match="spectators"):
        match.draw(None, True, 5.0)


def test_the_win_is_claimed_only_over_an_opponent_away_long_enough() -> None:
    match = started(turn=30.0, grace=60.0)  # claim_after: 15 s by default
    match.move(1, 3, 1.0)
    with pytest.raises(IllegalMove, match="opponent is here"):
        match.claim_win(2, 2.0)
    match.disconnect(1, 10.0)
    view = match.view(2, 12.0)
    assert view["players"]["1"]["away_for"] == 2.0 and view["claim_after"] == 15.0
    assert view["players"]["2"]["away_for"] is None
    with pytest.raises(IllegalMove, match="in 13 s"):
        match.claim_win(2, 12.0)
    match.claim_win(2, 25.0)
    assert (match.winner, match.ended_by, match.scores) == (2, "claimed", {1: 0, 2: 1})


def test_a_round_is_aborted_before_both_have_moved_or_when_the_opponent_left() -> None:
    match = started()
    match.move(1, 3, 1.0)
    match.abort(2, 2.0)  # only one player has moved: either may call it off
    assert (match.winner, match.ended_by, match.scores) == (None, "aborted", {1: 0, 2: 0})
    assert match.result()["draw"] is False
    match.ask_rematch(1, 3.0)
    match.ask_rematch(2, 3.0)  # round 2
    match.move(2, 0, 4.0)
    match.move(1, 1, 5.0)
    with pytest.raises(IllegalMove, match="aborted before both"):
        match.abort(1, 6.0)
    match.disconnect(2, 6.0)
    with pytest.raises(IllegalMove, match="aborted before both"):
        match.abort(1, 10.0)  # away, but not long enough yet
    match.abort(1, 21.0)
    assert match.ended_by == "aborted" and match.winner is None


def test_a_forfeit_ends_only_a_round_being_played() -> None:
    match = started()
    assert match.forfeit(1, 3.0) is True
    assert (match.winner, match.ended_by) == (2, "left")
    assert match.forfeit(2, 4.0) is False  # over already


def test_a_draw_offer_is_stored() -> None:
    match = started()
    match.draw(2, True, 1.0)
    loaded = Match.load(match.dump(), 30.0, 60.0, 20.0)
    assert loaded.draw_offer == 2 and loaded.claim_after == 20.0
    old = match.dump()
    del old["draw_offer"]  # a game stored before draw offers existed
    assert Match.load(old, 30.0, 60.0).draw_offer is None
