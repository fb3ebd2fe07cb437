"""The Board object: the board's rules (BoardRules, rules.py) wired to sockets, storage and
an alarm.

One object per board. Its document lives in memory as a pycrdt ``Doc``; its durable form
is a **snapshot plus a log of updates**:

    snap                       {"gen": g, "parts": n, "bytes": size} (absent: no snapshot yet)
    snap/<g:08d>/<part:05d>    the snapshot's bytes, in parts of at most one storage value
    log/<seq:012d>/<part:05d>  one update per seq, in parts likewise
    held/<key:012d>/<part:05d> an update Yrs holds back until what it depends on arrives

Each update a writer sends is appended to the log in the same event that applies it, so
the output gate holds the broadcast to the others until the write is committed: nobody
sees an edit that a crash could lose. An alarm compacts: once the log passes a count or
size threshold and the board has been quiet a few seconds, it writes the whole document as
a new snapshot generation, then points ``snap`` at it and deletes the old parts and the
folded log, all in one event (one atomic commit). Storage stays proportional to the
document, not to its edit count. The same alarm expires stale presence.

Neither a snapshot nor the document's own encoding of a change carries what Yrs holds back
(an edit made on top of one the board has not received yet): such an update is kept as it
came under ``held/`` until the document has taken it in, so a board loaded from storage is
the board that was never stopped.

Presence (awareness) lives only in memory, like y-websocket's: the class hibernates only
after a minute of quiet, longer than presence lives, so hibernation never loses any.

**View links run on replicas** (docs/replicas.md). The class is replicated, and a view link's
socket watches the board's replica on the node it reached (routes.py): the replica builds
the document from storage like the primary, takes in each committed log update
(``replica_update``) and sends its viewers what the document newly took in, so the primary
sends each stroke once per node, through Redis. Presence crosses by a *bridge* session on
each side (rules.Session.bridge): the primary tells its replicas every presence message it
relays (``tell_replicas``: its editors' and other nodes' viewers'), and a replica hands its
viewers' presence to the primary (``viewers``), which owns them under one bridge session per
node. A replica writes nothing: no log, no alarm; the primary compacts and expires presence.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import ClassVar

from runtime import (
    AlarmInfo,
    Changes,
    DurableObject,
    DurableObjectError,
    Env,
    ObjectContext,
    ObjectWebSocket,
    rpc,
)

from . import protocol
from .config import WhiteboardConfig
from .effects import Broadcast, Close, Effect, Hold, Later, Persist, Release, Send, Snapshot
from .links import VIEW_PREFIX
from .names import BOARDS
from .rules import POLICY, BoardRules

log = logging.getLogger("apps.whiteboard")

SNAPSHOT = "snap"
#: The session a replica's rules give the primary (socket ids start at 1).
PRIMARY = 0
#: y-websocket's message type of presence (the first byte of such a frame).
AWARENESS = 1


def snap_prefix(gen: int) -> str:
    return f"snap/{gen:08d}/"


def log_prefix(seq: int) -> str:
    return f"log/{seq:012d}/"


def held_prefix(key: int) -> str:
    return f"held/{key:012d}/"


def grouped(entries: dict[str, bytes], prefix_length: int) -> dict[str, list[str]]:
    """Stored parts by the update they belong to (the key up to the part number), in order."""
    groups: dict[str, list[str]] = {}
    for key in entries:
        groups.setdefault(key[:prefix_length], []).append(key)
    return groups


class Board(DurableObject):
    """One whiteboard: a CRDT document shared over the y-websocket protocol."""

    hibernate_after: ClassVar[float | None] = 60.0
    replicated: ClassVar[bool] = True

    def __init__(self, ctx: ObjectContext, env: Env) -> None:
        super().__init__(ctx, env)
        self.config = env.app_settings(WhiteboardConfig)
        self.rules = BoardRules(self.config)
        self.sockets: dict[int, ObjectWebSocket] = {}
        self.snapshot: dict[str, int] = {"gen": 0, "parts": 0, "bytes": 0}
        self.log_keys: list[str] = []  # every stored part of the log, oldest first
        self.held_keys: dict[int, list[str]] = {}  # the stored parts of each held update
        self.log_updates = 0
        self.log_bytes = 0
        self.next_seq = 1
        self.last_update = time.time()
        self.alarm_at: float | None = None
        self.compacted_at = 0.0  # when the last snapshot was stored (time.time())
        self.snapshot_due = False  # a Snapshot effect waits for its turn (snapshot_interval)
        self.relay_scheduled = False  # coalesced presence waits for relay_awareness
        # Stored values are capped; big updates and snapshots are split into parts.
        self.part_bytes = env.settings.max_value_bytes - 64
        #: (The primary) the bridge session of each node whose view links send presence.
        self.bridges: dict[str, int] = {}
        if ctx.is_replica:
            self.rules.connect(PRIMARY, read_only=True, bridge=True)
        for ws in self.get_websockets():  # sockets kept open while the board hibernated
            self.sockets[ws.id] = ws
            # (no attachment would be a runtime bug: then the safe side is read-only)
            self.rules.connect(ws.id, bool((ws.attachment or {}).get("ro", True)))
        ctx.block_concurrency_while(self.load)

    async def load(self) -> None:
        """Rebuild the document from the snapshot, then the log, in order."""
        self.snapshot = await self.storage.get(SNAPSHOT) or self.snapshot
        updates: list[bytes] = []
        if self.snapshot["parts"]:
            parts = await self.storage.list(prefix=snap_prefix(self.snapshot["gen"]))
            updates.append(b"".join(parts.values()))
        entries = await self.storage.list(prefix="log/")
        update: list[bytes] = []  # the parts of one update
        last = ""
        for key, part in entries.items():
            seq = key[: len("log/") + 12]
            if seq != last and update:
                updates.append(b"".join(update))
                update = []
            update.append(part)
            last = seq
            self.log_keys.append(key)
        if update:
            updates.append(b"".join(update))
        held: dict[int, bytes] = {}
        parts = await self.storage.list(prefix="held/")
        for prefix, keys in grouped(parts, len(held_prefix(0))).items():
            held[int(prefix[5:17])] = b"".join(parts[k] for k in keys)
            self.held_keys[int(prefix[5:17])] = keys
        await self.apply(self.rules.load(updates, held))
        self.log_updates = len({key[:16] for key in self.log_keys})
        self.log_bytes = self.rules.size - self.snapshot["bytes"]
        if self.log_keys:
            self.next_seq = int(self.log_keys[-1][4:16]) + 1
        self.alarm_at = await self.storage.get_alarm()
        await self.arm()  # a log left long (its node died before compacting) is compacted
        if self.ctx.is_replica:
            self.ctx.wait_until(self.ask_presence())

    # ------------------------------------------------------------- sockets

    async def websocket_connect(self, ws: ObjectWebSocket) -> None:
        """A client joins; view links (checked by the route) get a read-only session."""
        room = dict(ws.request.path_params).get("room", "")
        read_only = room.startswith(VIEW_PREFIX)
        self.accept_websocket(ws)
        ws.attachment = {"ro": read_only}
        self.sockets[ws.id] = ws
        await self.apply(self.rules.connect(ws.id, read_only))

    async def websocket_message(self, ws: ObjectWebSocket, message: str | bytes) -> None:
        """One y-websocket message: sync, awareness or a query."""
        await self.apply(self.rules.receive(ws.id, message, time.time()))

    async def websocket_close(self, ws: ObjectWebSocket, code: int, reason: str) -> None:
        """The client left: its presence goes."""
        await self.forget(ws)

    async def websocket_error(self, ws: ObjectWebSocket, error: Exception) -> None:
        """The runtime dropped the socket (a client that stopped reading): same as leaving."""
        await self.forget(ws)

    async def forget(self, ws: ObjectWebSocket) -> None:
        self.sockets.pop(ws.id, None)
        await self.apply(self.rules.disconnect(ws.id))

    # ------------------------------------------------------------- effects

    async def apply(self, effects: list[Effect]) -> None:
        """Carry out what the rules decided. (A replica stores nothing: its document is the
        primary's, and what it would store the primary stores.)"""
        replica = self.ctx.is_replica
        for effect in effects:
            if replica and isinstance(effect, Persist | Hold | Release | Snapshot):
                continue
            if isinstance(effect, Broadcast) and effect.data[:1] == bytes([AWARENESS]):
                self.bridge(effect)
            if isinstance(effect, Broadcast):
                # Encoded once for every socket; closed ones (Close below) are left out.
                self.broadcast(effect.data, exclude=self.sockets.get(effect.exclude or 0))
            elif isinstance(effect, Send):
                ws = self.sockets.get(effect.session)
                if ws is not None:
                    ws.send(effect.data)
            elif isinstance(effect, Persist):
                await self.append(effect.update)
            elif isinstance(effect, Hold):
                parts = self.split(held_prefix(effect.key), effect.update)
                await self.storage.put_many(parts)
                self.held_keys[effect.key] = list(parts)
            elif isinstance(effect, Release):
                await self.storage.delete_many(
                    [k for key in effect.keys for k in self.held_keys.pop(key, [])]
                )
            elif isinstance(effect, Snapshot) and effect.unreadable:
                log.error("a stored update of a board would not load; storing the board again")
                await self.compact()
            elif isinstance(effect, Snapshot):
                await self.snapshot_soon()
            elif isinstance(effect, Later) and not self.relay_scheduled:
                self.relay_scheduled = True
                self.ctx.wait_until(self.relay_at(effect.at))
            elif isinstance(effect, Close):
                ws = self.sockets.pop(effect.session, None)  # (a bridge has no socket)
                if ws is None:
                    continue
                if effect.code != POLICY:
                    log.info("closing a board socket: %s (%d)", effect.reason, effect.code)
                ws.close(effect.code, effect.reason)
        await self.arm()

    async def append(self, update: bytes) -> None:
        """Add one update to the log (committed before anyone hears of it)."""
        parts = self.split(log_prefix(self.next_seq), update)
        self.next_seq += 1
        await self.storage.put_many(parts)  # (the document has it already: this must not fail)
        self.log_keys.extend(parts)
        self.log_updates += 1
        self.log_bytes += len(update)
        self.last_update = time.time()

    def split(self, prefix: str, update: bytes) -> dict[str, bytes]:
        """An update as stored values of at most one storage value each."""
        return {
            f"{prefix}{i:05d}": update[start : start + self.part_bytes]
            for i, start in enumerate(range(0, max(len(update), 1), self.part_bytes))
        }

    async def relay_at(self, at: float) -> None:
        """Background: when coalesced presence is due, relay it, as an event of its own (a
        replica's at once: it stores nothing, and its other calls would go to the primary)."""
        await asyncio.sleep(max(0.0, at - time.time()))
        self.relay_scheduled = False
        if self.ctx.is_replica:
            await self.apply(self.rules.relay_awareness(time.time()))
            return
        await self.env.namespace(BOARDS).get(self.id).relay_awareness()

    @rpc
    async def relay_awareness(self) -> None:
        """Presence that came faster than it is relayed is due now (the newest of each)."""
        await self.apply(self.rules.relay_awareness(time.time()))

    # ------------------------------------------------------------- replicas

    def bridge(self, effect: Broadcast) -> None:
        """Presence the rules relay crosses to the other side: the primary tells its
        replicas everything it relays; a replica hands the primary its own viewers' (not
        what came from the primary)."""
        if not self.ctx.is_replica:
            self.ctx.tell_replicas(effect.data)
        elif effect.exclude != PRIMARY:
            self.ctx.wait_until(self.hand_over(effect.data))

    async def hand_over(self, message: bytes) -> None:
        """(A replica.) Its viewers' presence, to the primary."""
        try:
            await self.env.namespace(BOARDS).get(self.id).viewers(self.ctx.node_id, message)
        except DurableObjectError as exc:  # (presence is best effort, as in y-websocket)
            log.info("a view link's presence did not reach the board: %s", exc)

    async def ask_presence(self) -> None:
        """(A replica, once loaded.) The presence the primary knows now."""
        try:
            message = await self.env.namespace(BOARDS).get(self.id).presence()
        except DurableObjectError as exc:
            log.info("the board's presence could not be had: %s", exc)
            return
        if message:
            await self.replica_message(message)

    @rpc
    async def viewers(self, node: str, message: bytes) -> None:
        """(From a replica on ``node``.) Its view links' presence: relayed here, and to the
        other replicas, under one bridge session per node."""
        if not isinstance(node, str) or not isinstance(message, bytes):
            return
        session = self.bridges.get(node)
        if session is None:
            session = self.bridges[node] = -(len(self.bridges) + 1)
            self.rules.connect(session, read_only=True, bridge=True)
        await self.apply(self.rules.receive(session, message, time.time()))

    @rpc
    async def presence(self) -> bytes:
        """Every presence state the board knows, as one message (b"" if none)."""
        return self.rules._presence_message() if self.rules.presence else b""

    async def replica_message(self, message: bytes) -> None:
        """(A replica.) Presence the primary relayed: to this node's viewers."""
        await self.apply(self.rules.receive(PRIMARY, message, time.time()))

    async def replica_update(self, changes: Changes) -> None:
        """(A replica.) Updates the primary stored, to the document and this node's
        viewers. Loaded whole again (after missed commits), every viewer gets the whole
        document (a CRDT: what they have already changes nothing)."""
        if changes.reloaded:
            full = protocol.sync(protocol.UPDATE, self.rules.full_state())
            await self.apply([Broadcast(full)])
            return
        keys = sorted(k for k in changes.keys if k.startswith(("log/", "held/")))
        if not keys:
            return  # (a compaction, or an alarm: the document is the same)
        parts = await self.storage.get_many(keys)
        updates = [
            b"".join(parts[k] for k in group if k in parts)
            for group in grouped({k: parts[k] for k in keys if k in parts}, 17).values()
        ]
        await self.apply(self.rules.take_committed(u for u in updates if u))

    # ------------------------------------------------------------- the alarm

    async def snapshot_soon(self) -> None:
        """Store a snapshot now, or at the alarm if one was stored less than
        snapshot_interval ago (the alarm fires well before the board could hibernate)."""
        if time.time() - self.compacted_at >= self.config.snapshot_interval:
            await self.compact()
        else:
            self.snapshot_due = True  # (arm() below puts the alarm at its turn)

    def compaction_due(self, now: float) -> float | None:
        """When compaction should run (None: the log is still small)."""
        config = self.config
        if self.snapshot_due:
            return self.compacted_at + config.snapshot_interval
        if self.log_updates >= config.compact_force_updates:
            return now
        if self.log_updates >= config.compact_updates or self.log_bytes >= config.compact_bytes:
            return self.last_update + config.compact_quiet
        return None

    async def arm(self) -> None:
        """Keep the alarm at the earliest of compaction and presence expiry (the primary's:
        a replica has no alarm)."""
        if self.ctx.is_replica:
            return
        now = time.time()
        due = [t for t in (self.compaction_due(now), self.rules.next_expiry()) if t is not None]
        if not due:
            return  # a stale alarm just finds nothing to do
        when = min(due)
        if self.alarm_at is None or when < self.alarm_at:
            await self.storage.set_alarm(when)
            self.alarm_at = when

    async def alarm(self, info: AlarmInfo) -> None:
        """Expire stale presence; compact the log if it is due."""
        self.alarm_at = None
        now = time.time()
        due = self.compaction_due(now)
        if due is not None and due <= now:
            await self.compact()
        await self.apply(self.rules.expire(now))  # re-arms for what remains

    async def compact(self) -> None:
        """Fold the log into a new snapshot generation (one event: one atomic commit)."""
        state = self.rules.full_state()
        old = self.snapshot
        gen = old["gen"] + 1
        prefix = snap_prefix(gen)
        parts = {
            f"{prefix}{i:05d}": state[start : start + self.part_bytes]
            for i, start in enumerate(range(0, len(state), self.part_bytes))
        }
        await self.storage.put_many(parts)
        self.snapshot = {"gen": gen, "parts": len(parts), "bytes": len(state)}
        await self.storage.put(SNAPSHOT, self.snapshot)
        stale = [f"{snap_prefix(old['gen'])}{i:05d}" for i in range(old["parts"])]
        stale += self.log_keys
        await self.storage.delete_many(stale)
        self.compacted_at = time.time()
        self.snapshot_due = False
        log.info(
            "compacted a board: %d updates (%d bytes) + %d-byte snapshot -> %d bytes",
            self.log_updates,
            self.log_bytes,
            old["bytes"],
            len(state),
        )
        self.log_keys = []
        self.log_updates = 0
        self.log_bytes = 0
        self.rules.size = len(state)

    # ------------------------------------------------------------- introspection

    @rpc
    async def stats(self) -> dict[str, int]:
        """Sizes, for tests, benchmarks and operators."""
        return {
            "log_updates": self.log_updates,
            "log_bytes": self.log_bytes,
            "snapshot_bytes": self.snapshot["bytes"],
            "snapshot_gen": self.snapshot["gen"],
            "held_updates": len(self.rules.held),
            "sessions": len(self.rules.sessions),
            "presence": len(self.rules.presence),
        }

    @rpc
    async def written(self) -> bool:
        """Whether anything was ever stored on this board: a board name is a capability, so
        any name opens a board, and the page tells a never-written one apart ("new and
        empty") from one whose drawing was erased."""
        return bool(self.snapshot["parts"] or self.log_keys)
