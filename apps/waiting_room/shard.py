"""The RoomShard object: a room's slots on one node (slot leasing, see leasing.py).

With ``slot_leasing`` on, each node that receives visitors of a room has a shard of it,
named ``<room>:<node>``, which it hosts itself (the first node to use a free object hosts
it). The shard admits newcomers into slots and permits it leased from the room, renews the
sessions of the visitors it admitted, and gives slots back. Whatever it cannot decide (the
room has a line, it has no slot left) goes to the room object, which queues or admits.

A visitor's cookie names the node whose shard holds its session, so a later request that
reaches another node is forwarded to that shard like any call to an object.

Storage: ``m`` (held slots, request number, admissions, session length, room and node),
``v/<visitor>`` (session end).
"""

from __future__ import annotations

import logging
import time
from typing import Any

from runtime import AlarmInfo, DurableObject, DurableObjectError, Env, ObjectContext, rpc

from .config import WaitingRoomConfig
from .cookies import valid_room, valid_visitor
from .leasing import Shard
from .names import ROOMS

log = logging.getLogger("apps.waiting_room")


def shard_name(room: str, node: str) -> str:
    return f"{room}:{node}"


class RoomShard(DurableObject):
    """One room's slots on one node."""

    def __init__(self, ctx: ObjectContext, env: Env) -> None:
        super().__init__(ctx, env)
        config = env.app_settings(WaitingRoomConfig)
        self.rules = Shard(lease_seconds=config.lease_seconds, batch=config.lease_batch)
        self.room_id = ""
        self.node = ""
        self.talking = False
        self.alarm_at: float | None = None
        ctx.block_concurrency_while(self.load)

    async def load(self) -> None:
        meta = await self.storage.get("m") or {}
        self.room_id = str(meta.get("room", ""))
        self.node = str(meta.get("node", ""))
        visitors = await self.storage.list(prefix="v/")
        self.rules.restore({k[2:]: float(v) for k, v in visitors.items()}, meta)
        self.alarm_at = await self.storage.get_alarm()

    def bind(self, room: str, node: str) -> bool:
        """Learn which room and node this shard is (its name says so; calls repeat it)."""
        if not valid_room(room) or not isinstance(node, str) or not 0 < len(node) <= 64:
            return False
        if not self.room_id:
            self.room_id, self.node = room, node
            self.rules.meta_dirty = True
        return (self.room_id, self.node) == (room, node)

    def room(self) -> Any:
        return self.env.namespace(ROOMS).get(self.env.namespace(ROOMS).id_from_string(self.room_id))

    # ------------------------------------------------------------ the interface

    @rpc
    async def visit(self, room: str, node: str, visitor: str, join: bool = True) -> dict[str, Any]:
        """A request of a visitor: renew its session here, admit it with a leased slot, or
        let the room decide (queue, or admit with a slot of its own; without ``join``, a
        newcomer is not queued: see WaitingRoom.visit)."""
        if not self.bind(room, node) or not valid_visitor(visitor):
            return {"error": "bad shard call", "status": 400}
        now = time.time()
        if self.rules.renew(visitor, now):
            await self.persist(now)
            return self.admitted()
        if self.rules.wants_lease(time.monotonic()) and not self.talking:
            await self.talk(want=True)
        if self.rules.try_admit(visitor, time.time(), time.monotonic()):
            await self.persist(time.time())
            return self.admitted()
        await self.persist(now)
        answer: dict[str, Any] = await self.room().visit(visitor, bool(join))
        return answer

    @rpc
    async def leave(self, room: str, node: str, visitor: str) -> bool:
        """The visitor leaves: if the room has a line, the slot goes back at once."""
        if not self.bind(room, node) or not valid_visitor(visitor):
            return False
        left = self.rules.leave(visitor)
        await self.settle()
        return left

    @rpc
    async def wipe(self, room: str) -> bool:
        """The room was deleted: forget every session and slot (its visitors' next requests
        reach the room, which no longer exists: 404)."""
        if room != self.room_id:
            return False
        config = self.env.app_settings(WaitingRoomConfig)
        self.rules = Shard(lease_seconds=config.lease_seconds, batch=config.lease_batch)
        await self.storage.delete_all()
        self.alarm_at = None
        self.room_id = self.node = ""
        return True

    async def alarm(self, info: AlarmInfo) -> None:
        """Sessions end; idle slots go back to the room."""
        self.alarm_at = None
        self.rules.expire(time.time())
        await self.settle()

    # ------------------------------------------------------------ helpers

    def admitted(self) -> dict[str, Any]:
        return {
            "status": "admitted",
            "position": None,
            "eta_s": None,
            "first_position": 0,
            "session_duration": self.rules.session_duration,
            "holder": self.node,
        }

    async def settle(self) -> None:
        """Give free slots back when the room needs them or this shard is idle."""
        if self.room_id and self.rules.should_return(time.monotonic()) and not self.talking:
            await self.talk(want=False)
        await self.persist(time.time())

    async def talk(self, want: bool) -> None:
        """One request to the room at a time: figures, slots given back, slots wanted."""
        self.talking = True
        sent = time.monotonic()
        request = self.rules.request(sent, want)
        try:
            answer = await self.room().lease(self.node, request)
        except DurableObjectError as exc:  # lost or refused: the next request corrects it
            log.warning(
                "shard %s of %s: lease request failed: %s", self.node, self.room_id[:12], exc
            )
            answer = None
        finally:
            self.talking = False
        if isinstance(answer, dict) and "error" not in answer:
            self.rules.apply(answer, sent)

    async def persist(self, now: float) -> None:
        """Store what changed and keep the alarm on the next expiry or return."""
        rules = self.rules
        dirty, rules.dirty = rules.dirty, set()
        puts: dict[str, Any] = {f"v/{v}": rules.visitors[v] for v in dirty if v in rules.visitors}
        gone = [f"v/{v}" for v in dirty if v not in rules.visitors]
        if rules.meta_dirty:
            rules.meta_dirty = False
            puts["m"] = {**rules.meta(), "room": self.room_id, "node": self.node}
        items = list(puts.items())
        for i in range(0, len(items), 128):
            await self.storage.put_many(dict(items[i : i + 128]))
        for i in range(0, len(gone), 128):
            await self.storage.delete_many(gone[i : i + 128])
        wake = rules.next_wake(now, time.monotonic())
        if wake is None:
            if self.alarm_at is not None:
                await self.storage.delete_alarm()
                self.alarm_at = None
        elif self.alarm_at is None or abs(self.alarm_at - wake) > 0.05:
            self.alarm_at = max(wake, now + 0.01)
            await self.storage.set_alarm(self.alarm_at)
