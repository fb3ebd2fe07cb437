"""The Directory object: the live list of public lobbies, pushed to every page showing it.

One object (named ``"directory"``). Each public lobby reports its summary whenever what
the list shows changes (players, status), with a revision number, and asks to be removed
when it closes. Private lobbies never report.

    stored: l/<lobby id>   {"summary": {...}, "rev": n}

Pages connect to ``/lobby/ws/directory`` and get::

    {"type": "lobbies", "lobbies": [{"lobby", "name", "players", "max_players", "status"}, ...]}
    {"type": "lobby", "lobby": {...}}        a lobby was added or changed
    {"type": "removed", "lobby": "<id>"}     a lobby closed

**Replicas.** The directory is read by every page, so it is replicated (docs/replicas.md):
``listing`` and ``count`` are read-only calls that run on the replica of the node a request
reached, and each page's socket is a watcher of that replica (``stub.watch``). A replica
learns of each committed report in ``replica_update`` and pushes it to its own pages the
same way, coalesced per tick: the primary sends each change once per node, through Redis.

**Coalescing.** Changes are gathered for ``directory_tick`` seconds (50 ms by default) and
pushed then, one message per lobby that changed, with its latest summary: a lobby whose
players join, ready and leave within one tick costs each page one message, and the work per
report is constant (no pass over the whole list). Reports carry the lobby's revision, so
one that arrives late (after a newer one, or after the removal) changes nothing.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from runtime import Changes, DurableObject, Env, ObjectContext, ObjectWebSocket, rpc

from .config import LobbyConfig
from .protocol import encode, error

#: The tag of the sockets of pages showing the list.
WATCH = "watch"
#: Removed lobbies remembered (in memory) so a late report cannot bring one back.
MAX_TOMBSTONES = 10_000


class Directory(DurableObject):
    """The public lobbies, in the order they were created."""

    replicated = True

    def __init__(self, ctx: ObjectContext, env: Env) -> None:
        super().__init__(ctx, env)
        self.config = env.app_settings(LobbyConfig)
        self.lobbies: dict[str, dict[str, Any]] = {}  # id -> summary (with "lobby": id)
        self.revs: dict[str, int] = {}
        self.removed: OrderedDict[str, int] = OrderedDict()  # id -> rev at removal
        self.pending: dict[str, dict[str, Any] | None] = {}  # id -> summary (None: removed)
        self.flushing = False
        ctx.block_concurrency_while(self.load)

    async def load(self) -> None:
        entries = await self.storage.list(prefix="l/")
        for key, entry in entries.items():
            lobby = key[2:]
            self.lobbies[lobby] = {"lobby": lobby, **entry["summary"]}
            self.revs[lobby] = entry["rev"]

    # ------------------------------------------------------------- reports from lobbies

    @rpc
    async def update(self, lobby: str, summary: dict[str, Any], rev: int) -> None:
        """A public lobby's summary, as of its revision ``rev``."""
        if rev <= max(self.revs.get(lobby, 0), self.removed.get(lobby, 0)):
            return  # a late report: something newer is known already
        entry = {"lobby": lobby, **summary}
        self.lobbies[lobby] = entry
        self.revs[lobby] = rev
        await self.storage.put(f"l/{lobby}", {"summary": summary, "rev": rev})
        self.push(lobby, entry)

    @rpc
    async def remove(self, lobby: str, rev: int) -> None:
        """A lobby closed (``rev``: its last revision)."""
        self.removed[lobby] = max(rev, self.removed.get(lobby, 0))
        self.removed.move_to_end(lobby)
        while len(self.removed) > MAX_TOMBSTONES:
            self.removed.popitem(last=False)
        if self.lobbies.pop(lobby, None) is None:
            return
        self.revs.pop(lobby, None)
        await self.storage.delete(f"l/{lobby}")
        self.push(lobby, None)

    # ------------------------------------------------------------- questions

    @rpc(readonly=True)
    async def listing(self) -> list[dict[str, Any]]:
        """Every public lobby, oldest first."""
        return list(self.lobbies.values())

    @rpc(readonly=True)
    async def count(self) -> int:
        return len(self.lobbies)

    # ------------------------------------------------------------- on a replica

    async def replica_update(self, changes: Changes) -> None:
        """(Replicas.) The primary committed reports: the list here follows, and this
        node's pages hear of each change as the primary's would have."""
        if changes.reloaded or changes.deleted_all:
            self.lobbies, self.revs = {}, {}
            await self.load()
            every = {"type": "lobbies", "lobbies": list(self.lobbies.values())}
            self.broadcast(encode(every), tag=WATCH)
            return
        for key in sorted(k for k in changes.keys if k.startswith("l/")):
            lobby, entry = key[2:], await self.storage.get(key)
            if entry is None:
                if self.lobbies.pop(lobby, None) is not None:
                    self.revs.pop(lobby, None)
                    self.push(lobby, None)
                continue
            summary = {"lobby": lobby, **entry["summary"]}
            self.lobbies[lobby] = summary  # (a new one goes last, as on the primary)
            self.revs[lobby] = entry["rev"]
            self.push(lobby, summary)

    # ------------------------------------------------------------- pages

    async def websocket_connect(self, ws: ObjectWebSocket) -> None:
        """A page showing the list: the whole list now, changes from then on."""
        self.accept_websocket(ws, tags=[WATCH])
        ws.send(encode({"type": "lobbies", "lobbies": list(self.lobbies.values())}))

    async def websocket_message(self, ws: ObjectWebSocket, message: str | bytes) -> None:
        """Pages only listen here."""
        ws.send(error("this socket only sends the list of lobbies; it takes no messages"))

    def push(self, lobby: str, entry: dict[str, Any] | None) -> None:
        """Queue a change for the next tick (a newer change of the same lobby replaces it)."""
        self.pending[lobby] = entry
        if not self.flushing:
            self.flushing = True
            self.ctx.wait_until(self.flush_after_tick())

    async def flush_after_tick(self) -> None:
        """Push what changed during the tick: one message per lobby, its latest summary.
        (The messages pass the output gate: no page hears of a change before it is stored.)"""
        try:
            await asyncio.sleep(self.config.directory_tick)
        finally:
            self.flushing = False
        pending, self.pending = self.pending, {}
        for lobby, entry in pending.items():
            if entry is None:
                self.broadcast(encode({"type": "removed", "lobby": lobby}), tag=WATCH)
            else:
                self.broadcast(encode({"type": "lobby", "lobby": entry}), tag=WATCH)
