"""The reference apps. ``SUITE`` is what ``python -m runtime serve`` mounts by default."""

from __future__ import annotations

from apps.chat import app as chat
from apps.lobby import app as lobby
from apps.waiting_room import app as waiting_room
from apps.whiteboard import app as whiteboard
from examples.counter import app as counter
from runtime import App

#: Apps land here as they are built (chat, whiteboard, waiting room, lobby); the counter is
#: the tutorial's example object.
SUITE: list[App] = [chat, whiteboard, waiting_room, lobby, counter]
