"""Lobby settings: ``LOBBY_<FIELD NAME IN CAPITALS>`` in the environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from runtime import BaseSettings, ConfigurationError


@dataclass(frozen=True)
class LobbyConfig(BaseSettings):
    env_prefix: ClassVar[str] = "LOBBY_"

    #: A dropped player keeps their place (lobby membership, game seat) this long (seconds).
    grace: float = 60.0
    #: Seconds a player has for each move; letting it run out forfeits the round.
    turn_time: float = 30.0
    #: An opponent away this many seconds may be claimed against (a win) or the round
    #: aborted, rather than waiting out the grace period (lichess offers the same).
    claim_after: float = 15.0
    #: A lobby with nobody in it is removed after this many seconds.
    empty_ttl: float = 30.0
    #: A game whose last round ended this many seconds ago (and no rematch) is removed.
    game_ttl: float = 3600.0
    #: The directory gathers changes for this long before pushing them to its pages, so a
    #: busy lobby costs each page one message per tick, not one per change.
    directory_tick: float = 0.05
    #: Lengths, in characters: lobby names, player names, chat messages.
    max_lobby_name: int = 40
    max_player_name: int = 24
    max_chat: int = 300
    #: Chat messages a lobby keeps (and replays to someone who joins).
    chat_history: int = 50
    #: A player may send this many chat messages in any chat_window seconds.
    chat_burst: int = 5
    chat_window: float = 5.0
    #: Any client message larger than this is refused (bytes).
    max_message_bytes: int = 4096
    #: Public lobbies the directory lists at most; creating more is refused until some go.
    max_lobbies: int = 10_000
    #: Lobbies one client address may create: a burst, then this many per minute (0: no
    #: limit, for benchmarks). Past it: 429 with Retry-After (throttle.py).
    create_rate: float = 20.0
    create_burst: int = 10
    #: Join codes one client address may look up: a burst, then this many per minute (0: no
    #: limit). Guessing codes of private lobbies takes millions of tries; this keeps them slow.
    code_rate: float = 60.0
    code_burst: int = 20

    def __post_init__(self) -> None:
        for name in (
            "grace",
            "turn_time",
            "claim_after",
            "empty_ttl",
            "game_ttl",
            "directory_tick",
            "chat_window",
        ):
            if getattr(self, name) <= 0:
                raise ConfigurationError(f"{self.env_name(name)} must be positive")
        for name in ("max_lobby_name", "max_player_name", "max_chat", "chat_burst"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{self.env_name(name)} must be at least 1")
        for name in ("create_rate", "code_rate"):
            if getattr(self, name) < 0:
                raise ConfigurationError(f"{self.env_name(name)} must be >= 0 (0: no limit)")
        for name in ("create_burst", "code_burst"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{self.env_name(name)} must be at least 1")
        if self.chat_history < 0 or self.max_lobbies < 1:
            raise ConfigurationError("LOBBY_CHAT_HISTORY >= 0 and LOBBY_MAX_LOBBIES >= 1")
        if self.max_message_bytes < 256:
            raise ConfigurationError(f"{self.env_name('max_message_bytes')} must be >= 256")
