"""What a board does with y-websocket messages, sans I/O: a pycrdt document plus presence.

``BoardRules`` takes (session, bytes) and returns effects for ``board.py`` to carry out:
``Send`` to one socket, ``Broadcast`` to all but one, ``Persist`` an update to storage, and
``Close`` one socket. It never touches a socket, storage or a clock; the caller passes
``now``. That keeps every rule testable by feeding bytes and checking bytes.

The rules, in the order a client meets them:

- **connect**: the server sends its sync step 1 (its state vector) and every awareness
  state it knows; a read-only session also gets the auth "permission denied" message.
- **sync step 1** from a client: answered with step 2, the update the client lacks.
- **sync step 2 / update** from a writer: applied to the document; what actually changed is
  persisted and sent to every other session. From a read-only session it is dropped.
  An update over ``max_update_bytes``, or one that would take the stored board over
  ``max_board_bytes``, closes the socket with 1009 and leaves the board unchanged; an update
  Yrs cannot decode closes it with 1007 (and if Yrs gave up halfway, what it did change is
  stored and sent like any change, so memory and storage never disagree).
- **awareness**: newer clocks win (an equal clock with a null state removes the entry, as
  in y-protocols); accepted entries go to the other sessions. A null only counts from the
  session that introduced the client, so one socket cannot erase another's presence; a
  newer state from another session moves the client there (a tab that reconnected).
- **query awareness**: answered with every known state.
- **disconnect**, and **expiry** of states not refreshed for ``awareness_timeout`` seconds:
  the entries go, and a null state for each goes to everybody else.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc, TransactionEvent

from . import protocol
from .config import WhiteboardConfig
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


@dataclass(frozen=True, slots=True)
class Send:
    session: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Broadcast:
    data: bytes
    exclude: int | None = None


@dataclass(frozen=True, slots=True)
class Persist:
    update: bytes


@dataclass(frozen=True, slots=True)
class Close:
    session: int
    code: int
    reason: str


Effect = Send | Broadcast | Persist | Close


@dataclass(slots=True)
class Session:
    read_only: bool
    clients: set[int] = field(default_factory=set)  # awareness client IDs it introduced


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


class BoardRules:
    """One board's document, sessions and awareness."""

    def __init__(self, config: WhiteboardConfig) -> None:
        self.config = config
        self.doc: Doc[Any] = Doc()
        self.sessions: dict[int, Session] = {}
        self.presence: dict[int, Presence] = {}
        #: Bytes of the board's stored form (snapshot + log): what max_board_bytes bounds.
        self.size = 0
        self._changed: list[bytes] = []
        self._subscription = self.doc.observe(self._on_transaction)
        #: Bytes of updates that changed nothing (yet). Yrs keeps what it cannot integrate
        #: (items and deletions whose dependencies it lacks) in memory, unstored, until the
        #: rest arrives: legitimately for milliseconds (two tabs sharing edits locally), but
        #: a writer could send such updates without end, at up to ten times their size in
        #: memory. Past max_board_bytes / 8 the document is rebuilt without them.
        self._unintegrated = 0
        # The whole document as one update, kept until the next change: every new client
        # asks for exactly that (an empty state vector), and a big board takes milliseconds
        # to encode, so a crowd joining at once costs one encoding, not one each.
        self._full: bytes | None = None

    def _on_transaction(self, event: TransactionEvent) -> None:
        self._changed.append(event.update)
        self._full = None

    def load(self, updates: Iterable[bytes]) -> None:
        """Apply stored state at activation (no effects: it is already stored).

        One transaction for the lot: Yrs then integrates and reports once, which takes a
        long log about a third less time than an update at a time.
        """
        with self.doc.transaction():
            for update in updates:
                self.doc.apply_update(update)
                self.size += len(update)
        self._changed.clear()

    def full_state(self) -> bytes:
        """The whole document as one update: what new clients get and compaction stores."""
        if self._full is None:
            self._full = self.doc.get_update()
        return self._full

    # ------------------------------------------------------------------ sessions

    def connect(self, session: int, read_only: bool) -> list[Effect]:
        """A socket joined: our state vector, everyone's presence, and its rights."""
        self.sessions[session] = Session(read_only)
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
        try:
            self.doc.apply_update(update)
        except BaseException as exc:
            if not _refused_by_yrs(exc):
                raise
            # What Yrs integrated before it gave up is kept like any change (the document
            # stays usable after a panic too), so memory and storage never disagree.
            effects = self._take_changes(session, update)
            return [*effects, *self._close(session, INVALID_PAYLOAD, "not a Yjs update")]
        effects = self._take_changes(session, update)
        if not effects and clocks(self.doc.get_state()) != clocks(before):
            # Yrs took something in without reporting a change (an item after a gap in its
            # client's clock does that): store and send the update as it came, so that what
            # new clients receive in the board's state is stored too.
            self._changed = [update]
            effects = self._take_changes(session, update)
        return effects

    def _take_changes(self, session: int, update: bytes) -> list[Effect]:
        """Store and send what applying ``update`` changed."""
        changed = [change for change in self._changed if change != EMPTY_UPDATE]
        self._changed = []
        effects: list[Effect] = []
        gained = 0
        for change in changed:  # nothing new (a repeat, an empty step 2): nothing stored
            self.size += len(change)
            gained += len(change)
            effects.append(Persist(change))
            effects.append(Broadcast(protocol.sync(protocol.UPDATE, change), exclude=session))
        # (a change bigger than its update integrated updates held back earlier)
        self._unintegrated = max(0, self._unintegrated + len(update) - gained)
        if self._unintegrated > self.config.max_board_bytes // 8:
            self._drop_unintegrated()
        return effects

    def _drop_unintegrated(self) -> None:
        """Rebuild the document from its own encoding, which leaves out what Yrs holds back."""
        state = self.full_state()
        self.doc.unobserve(self._subscription)
        self.doc = Doc()
        self.doc.apply_update(state)  # (before observing: it is all stored already)
        self._subscription = self.doc.observe(self._on_transaction)
        self._full = state
        self._unintegrated = 0

    # ------------------------------------------------------------------ awareness

    def _awareness(
        self, session: int, entries: tuple[AwarenessEntry, ...], now: float
    ) -> list[Effect]:
        config = self.config
        accepted: list[AwarenessEntry] = []
        owned = self.sessions[session].clients
        for entry in entries:
            if len(entry.state.encode()) > config.max_awareness_state_bytes:
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
                if len(owned) >= config.max_awareness_clients:
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
        if not accepted:
            return []
        return [Broadcast(protocol.awareness(accepted), exclude=session)]

    def _remove(self, clients: list[int]) -> list[Effect]:
        if not clients:
            return []
        gone = []
        for client in clients:
            presence = self.presence.pop(client)
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
