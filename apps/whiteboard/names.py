"""The whiteboard's namespaces, declared once (object IDs and stored keys derive from the
names: never rename one)."""

from __future__ import annotations

from runtime import Binding

#: One Board per board (board.py), named by the SHA-256 of its edit name (links.py).
BOARDS = Binding("whiteboard_board")
#: The one object (named "view-links") holding the key view links were signed with before
#: the whiteboard signed them with the runtime's keys (old_view_key.py).
OLD_VIEW_KEYS = Binding("whiteboard_keys")
