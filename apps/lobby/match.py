"""A match of Connect Four between two seats, as plain code: rounds, the turn timer,
dropped players, rematches.

No sockets, no storage, no clock: the Game object (game.py) calls these methods with the
time and stores :meth:`Match.dump` after each change. Illegal moves raise
:class:`~apps.lobby.connect4.IllegalMove` and change nothing.

- Each round is one Connect Four board. Seat 1 moves first in round 1; rematches
  alternate, so each player opens every other round.
- The turn timer: the seat to move has ``turn_time`` seconds (``deadline``); when it
  passes, that seat forfeits the round (``ended_by: "timeout"``).
- A seated player whose connection drops keeps the seat for ``grace`` seconds; past it
  they forfeit (``"left"``), or, if both are gone, the round ends with no winner
  (``"abandoned"``).
- After a round ends, each seat may ask for a rematch; when both have, the next round
  starts.

``expire(now)`` applies whichever of those deadlines has passed, earliest first, so an
alarm that fires late (or twice) decides exactly what a punctual one would have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .connect4 import Cell, Connect4, IllegalMove

SEATS = (1, 2)


@dataclass
class Player:
    player: str
    name: str


@dataclass
class Match:
    players: dict[int, Player]
    turn_time: float = 30.0
    grace: float = 60.0
    round: int = 1
    board: Connect4 = field(default_factory=Connect4)
    #: When the seat to move forfeits (None once the round is over).
    deadline: float | None = None
    #: The seat that won the round (four in a row, or the other seat forfeited).
    winner: int | None = None
    #: How the round ended: "four", "draw", "timeout", "left", "abandoned" (None: playing).
    ended_by: str | None = None
    rematch: set[int] = field(default_factory=set)
    #: Seats whose player is not connected, and since when.
    away: dict[int, float] = field(default_factory=dict)
    scores: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0})
    #: The last piece dropped (for the falling animation), if any this round.
    last: Cell | None = None
    #: When the round ended (None: still being played).
    ended_at: float | None = None

    @classmethod
    def start(cls, players: dict[int, Player], now: float, turn_time: float, grace: float) -> Match:
        """Round 1. Nobody is connected yet: each seat's grace period starts now."""
        match = cls(players, turn_time, grace)
        match.deadline = now + turn_time
        match.away = {1: now, 2: now}
        return match

    @property
    def over(self) -> bool:
        return self.ended_by is not None

    def seat_of(self, player: str) -> int | None:
        for seat, p in self.players.items():
            if p.player == player:
                return seat
        return None

    # ------------------------------------------------------------- play

    def move(self, seat: int | None, column: object, now: float) -> Cell:
        """``seat`` drops a piece into ``column`` (IllegalMove if it may not)."""
        if seat is None:
            raise IllegalMove("spectators cannot move; only the two seated players do")
        if self.over:  # (a round lost on time has a board that is not over)
            raise IllegalMove("the game is over")
        cell = self.board.play(seat, column)
        self.last = cell
        if self.board.winner is not None:
            self._end(self.board.winner, "four", now)
        elif self.board.draw:
            self._end(None, "draw", now)
        else:
            self.deadline = now + self.turn_time
        return cell

    def ask_rematch(self, seat: int | None, now: float) -> bool:
        """``seat`` wants another round; returns True when that starts it."""
        if seat is None:
            raise IllegalMove("spectators cannot ask for a rematch")
        if not self.over:
            raise IllegalMove("the round is still being played")
        self.rematch.add(seat)
        if self.rematch != set(SEATS):
            return False
        self.round += 1
        self.board = Connect4(first=1 if self.round % 2 else 2)
        self.winner = self.ended_by = self.last = self.ended_at = None
        self.rematch = set()
        self.deadline = now + self.turn_time
        return True

    # ------------------------------------------------------------- connections

    def connect(self, seat: int) -> None:
        self.away.pop(seat, None)

    def disconnect(self, seat: int, now: float) -> None:
        self.away.setdefault(seat, now)

    # ------------------------------------------------------------- time

    def next_deadline(self) -> float | None:
        """When ``expire`` next has something to do (None: nothing, the round is over)."""
        if self.over:
            return None
        times = [since + self.grace for since in self.away.values()]
        if self.deadline is not None:
            times.append(self.deadline)
        return min(times) if times else None

    def expire(self, now: float) -> bool:
        """End the round if a deadline has passed (the earliest decides); True if it did."""
        if self.over:
            return False
        gone = {seat: since + self.grace for seat, since in self.away.items()}
        timeout = self.deadline if self.deadline is not None else float("inf")
        first_gone = min(gone.values(), default=float("inf"))
        if min(timeout, first_gone) > now:
            return False
        if timeout <= first_gone:
            self._end(3 - self.board.turn, "timeout", now)
        elif all(gone.get(seat, float("inf")) <= now for seat in SEATS):
            self._end(None, "abandoned", now)
        else:
            left = min(gone, key=lambda seat: gone[seat])
            self._end(3 - left, "left", now)
        return True

    def _end(self, winner: int | None, how: str, now: float) -> None:
        self.winner = winner
        self.ended_by = how
        self.ended_at = now
        self.deadline = None
        self.rematch = set()
        if winner is not None:
            self.scores[winner] += 1

    # ------------------------------------------------------------- views

    def result(self) -> dict[str, Any]:
        """The round's outcome, as reported to the lobby."""
        winner = self.players[self.winner].player if self.winner is not None else None
        return {
            "kind": "result",
            "round": self.round,
            "winner": winner,
            "seat": self.winner,
            "draw": self.ended_by == "draw",
            "ended_by": self.ended_by,
            "names": {str(s): p.name for s, p in self.players.items()},
        }

    def view(self, you: int | None, now: float) -> dict[str, Any]:
        """The state message for seat ``you`` (None: a spectator)."""
        return {
            "type": "state",
            "board": self.board.rows(),
            "turn": self.board.turn,
            "you": you,
            "winner": self.winner,
            "draw": self.ended_by == "draw",
            "round": self.round,
            "moves": len(self.board.moves),
            "last": list(self.last) if self.last else None,
            "line": [list(cell) for cell in self.board.line],
            "ended_by": self.ended_by,
            "remaining": None if self.deadline is None else max(0.0, self.deadline - now),
            "turn_time": self.turn_time,
            "players": {
                str(s): {"player": p.player, "name": p.name, "connected": s not in self.away}
                for s, p in self.players.items()
            },
            "scores": {str(s): n for s, n in self.scores.items()},
            "rematch": sorted(self.rematch),
        }

    # ------------------------------------------------------------- storage

    def dump(self) -> dict[str, Any]:
        return {
            "players": {str(s): [p.player, p.name] for s, p in self.players.items()},
            "round": self.round,
            "first": self.board.first,
            "moves": list(self.board.moves),
            "deadline": self.deadline,
            "winner": self.winner,
            "ended_by": self.ended_by,
            "rematch": sorted(self.rematch),
            "away": {str(s): t for s, t in self.away.items()},
            "scores": {str(s): n for s, n in self.scores.items()},
            "last": list(self.last) if self.last else None,
            "ended_at": self.ended_at,
        }

    @classmethod
    def load(cls, data: dict[str, Any], turn_time: float, grace: float) -> Match:
        players = {int(s): Player(p[0], p[1]) for s, p in data["players"].items()}
        match = cls(players, turn_time, grace, round=data["round"])
        match.board = Connect4.replay(data["moves"], data["first"])
        match.deadline = data["deadline"]
        match.winner = data["winner"]
        match.ended_by = data["ended_by"]
        match.rematch = set(data["rematch"])
        match.away = {int(s): t for s, t in data["away"].items()}
        match.scores = {int(s): n for s, n in data["scores"].items()}
        last = data["last"]
        match.last = (last[0], last[1]) if last else None
        match.ended_at = data["ended_at"]
        return match
