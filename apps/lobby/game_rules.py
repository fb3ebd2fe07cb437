"""The rules of a game of Connect Four between two seats, sans I/O: rounds, the turn timer,
dropped players, rematches.

No sockets, no storage, no clock: :class:`GameRules` takes each input (a seat's action,
a connection, the time) with ``now`` and returns the effects for the Game object (game.py)
to carry out (effects.py lists them): ``Changed`` (store and show the new state),
``Report`` (a result for the lobby), ``Refuse`` (an illegal action, with the words the
player is shown; nothing changed). The board itself is connect4.py.

- Each round is one Connect Four board. Seat 1 moves first in round 1; rematches
  alternate, so each player opens every other round.
- The turn timer: the seat to move has ``turn_time`` seconds (``deadline``); when it
  passes, that seat forfeits the round (``ended_by: "timeout"``).
- A seated player whose connection drops keeps the seat for ``grace`` seconds; past it
  they forfeit (``"left"``), or, if both are gone, the round ends with no winner
  (``"abandoned"``).
- After a round ends, each seat may ask for a rematch; when both have, the next round
  starts.
- A round can also end as lichess ends a game: a player **resigns** (the other wins,
  ``"resign"``); both agree to a **draw** (one offers, the other accepts: ``"agreed"``;
  the offer lapses when the other player moves instead); a player **claims the win** over
  an opponent who has been away ``claim_after`` seconds (``"claimed"``), or **aborts** the
  round (no winner, no score: ``"aborted"``), which a player may also do before both have
  moved.

Every round that ends gives a ``Report`` of its result; a rematch that starts, a
``Report`` of the new round. ``expire(now)`` applies whichever deadline has passed,
earliest first, so an alarm that fires late (or twice) decides exactly what a punctual one
would have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .connect4 import Cell, Connect4, IllegalMove
from .effects import Changed, GameEffect, Refuse, Report, Save

SEATS = (1, 2)
#: Ends of a round that are draws: a full board, or both players agreeing.
DRAWN = ("draw", "agreed")


@dataclass
class Player:
    player: str
    name: str


Effects = list[GameEffect]


@dataclass
class GameRules:
    """One game's seats, round, board, timer and scores."""

    players: dict[int, Player]
    turn_time: float = 30.0
    grace: float = 60.0
    #: An opponent away this long may be claimed against (a win) or the round aborted.
    claim_after: float = 15.0
    round: int = 1
    board: Connect4 = field(default_factory=Connect4)
    #: When the seat to move forfeits (None once the round is over).
    deadline: float | None = None
    #: The seat that won the round (four in a row, or the other seat forfeited).
    winner: int | None = None
    #: How the round ended: "four", "draw", "timeout", "left", "abandoned", "resign",
    #: "agreed", "claimed", "aborted" (None: playing).
    ended_by: str | None = None
    rematch: set[int] = field(default_factory=set)
    #: Seats whose player is not connected, and since when.
    away: dict[int, float] = field(default_factory=dict)
    scores: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0})
    #: The last piece dropped (for the falling animation), if any this round.
    last: Cell | None = None
    #: When the round ended (None: still being played).
    ended_at: float | None = None
    #: The seat offering a draw this round (None: no offer stands).
    draw_offer: int | None = None

    @classmethod
    def start(
        cls,
        players: dict[int, Player],
        now: float,
        turn_time: float,
        grace: float,
        claim_after: float = 15.0,
    ) -> GameRules:
        """Round 1. Nobody is connected yet: each seat's grace period starts now."""
        game = cls(players, turn_time, grace, claim_after)
        game.deadline = now + turn_time
        game.away = {1: now, 2: now}
        return game

    @property
    def over(self) -> bool:
        return self.ended_by is not None

    def seat_of(self, player: str) -> int | None:
        for seat, p in self.players.items():
            if p.player == player:
                return seat
        return None

    # ------------------------------------------------------------- play

    def move(self, seat: int | None, column: object, now: float) -> Effects:
        """``seat`` drops a piece into ``column``."""
        if seat is None:
            return [Refuse("spectators cannot move; only the two seated players do")]
        if self.over:  # (a round lost on time has a board that is not over)
            return [Refuse("the game is over")]
        try:
            cell = self.board.play(seat, column)
        except IllegalMove as exc:
            return [Refuse(str(exc))]
        self.last = cell
        if self.draw_offer == 3 - seat:
            self.draw_offer = None  # moving instead of accepting declines the offer
        if self.board.winner is not None:
            return self._end(self.board.winner, "four", now)
        if self.board.draw:
            return self._end(None, "draw", now)
        self.deadline = now + self.turn_time
        return [Changed()]

    def ask_rematch(self, seat: int | None, now: float) -> Effects:
        """``seat`` wants another round; when both have asked, it starts."""
        if seat is None:
            return [Refuse("spectators cannot ask for a rematch")]
        if not self.over:
            return [Refuse("the round is still being played")]
        self.rematch.add(seat)
        if self.rematch != set(SEATS):
            return [Changed()]
        self.round += 1
        self.board = Connect4(first=1 if self.round % 2 else 2)
        self.winner = self.ended_by = self.last = self.ended_at = self.draw_offer = None
        self.rematch = set()
        self.deadline = now + self.turn_time
        return [Report({"kind": "round", "round": self.round}), Changed()]

    def resign(self, seat: int | None, now: float) -> Effects:
        """``seat`` gives the round up: the other seat wins."""
        refused = self._not_playing(seat, "resign")
        if refused is not None:
            return [refused]
        assert seat is not None
        return self._end(3 - seat, "resign", now)

    def draw(self, seat: int | None, offer: bool, now: float) -> Effects:
        """``seat`` offers a draw (accepting the other's offer ends the round), or, with
        ``offer`` false, withdraws its offer or declines the other's."""
        refused = self._not_playing(seat, "offer a draw")
        if refused is not None:
            return [refused]
        assert seat is not None
        if not offer:
            if self.draw_offer is None:
                return [Refuse("there is no draw offer to withdraw or decline")]
            self.draw_offer = None
            return [Changed()]
        if self.draw_offer == 3 - seat:
            return self._end(None, "agreed", now)
        if self.draw_offer == seat:
            return [Refuse("you have offered a draw already; wait for the answer")]
        self.draw_offer = seat
        return [Changed()]

    def claim_win(self, seat: int | None, now: float) -> Effects:
        """``seat`` claims the round over an opponent who has been away long enough."""
        refused = self._not_playing(seat, "claim the win")
        if refused is not None:
            return [refused]
        assert seat is not None
        wait = self._opponent_wait(seat, now)
        if wait is None:
            return [Refuse("your opponent is here: the win is claimed on the board")]
        if wait > 0:
            return [
                Refuse(
                    "your opponent may be reconnecting; you can claim the win in "
                    f"{math.ceil(wait)} s"
                )
            ]
        return self._end(seat, "claimed", now)

    def abort(self, seat: int | None, now: float) -> Effects:
        """``seat`` calls the round off (no winner, no score): before both players have
        moved, or once the opponent has been away long enough."""
        refused = self._not_playing(seat, "abort the round")
        if refused is not None:
            return [refused]
        assert seat is not None
        wait = self._opponent_wait(seat, now)
        if len(self.board.moves) >= 2 and (wait is None or wait > 0):
            return [
                Refuse(
                    "a round can be aborted before both players have moved, or once your "
                    "opponent has left"
                )
            ]
        return self._end(None, "aborted", now)

    def forfeit(self, seat: int, now: float) -> Effects:
        """``seat``'s player gave their place up (left the lobby): the other seat wins the
        round being played (nothing, if none is)."""
        if self.over:
            return []
        return self._end(3 - seat, "left", now)

    def _not_playing(self, seat: int | None, action: str) -> Refuse | None:
        if seat is None:
            return Refuse(f"spectators cannot {action}; only the two seated players can")
        if self.over:
            return Refuse("the round is over")
        return None

    def _opponent_wait(self, seat: int, now: float) -> float | None:
        """Seconds until ``seat`` may claim against its absent opponent (<= 0: now), or
        None if the opponent is connected."""
        since = self.away.get(3 - seat)
        return None if since is None else since + self.claim_after - now

    # ------------------------------------------------------------- connections

    def connect(self, seat: int) -> Effects:
        """A seat's player connected: if they were away, everyone sees them back."""
        if self.away.pop(seat, None) is None:
            return []
        return [Changed()]

    def disconnect(self, seat: int, now: float) -> Effects:
        """A seat's last connection dropped: the grace period starts (if not already)."""
        self.away.setdefault(seat, now)
        return [Changed()]

    def found_without_sockets(self, connected: set[int], now: float) -> Effects:
        """The game was rebuilt from storage, and only the seats in ``connected`` have an
        open socket: the others count as dropped from now (their node died with it)."""
        dropped = [s for s in SEATS if s not in connected and s not in self.away]
        for seat in dropped:
            self.away[seat] = now
        return [Save()] if dropped else []

    # ------------------------------------------------------------- time

    def next_deadline(self) -> float | None:
        """When ``expire`` next has something to do (None: nothing, the round is over)."""
        if self.over:
            return None
        times = [since + self.grace for since in self.away.values()]
        if self.deadline is not None:
            times.append(self.deadline)
        return min(times) if times else None

    def expire(self, now: float) -> Effects:
        """End the round if a deadline has passed (the earliest decides)."""
        if self.over:
            return []
        gone = {seat: since + self.grace for seat, since in self.away.items()}
        timeout = self.deadline if self.deadline is not None else float("inf")
        first_gone = min(gone.values(), default=float("inf"))
        if min(timeout, first_gone) > now:
            return []
        if timeout <= first_gone:
            return self._end(3 - self.board.turn, "timeout", now)
        if all(gone.get(seat, float("inf")) <= now for seat in SEATS):
            return self._end(None, "abandoned", now)
        left = min(gone, key=lambda seat: gone[seat])
        return self._end(3 - left, "left", now)

    def _end(self, winner: int | None, how: str, now: float) -> Effects:
        self.winner = winner
        self.ended_by = how
        self.ended_at = now
        self.deadline = None
        self.rematch = set()
        self.draw_offer = None
        if winner is not None:
            self.scores[winner] += 1
        return [Report(self.result()), Changed()]

    # ------------------------------------------------------------- views

    def result(self) -> dict[str, Any]:
        """The round's outcome, as reported to the lobby."""
        winner = self.players[self.winner].player if self.winner is not None else None
        return {
            "kind": "result",
            "round": self.round,
            "winner": winner,
            "seat": self.winner,
            "draw": self.ended_by in DRAWN,
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
            "draw": self.ended_by in DRAWN,
            "round": self.round,
            "moves": len(self.board.moves),
            "last": list(self.last) if self.last else None,
            "line": [list(cell) for cell in self.board.line],
            "ended_by": self.ended_by,
            "remaining": None if self.deadline is None else max(0.0, self.deadline - now),
            "turn_time": self.turn_time,
            "players": {
                str(s): {
                    "player": p.player,
                    "name": p.name,
                    "connected": s not in self.away,
                    "away_for": None if s not in self.away else max(0.0, now - self.away[s]),
                }
                for s, p in self.players.items()
            },
            "scores": {str(s): n for s, n in self.scores.items()},
            "rematch": sorted(self.rematch),
            "draw_offer": self.draw_offer,
            "claim_after": self.claim_after,
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
            "draw_offer": self.draw_offer,
        }

    @classmethod
    def load(
        cls, data: dict[str, Any], turn_time: float, grace: float, claim_after: float = 15.0
    ) -> GameRules:
        players = {int(s): Player(p[0], p[1]) for s, p in data["players"].items()}
        match = cls(players, turn_time, grace, claim_after, round=data["round"])
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
        match.draw_offer = data.get("draw_offer")  # (games stored before draws: none)
        return match
