"""The GateDirectory object: which room stands in front of which path of another app (one
object per cluster, named "gates"); gates.py has the gate that reads it.

    stored: g/<prefix>   the room's ID (64 hex characters)

A room claims its ``gate_prefix`` here when it takes it, and releases it when it drops it
or is deleted. A claim can outlive its reason (a room whose creation failed after it
claimed, a release that never came), so before a prefix goes to another room, and when a
node's gate finds a room that says it does not hold its prefix, the holder is asked.
"""

from __future__ import annotations

import logging

from runtime import DurableObject, DurableObjectError, Env, InvalidObjectId, ObjectContext, rpc

from .cookies import valid_room
from .names import ROOMS
from .room_settings import SettingsError, normal_prefix

log = logging.getLogger("apps.waiting_room")


class GateDirectory(DurableObject):
    """Which room stands in front of which path (one object, named GATES_NAME)."""

    def __init__(self, ctx: ObjectContext, env: Env) -> None:
        super().__init__(ctx, env)
        self.map: dict[str, str] = {}
        ctx.block_concurrency_while(self.load)

    async def load(self) -> None:
        stored = await self.storage.list(prefix="g/")
        self.map = {k[2:]: str(v) for k, v in stored.items()}

    @rpc
    async def claim(self, prefix: str, room: str) -> bool:
        """Gate ``prefix`` with ``room``; False if another room holds it."""
        try:
            if normal_prefix(prefix) != prefix or not valid_room(room):
                return False
        except SettingsError:
            return False
        holder = self.map.get(prefix)
        if (
            holder is not None
            and holder != room
            and (await self.still_held(prefix, holder) or self.map.get(prefix) != holder)
        ):
            return False  # (or claimed by a third room while the holder answered)
        self.map[prefix] = room
        await self.storage.put(f"g/{prefix}", room)
        return True

    async def still_held(self, prefix: str, holder: str) -> bool:
        """Whether ``holder`` still stands in front of ``prefix``. A claim can outlive its
        reason (a room whose creation failed after it claimed, a release that never came):
        before the prefix goes to another room, the holder is asked."""
        rooms = self.env.namespace(ROOMS)
        try:
            return bool(await rooms.get(rooms.id_from_string(holder)).holds(prefix))
        except InvalidObjectId:
            return False
        except DurableObjectError as exc:
            log.warning("gate %s: its room could not say whether it holds it: %s", prefix, exc)
            return True  # cannot tell: the holder keeps it

    @rpc
    async def release(self, prefix: str, room: str) -> None:
        if isinstance(prefix, str) and self.map.get(prefix) == room:
            del self.map[prefix]
            await self.storage.delete(f"g/{prefix}")

    @rpc
    async def release_others(self, room: str, keep: str | None) -> list[str]:
        """Release every prefix ``room`` holds but ``keep``: what a room sends when its
        admin names its gate (or none), so that a release lost earlier is made good.
        Idempotent; the prefixes released."""
        gone = [p for p, holder in self.map.items() if holder == room and p != keep]
        for prefix in gone:
            del self.map[prefix]
        if gone:
            await self.storage.delete_many([f"g/{p}" for p in gone])
        return gone

    @rpc
    async def clear_stale(self, prefix: str, room: str) -> bool:
        """Drop ``prefix`` if ``room`` still has it here and, asked, says it does not stand
        in front of it (a node's gate found so). Whether it was dropped."""
        if not isinstance(prefix, str) or self.map.get(prefix) != room:
            return False
        if await self.still_held(prefix, room) or self.map.get(prefix) != room:
            return False  # (held after all, or claimed anew while the room answered)
        del self.map[prefix]
        await self.storage.delete(f"g/{prefix}")
        return True

    @rpc
    async def gates(self) -> dict[str, str]:
        return dict(self.map)
