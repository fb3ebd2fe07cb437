"""Waiting pages on read replicas: a page's socket is watched on the replica of the node it
reached, and the room still knows which visitors have a page open.

**On a replica** (:class:`ReplicaPages`), a page connects as it did on the room: its cookie is
read here, a queued visitor's connection is a visit (a call to the room, which keeps their
place and says where they stand), and from then on the page gets its status from this
node's copy of the room: admissions at once, positions in the room's batched, paced passes
(``WaitingRoom.flush_later``), as the replica applies each commit. Every ``presence_interval``
seconds, and shortly after a page opens or closes, the replica reports its set of visitors
with open pages to the room (``WaitingRoom.page_report``).

**On the room** (:class:`RemotePresence`), each node's last report counts while it is fresh
(``presence_ttl``: presence.py), as one open page of each visitor it names
(``RoomRules.attach``/``detach``): a queued visitor's absence starts when no node reports
them any more, or when the report of the node holding their pages goes stale (the node died
or was cut off).

The page's protocol is the room's (waiting_room.py): JSON statuses, close codes, at most
``MAX_PAGES`` per visitor (counted per node on replicas), "this socket only listens".
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any, Protocol

from runtime import Changes, DurableObjectError, ObjectContext, ObjectWebSocket, Storage

from . import replica
from .config import WaitingRoomConfig
from .cookies import valid_visitor
from .effects import ADMITTED_STATUS, Status
from .presence import MAX_REPORT, Delta, Presence
from .rules import ACTIVE, RoomRules

log = logging.getLogger("apps.waiting_room")

VISITOR = "visitor"
#: Open waiting pages (sockets) per visitor: a few tabs, not a flood on one cookie.
MAX_PAGES = 4
#: Close code the waiting page understands (it reloads, once).
NO_COOKIE = 4001
#: The room was deleted (pages say so; they do not reconnect).
DELETED = 4004
#: A page opened or closed is reported this soon (changes within it go in one report).
REPORT_DELAY = 0.2


class Room(Protocol):
    """What pages need of their WaitingRoom (waiting_room.py, which imports this module)."""

    config: WaitingRoomConfig
    ctx: ObjectContext
    rules: RoomRules | None
    admin_hash: str
    pages: dict[str, set[ObjectWebSocket]]
    sent: dict[int, tuple[str, int | None, int | None, bool]]
    flushing: asyncio.Task[Any] | None

    @property
    def storage(self) -> Storage: ...
    async def load(self) -> None: ...
    async def visitor_of(self, ws: ObjectWebSocket) -> tuple[str, str] | None: ...
    def primary(self) -> Any: ...
    def accept_websocket(self, ws: ObjectWebSocket, tags: Any = ()) -> None: ...
    def get_websockets(self, tag: str | None = None) -> list[ObjectWebSocket]: ...
    def send_status(self, ws: ObjectWebSocket, status: Status) -> None: ...
    async def flush_later(self) -> None: ...
    def push_positions(self) -> None: ...


def status_of(answer: dict[str, Any]) -> Status:
    """The status in the room's answer to a visit."""
    return Status(
        str(answer["status"]),
        answer.get("position"),
        answer.get("eta_s"),
        answer.get("paused") is True,
    )


class ReplicaPages:
    """(A replica.) Its waiting pages, and their report to the room."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self.session = secrets.token_hex(8)  # (this instance's reports, in order: presence.py)
        self.seq = 0
        self.wake = asyncio.Event()
        self.reporting: asyncio.Task[Any] | None = None
        #: Visitors whose page is connecting (asking the room where they stand), and those
        #: of them a commit admitted meanwhile: the commit came before their page was here
        #: to be told, and the room's answer is older than it.
        self.connecting: dict[str, int] = {}
        self.admitted_meanwhile: set[str] = set()

    async def connect(self, ws: ObjectWebSocket) -> None:
        """A waiting page connects to this node's replica."""
        room = self.room
        if room.rules is None:
            ws.reject(404, "no such room")
            return
        visitor = await room.visitor_of(ws)
        if visitor is not None and len(room.pages.get(visitor[0], ())) >= MAX_PAGES:
            ws.reject(429, f"at most {MAX_PAGES} waiting pages per visitor")
            return
        status = ADMITTED_STATUS  # (admitted by a node's shard: the site's business)
        if visitor is not None and not visitor[1]:
            try:  # the connection is a visit, as on the room: it keeps a queued place
                answer = await self.ask_room(visitor[0])
            except DurableObjectError as exc:
                ws.reject(503, f"the room is unavailable ({exc.code}); retry")
                return
            if "error" in answer:
                ws.reject(int(answer.get("status", 500)), str(answer["error"]))
                return
            status = status_of(answer)
            if len(room.pages.get(visitor[0], ())) >= MAX_PAGES:  # (opened meanwhile)
                ws.reject(429, f"at most {MAX_PAGES} waiting pages per visitor")
                return
        room.accept_websocket(ws, tags=[VISITOR])
        if visitor is None:
            ws.close(NO_COOKIE, "no valid cookie for this room: reload the page")
            return
        ws.attachment = {"v": visitor[0]}
        room.pages.setdefault(visitor[0], set()).add(ws)
        room.send_status(ws, status)
        self.changed()

    async def ask_room(self, visitor: str) -> dict[str, Any]:
        """The room's answer to a connecting page's visit, or "admitted" if a commit this
        replica applied while the answer was on its way admitted the visitor (that commit's
        news went to the pages already here, and this page was not yet one of them)."""
        self.connecting[visitor] = self.connecting.get(visitor, 0) + 1
        try:
            answer: dict[str, Any] = await self.room.primary().visit(visitor)
        finally:
            self.connecting[visitor] -= 1
            if not self.connecting[visitor]:
                del self.connecting[visitor]
            admitted = visitor in self.admitted_meanwhile
            if visitor not in self.connecting:
                self.admitted_meanwhile.discard(visitor)
        rules = self.room.rules
        record = None if rules is None else rules.visitors.get(visitor)
        if admitted and "error" not in answer and record is not None and record.state == ACTIVE:
            return ADMITTED_STATUS.as_json()  # (unless a later commit ended the session)
        return answer

    async def update(self, changes: Changes) -> None:
        """The primary committed: the replica's rules follow it, and its pages hear of
        admissions at once and of positions in the next paced pass."""
        room = self.room
        if changes.reloaded:  # a new instance, built from the copy by load(), after a gap:
            self.tell_all()  # what the gap held (admissions, too) was told to no page
            return
        if changes.deleted_all:
            room.rules, room.admin_hash = None, ""
            room.pages.clear()
            room.sent.clear()
            for ws in room.get_websockets():
                ws.close(DELETED, "this waiting room was deleted")
            return
        old, now = room.rules, time.time()
        if old is None or replica.needs_rebuild(changes.keys):
            room.rules = None
            await room.load()
            if old is None or room.rules is None:
                return
            replica.keep_recent(old, room.rules, now)
            followed = replica.Followed(replica.admitted_between(old, room.rules), True)
        else:
            keys = sorted(changes.keys)
            values = await room.storage.get_many(keys)
            followed = replica.follow(old, {key: values.get(key) for key in keys}, now)
        for visitor in followed.admitted:
            if visitor in self.connecting:
                self.admitted_meanwhile.add(visitor)
            for ws in room.pages.get(visitor, ()):
                room.send_status(ws, ADMITTED_STATUS)
        if followed.reordered and room.flushing is None and room.pages:
            room.flushing = room.ctx.wait_until(room.flush_later())

    def tell_all(self) -> None:
        """Every page its visitor's status in this copy: admissions now, positions in the
        next paced pass (a new instance has sent nothing yet, so every page is told)."""
        room = self.room
        if room.rules is None:
            return
        for visitor, pages in room.pages.items():
            record = room.rules.visitors.get(visitor)
            if record is not None and record.state == ACTIVE:
                for ws in pages:
                    room.send_status(ws, ADMITTED_STATUS)
        if room.flushing is None and room.pages:  # (positions at the paced rate)
            room.flushing = room.ctx.wait_until(room.flush_later())

    def changed(self) -> None:
        """A page opened or closed: the room hears of it shortly."""
        self.wake.set()
        if self.reporting is None:
            self.reporting = self.room.ctx.wait_until(self.report())

    def visitors(self) -> list[str]:
        """The visitors with a page open here (the runtime's sockets, not this instance's
        memory: an instance replaced by a reload says the same as its successor)."""
        found = {(ws.attachment or {}).get("v") for ws in self.room.get_websockets(VISITOR)}
        return sorted(v for v in found if isinstance(v, str))

    async def report(self) -> None:
        """Report this node's visitors with open pages: soon after a change, and every
        ``presence_interval`` while there are any (then once more, to say there are none)."""
        config = self.room.config
        try:
            while True:
                try:
                    await asyncio.wait_for(self.wake.wait(), config.presence_interval)
                    await asyncio.sleep(REPORT_DELAY)
                except TimeoutError:
                    pass
                self.wake.clear()
                visitors = self.visitors()
                self.seq += 1
                try:
                    await self.room.primary().page_report(
                        self.room.ctx.node_id, self.session, self.seq, visitors
                    )
                except DurableObjectError as exc:  # (the next report says it again)
                    log.info("waiting pages could not be reported to the room: %s", exc)
                    continue
                if not visitors and not self.wake.is_set():
                    return
        finally:
            self.reporting = None


class RemotePresence:
    """(The room.) Pages open on nodes' replicas, as the nodes report them."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self.presence = Presence(room.config.presence_ttl)
        self.expiring: asyncio.Task[Any] | None = None

    def report(self, node: Any, session: Any, seq: Any, visitors: Any) -> bool:
        """A node's report (as it came: checked here). Whether it was taken."""
        if not (
            isinstance(node, str)
            and 0 < len(node) <= 64
            and isinstance(session, str)
            and 0 < len(session) <= 64
            and isinstance(seq, int)
            and not isinstance(seq, bool)
            and isinstance(visitors, list)
            and len(visitors) <= MAX_REPORT
            and all(valid_visitor(v) for v in visitors)
        ):
            return False
        now = time.time()
        self.apply(self.presence.report(node, session, seq, frozenset(visitors), now), now)
        if self.expiring is None and self.presence.nodes:
            self.expiring = self.room.ctx.wait_until(self.expire())
        return True

    def apply(self, delta: Delta, now: float) -> None:
        rules = self.room.rules
        if rules is None:
            return
        for visitor in delta.attached:
            rules.attach(visitor)
        for visitor in delta.detached:
            rules.detach(visitor, now)

    async def expire(self) -> None:
        """Reports that went stale stop counting (their node stopped reporting)."""
        try:
            while (at := self.presence.next_expiry()) is not None:
                await asyncio.sleep(max(0.0, at - time.time()) + 0.01)
                now = time.time()
                self.apply(self.presence.expire(now), now)
        finally:
            self.expiring = None

    def clear(self) -> None:
        """The room was deleted: no report counts any more."""
        self.presence.clear()
