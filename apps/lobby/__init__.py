"""Game lobby: a live directory, lobbies with seats and a host, server-authoritative
Connect Four, quick play.

``app`` is the App the suite mounts, with settings read from ``LOBBY_*``; ``make_app(config)``
is the same app with other settings (tests use it). docs/lobby.md explains the model.

The parts:

    names.py          the namespaces (LOBBIES, GAMES, CODES, DIRECTORY, QUEUE, THROTTLES)
    config.py         LobbyConfig: the app's settings (LOBBY_*)
    protocol.py       reading and writing the JSON messages of every socket
    effects.py        every effect the rules below return (Refuse, Changed, Report, ...)
    rules.py          LobbyRules: members, the host, readiness, starting; sans I/O
    game_rules.py     GameRules: rounds, the turn timer, dropped players; sans I/O
    connect4.py       the board: gravity and four in a row
    lobby_room.py     LobbyRoom: the object that carries LobbyRules' effects out
    game.py           Game: the object that carries GameRules' effects out, and reports
                      results to its lobby
    directory.py      Directory: the live list of public lobbies
    reporter.py       a lobby's reports to the directory
    join_code.py      join codes, and JoinCode: one object per code
    matchmaker.py     Matchmaker: quick play pairs waiting players
    throttle.py       Throttle: one object per address, limiting creation and code tries
    seats.py          signed seat tokens
    routes.py         the page, the JSON API, the sockets
"""

from __future__ import annotations

from pathlib import Path

from runtime import App

from .config import LobbyConfig
from .directory import Directory
from .game import Game
from .join_code import JoinCode
from .lobby_room import LobbyRoom
from .matchmaker import Matchmaker
from .names import CODES, DIRECTORY, GAMES, LOBBIES, QUEUE, THROTTLES
from .routes import routes
from .throttle import Throttle

app = App(
    name="lobby",
    title="Game lobby",
    description="Lobbies with seats, a host and chat; Connect Four played on the server.",
    objects={
        DIRECTORY: Directory,
        LOBBIES: LobbyRoom,
        GAMES: Game,
        CODES: JoinCode,
        QUEUE: Matchmaker,
        THROTTLES: Throttle,
    },
    routes=routes,
    settings=LobbyConfig,
    templates=Path(__file__).parent / "templates",
    static="lobby",
    live={LOBBIES: "lobbies open", GAMES: "games", "sockets": "players online"},
)


def make_app(config: LobbyConfig | None = None) -> App:
    """The lobby with ``config`` (default: read from the environment when mounted)."""
    return app.with_settings(config or LobbyConfig)


__all__ = [
    "Directory",
    "Game",
    "JoinCode",
    "LobbyConfig",
    "LobbyRoom",
    "Matchmaker",
    "Throttle",
    "app",
    "make_app",
]
