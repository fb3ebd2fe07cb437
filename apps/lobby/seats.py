"""Seat tokens: who a socket is, signed so that only this app can have made it.

A token names one place and one player in it:

- ``Seat("lobby", <lobby id>, <player>, 0)``: membership of a lobby, handed out in the
  ``welcome`` message and presented again with ``{"type": "resume"}``;
- ``Seat("game", <game id>, <player>, 1 | 2)``: a seat at a game, handed out with the
  ``game`` message and presented as ``?token=`` on the game's socket.

The token is the player's whole identity on reconnect, through any node: every node signs
and checks with the same key (``env.signing_key("lobby/seats")``). Tokens do not expire by
themselves; a seat ends when its place forgets the player (left, kicked, grace run out).
Signing is itsdangerous' (HMAC-SHA1 over a URL-safe JSON payload, salted per use).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from itsdangerous import BadData, URLSafeSerializer

PURPOSE = "lobby/seats"
MAX_TOKEN = 512

Kind = Literal["lobby", "game"]


@dataclass(frozen=True, slots=True)
class Seat:
    """What a valid token says."""

    kind: Kind
    place: str  # the lobby's or the game's object ID (64 hex characters)
    player: str
    seat: int  # 0 in a lobby; 1 or 2 at a game


class SeatSigner:
    """Makes and reads tokens with one key."""

    def __init__(self, key: bytes) -> None:
        self._serializer = URLSafeSerializer(key, salt="lobby-seat")

    def sign(self, seat: Seat) -> str:
        return str(self._serializer.dumps([seat.kind, seat.place, seat.player, seat.seat]))

    def read(self, token: object) -> Seat | None:
        """The seat a token names, or None for anything not made by ``sign`` with this key."""
        if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN:
            return None
        try:
            data = self._serializer.loads(token)
        except (BadData, ValueError, UnicodeError):
            return None
        if not (isinstance(data, list) and len(data) == 4):
            return None
        kind, place, player, seat = data
        if kind not in ("lobby", "game") or not isinstance(place, str):
            return None
        if not isinstance(player, str) or type(seat) is not int:
            return None
        if seat not in ((0,) if kind == "lobby" else (1, 2)):
            return None
        return Seat(kind, place, player, seat)
