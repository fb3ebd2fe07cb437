"""The lobby app's namespaces (object classes registered under these names)."""

from __future__ import annotations

#: One LobbyRoom per lobby (unique IDs).
LOBBIES = "lobby_room"
#: One Game per game (unique IDs).
GAMES = "lobby_game"
#: One JoinCode per join code (``id_from_name(code)``).
CODES = "lobby_code"
#: The Directory (one object, named DIRECTORY_NAME).
DIRECTORY = "lobby_directory"
DIRECTORY_NAME = "directory"
#: The quick-play Matchmaker (one object, named QUEUE_NAME).
QUEUE = "lobby_queue"
QUEUE_NAME = "quickplay"
#: One Throttle per client address (``id_from_name(address)``): creation and code limits.
THROTTLES = "lobby_throttle"
