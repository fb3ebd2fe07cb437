"""The JoinCode object: one per join code, holding the lobby that code stands for.

A code is claimed when its lobby is created and released when the lobby closes. Because
each code is its own object (``id_from_name(code)``), two lobbies can never hold the same
code, and looking a code up touches only that code's object, not a shared table.

    stored: lobby   the lobby's ID (64 hex characters); absent while the code is free
"""

from __future__ import annotations

from runtime import DurableObject, rpc


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
