"""The lobby's namespaces, declared once (object IDs and stored keys derive from the names:
never rename one), and the names of its one-of-a-kind objects."""

from __future__ import annotations

from runtime import Binding

#: One LobbyRoom per lobby (lobby_room.py; unique IDs).
LOBBIES = Binding("lobby_room")
#: One Game per game (game.py; unique IDs).
GAMES = Binding("lobby_game")
#: One JoinCode per join code (join_code.py; ``id_from_name(code)``).
CODES = Binding("lobby_code")
#: The Directory (directory.py): one object, named DIRECTORY_NAME.
DIRECTORY = Binding("lobby_directory")
DIRECTORY_NAME = "directory"
#: The quick-play Matchmaker (matchmaker.py): one object, named QUEUE_NAME.
QUEUE = Binding("lobby_queue")
QUEUE_NAME = "quickplay"
#: One Throttle per client address (throttle.py; ``id_from_name(address)``): creation and
#: code limits.
THROTTLES = Binding("lobby_throttle")
