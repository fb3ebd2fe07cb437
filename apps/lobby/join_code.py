"""Join codes: six characters a person can read aloud and type without confusion, and the
JoinCode object, one per code, holding the lobby that code stands for.

The alphabet leaves out the characters people mix up on a screen or a phone keyboard:
0 and O, 1, I and L. That leaves 31 characters, so 31**6 (about 887 million) codes: picked
at random, two live lobbies almost never draw the same one, and the JoinCode object makes
sure they never *hold* the same one.

A code is claimed when its lobby is created and released when the lobby closes. Because
each code is its own object (``id_from_name(code)``), two lobbies can never hold the same
code, and looking a code up touches only that code's object, not a shared table.

    stored: lobby   the lobby's ID (64 hex characters); absent while the code is free
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from runtime import DurableObject, rpc

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 6
#: What people type between groups of characters ("ABC-DEF", "abc def"); ignored.
_SEPARATORS = str.maketrans("", "", " -_.")


def new_code(choice: Callable[[str], str] = secrets.choice) -> str:
    """A random code (``choice`` picks one character; tests pass a seeded one)."""
    return "".join(choice(ALPHABET) for _ in range(LENGTH))


def normalize(text: object) -> str | None:
    """The code ``text`` spells (case and separators ignored), or None if it spells none."""
    if not isinstance(text, str) or len(text) > 4 * LENGTH:
        return None
    code = text.translate(_SEPARATORS).upper()
    if len(code) != LENGTH or any(c not in ALPHABET for c in code):
        return None
    return code


class JoinCode(DurableObject):
    """One join code."""

    @rpc
    async def claim(self, lobby: str) -> bool:
        """Take the code for ``lobby``; False if another lobby holds it (pick another code).
        Claiming again for the same lobby is fine (a retried call)."""
        holder = await self.storage.get("lobby")
        if holder is not None and holder != lobby:
            return False
        await self.storage.put("lobby", lobby)
        return True

    @rpc
    async def lookup(self) -> str | None:
        """The lobby this code stands for, if any."""
        holder = await self.storage.get("lobby")
        return str(holder) if holder is not None else None

    @rpc
    async def release(self, lobby: str) -> None:
        """``lobby`` closed: the code is free again (a release by anyone else is ignored)."""
        if await self.storage.get("lobby") == lobby:
            await self.storage.delete_all()
