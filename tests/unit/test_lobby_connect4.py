"""Connect Four's rules: gravity, turns, wins in all four directions, the draw, refusals."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.lobby.connect4 import COLUMNS, ROWS, Connect4, IllegalMove


def play(moves: list[int], first: int = 1) -> Connect4:
    return Connect4.replay(moves, first)


def test_pieces_fall_to_the_lowest_free_row_and_turns_alternate() -> None:
    game = Connect4()
    assert game.turn == 1
    assert game.play(1, 3) == (5, 3)  # bottom row (row 0 is the top)
    assert game.turn == 2
    assert game.play(2, 3) == (4, 3)
    assert game.rows()[5][3] == 1 and game.rows()[4][3] == 2
    assert game.rows()[0] == [0] * COLUMNS
    assert len(game.rows()) == ROWS and all(len(r) == COLUMNS for r in game.rows())


def test_a_horizontal_four_wins() -> None:
    game = play([0, 0, 1, 1, 2, 2])
    assert game.winner is None
    game.play(1, 3)
    assert game.winner == 1 and game.over and not game.draw
    assert game.line == [(5, 0), (5, 1), (5, 2), (5, 3)]


def test_a_vertical_four_wins() -> None:
    game = play([6, 0, 6, 0, 6, 0])
    game.play(1, 6)
    assert game.winner == 1
    assert game.line == [(2, 6), (3, 6), (4, 6), (5, 6)]


def test_a_diagonal_rising_to_the_right_wins() -> None:
    # seat 1 on (5,0) (4,1) (3,2) (2,3): filler pieces lift each column.
    game = play([0, 1, 1, 2, 2, 3, 2, 3, 3, 6])
    assert game.winner is None
    game.play(1, 3)
    assert game.winner == 1
    assert game.line == [(2, 3), (3, 2), (4, 1), (5, 0)]


def test_a_diagonal_falling_to_the_right_wins_for_the_second_player() -> None:
    # seat 2 on (2,0) (3,1) (4,2) (5,3), seat 1 moving first.
    game = play([0, 3, 2, 2, 1, 0, 1, 1, 0, 6, 6, 0])
    assert game.winner == 2
    assert game.line == [(2, 0), (3, 1), (4, 2), (5, 3)]


def test_a_middle_piece_completing_a_line_of_five_wins_with_all_of_it() -> None:
    game = play([0, 0, 1, 1, 3, 3, 4, 4])
    game.play(1, 2)  # fills the gap: 0 1 2 3 4
    assert game.winner == 1 and len(game.line) == 5


def test_out_of_turn_full_column_bad_column_and_after_the_end_are_refused() -> None:
    game = Connect4()
    with pytest.raises(IllegalMove, match="not your turn"):
        game.play(2, 0)
    for bad in (-1, 7, "3", 2.0, True, None):
        with pytest.raises(IllegalMove, match="from 0 to 6"):
            game.play(1, bad)
    with pytest.raises(IllegalMove, match="only the two seated"):
        game.play(3, 0)
    for _ in range(ROWS):
        game.play(game.turn, 0)
    with pytest.raises(IllegalMove, match="column 0 is full"):
        game.play(game.turn, 0)
    assert len(game.moves) == ROWS  # nothing refused was kept
    won = play([0, 1, 0, 1, 0, 1, 0])
    with pytest.raises(IllegalMove, match="over"):
        won.play(2, 1)


# A full board with no four in a row: columns filled in pairs in an order that never
# lines up four (a known drawn pattern).
DRAW = [0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1, 0, 2, 3, 2, 3, 2, 3, 3, 2, 3, 2, 3, 2]
DRAW += [4, 5, 4, 5, 4, 5, 5, 4, 5, 4, 5, 4, 6, 6, 6, 6, 6, 6]


def test_a_full_board_without_four_is_a_draw() -> None:
    game = play(DRAW)
    assert game.draw and game.over and game.winner is None
    assert all(all(cell for cell in row) for row in game.rows())
    with pytest.raises(IllegalMove, match="over"):
        game.play(game.turn, 6)


def test_the_second_seat_can_move_first() -> None:
    game = Connect4(first=2)
    with pytest.raises(IllegalMove, match="not your turn"):
        game.play(1, 0)
    game.play(2, 0)
    assert game.turn == 1


@given(st.lists(st.integers(0, COLUMNS - 1), max_size=60), st.sampled_from([1, 2]))
def test_replaying_the_legal_moves_rebuilds_the_same_board(columns: list[int], first: int) -> None:
    game = Connect4(first=first)
    for column in columns:
        try:
            game.play(game.turn, column)
        except IllegalMove:
            pass
    again = Connect4.replay(game.moves, first)
    assert again.rows() == game.rows()
    assert (again.winner, again.draw, again.turn) == (game.winner, game.draw, game.turn)
    counts = [sum(row.count(s) for row in game.rows()) for s in (1, 2)]
    assert abs(counts[0] - counts[1]) <= 1 and sum(counts) == len(game.moves)
