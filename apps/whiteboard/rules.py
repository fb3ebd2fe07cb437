"""What a board does with y-websocket messages, sans I/O: a pycrdt document plus presence.

``BoardRules`` takes (session, bytes) and returns effects for the Board object (board.py)
to carry out:
``Send`` to one socket, ``Broadcast`` to all but one, ``Persist`` an update to storage,
``Hold`` (store) and ``Release`` (forget) an update Yrs holds back, and ``Close`` one
socket. It never touches a socket, storage or a clock; the caller passes ``now``. That
keeps every rule testable by feeding bytes and checking bytes.

The rules, in the order a client meets them:

- **connect**: the server sends its sync step 1 (its state vector) and every awareness
  state it knows; a read-only session also gets the auth "permission denied" message.
- **sync step 1** from a client: answered with step 2, the update the client lacks.
- **sync step 2 / update** from a writer: applied to the document; what actually changed is
  persisted and sent to every other session, so what is stored always rebuilds what is
  served: the bytes received when Yrs reports taking in exactly those (the common case,
  cheap), else the document's own encoding of its difference from the state before (which
  costs time in proportion to the board). From a read-only session it is dropped.
  Whatever of an update Yrs holds back until its dependencies arrive (an edit made on top
  of one the server has not received yet) is stored as it came (``Hold``) until the
  document has taken it in (``Release``): a board loaded from storage then holds back the
  same, and a restart in between loses nothing. Held updates are offered to the document
  again whenever its state vector moves, so it takes in what a board loaded from storage
  would (Yrs alone may never retry them).
  An update over ``max_update_bytes``, or one that would take the stored board over
  ``max_board_bytes``, closes the socket with 1009 and leaves the board unchanged; an update
  Yrs cannot decode closes it with 1007 (and if Yrs gave up halfway, what it did change is
  stored and sent like any change, so memory and storage never disagree).
- **awareness**: newer clocks win (an equal clock with a null state removes the entry, as
  in y-protocols); accepted entries go to the other sessions, each awareness client's at
  most once per ``awareness_interval``: states that come faster are coalesced, and the
  newest goes out when its turn comes (``Later`` asks to be called then). Removals go at
  once. View-only sessions are held to the same limits. A null only counts from the
  session that introduced the client, so one socket cannot erase another's presence; a
  newer state from another session moves the client there (a tab that reconnected).
- **query awareness**: answered with every known state.
- **disconnect**, and **expiry** of states not refreshed for ``awareness_timeout`` seconds:
  the entries go, and a null state for each goes to everybody else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc, TransactionEvent, get_update

from . import protocol
from .config import WhiteboardConfig
from .effects import Broadcast, Close, Effect, Hold, Later, Persist, Release, Send, Snapshot
from .protocol import AwarenessEntry, MalformedMessage

# Close codes (RFC 6455): which one tells the client what went wrong.
PROTOCOL_ERROR = 1002
UNSUPPORTED = 1003
INVALID_PAYLOAD = 1007
POLICY = 1008
TOO_BIG = 1009

READ_ONLY_REASON = "this link is view-only"
EMPTY_STATE = b"\x00"  # the state vector of a document with nothing in it
EMPTY_UPDATE = b"\x00\x00"  # an update with no items and no deletions
EMPTY_DELETE_SET = b"\x00"  # a delete set naming no client


@dataclass(slots=True)
class Session:
    read_only: bool
    clients: set[int] = field(default_factory=set)  # awareness client IDs it introduced
    #: Speaks for many sockets elsewhere (the primary, to a replica; a node's view links, to
    #: the primary: board.py), checked there: no per-socket limits here.
    bridge: bool = False


@dataclass(slots=True)
class Presence:
    entry: AwarenessEntry
    seen: float  # when it was last refreshed
    owner: int  # the session that speaks for it


def clocks(state_vector: bytes) -> dict[int, int]:
    """A state vector as {client ID: clock} (Yrs does not promise the order of its entries)."""
    reader = protocol.Reader(state_vector)
    return {reader.var_uint(): reader.var_uint() for _ in range(reader.var_uint())}


def _refused_by_yrs(exc: BaseException) -> bool:
    """Whether Yrs refused its input: ValueError (undecodable), RuntimeError (inconsistent,
    found after integrating part of it), or a Yrs panic, which some crafted inputs cause and
    which reaches Python as pyo3's PanicException, a BaseException no module exports."""
    return isinstance(exc, ValueError | RuntimeError) or type(exc).__module__ == "pyo3_runtime"


def _delete_ranges(reader: protocol.Reader) -> dict[int, list[tuple[int, int]]]:
    """A delete set, read to the buffer's end, as {client: sorted (clock, length)}."""
    ranges: dict[int, list[tuple[int, int]]] = {}
    for _ in range(reader.var_uint()):
        client = reader.var_uint()
        ranges.setdefault(client, []).extend(
            (reader.var_uint(), reader.var_uint()) for _ in range(reader.var_uint())
        )
    if reader.pos != len(reader.data):
        raise MalformedMessage("bytes after the delete set")
    return {client: sorted(r) for client, r in ranges.items()}


def _deletes_beyond(state: bytes, deletions: bytes) -> bool:
    """Whether the delete set (an update with no structs) names clocks past the state."""
    known = clocks(state)
    reader = protocol.Reader(deletions)
    if reader.var_uint() != 0:
        return True  # structs the state vector does not cover
    return any(
        start + length > known.get(client, 0)
        for client, ranges in _delete_ranges(reader).items()
        for start, length in ranges
    )


def _same_update(update: bytes, reported: bytes, delete_set: bytes | None) -> bool:
    """Whether Yrs' encoding of a transaction (``reported``: its structs, then
    ``delete_set``) is the update received. Byte for byte, usually; but Yjs writes a delete
    set in descending client order and Yrs in its own, so an erasure of two clients' items
    differs in order only: then the structs must match byte for byte and the delete sets
    as sets of ranges."""
    if update == reported:
        return True
    if delete_set is None or not reported.endswith(delete_set):
        return False
    structs = reported[: len(reported) - len(delete_set)]
    if not update.startswith(structs):
        return False
    try:
        ours = _delete_ranges(protocol.Reader(update[len(structs) :]))
        return ours == _delete_ranges(protocol.Reader(delete_set))
    except MalformedMessage:
        return False


def _pending(update: bytes, state: bytes) -> bool:
    """Whether a document at ``state`` that took ``update`` in still holds part of it back:
    structs past its state vector, or deletions of items it has not seen. (Yrs' difference
    of the update from the state keeps exactly the structs the document lacks, and the
    update's whole delete set.)"""
    try:
        rest = get_update(update, state)
        return _deletes_beyond(state, rest)
    except MalformedMessage:
        return True
    except BaseException as exc:
        if not _refused_by_yrs(exc):
            raise
        return True  # (it was taken in: keeping a copy is the safe side)


def _is_repeat(state: bytes, update: bytes) -> bool:
    """Whether an update that changed nothing only deletes items the document has seen (a
    reconnecting client's step 2 usually is): nothing of it can be held back."""
    try:
        return not _deletes_beyond(state, update)
    except MalformedMessage:
        return False


class BoardRules:
    """One board's document, sessions and awareness."""

    def __init__(self, config: WhiteboardConfig) -> None:
        self.config = config
        self.doc: Doc[Any] = Doc()
        self.sessions: dict[int, Session] = {}
        self.presence: dict[int, Presence] = {}
        #: Bytes of the board's stored form (snapshot + log): what max_board_bytes bounds.
        self.size = 0
        #: What Yrs reported for each transaction since the last look: (update, its delete
        #: set alone; None if pycrdt did not say).
        self._changed: list[tuple[bytes, bytes | None]] = []
        self._subscription = self.doc.observe(self._on_transaction)
        #: Updates Yrs holds back (items and deletions whose dependencies it lacks), by the
        #: key they are stored under (``Hold``), until the document has taken them in:
        #: legitimately for milliseconds (two tabs sharing edits locally), but a writer
        #: could send such updates without end, and Yrs keeps them at up to ten times their
        #: size in memory. Past max_board_bytes / 8 the document is rebuilt without them.
        self.held: dict[int, bytes] = {}
        self._held_bytes = 0
        self._next_hold = 1
        #: When each awareness client's state was last relayed, and the newest state waiting
        #: its turn (with the session it came from, which does not get it back).
        self._relayed: dict[int, float] = {}
        self._waiting: dict[int, tuple[AwarenessEntry, int]] = {}
        #: The document's delete set, encoded: an update that only deletes (even items the
        #: document has not seen yet) changes it and nothing else. None: not known since an
        #: update taken as sent deleted something (see _apply); the next check assumes a change.
        self._deletions: bytes | None = EMPTY_UPDATE
        #: Whether Yrs may hold back, or have reshaped, part of what the document took in:
        #: set by any update not taken exactly as sent (bar a plain repeat) until the
        #: document is next built from storage. While set, every update is checked against
        #: the document (see _apply).
        self._odd = False
        # The whole document as one update, kept until the next change: every new client
        # asks for exactly that (an empty state vector), and a big board takes milliseconds
        # to encode, so a crowd joining at once costs one encoding, not one each.
        self._full: bytes | None = None

    def _on_transaction(self, event: TransactionEvent) -> None:
        # (delete_set is not in pycrdt's typed interface: without it, the update must match
        # byte for byte, and is taken to have deleted something)
        delete_set = getattr(event, "delete_set", None)
        self._changed.append((event.update, delete_set if isinstance(delete_set, bytes) else None))
        self._full = None

    def load(
        self, updates: Iterable[bytes], held: Mapping[int, bytes] | None = None
    ) -> list[Effect]:
        """Apply stored state at activation: the snapshot and the log (``updates``), and the
        updates held back when it was stored (``held``, by key). What is stored already
        makes no effect; what is left: a ``Release`` of the held updates the document has
        taken in whole by now.

        One transaction for the lot: Yrs then integrates and reports once, which takes a
        long log about a third less time than an update at a time. If Yrs refuses the lot
        (a stored update a newer Yrs will not take, say), the document is built again an
        update at a time, leaving out those it refuses, and ``Snapshot(unreadable=True)``
        has the result stored: a board that cannot load would be a board lost.
        """
        updates = list(updates)
        self.held = dict(held or {})
        self._held_bytes = sum(map(len, self.held.values()))
        self._next_hold = max(self.held, default=0) + 1
        everything = [*updates, *self.held.values()]  # (a CRDT: the order does not matter)
        try:
            with self.doc.transaction():
                for update in everything:
                    self.doc.apply_update(update)
            clean = True
        except BaseException as exc:
            if not _refused_by_yrs(exc):
                raise
            self._new_doc()
            for update in everything:
                try:
                    self.doc.apply_update(update)
                except BaseException as again:
                    if not _refused_by_yrs(again):
                        raise
            clean = False
        self.size = sum(len(u) for u in updates)
        self._changed.clear()
        self._full = None
        state = self.doc.get_state()
        self._deletions = self.doc.get_update(state)
        self._odd = not clean or _deletes_beyond(state, self._deletions) or bool(self.held)
        effects: list[Effect] = [] if clean else [Snapshot(unreadable=True)]
        return effects + self._settle(state)  # (held updates the rest has come for)

    def _new_doc(self) -> None:
        self.doc.unobserve(self._subscription)
        self.doc = Doc()
        self._subscription = self.doc.observe(self._on_transaction)

    def take_committed(self, updates: Iterable[bytes]) -> list[Effect]:
        """(A replica.) Updates the primary stored (the log, and those held back): what the
        document newly takes in, to every socket here."""
        before = self.doc.get_state()
        with self.doc.transaction():
            for update in updates:
                try:
                    self.doc.apply_update(update)
                except BaseException as exc:  # (the primary stored it: it took it in)
                    if not _refused_by_yrs(exc):
                        raise
        self._changed.clear()
        self._full = None
        # (what is new since ``before``, and the delete set: a change may only delete)
        return [Broadcast(protocol.sync(protocol.UPDATE, self.doc.get_update(before)))]

    def full_state(self) -> bytes:
        """The whole document as one update: what new clients get and compaction stores."""
        if self._full is None:
            self._full = self.doc.get_update()
        return self._full

    # ------------------------------------------------------------------ sessions

    def connect(self, session: int, read_only: bool, bridge: bool = False) -> list[Effect]:
        """A socket joined: our state vector, everyone's presence, and its rights. (A
        ``bridge`` session carries presence between a board and its replicas: board.py.)"""
        self.sessions[session] = Session(read_only, bridge=bridge)
        effects: list[Effect] = [Send(session, protocol.sync(protocol.STEP1, self.doc.get_state()))]
        if self.presence:
            effects.append(Send(session, self._presence_message()))
        if read_only:
            effects.append(Send(session, protocol.permission_denied(READ_ONLY_REASON)))
        return effects

    def disconnect(self, session: int) -> list[Effect]:
        """A socket left: the presence it introduced goes, and the others hear so."""
        gone = self.sessions.pop(session, None)
        if gone is None:
            return []
        return self._remove([c for c in gone.clients if self._owned_by(c, session)])

    def receive(self, session: int, data: str | bytes, now: float) -> list[Effect]:
        """One frame from a session."""
        if session not in self.sessions:
            return []  # closed by us while the frame was on its way
        if isinstance(data, str):
            return self._close(session, UNSUPPORTED, "y-websocket frames are binary")
        try:
            message = protocol.decode(data)
        except MalformedMessage as exc:
            return self._close(session, PROTOCOL_ERROR, f"malformed message: {exc}")
        if isinstance(message, protocol.Sync):
            if message.step == protocol.STEP1:
                return self._answer_step1(session, message.data)
            return self._apply(session, message.data)
        if isinstance(message, protocol.Awareness):
            return self._awareness(session, message.entries, now)
        if isinstance(message, protocol.QueryAwareness):
            return [Send(session, self._presence_message())]
        return []  # auth: only servers send it; a client's is harmless and ignored

    def expire(self, now: float) -> list[Effect]:
        """Drop presence not refreshed for awareness_timeout seconds."""
        cutoff = now - self.config.awareness_timeout
        return self._remove([c for c, p in self.presence.items() if p.seen <= cutoff])

    def next_expiry(self) -> float | None:
        """When the oldest presence entry expires (None when there is none)."""
        if not self.presence:
            return None
        return min(p.seen for p in self.presence.values()) + self.config.awareness_timeout

    # ------------------------------------------------------------------ sync

    def _answer_step1(self, session: int, state_vector: bytes) -> list[Effect]:
        try:
            update = (
                self.full_state()
                if state_vector == EMPTY_STATE
                else self.doc.get_update(state_vector)
            )
        except BaseException as exc:
            if not _refused_by_yrs(exc):
                raise
            return self._close(session, INVALID_PAYLOAD, "invalid state vector")
        return [Send(session, protocol.sync(protocol.STEP2, update))]

    def _apply(self, session: int, update: bytes) -> list[Effect]:
        if self.sessions[session].read_only:
            return []  # the auth message told it; its edits go nowhere
        if len(update) > self.config.max_update_bytes:
            limit = self.config.max_update_bytes
            return self._close(session, TOO_BIG, f"update larger than {limit} bytes")
        if self.size + len(update) > self.config.max_board_bytes:
            limit = self.config.max_board_bytes
            return self._close(session, TOO_BIG, f"the board is full ({limit} bytes)")
        before = self.doc.get_state()
        refused = False
        try:
            self.doc.apply_update(update)
        except BaseException as exc:
            if not _refused_by_yrs(exc):
                raise
            refused = True  # (what Yrs integrated before it gave up is kept, stored, sent)
        if (
            not (refused or self._odd)
            and len(self._changed) == 1
            and _same_update(update, *self._changed[0])
        ):
            return self._took_as_sent(session, update)
        effects = self._take_changes(session, update, before, keep=not refused)
        if refused:
            self._odd = True
            effects.extend(self._close(session, INVALID_PAYLOAD, "not a Yjs update"))
        return effects

    def _took_as_sent(self, session: int, update: bytes) -> list[Effect]:
        """Store and send an update the document took in exactly as it came.

        The common case, and the cheap one: Yrs reported one transaction whose encoding is
        the update received (a browser's own transaction; see _same_update), on a document
        that has taken in nothing odd since it was built from storage, so nothing is held
        back to be released. Replaying those bytes on the state they met rebuilds the same
        document, so they are what is stored. The general path below asks the document for
        its difference, which costs time in proportion to the whole board (Yrs walks every
        item for the delete set); after anything odd it is the only path, as a precaution
        (``_odd``)."""
        if self._changed[0][1] != EMPTY_DELETE_SET:
            self._deletions = None  # (it deleted known items: the delete set moved)
        self._changed = []
        self._full = None
        self.size += len(update)
        return [Persist(update), Broadcast(protocol.sync(protocol.UPDATE, update), exclude=session)]

    def _take_changes(
        self, session: int, update: bytes, before: bytes, keep: bool = True
    ) -> list[Effect]:
        """Store and send what applying ``update`` changed in the document (and, if
        ``keep``, the update itself while Yrs holds part of it back: not one it refused).

        What is stored is the document's own encoding of the difference (every struct past
        the state before, and its deletions), not the bytes received nor what Yrs reports
        for the transaction: a crafted update can make those differ from what the document
        took in, and then a restart would not rebuild the board it served."""
        if self.held and clocks(self.doc.get_state()) != clocks(before):
            self._reoffer_held()
        reported = any(change != EMPTY_UPDATE for change, _ in self._changed)
        self._changed = []
        state = self.doc.get_state()
        deletions = self.doc.get_update(state)  # (no structs: only the delete set)
        if self._deletions is None:
            # Not known since a cheap update deleted something: an update Yrs reported
            # nothing for that only deletes seen items (a reconnecting page's step 2)
            # cannot have moved it; anything else may have.
            deleted = reported or not _is_repeat(state, update)
        else:
            deleted = deletions != self._deletions
        self._deletions = deletions
        if not (reported or deleted) and clocks(state) == clocks(before):
            # Nothing new (a repeat, an empty step 2), or held back by Yrs until its
            # dependencies arrive: then it is stored as it came, until they do.
            self._odd = self._odd or not _is_repeat(state, update)
            return self._hold(update, state) if keep else []
        change = self.doc.get_update(before)
        self._odd = True
        self._full = None
        self.size += len(change)
        effects: list[Effect] = [
            Persist(change),
            Broadcast(protocol.sync(protocol.UPDATE, change), exclude=session),
        ]
        if deleted and _deletes_beyond(state, deletions):
            # Deletions of items the document has not seen: Yrs keeps them in a form its
            # own encoding of a difference does not carry. Only a snapshot stores it.
            effects.append(Snapshot())
        # What came before may be in now; what of this update is not yet is kept.
        effects += self._settle(state)
        if keep:
            effects += self._hold(update, state)
        return effects

    def _hold(self, update: bytes, state: bytes) -> list[Effect]:
        """Keep a stored copy of ``update`` if Yrs holds any of it back (see ``Hold``)."""
        if not _pending(update, state) or update in self.held.values():
            return []
        if self._held_bytes + len(update) > self.config.max_board_bytes // 8:
            return self._drop_unintegrated()
        key = self._next_hold
        self._next_hold += 1
        self.held[key] = update
        self._held_bytes += len(update)
        self._odd = True
        return [Hold(key, update)]

    def _reoffer_held(self) -> None:
        """Apply the held updates again, until the document takes in nothing more of them.

        Yrs retries what it holds back only when the client it found missing advances. If
        that is a client no page will ever send (a forged origin), the hold never ends in
        this document, even after the items in the way arrive from elsewhere; while a board
        loaded from storage applies the same held copy after its log, skips the items it
        has, and takes in the rest. Offered again whenever the state vector moves (the only
        thing that decides what of them can be taken in), they are taken in here as they
        would be there, and stored like any change (the caller's difference)."""
        state = self.doc.get_state()
        while True:
            try:
                with self.doc.transaction():
                    for update in self.held.values():
                        self.doc.apply_update(update)
            except BaseException as exc:
                if not _refused_by_yrs(exc):
                    raise
                # (each was taken once before; if Yrs now gives up halfway, what it took in
                # is a change like any other, which the caller stores)
            again = self.doc.get_state()
            if clocks(again) == clocks(state):
                return
            state = again

    def _settle(self, state: bytes) -> list[Effect]:
        """Release the held updates the document (at ``state``) has taken in whole."""
        done = tuple(key for key, update in self.held.items() if not _pending(update, state))
        for key in done:
            self._held_bytes -= len(self.held.pop(key))
        return [Release(done)] if done else []

    def _drop_unintegrated(self) -> list[Effect]:
        """Rebuild the document from its own encoding, which leaves out what Yrs holds back,
        and forget the held updates (their stored copies too)."""
        state = self.full_state()
        self._new_doc()
        self.doc.apply_update(state)  # (it is all stored already)
        self._changed.clear()
        self._full = state
        state_vector = self.doc.get_state()
        self._deletions = self.doc.get_update(state_vector)
        self._odd = _deletes_beyond(state_vector, self._deletions)
        dropped = tuple(self.held)
        self.held.clear()
        self._held_bytes = 0
        return [Release(dropped)] if dropped else []

    # ------------------------------------------------------------------ awareness

    def _awareness(
        self, session: int, entries: tuple[AwarenessEntry, ...], now: float
    ) -> list[Effect]:
        config = self.config
        accepted: list[AwarenessEntry] = []
        owned = self.sessions[session].clients
        bridge = self.sessions[session].bridge
        for entry in entries:
            if not bridge and len(entry.state.encode()) > config.max_awareness_state_bytes:
                limit = config.max_awareness_state_bytes
                return self._close(session, TOO_BIG, f"awareness state over {limit} bytes")
            known = self.presence.get(entry.client)
            if known is not None and known.owner != session:
                # Another socket speaks for this client. Only a newer, non-null state moves
                # it here: a tab that reconnected while its old socket still looks open
                # re-announces itself so; a null from elsewhere never erases it.
                if entry.gone or entry.clock <= known.entry.clock:
                    continue
                previous = self.sessions.get(known.owner)
                if previous is not None:
                    previous.clients.discard(entry.client)
            if entry.client not in owned:
                if entry.gone:
                    continue  # removing what we never had
                if not bridge and len(owned) >= config.max_awareness_clients:
                    return self._close(session, POLICY, "too many awareness clients on a socket")
            newer = known is None or entry.clock > known.entry.clock
            removal = known is not None and entry.clock == known.entry.clock and entry.gone
            if not (newer or removal):
                continue
            if entry.gone:
                self.presence.pop(entry.client, None)
                owned.discard(entry.client)
            else:
                self.presence[entry.client] = Presence(entry, now, session)
                owned.add(entry.client)
            accepted.append(entry)
        return self._relay(session, accepted, now)

    def _relay(self, session: int, entries: list[AwarenessEntry], now: float) -> list[Effect]:
        """Relay what is due now; keep the newest of the rest waiting for its turn."""
        due: list[AwarenessEntry] = []
        interval = self.config.awareness_interval
        for entry in entries:
            last = self._relayed.get(entry.client)
            if entry.gone or last is None or now - last >= interval:
                self._waiting.pop(entry.client, None)
                self._relayed[entry.client] = now
                if entry.gone:
                    del self._relayed[entry.client]
                due.append(entry)
            else:
                self._waiting[entry.client] = (entry, session)
        effects: list[Effect] = []
        if due:
            effects.append(Broadcast(protocol.awareness(due), exclude=session))
        if self._waiting:
            turn = min(self._relayed[c] for c in self._waiting) + interval
            effects.append(Later(turn))
        return effects

    def relay_awareness(self, now: float) -> list[Effect]:
        """Relay the waiting states whose turn has come."""
        interval = self.config.awareness_interval
        ready = [c for c in self._waiting if now - self._relayed[c] >= interval]
        by_session: dict[int, list[AwarenessEntry]] = {}
        for client in ready:
            entry, session = self._waiting.pop(client)
            self._relayed[client] = now
            if self.presence.get(client) is not None:  # (not removed meanwhile)
                by_session.setdefault(session, []).append(entry)
        effects: list[Effect] = [
            Broadcast(protocol.awareness(entries), exclude=session)
            for session, entries in by_session.items()
        ]
        if self._waiting:
            turn = min(self._relayed[c] for c in self._waiting) + interval
            effects.append(Later(turn))
        return effects

    def _remove(self, clients: list[int]) -> list[Effect]:
        if not clients:
            return []
        gone = []
        for client in clients:
            presence = self.presence.pop(client)
            self._waiting.pop(client, None)
            self._relayed.pop(client, None)
            # The same clock with a null state: y-protocols removes an entry on that.
            gone.append(AwarenessEntry(client, presence.entry.clock, "null"))
            session = self.sessions.get(presence.owner)
            if session is not None:
                session.clients.discard(client)
        return [Broadcast(protocol.awareness(gone))]

    def _owned_by(self, client: int, session: int) -> bool:
        presence = self.presence.get(client)
        return presence is not None and presence.owner == session

    def _presence_message(self) -> bytes:
        return protocol.awareness([p.entry for p in self.presence.values()])

    def _close(self, session: int, code: int, reason: str) -> list[Effect]:
        return [Close(session, code, reason), *self.disconnect(session)]
