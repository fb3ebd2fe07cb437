"""The WaitingRoom object: one room's rules (RoomRules, rules.py) wired to storage, alarms
and sockets.

One object per room decides every admission, so the count is strongly consistent however
many nodes visitors arrive through (with slot leasing, it lends slots to per-node shards and
still keeps the limits: leasing.py).

Storage:

    cfg         the room's settings (room_settings.RoomSettings as a dict)
    admin       SHA-256 of the admin token (the token itself is never stored)
    seq         the next queue ticket
    adm         {"w": rate window buckets, "n": admissions so far}
    ev          {"started": bool}: the scheduled event's start was handled
    v/<id>      a visitor: [state, ticket, session end, first position]
    l/<shard>   a shard's lease (leasing.ShardLease)

Sockets (``/r/<room>/ws`` for visitors, ``/admin/<room>/ws`` for the admin page, whose
protocol admin.py has):

    visitor   server -> client   {"status", "position", "eta_s"} on connect and on change
              (the client sends nothing; a message closes the socket with 1008; without a
              valid cookie it is closed with 4001; at most MAX_PAGES per visitor, 429 beyond)

Queue positions are pushed in batches: a change marks the line, and a moment later one pass
over the line sends each open page its new status, only if it changed (O(n) per batch,
however many changes the batch covers). The moment is ``push_interval``, stretched so that a
room sends at most ``push_rate`` updates a second (10,000 pages: a batch every 2 s), so the
cost of pushing stays flat as the line grows. Admissions are pushed at once.

Replicas (docs/waiting-room.md, "Read replicas"): status reads run on the replica of the
node a request reached (replica.py), and so do waiting pages, which each node's replica
reports to the room (pages.py); the admin page's socket stays here. A room too big for a
replica serves its pages here, as it always did.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
from typing import Any

from starlette.requests import cookie_parser

from runtime import (
    AlarmInfo,
    Changes,
    CloseCode,
    DurableObject,
    DurableObjectError,
    Env,
    ObjectContext,
    ObjectWebSocket,
    rpc,
)

from . import replica, room_settings
from .admin import AdminPages, encode
from .config import WaitingRoomConfig
from .cookies import PURPOSE, cookie_name, signer_for, valid_visitor
from .effects import (
    ADMITTED_STATUS,
    Admitted,
    Delete,
    Granted,
    Left,
    Reordered,
    RoomEffect,
    Status,
    Store,
    Told,
)
from .gates import OPERATOR_ONLY
from .leasing import check_request
from .names import GATES, GATES_NAME, ROOMS, SHARDS
from .pages import DELETED, MAX_PAGES, NO_COOKIE, VISITOR, RemotePresence, ReplicaPages
from .room_settings import RoomSettings, SettingsError
from .room_shard import shard_name
from .rules import LEASE_PREFIX, VISITOR_PREFIX, RoomRules

log = logging.getLogger("apps.waiting_room")

__all__ = ["DELETED", "MAX_PAGES", "NO_COOKIE", "VISITOR", "WaitingRoom", "token_hash"]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class WaitingRoom(DurableObject):
    """One waiting room."""

    #: Status reads (figures, settings) run on the replica of the node a request reached
    #: (replica.py); every decision still goes to this one live instance.
    replicated = True
    #: Rebuilding a room reads every queued visitor: keep it in memory while pages are open.
    hibernate_after = 600.0

    def __init__(self, ctx: ObjectContext, env: Env) -> None:
        super().__init__(ctx, env)
        self.config = env.app_settings(WaitingRoomConfig)
        self.rules: RoomRules | None = None
        self.admin_hash = ""
        self.pages: dict[str, set[ObjectWebSocket]] = {}  # visitor -> open waiting pages
        # the last status sent to each socket: (status, position, eta, paused)
        self.sent: dict[int, tuple[str, int | None, int | None, bool]] = {}
        self.admin = AdminPages(self)
        self.alarm_at: float | None = None
        self.flushing: asyncio.Task[Any] | None = None
        #: The gate prefix being claimed ("" for none) while a change of it is under way.
        self.claiming: str | None = None
        #: Waiting pages on replicas (pages.py): a replica's own, the room's record of all.
        self.replica_pages = ReplicaPages(self) if ctx.is_replica else None
        self.remote = RemotePresence(self)
        ctx.block_concurrency_while(self.load)

    async def load(self) -> None:
        """The room as stored, and the pages still open across hibernation."""
        cfg = await self.storage.get("cfg")
        if cfg is None:
            return
        rules = self.start(RoomSettings.from_dict(cfg), time.time())
        self.admin_hash = str(await self.storage.get("admin", ""))
        meta = await self.storage.get_many(["seq", "adm", "ev"])
        visitors = await self.storage.list(prefix=VISITOR_PREFIX)
        leases = await self.storage.list(prefix=LEASE_PREFIX)
        rules.restore(
            ((k[2:], v) for k, v in visitors.items()),
            meta,
            {k[2:]: v for k, v in leases.items()},
        )
        if self.ctx.is_replica:
            replica.seed_recent(rules, time.time())
        self.alarm_at = await self.storage.get_alarm()
        for ws in self.get_websockets(VISITOR):
            visitor = (ws.attachment or {}).get("v")
            if isinstance(visitor, str):
                self.pages.setdefault(visitor, set()).add(ws)
                rules.attach(visitor)
        if self.replica_pages is not None and self.pages:
            self.replica_pages.changed()  # (a new instance: the room hears of its pages)

    def start(self, settings: RoomSettings, now: float) -> RoomRules:
        lease = self.config.lease_seconds
        self.rules = RoomRules(
            settings,
            now=now,
            rng=random.SystemRandom(),  # a lottery nobody can predict
            window_span=60.0 + lease if settings.slot_leasing else 60.0,
            queue_timeout=self.config.queue_timeout,
            lease_seconds=lease,
        )
        return self.rules

    # ------------------------------------------------------------ the interface

    @rpc
    async def create(self, settings: dict[str, Any], admin_hash: str) -> dict[str, Any]:
        """Make this room (once): settings already checked by the route. The room is stored
        before it claims its gate, so a claim never points at a room that was not made."""
        if self.rules is not None:
            return {"error": "this room exists already", "status": 409}
        checked = room_settings.create(settings)
        now = time.time()
        self.start(checked, now)
        self.admin_hash = admin_hash
        await self.storage.put_many({"cfg": checked.as_dict(), "admin": admin_hash})
        if checked.gate_prefix:
            claimed = False
            try:
                claimed = await self.claim_gate(checked.gate_prefix)
            finally:
                if not claimed:  # (refused, or failed: the room was never made)
                    self.rules = None
                    self.admin_hash = ""
                    await self.storage.delete_many(["cfg", "admin"])
            if not claimed:
                return {"error": f"{checked.gate_prefix} is gated by another room", "status": 409}
        assert self.rules is not None
        await self.apply(self.rules.tick(now), now)  # (what it stores from the start)
        return {"settings": checked.as_dict()}

    @rpc(readonly=True)
    async def info(self) -> dict[str, Any] | None:
        """Settings and figures as committed (None: no such room); the alarms keep them
        moving, so a read changes nothing and may run on a replica."""
        return None if self.rules is None else replica.figures_at(self.rules, time.time())

    @rpc
    async def primary_info(self) -> dict[str, Any] | None:
        """The same as ``info``, always from the room itself: for rooms whose admissions of
        the last minute a replica cannot count (slot leasing, passthrough: replica.py)."""
        return await self.info()

    @rpc
    async def settings(self) -> dict[str, Any] | None:
        """The settings alone (pages cache them for their texts)."""
        return None if self.rules is None else self.rules.settings.as_dict()

    @rpc
    async def mode(self) -> dict[str, Any] | None:
        """What routes need to know before deciding (it never changes)."""
        if self.rules is None:
            return None
        return {"slot_leasing": self.rules.settings.slot_leasing}

    @rpc
    async def authorize(self, token: str) -> dict[str, Any]:
        """Why ``token`` may not change this room ({} if it may): asked before a change's
        body is read, so a wrong token gets 403 whatever it sent."""
        if self.rules is None:
            return {"error": "no such room", "status": 404}
        if not self.admin_ok(token):
            return {"error": "wrong admin token", "status": 403}
        return {}

    @rpc
    async def configure(
        self, token: str, changes: dict[str, Any], operator: bool = False
    ) -> dict[str, Any]:
        """New settings, live, for the holder of the admin token (and a new gate prefix
        only if the request carried the operator's authority too)."""
        if self.rules is None:
            return {"error": "no such room", "status": 404}
        if not self.admin_ok(token):
            return {"error": "wrong admin token", "status": 403}
        try:
            new = room_settings.change(self.rules.settings, changes)
        except SettingsError as exc:
            return {**exc.as_json(), "status": 422}
        if new.gate_prefix == self.rules.settings.gate_prefix:
            await self.set_settings(new)  # (no await of another object yet: nothing interleaves)
            if "gate_prefix" in changes and self.claiming is None:
                # The admin names the gate the room has (or none): a release lost earlier is
                # sent again, so the directory holds this room under that prefix alone.
                return await self.release_gates(new.gate_prefix, new)
            return {"settings": new.as_dict()}
        if new.gate_prefix is not None and not operator:
            return {"error": OPERATOR_ONLY, "field": "gate_prefix", "status": 403}
        if self.claiming is not None:
            error = "another change of gate_prefix is under way; retry"
            return {"error": error, "field": "gate_prefix", "status": 409}
        return await self.move_gate(new.gate_prefix, changes)

    async def move_gate(self, prefix: str | None, changes: dict[str, Any]) -> dict[str, Any]:
        """Claim ``prefix`` (None: no gate), take the changes, then release any other prefix.
        Calls to the directory let other events in: one gate change at a time (``claiming``),
        and the changes are applied to the settings as they are after the calls, so a change
        acknowledged meanwhile is kept."""
        assert self.rules is not None
        self.claiming = prefix or ""
        try:
            if prefix and not await self.claim_gate(prefix):
                return {"error": f"{prefix} is gated by another room", "status": 409}
            assert self.rules is not None
            try:
                new = room_settings.change(self.rules.settings, changes)
            except SettingsError as exc:  # a change made meanwhile does not go with this one
                if prefix:
                    await self.gates().release(prefix, self.id.hex)
                return {**exc.as_json(), "status": 422}
            await self.set_settings(new)
        finally:
            self.claiming = None
        return await self.release_gates(prefix, new)

    async def release_gates(self, keep: str | None, new: RoomSettings) -> dict[str, Any]:
        """Have the directory drop every prefix of this room but ``keep`` (its gate now).
        If it cannot be reached, the admin is told (503) and may send the change again: a
        gate left in the directory would keep gating the app (until a node's gate asks
        this room, which says it does not hold it, and clears it)."""
        self.claiming = keep or ""  # (a claim sent meanwhile could be released with the rest)
        try:
            await self.gates().release_others(self.id.hex, keep)
        except DurableObjectError as exc:
            log.warning("could not release the gates of room %s: %s", self.id.hex[:12], exc)
            error = (
                "the settings are saved, but the gate directory could not be told to drop "
                "this room's old gate; send the change again"
            )
            return {"error": error, "field": "gate_prefix", "status": 503}
        finally:
            self.claiming = None
        return {"settings": new.as_dict()}

    async def set_settings(self, new: RoomSettings) -> None:
        """Take ``new`` settings: stored, applied, shown on admin pages."""
        assert self.rules is not None
        now = time.time()
        effects = self.rules.update(new, now)
        await self.storage.put("cfg", new.as_dict())
        await self.apply(effects, now)
        self.admin.settings_changed(new)

    @rpc
    async def delete(self, token: str) -> dict[str, Any]:
        """Delete the room, for the holder of the admin token: its gate is dropped first
        (if the directory cannot be told, nothing is deleted: 503, retry), then every open
        page is closed (4004), the shards of a slot-leasing room are wiped, and everything
        stored goes. The room's URLs answer 404 from then on."""
        if self.rules is None:
            return {"error": "no such room", "status": 404}
        if not self.admin_ok(token):
            return {"error": "wrong admin token", "status": 403}
        if self.claiming is not None:
            return {"error": "a change of gate_prefix is under way; retry", "status": 409}
        try:
            await self.gates().release_others(self.id.hex, None)
        except DurableObjectError as exc:
            log.warning("could not release the gates of room %s: %s", self.id.hex[:12], exc)
            error = "the gate directory could not be told to drop this room's gate; retry"
            return {"error": error, "field": "gate_prefix", "status": 503}
        if self.rules is None:  # (deleted meanwhile by another call)
            return {"deleted": True}
        shards = list(self.rules.ledger.shards)
        self.remote.clear()
        self.rules = None
        self.admin_hash = ""
        self.pages.clear()
        self.sent.clear()
        for ws in self.get_websockets():
            ws.close(DELETED, "this waiting room was deleted")
        await self.storage.delete_all()
        self.alarm_at = None
        for node in shards:  # (a shard not told keeps nothing it can admit with for long)
            try:
                await (
                    self.env.namespace(SHARDS)
                    .get_by_name(shard_name(self.id.hex, node))
                    .wipe(self.id.hex)
                )
            except DurableObjectError as exc:
                log.warning("could not wipe shard %s of room %s: %s", node, self.id.hex[:12], exc)
        log.info("deleted waiting room %s", self.id.hex[:12])
        return {"deleted": True}

    @rpc
    async def holds(self, prefix: str) -> bool:
        """Whether this room stands (or is about to stand) in front of ``prefix``: the gate
        directory asks before it gives a prefix this room holds to another room."""
        if self.rules is None:
            return False
        return prefix in (self.rules.settings.gate_prefix, self.claiming)

    @rpc
    async def visit(self, visitor: str, join: bool = True) -> dict[str, Any]:
        """A visitor's request: renew, tell their place, or decide for a newcomer (without
        ``join``, a newcomer who cannot be admitted at once is turned away: RoomRules.visit)."""
        if self.rules is None:
            return {"error": "no such room", "status": 404}
        if not valid_visitor(visitor):
            return {"error": "bad visitor", "status": 400}
        now = time.time()
        effects = self.rules.visit(visitor, now, join)
        await self.apply(effects, now)
        told = next(e for e in effects if isinstance(e, Told))
        return {
            **told.status.as_json(),
            "first_position": told.first_position,
            "session_duration": self.rules.settings.session_duration,
            "holder": "",
        }

    @rpc
    async def leave(self, visitor: str) -> bool:
        """The visitor leaves; an admitted one's slot goes to the line at once."""
        if self.rules is None or not valid_visitor(visitor):
            return False
        now = time.time()
        effects = self.rules.leave(visitor, now)
        await self.apply(effects, now)
        return any(isinstance(e, Left) for e in effects)

    @rpc
    async def lease(self, shard: str, request: dict[str, Any]) -> dict[str, Any]:
        """A node's shard asks for slots and permits (and gives back what it does not use)."""
        if self.rules is None or not self.rules.settings.slot_leasing:
            return {"error": "this room does not lease slots", "status": 409}
        if not isinstance(shard, str) or not 0 < len(shard) <= 64:
            return {"error": "bad shard name", "status": 400}
        try:
            checked = check_request(request)
        except ValueError as exc:
            return {"error": str(exc), "status": 400}
        now = time.time()
        effects = self.rules.lease(shard, checked, now)
        await self.apply(effects, now)
        return next(e.answer for e in effects if isinstance(e, Granted))

    async def replica_update(self, changes: Changes) -> None:
        """(Replicas.) The primary committed: the rules here follow (replica.py), and this
        node's waiting pages hear of it (pages.py)."""
        assert self.replica_pages is not None
        await self.replica_pages.update(changes)

    @rpc
    async def page_report(self, node: str, session: str, seq: int, visitors: list[str]) -> bool:
        """(From a node's replica.) The visitors with a waiting page open there: they count
        as present while the report is fresh (pages.py)."""
        if self.rules is None or self.ctx.is_replica:
            return False
        return self.remote.report(node, session, seq, visitors)

    def primary(self) -> Any:
        """This room's stub (from a replica: the room itself)."""
        return self.env.namespace(ROOMS).get(self.id)

    # ------------------------------------------------------------ time

    async def alarm(self, info: AlarmInfo) -> None:
        """Sessions end, the event starts, the rate window reopens: whatever is due."""
        if self.rules is None:
            return
        self.alarm_at = None  # (it fired: the runtime clears it)
        now = time.time()
        await self.apply(self.rules.tick(now), now)

    async def apply(self, effects: list[RoomEffect], now: float) -> None:
        """Carry out what the rules decided: store what changed, push admissions, schedule
        the positions' push; then keep the alarm on the next moment the rules have
        something to do (checked every time: an alarm that found nothing due, sessions
        renewed meanwhile, changes nothing, yet the next expiry still needs one)."""
        changed = False
        for effect in effects:
            if isinstance(effect, Store):
                await self.storage.put_many(effect.values)  # (storage splits big batches)
                changed = True
            elif isinstance(effect, Delete):
                await self.storage.delete_many(list(effect.keys))
                changed = True
            elif isinstance(effect, Admitted):
                for ws in self.pages.get(effect.visitor, ()):
                    self.send_status(ws, ADMITTED_STATUS)
                changed = True
            elif isinstance(effect, Reordered):
                if self.flushing is None and self.pages:
                    self.flushing = self.ctx.wait_until(self.flush_later())
                changed = True
        if changed:
            self.admin.sample(now, force=False)
        await self.rearm(now)

    async def rearm(self, now: float) -> None:
        """Keep the alarm on the next moment the rules have something to do."""
        assert self.rules is not None
        wake = self.rules.next_wake(now)
        if wake is None:
            if self.alarm_at is not None:
                await self.storage.delete_alarm()
                self.alarm_at = None
            return
        wake = max(wake, now + 0.01)
        if self.alarm_at is None or abs(self.alarm_at - wake) > 0.05:
            await self.storage.set_alarm(wake)
            self.alarm_at = wake

    # ------------------------------------------------------------ visitor pages

    async def websocket_connect(self, ws: ObjectWebSocket) -> None:
        """A waiting page (or, with ``admin_of`` in the path, an admin page) connects."""
        if self.replica_pages is not None:
            await self.replica_pages.connect(ws)
            return
        if self.rules is None:
            ws.reject(404, "no such room")
            return
        if "admin_of" in dict(ws.request.path_params):  # the admin page's route
            self.admin.connect(ws, time.time())
            return
        visitor = await self.visitor_of(ws)
        if visitor is not None and len(self.pages.get(visitor[0], ())) >= MAX_PAGES:
            ws.reject(429, f"at most {MAX_PAGES} waiting pages per visitor")
            return  # (the page goes on asking over HTTP, and tries again later)
        self.accept_websocket(ws, tags=[VISITOR])
        if visitor is None:
            ws.close(NO_COOKIE, "no valid cookie for this room: reload the page")
            return
        assert self.rules is not None
        now = time.time()
        # Admitted by a node's shard, the visitor is the site's business, not this line's.
        effects = [] if visitor[1] else self.rules.visit(visitor[0], now)
        status = next((e.status for e in effects if isinstance(e, Told)), ADMITTED_STATUS)
        ws.attachment = {"v": visitor[0]}
        self.pages.setdefault(visitor[0], set()).add(ws)
        self.rules.attach(visitor[0])
        await self.apply(effects, now)
        self.send_status(ws, status)

    async def visitor_of(self, ws: ObjectWebSocket) -> tuple[str, str] | None:
        """(visitor, holder) from the handshake's cookie, if it is valid for this room."""
        # Read as browsers send them and as HTTP requests read them (Starlette's parser):
        # SimpleCookie stops at the first cookie it cannot parse (say, another site's
        # prefs={"a": 1}) and drops ours with it, while every HTTP request found it.
        text = cookie_parser(ws.request.header("cookie") or "").get(cookie_name(self.id.hex))
        if not text:
            return None
        signer = signer_for(await self.env.signing_key(PURPOSE))
        found = signer.read(text, self.id.hex, time.time())
        return None if found is None else (found.visitor, found.holder)

    def send_status(self, ws: ObjectWebSocket, status: Status) -> None:
        """Send a page its status, unless it already shows it (waits within a margin)."""
        last = self.sent.get(ws.id)
        if (
            last is not None
            and last[0] == status.status
            and last[1] == status.position
            and last[3] == status.paused
        ):
            eta, before = status.eta_s, last[2]
            if eta == before or (
                eta is not None and before is not None and abs(eta - before) < max(5, before / 10)
            ):
                return
        self.sent[ws.id] = (status.status, status.position, status.eta_s, status.paused)
        ws.send(encode(status.as_json()))

    async def flush_later(self) -> None:
        """Push every open page its status, once per ``push_interval`` at most, and no more
        often than ``push_rate`` updates per second allow for this many pages."""
        pages = sum(len(p) for p in self.pages.values())
        delay = max(self.config.push_interval, pages / self.config.push_rate)
        try:
            await asyncio.sleep(delay)
        finally:
            self.flushing = None
        self.push_positions()

    def push_positions(self) -> None:
        """One pass over the line: each open page gets its new status if it changed."""
        if self.rules is None or not self.pages:
            return
        pages = self.pages
        for visitor, status in self.rules.positions(time.time()):
            for ws in pages.get(visitor, ()):
                self.send_status(ws, status)

    async def websocket_message(self, ws: ObjectWebSocket, message: str | bytes) -> None:
        """Visitors' pages say nothing (one that talks is closed: each message would cost the
        room an event); an admin page's first message is its token."""
        if VISITOR in ws.tags:
            ws.close(CloseCode.POLICY_VIOLATION, "this socket only listens")
            self.forget(ws)
            return
        self.admin.message(ws, message)

    async def websocket_close(self, ws: ObjectWebSocket, code: int, reason: str) -> None:
        """A page closed: a queued visitor without open pages starts their absence."""
        self.forget(ws)

    async def websocket_error(self, ws: ObjectWebSocket, error: Exception) -> None:
        self.forget(ws)

    def forget(self, ws: ObjectWebSocket) -> None:
        self.sent.pop(ws.id, None)
        visitor = (ws.attachment or {}).get("v")
        if not isinstance(visitor, str) or self.rules is None:
            return
        pages = self.pages.get(visitor)
        if pages is not None and ws in pages:
            pages.discard(ws)
            if not pages:
                del self.pages[visitor]
            if self.replica_pages is not None:
                self.replica_pages.changed()  # (the room counts this node's report)
            else:
                self.rules.detach(visitor, time.time())

    # ------------------------------------------------------------ helpers

    def admin_ok(self, token: str) -> bool:
        """Constant-time comparison of the token's hash with the stored one."""
        if not self.admin_hash or not isinstance(token, str) or len(token) > 256:
            return False
        return hmac.compare_digest(token_hash(token), self.admin_hash)

    def gates(self) -> Any:
        return self.env.namespace(GATES).get_by_name(GATES_NAME)

    async def claim_gate(self, prefix: str) -> bool:
        try:
            return bool(await self.gates().claim(prefix, self.id.hex))
        except DurableObjectError as exc:
            log.warning("could not claim gate %s: %s", prefix, exc)
            raise
