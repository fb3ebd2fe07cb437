"""What the lobby's rules ask their objects to do: every effect ``LobbyRules`` (rules.py)
and ``GameRules`` (game_rules.py) return, in one place.

A rules method takes one input (a player's action, a report, the time) and returns a list
of these, in the order to carry them out; the object (LobbyRoom, Game) does exactly that
and nothing more. A refused input returns ``[Refuse(...)]`` and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# ------------------------------------------------------------------ both


@dataclass(frozen=True, slots=True)
class Refuse:
    """The input is refused, for the words given (the player is shown them); nothing
    changed."""

    reason: str


@dataclass(frozen=True, slots=True)
class Save:
    """Store the state; nobody needs to hear of the change (a lobby closing; members or
    seats found without a socket when the object is rebuilt)."""


@dataclass(frozen=True, slots=True)
class Changed:
    """The state everybody sees changed: store it, send it to everyone (the lobby's members
    and spectators, or the game's players and spectators), keep the alarm on the next
    deadline and, for a lobby, the directory's entry current."""


# ------------------------------------------------------------------ a lobby


@dataclass(frozen=True, slots=True)
class Welcome:
    """``player`` took their place (joined, or came back with their token) on the socket
    that asked: bind the socket to them (their other sockets are closed), send it the
    welcome with their seat token, then the chat history."""

    player: str


@dataclass(frozen=True, slots=True)
class ChatLine:
    """A chat line: keep it (the newest ``chat_history``) and send it to everyone."""

    line: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Kicked:
    """The host removed ``player``: tell their sockets so, and close them (4003)."""

    player: str


@dataclass(frozen=True, slots=True)
class Left:
    """``player`` gave their place up: close their sockets (1000)."""

    player: str


@dataclass(frozen=True, slots=True)
class Forfeit:
    """``player`` left while seated at ``game``, being played: tell the game, so the other
    player wins the round instead of waiting out the grace period."""

    game: str
    player: str


@dataclass(frozen=True, slots=True)
class StartGame:
    """Make a Game for these two players ([player, name] for seat 1, then seat 2), then
    hand its ID to ``LobbyRules.begin``."""

    players: tuple[tuple[str, str], tuple[str, str]]


@dataclass(frozen=True, slots=True)
class ShowGame:
    """Send the game being played (with a seat token to its two players): to every socket
    in the lobby, or only to the socket that asked (``everyone`` false: a member who just
    took their place)."""

    game: str
    everyone: bool = True


# ------------------------------------------------------------------ a game


@dataclass(frozen=True, slots=True)
class Report:
    """Queue ``event`` for the game's lobby (a round's result, or a rematch starting): it
    is stored with the change that caused it, and delivered at least once, in order."""

    event: dict[str, Any]


LobbyEffect = (
    Refuse | Save | Changed | Welcome | ChatLine | Kicked | Left | Forfeit | StartGame | ShowGame
)
GameEffect = Refuse | Save | Changed | Report
