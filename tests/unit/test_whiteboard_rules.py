"""The board's rules with no sockets and no storage: bytes in, effects out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pycrdt import Array, Doc, Map

from apps.whiteboard import protocol
from apps.whiteboard.config import WhiteboardConfig
from apps.whiteboard.effects import Broadcast, Close, Hold, Persist, Release, Send
from apps.whiteboard.protocol import AwarenessEntry
from apps.whiteboard.rules import (
    INVALID_PAYLOAD,
    POLICY,
    PROTOCOL_ERROR,
    TOO_BIG,
    UNSUPPORTED,
    BoardRules,
)

CONFIG = WhiteboardConfig(
    max_update_bytes=4096, max_board_bytes=16384, awareness_timeout=30.0, max_awareness_clients=2
)


def stroke_update(doc: Doc, key: str = "s1", points: int = 4) -> bytes:
    """An update that adds one stroke to ``doc`` (and only that)."""
    before = doc.get_state()
    shapes = doc.get("shapes", type=Map)
    shapes[key] = Map({"type": "pen", "pts": Array([float(i) for i in range(points)])})
    return doc.get_update(before)


def shapes_of(update_or_doc: bytes | Doc) -> set[str]:
    if isinstance(update_or_doc, Doc):
        doc = update_or_doc
    else:
        doc = Doc()
        doc.apply_update(update_or_doc)
    return set(doc.get("shapes", type=Map).keys())


def board_with(*sessions: int, read_only: tuple[int, ...] = ()) -> BoardRules:
    board = BoardRules(CONFIG)
    for session in sessions:
        board.connect(session, session in read_only)
    return board


def aw(*entries: tuple[int, int, str]) -> bytes:
    return protocol.awareness([AwarenessEntry(*e) for e in entries])


def test_connect_sends_step1_presence_and_for_viewers_the_denial() -> None:
    board = board_with(1)
    board.receive(1, aw((7, 1, '{"user":"ada"}')), now=0)
    effects = board.connect(2, read_only=True)
    assert effects == [
        Send(2, protocol.sync(protocol.STEP1, board.doc.get_state())),
        Send(2, aw((7, 1, '{"user":"ada"}'))),
        Send(2, protocol.permission_denied("this link is view-only")),
    ]


def test_step1_is_answered_with_the_missing_update() -> None:
    board = board_with(1, 2)
    writer = Doc()
    board.receive(1, protocol.sync(protocol.UPDATE, stroke_update(writer)), now=0)
    [answer] = board.receive(2, protocol.sync(protocol.STEP1, Doc().get_state()), now=0)
    assert isinstance(answer, Send) and answer.session == 2
    message = protocol.decode(answer.data)
    assert isinstance(message, protocol.Sync) and message.step == protocol.STEP2
    assert shapes_of(message.data) == {"s1"}


def test_an_update_is_persisted_then_sent_to_everyone_else() -> None:
    board = board_with(1, 2, 3)
    update = stroke_update(Doc())
    effects = board.receive(1, protocol.sync(protocol.UPDATE, update), now=0)
    [persist, broadcast] = effects
    assert isinstance(persist, Persist) and shapes_of(persist.update) == {"s1"}
    assert broadcast == Broadcast(protocol.sync(protocol.UPDATE, persist.update), exclude=1)
    assert shapes_of(board.doc) == {"s1"}
    assert board.size == len(persist.update)


def test_an_update_with_nothing_new_stores_nothing() -> None:
    board = board_with(1, 2)
    update = stroke_update(Doc())
    board.receive(1, protocol.sync(protocol.UPDATE, update), now=0)
    assert board.receive(2, protocol.sync(protocol.UPDATE, update), now=0) == []
    assert board.receive(2, protocol.sync(protocol.STEP2, b"\x00\x00"), now=0) == []


def test_a_read_only_session_cannot_change_the_board() -> None:
    board = board_with(1, 2, read_only=(2,))
    for step in (protocol.STEP2, protocol.UPDATE):
        assert board.receive(2, protocol.sync(step, stroke_update(Doc())), now=0) == []
    assert shapes_of(board.doc) == set()
    assert 2 in board.sessions  # still connected, still reading


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("text", UNSUPPORTED),
        (b"\x80", PROTOCOL_ERROR),
        (b"\x09", PROTOCOL_ERROR),
        (protocol.sync(protocol.UPDATE, b"\xff" * 10), INVALID_PAYLOAD),
        (protocol.sync(protocol.STEP1, b"\xff\xff"), INVALID_PAYLOAD),
        (protocol.sync(protocol.UPDATE, b"\x00" * 5000), TOO_BIG),
    ],
)
def test_bad_frames_close_only_that_socket_and_change_nothing(
    frame: str | bytes, code: int
) -> None:
    board = board_with(1, 2)
    board.receive(1, protocol.sync(protocol.UPDATE, stroke_update(Doc())), now=0)
    board.receive(2, aw((9, 1, "{}")), now=0)
    before = board.doc.get_update()
    effects = board.receive(2, frame, now=0)
    assert isinstance(effects[0], Close) and effects[0].session == 2 and effects[0].code == code
    assert effects[0].reason
    assert effects[1:] == [Broadcast(aw((9, 1, "null")))]  # its presence goes with it
    assert board.doc.get_update() == before
    assert set(board.sessions) == {1}
    assert board.receive(2, protocol.query_awareness(), now=0) == []  # late frames: ignored


def test_the_board_limit_refuses_an_update_that_would_overflow_it() -> None:
    board = board_with(1)
    doc = Doc()
    stored = 0
    while True:
        update = stroke_update(doc, key=f"s{stored}", points=300)
        effects = board.receive(1, protocol.sync(protocol.UPDATE, update), now=0)
        if isinstance(effects[0], Close):
            break
        stored += 1
    assert effects[0].code == TOO_BIG and "full" in effects[0].reason
    assert len(shapes_of(board.doc)) == stored
    assert board.size <= CONFIG.max_board_bytes


def test_awareness_newer_clocks_win_and_null_removes() -> None:
    board = board_with(1, 2)
    assert board.receive(1, aw((7, 2, '{"x":1}')), now=0) == [Broadcast(aw((7, 2, '{"x":1}')), 1)]
    assert board.receive(1, aw((7, 1, '{"x":0}')), now=1) == []  # older clock: ignored
    assert board.receive(1, aw((7, 3, '{"x":2}')), now=2) == [Broadcast(aw((7, 3, '{"x":2}')), 1)]
    [answer] = board.receive(2, protocol.query_awareness(), now=2)
    assert answer == Send(2, aw((7, 3, '{"x":2}')))
    # the same clock with null removes it (y-protocols' rule)
    assert board.receive(1, aw((7, 3, "null")), now=3) == [Broadcast(aw((7, 3, "null")), 1)]
    assert board.presence == {}


def test_a_socket_cannot_erase_presence_another_socket_introduced() -> None:
    board = board_with(1, 2)
    board.receive(1, aw((7, 3, '{"me":1}')), now=0)
    assert board.receive(2, aw((7, 9, "null")), now=0) == []
    assert board.receive(2, aw((7, 3, '{"me":2}')), now=0) == []  # not newer: ignored
    assert board.presence[7].entry.state == '{"me":1}'


def test_a_reconnected_tab_takes_its_presence_over_from_its_old_socket() -> None:
    board = board_with(1, 2, 3)
    board.receive(1, aw((7, 3, '{"me":1}')), now=0)  # socket 1 went half-open...
    moved = board.receive(2, aw((7, 4, '{"me":1}')), now=1)  # ...and the tab came back on 2
    assert moved == [Broadcast(aw((7, 4, '{"me":1}')), exclude=2)]
    assert board.presence[7].owner == 2
    assert board.disconnect(1) == []  # the old socket's end no longer removes it
    assert board.disconnect(2) == [Broadcast(aw((7, 4, "null")))]


def test_too_many_awareness_clients_on_one_socket_close_it() -> None:
    board = board_with(1)
    board.receive(1, aw((1, 1, "{}"), (2, 1, "{}")), now=0)
    [close, gone] = board.receive(1, aw((3, 1, "{}")), now=0)
    assert isinstance(close, Close) and close.code == POLICY
    assert gone == Broadcast(aw((1, 1, "null"), (2, 1, "null")))


def test_leaving_and_timing_out_remove_presence_for_the_others() -> None:
    board = board_with(1, 2)
    board.receive(1, aw((7, 4, "{}")), now=100)
    board.receive(2, aw((8, 1, "{}")), now=110)
    assert board.next_expiry() == 130
    assert board.expire(now=129) == []
    assert board.expire(now=130) == [Broadcast(aw((7, 4, "null")))]
    assert board.next_expiry() == 140
    assert board.disconnect(2) == [Broadcast(aw((8, 1, "null")))]
    assert board.disconnect(2) == []
    assert board.next_expiry() is None


def test_a_board_reloads_from_its_persisted_updates() -> None:
    board = board_with(1)
    doc = Doc()
    persisted = []
    for i in range(3):
        frame = protocol.sync(protocol.UPDATE, stroke_update(doc, f"s{i}"))
        for effect in board.receive(1, frame, now=0):
            if isinstance(effect, Persist):
                persisted.append(effect.update)
    again = BoardRules(CONFIG)
    again.load(reversed(persisted))  # (order does not matter to a CRDT)
    assert shapes_of(again.doc) == {"s0", "s1", "s2"}
    assert again.size == board.size
    compacted = BoardRules(CONFIG)
    compacted.load([board.full_state()])
    assert compacted.doc.get_update() == board.doc.get_update()


def test_new_clients_share_one_encoding_of_the_board_until_it_changes() -> None:
    board = board_with(1, 2, 3)
    board.receive(1, protocol.sync(protocol.UPDATE, stroke_update(Doc(), "s1")), now=0)
    empty = protocol.sync(protocol.STEP1, Doc().get_state())
    [first] = board.receive(2, empty, now=0)
    [second] = board.receive(3, empty, now=0)
    assert isinstance(first, Send) and isinstance(second, Send)
    assert first.data == second.data and board._full is not None
    board.receive(1, protocol.sync(protocol.UPDATE, stroke_update(Doc(), "s2")), now=0)
    assert board._full is None  # a change drops the cached encoding
    [third] = board.receive(2, empty, now=0)
    assert isinstance(third, Send)
    message = protocol.decode(third.data)
    assert isinstance(message, protocol.Sync) and shapes_of(message.data) == {"s1", "s2"}


def replay(*updates: bytes) -> Doc:
    doc = Doc()
    for update in updates:
        doc.apply_update(update)
    return doc


def test_an_update_yrs_refuses_halfway_closes_the_socket_and_stores_what_it_changed() -> None:
    # Found by fuzzing: pycrdt raises RuntimeError ("block parent ... must be deleted or
    # shared ref type"), not ValueError, after it has integrated part of the update (here:
    # a new shapes["s0"], from another client).
    author = Doc(client_id=1234)
    author.get("shapes", type=Map)["s0"] = Map({"type": "pen", "pts": Array([1.0, 2.0, 3.0])})
    seed = author.get_update()
    bad = bytes.fromhex(
        "0104d22900270106736861706573027330012800d20904047479706501770370656e2700d20900"
        "03707473000800d20902037c3f8000007c400000007c4040000000"
    )
    board = board_with(1, 2)
    [stored, _] = board.receive(1, protocol.sync(protocol.UPDATE, seed), now=0)
    assert isinstance(stored, Persist)
    effects = board.receive(1, protocol.sync(protocol.UPDATE, bad), now=0)
    closes = [e for e in effects if isinstance(e, Close)]
    assert [(c.session, c.code) for c in closes] == [(1, INVALID_PAYLOAD)]
    assert set(board.sessions) == {2}
    # What it did change is stored and sent like any change: storage and memory agree.
    persisted = [e.update for e in effects if isinstance(e, Persist)]
    assert persisted
    assert replay(stored.update, *persisted).get_update() == board.doc.get_update()
    assert board._changed == []


def missing_deletions(ranges: int) -> tuple[bytes, ...]:
    """Varints of ``ranges`` one-item deletions (clocks 0, 2, 4...), to put after a client."""
    out = bytearray()
    protocol.write_var_uint(out, ranges)
    for i in range(ranges):
        protocol.write_var_uint(out, 2 * i)
        out.append(1)
    return (b"\x00\x01", bytes(out))  # no structs; a delete set for one client


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def test_updates_the_board_cannot_integrate_do_not_pile_up_in_memory() -> None:
    # Yrs keeps what it cannot integrate yet (deletions of items it lacks, items whose
    # origins it lacks) in memory, unstored, until the rest arrives, at ten times its size
    # for deletions. None of it counts against the board: 60 such updates of 400 KB cost
    # the node 250 MB, and nothing bounded it.
    # Each is stored while held (Hold), so a restart keeps it; past max_board_bytes / 8 of
    # them the board lets them all go, from memory and from storage (Release).
    config = WhiteboardConfig()
    board = BoardRules(config)
    board.connect(1, read_only=False)
    head, ranges = missing_deletions(100_000)
    before = rss_bytes()
    stored: dict[int, bytes] = {}
    dropped = 0
    for client in range(1000, 1060):
        client_id = bytearray()
        protocol.write_var_uint(client_id, client)
        update = head + bytes(client_id) + ranges
        for effect in board.receive(1, protocol.sync(protocol.UPDATE, update), now=0):
            if isinstance(effect, Hold):
                stored[effect.key] = effect.update
            elif isinstance(effect, Release):
                dropped += 1
                for key in effect.keys:
                    del stored[key]
            else:
                raise AssertionError(f"unexpected {effect}")
        assert sum(map(len, stored.values())) <= config.max_board_bytes // 8
        assert stored == board.held
    assert dropped > 0
    assert rss_bytes() - before < 100 * 1024 * 1024
    assert board.size == 0 and 1 in board.sessions


def test_an_update_that_arrives_before_the_one_it_needs_is_stored_once_that_comes() -> None:
    # Two tabs of one browser share edits over a BroadcastChannel: B may edit on top of A's
    # change and reach the server first. Yrs holds B's update until A's arrives.
    writer = Doc()
    first = stroke_update(writer, "s1")
    shapes = writer.get("shapes", type=Map)
    before = writer.get_state()
    shapes["s1"]["pts"].append(9.0)
    second = writer.get_update(before)
    board = board_with(1, 2)
    assert board.receive(2, protocol.sync(protocol.UPDATE, second), now=0) == [Hold(1, second)]
    effects = board.receive(1, protocol.sync(protocol.UPDATE, first), now=0)
    assert effects[-1] == Release((1,))  # now in the document: the stored copy can go
    persisted = [e.update for e in effects if isinstance(e, Persist)]
    assert replay(*persisted).get("shapes", type=Map).to_py() == shapes.to_py()
    assert board.doc.get("shapes", type=Map).to_py() == shapes.to_py()
    assert board.held == {}


def test_a_held_update_comes_back_with_the_board_and_waits_for_its_dependency() -> None:
    # A board stored (then loaded: a restart) while Yrs holds an update back must hold it
    # back again, so the missing piece, arriving after the restart, completes the same
    # document as on a board never restarted. Without a stored copy it was simply gone.
    writer = Doc()
    first = stroke_update(writer, "s1")
    shapes = writer.get("shapes", type=Map)
    before = writer.get_state()
    shapes["s1"]["pts"].append(9.0)
    second = writer.get_update(before)
    for held_first in (True, False):
        board = board_with(1)
        stored: list[bytes] = []
        held: dict[int, bytes] = {}
        for update in (second,) if held_first else (first,):
            for effect in board.receive(1, protocol.sync(protocol.UPDATE, update), now=0):
                if isinstance(effect, Persist):
                    stored.append(effect.update)
                elif isinstance(effect, Hold):
                    held[effect.key] = effect.update
        restarted = BoardRules(CONFIG)
        assert restarted.load(stored, held) == []  # still waiting for its dependency
        assert restarted.held == held == ({1: second} if held_first else {})
        restarted.connect(1, read_only=False)
        later = first if held_first else second
        effects = restarted.receive(1, protocol.sync(protocol.UPDATE, later), now=0)
        assert (Release((1,)) in effects) is held_first
        never_restarted = board_with(1)
        for update in (second, first) if held_first else (first, second):
            never_restarted.receive(1, protocol.sync(protocol.UPDATE, update), now=0)
        assert restarted.full_state() == never_restarted.full_state()
        assert restarted.doc.get("shapes", type=Map).to_py() == shapes.to_py()


def test_a_held_update_blocked_by_a_forged_origin_is_taken_in_when_the_rest_arrives() -> None:
    # Found by boardfuzz (run seed 2026, trial 3918857680, one process in ten): a mutated
    # update names an origin of a client no page has, on an item another update then brings
    # for real. Yrs retries what it holds back only when the client it found missing moves
    # on, so the live board held all of it back for good; a board loaded from storage
    # applied the held copy after its log, skipped the item it had, and took in the rest:
    # clients were served title "b" while storage rebuilt title "c".
    def titled(doc: Doc, title: str) -> bytes:
        before = doc.get_state()
        doc.get("meta", type=Map)["title"] = title
        return doc.get_update(before)

    page = Doc(client_id=7)
    first, second = titled(page, "a"), titled(page, "b")
    # Clocks 7:1 ("b", its origin 7:0 forged into 9:0) and 7:2 ("c", origin 7:1) in one.
    forged = bytes([1, 2, 7, 1, 0x88, 9, 0, 1, 0x77, 1]) + b"b"
    forged += bytes([0x88, 7, 1, 1, 0x77, 1]) + b"c" + b"\x00"
    board = board_with(1)
    stored: list[bytes] = []
    held: dict[int, bytes] = {}
    for update in (first, forged, second):
        for effect in board.receive(1, protocol.sync(protocol.UPDATE, update), now=0):
            if isinstance(effect, Persist):
                stored.append(effect.update)
            elif isinstance(effect, Hold):
                held[effect.key] = effect.update
            elif isinstance(effect, Release):
                for key in effect.keys:
                    del held[key]
            else:
                assert isinstance(effect, Broadcast), effect
    restarted = BoardRules(CONFIG)
    restarted.load(stored, held)
    assert restarted.full_state() == board.full_state()  # storage rebuilds what is served
    assert board.doc.get("meta", type=Map).to_py() == {"title": "c"}
    assert board.held == held == {}  # taken in whole: nothing left to hold


def test_the_awareness_state_limit_counts_bytes_not_characters() -> None:
    board = board_with(1)
    state = json.dumps({"name": "é" * 9000}, ensure_ascii=False)  # 9,012 characters
    assert len(state) < CONFIG.max_awareness_state_bytes < len(state.encode())
    [close, *_] = board.receive(1, aw((7, 1, state)), now=0)
    assert isinstance(close, Close) and close.code == TOO_BIG
    assert board.presence == {}


def test_an_update_that_makes_yrs_panic_closes_the_socket_like_any_bad_update() -> None:
    # Found by fuzzing: 14 bytes make Yrs panic (Option::unwrap on None, in
    # BlockSet::exclude) on a board holding items of client 1234. pyo3 raises that as
    # PanicException, a BaseException, which no `except Exception` in the runtime stops.
    author = Doc(client_id=1234)
    author.get("shapes", type=Map)["s0"] = Map({"type": "pen", "pts": Array([1.0])})
    board = board_with(1, 2)
    board.receive(1, protocol.sync(protocol.UPDATE, author.get_update()), now=0)
    bad = bytes.fromhex("0101d20988d209017c4080000000")
    [close] = board.receive(1, protocol.sync(protocol.UPDATE, bad), now=0)
    assert close == Close(1, INVALID_PAYLOAD, "not a Yjs update")
    # The board goes on.
    [persist, _] = board.receive(2, protocol.sync(protocol.UPDATE, stroke_update(Doc())), now=0)
    assert isinstance(persist, Persist)
    assert shapes_of(board.doc) == {"s0", "s1"}


def test_content_yrs_takes_in_without_reporting_it_is_stored_and_sent_all_the_same() -> None:
    # An item of client 1234 at clock 30 with nothing before it: Yrs shows "heJlo" in the
    # document yet reports an empty change. Whatever a new client would receive is stored.
    # (It waits for clocks 0-29 all the same: a copy is held until they come.)
    gapped = bytes.fromhex("0101d2091e040101740568654a6c6f0000")
    board = board_with(1, 2)
    [persist, broadcast, hold] = board.receive(1, protocol.sync(protocol.UPDATE, gapped), now=0)
    assert isinstance(persist, Persist)  # the document's own encoding of what it took in
    assert broadcast == Broadcast(protocol.sync(protocol.UPDATE, persist.update), exclude=1)
    assert hold == Hold(1, gapped)
    again = BoardRules(CONFIG)
    again.load([persist.update], {1: gapped})
    assert again.full_state() == board.full_state()


def test_an_update_that_changes_nothing_reports_nothing() -> None:
    board = board_with(1)
    assert board.receive(1, protocol.sync(protocol.UPDATE, b"\x00\x00"), now=0) == []
    assert board.size == 0


def test_a_flood_of_awareness_is_coalesced_to_the_newest_state_per_interval() -> None:
    from apps.whiteboard.effects import Later

    for reader in (False, True):  # an editor, and a view-only link: the same limits
        board = board_with(1, 2, read_only=(1,) if reader else ())
        relayed: list[bytes] = []
        later: list[float] = []
        for i in range(1, 101):  # 100 states in one second, every 10 ms
            for effect in board.receive(1, aw((7, i, f'{{"n":{i}}}')), now=i / 100):
                if isinstance(effect, Broadcast):
                    relayed.append(effect.data)
                elif isinstance(effect, Later):
                    later.append(effect.at)
        assert 15 <= len(relayed) <= 21  # at most one per 50 ms, not 100
        assert later and all(at <= 1.0 + 0.05 for at in later)
        [last] = board.relay_awareness(now=1.1)  # the turn of what waited: the newest
        assert last == Broadcast(aw((7, 100, '{"n":100}')), exclude=1)
        assert board.relay_awareness(now=1.2) == []  # nothing more waits
        # A removal never waits.
        assert board.receive(1, aw((7, 100, "null")), now=1.21) == [
            Broadcast(aw((7, 100, "null")), exclude=1)
        ]


def erased_board(strokes: int) -> tuple[BoardRules, Doc]:
    """A board holding ``strokes`` strokes, every other one erased (a long delete set),
    and the writer's document it came from."""
    writer = Doc()
    shapes = writer.get("shapes", type=Map)
    with writer.transaction():
        for i in range(strokes):
            shapes[f"s{i}"] = Map({"type": "pen", "pts": Array([1.0, 2.0])})
    with writer.transaction():
        for i in range(0, strokes, 2):
            del shapes[f"s{i}"]
    board = BoardRules(WhiteboardConfig(max_board_bytes=2**24, max_update_bytes=2**20))
    board.load([writer.get_update()])
    board.connect(1, read_only=False)
    board.connect(2, read_only=False)
    return board, writer


def transactions(doc: Doc, *edits: Any) -> list[bytes]:
    """What a page sends: each local transaction's update, as Yjs reports it."""
    sent: list[bytes] = []
    subscription = doc.observe(lambda event: sent.append(event.update))
    for edit in edits:
        with doc.transaction():
            edit(doc.get("shapes", type=Map))
    doc.unobserve(subscription)
    return sent


def test_a_pen_update_is_stored_and_sent_as_it_came_not_with_the_whole_delete_set() -> None:
    # Stored as the document's difference, each 30-byte pen update carried the board's
    # whole delete set: here ~1,000 ranges, kilobytes stored and sent for every point drawn.
    board, writer = erased_board(2000)
    [update] = transactions(writer, lambda shapes: shapes["s1"]["pts"].append(3.0))
    effects = board.receive(1, protocol.sync(protocol.UPDATE, update), now=0)
    assert effects == [
        Persist(update),
        Broadcast(protocol.sync(protocol.UPDATE, update), exclude=1),
    ]
    assert board.doc.get("shapes", type=Map)["s1"]["pts"].to_py() == [1.0, 2.0, 3.0]


def test_updates_taken_as_sent_with_deletions_still_rebuild_the_board_they_serve() -> None:
    board, writer = erased_board(40)
    stored = [board.full_state()]
    sent = transactions(
        writer,
        lambda shapes: shapes.pop("s1"),  # deletes known items: the delete set moves
        lambda shapes: shapes["s3"]["pts"].append(9.0),
        lambda shapes: shapes.pop("s5"),
    )
    # The board no longer knows its delete set after the first; the repeat that follows
    # (what a reconnecting page's step 2 is) must still store nothing and leave the cheap
    # path open for the next pen point.
    for update in sent:
        for effect in board.receive(1, protocol.sync(protocol.UPDATE, update), now=0):
            if isinstance(effect, Persist):
                stored.append(effect.update)
    assert stored[1:] == sent  # each taken as it came
    assert board.receive(2, protocol.sync(protocol.STEP2, sent[0]), now=0) == []
    [point] = transactions(writer, lambda shapes: shapes["s7"]["pts"].append(1.0))
    effects = board.receive(1, protocol.sync(protocol.UPDATE, point), now=0)
    assert effects[0] == Persist(point)
    stored.append(point)
    again = BoardRules(CONFIG)
    assert again.load(stored) == []
    assert again.doc.get_state() == board.doc.get_state()
    assert again.doc.get_update(again.doc.get_state()) == board.doc.get_update(
        board.doc.get_state()
    )
    assert set(board.doc.get("shapes", type=Map).keys()) == {
        f"s{i}" for i in range(1, 40, 2) if i not in (1, 5)
    }
    assert board.doc.get("shapes", type=Map)["s7"]["pts"].to_py() == [1.0, 2.0, 1.0]


def test_an_erasure_of_two_clients_items_is_taken_as_sent_despite_the_order() -> None:
    # Made by Yjs (bench/node's yjs): clients 1111 and 2222 each set a key of "shapes"; then
    # 1111 deletes both in one transaction, and sets another. Yjs writes the delete set in
    # descending client order (2222 first), Yrs reports it ascending: the same update.
    board = BoardRules(CONFIG)
    board.load(
        [
            bytes.fromhex(
                "0201ae110028010673686170657302733201770374776f01d708002801067368617065730273"
                "310177036f6e6500"
            )
        ]
    )
    board.connect(1, read_only=False)
    erase = bytes.fromhex("0002ae11010001d708010001")
    then = bytes.fromhex("0101d70801280106736861706573027333017705746872656500")
    for update in (erase, then):
        effects = board.receive(1, protocol.sync(protocol.UPDATE, update), now=0)
        assert effects[0] == Persist(update)  # (the second only if the first left no doubt)
    assert board.doc.get("shapes", type=Map).to_py() == {"s3": "three"}
    assert (
        replay(board.full_state()).get_update()
        == replay(
            bytes.fromhex(
                "0201ae110028010673686170657302733201770374776f01d708002801067368617065730273"
                "310177036f6e6500"
            ),
            erase,
            then,
        ).get_update()
    )
