"""Connect Four, as plain code: a 6 x 7 grid, two players, gravity, four in a row.

The board is rebuilt from its list of moves (columns, in order) and who moved first, so
that list is all a game has to store. Row 0 is the top row, as the wire sends it.

    >>> game = Connect4()
    >>> game.play(1, 3)        # seat 1 drops into column 3: it lands on the bottom row
    (5, 3)
    >>> game.turn
    2
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROWS = 6
COLUMNS = 7
#: The four directions a line can run in (right, down, down-right, down-left); each is
#: also walked backwards, so together they cover all eight.
DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))

Cell = tuple[int, int]


class IllegalMove(Exception):
    """A move the rules refuse; the message says why, in words a player understands."""


@dataclass
class Connect4:
    """One round: the grid, whose turn it is, and how it ended."""

    #: The seat that moves first (1 or 2).
    first: int = 1
    moves: list[int] = field(default_factory=list)
    grid: list[list[int]] = field(default_factory=lambda: [[0] * COLUMNS for _ in range(ROWS)])
    winner: int | None = None
    #: The winning line's cells (row, column), when there is a winner.
    line: list[Cell] = field(default_factory=list)

    @classmethod
    def replay(cls, moves: list[int], first: int = 1) -> Connect4:
        """The board after ``moves`` (each must be legal: stored moves were checked)."""
        game = cls(first=first)
        for column in moves:
            game.play(game.turn, column)
        return game

    @property
    def turn(self) -> int:
        """The seat to move next (after the end: the one that would have)."""
        return self.first if len(self.moves) % 2 == 0 else 3 - self.first

    @property
    def draw(self) -> bool:
        """The grid is full and nobody has four in a row."""
        return self.winner is None and len(self.moves) == ROWS * COLUMNS

    @property
    def over(self) -> bool:
        return self.winner is not None or self.draw

    def height(self, column: int) -> int:
        """How many pieces are in ``column``."""
        return sum(1 for row in range(ROWS) if self.grid[row][column])

    def play(self, seat: int, column: object) -> Cell:
        """Drop ``seat``'s piece into ``column``; returns the cell it lands in."""
        if seat not in (1, 2):
            raise IllegalMove("only the two seated players move")
        if self.over:
            raise IllegalMove("the game is over")
        if seat != self.turn:
            raise IllegalMove("it is not your turn")
        if type(column) is not int or not 0 <= column < COLUMNS:
            raise IllegalMove(f"a column is a whole number from 0 to {COLUMNS - 1}")
        row = ROWS - 1 - self.height(column)
        if row < 0:
            raise IllegalMove(f"column {column} is full")
        self.grid[row][column] = seat
        self.moves.append(column)
        line = self._line_through(row, column)
        if line:
            self.winner = seat
            self.line = line
        return row, column

    def rows(self) -> list[list[int]]:
        """The grid, top row first, as a copy."""
        return [list(row) for row in self.grid]

    def _line_through(self, row: int, column: int) -> list[Cell]:
        """Cells of a run of four or more through (row, column) in one direction, if any."""
        seat = self.grid[row][column]
        for dr, dc in DIRECTIONS:
            cells = [(row, column)]
            for sign in (1, -1):
                r, c = row + sign * dr, column + sign * dc
                while 0 <= r < ROWS and 0 <= c < COLUMNS and self.grid[r][c] == seat:
                    cells.append((r, c))
                    r, c = r + sign * dr, c + sign * dc
            if len(cells) >= 4:
                return sorted(cells)
        return []
