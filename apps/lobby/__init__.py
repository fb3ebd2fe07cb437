"""Game lobby: a live directory, lobbies with seats and a host, server-authoritative
Connect Four, quick play.

``app`` is the App the suite mounts, with settings read from ``LOBBY_*``; ``make_app(config)``
is the same app with other settings (tests use it). docs/lobby.md explains the model.
"""

from __future__ import annotations

from pathlib import Path

from runtime import App

from .config import LobbyConfig
from .directory import Directory
from .game import Game
from .joincode import JoinCode
from .namespaces import CODES, DIRECTORY, GAMES, LOBBIES, QUEUE, THROTTLES
from .quickplay import Matchmaker
from .room import LobbyRoom
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
