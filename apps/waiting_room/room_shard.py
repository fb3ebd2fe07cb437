"""The RoomShard object: a room's slots on one node (slot leasing), its rules (ShardRules,
leasing.py) wired to storage, an alarm and the room.

With ``slot_leasing`` on, each node that receives visitors of a room has a shard of it,
named ``<room>:<node>``, which it hosts itself (the first node to use a free object hosts
it). The shard admits newcomers into slots and permits it leased from the room, renews the
sessions of the visitors it admitted, and gives slots back. Whatever it cannot decide (the
room has a line, it has no slot left) goes to the room object, which queues or admits.

A visitor's cookie names the node whose shard holds its session, so a later request that
reaches another node is forwarded to that shard like any call to an object.

Storage: ``m`` (held slots, request number, admissions, session length, room and node),
``v/<visitor>`` (session end): what ShardRules' effects store.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from runtime import AlarmInfo, DurableObject, DurableObjectError, Env, ObjectContext, Stub, rpc

from .config import WaitingRoomConfig
from .cookies import valid_room, valid_visitor
from .effects import Ask, Delete, InSlot, Left, ShardEffect, Store
from .leasing import ShardRules
from .names import ROOMS

log = logging.getLogger("apps.waiting_room")


def shard_name(room: str, node: str) -> str:
    return f"{room}:{node}"


def in_slot(effects: list[ShardEffect]) -> bool:
    """Whether the rules answered that the visitor holds a slot here."""
    return any(isinstance(e, InSlot) for e in effects)


class RoomShard(DurableObject):
    """One room's slots on one node."""

    def __init__(self, ctx: ObjectContext, env: Env) -> None:
        super().__init__(ctx, env)
        self.config = env.app_settings(WaitingRoomConfig)
        self.rules = self.new_rules()
        self.talking = False
        self.alarm_at: float | None = None
        ctx.block_concurrency_while(self.load)

    def new_rules(self) -> ShardRules:
        return ShardRules(lease_seconds=self.config.lease_seconds, batch=self.config.lease_batch)

    async def load(self) -> None:
        meta = await self.storage.get("m") or {}
        visitors = await self.storage.list(prefix="v/")
        self.rules.restore({k[2:]: float(v) for k, v in visitors.items()}, meta)
        self.alarm_at = await self.storage.get_alarm()

    def bind(self, room: str, node: str) -> bool:
        """Whether a call naming ``room`` and ``node`` is for this shard (its name says so;
        calls repeat it)."""
        if not valid_room(room) or not isinstance(node, str) or not 0 < len(node) <= 64:
            return False
        return self.rules.bind(room, node)

    def room(self) -> Stub:
        rooms = self.env.namespace(ROOMS)
        return rooms.get(rooms.id_from_string(self.rules.room))

    # ------------------------------------------------------------ the interface

    @rpc
    async def visit(self, room: str, node: str, visitor: str, join: bool = True) -> dict[str, Any]:
        """A request of a visitor: renew its session here, admit it with a leased slot, or
        let the room decide (queue, or admit with a slot of its own; without ``join``, a
        newcomer is not queued: see RoomRules.visit)."""
        if not self.bind(room, node) or not valid_visitor(visitor):
            return {"error": "bad shard call", "status": 400}
        now = time.time()
        effects = self.rules.renew(visitor, now)
        if in_slot(effects):
            await self.apply(effects, now)
            return self.admitted()
        if self.rules.wants_lease(time.monotonic()) and not self.talking:
            await self.apply(effects, now)  # (before the call below lets other events in)
            effects = await self.talk(want=True)
        effects += self.rules.try_admit(visitor, time.time(), time.monotonic())
        if in_slot(effects):
            await self.apply(effects, time.time())
            return self.admitted()
        await self.apply(effects, now)
        answer: dict[str, Any] = await self.room().visit(visitor, bool(join))
        return answer

    @rpc
    async def leave(self, room: str, node: str, visitor: str) -> bool:
        """The visitor leaves: if the room has a line, the slot goes back at once."""
        if not self.bind(room, node) or not valid_visitor(visitor):
            return False
        effects = self.rules.leave(visitor)
        await self.apply(effects, time.time())
        await self.settle()
        return any(isinstance(e, Left) for e in effects)

    @rpc
    async def wipe(self, room: str) -> bool:
        """The room was deleted: forget every session and slot (its visitors' next requests
        reach the room, which no longer exists: 404)."""
        if room != self.rules.room:
            return False
        self.rules = self.new_rules()
        await self.storage.delete_all()
        self.alarm_at = None
        return True

    async def alarm(self, info: AlarmInfo) -> None:
        """Sessions end; idle slots go back to the room."""
        self.alarm_at = None
        await self.apply(self.rules.expire(time.time()), time.time())
        await self.settle()

    # ------------------------------------------------------------ helpers

    def admitted(self) -> dict[str, Any]:
        return {
            "status": "admitted",
            "position": None,
            "eta_s": None,
            "first_position": 0,
            "session_duration": self.rules.session_duration,
            "holder": self.rules.node,
        }

    async def settle(self) -> None:
        """Give free slots back when the room needs them or this shard is idle."""
        if self.rules.room and self.rules.should_return(time.monotonic()) and not self.talking:
            await self.apply(await self.talk(want=False), time.time())
        else:
            await self.apply([], time.time())

    async def talk(self, want: bool) -> list[ShardEffect]:
        """One request to the room at a time: figures, slots given back, slots wanted; the
        effects of its answer (or of its loss: the next request corrects it)."""
        self.talking = True
        sent = time.monotonic()
        [ask] = self.rules.request(sent, want)
        assert isinstance(ask, Ask)
        try:
            answer = await self.room().lease(self.rules.node, ask.request)
        except DurableObjectError as exc:  # lost or refused: the next request corrects it
            log.warning(
                "shard %s of %s: lease request failed: %s",
                self.rules.node,
                self.rules.room[:12],
                exc,
            )
            answer = None
        finally:
            self.talking = False
        valid = isinstance(answer, dict) and "error" not in answer
        return self.rules.granted(answer if valid else None, sent)

    async def apply(self, effects: list[ShardEffect], now: float) -> None:
        """Carry out what the rules decided (store what changed, in batches of 128), and keep
        the alarm on the next expiry or return."""
        for effect in effects:
            if isinstance(effect, Store):
                items = list(effect.values.items())
                for i in range(0, len(items), 128):
                    await self.storage.put_many(dict(items[i : i + 128]))
            elif isinstance(effect, Delete):
                for i in range(0, len(effect.keys), 128):
                    await self.storage.delete_many(list(effect.keys[i : i + 128]))
        wake = self.rules.next_wake(now, time.monotonic())
        if wake is None:
            if self.alarm_at is not None:
                await self.storage.delete_alarm()
                self.alarm_at = None
        elif self.alarm_at is None or abs(self.alarm_at - wake) > 0.05:
            self.alarm_at = max(wake, now + 0.01)
            await self.storage.set_alarm(self.alarm_at)
