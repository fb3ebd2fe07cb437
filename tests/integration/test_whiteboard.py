"""The whiteboard over real WebSockets, against a node with a real Valkey: pycrdt and y-py
clients converge, presence comes and goes, view links cannot write, limits hold, and the
board survives a restart and compaction."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import signal
import time as real_time

import httpx
import pytest
from pycrdt import Array, Doc, Map
from websockets.exceptions import InvalidStatus

from apps.whiteboard import WhiteboardConfig, make_app, old_view_key
from apps.whiteboard import board as board_module
from apps.whiteboard import protocol as yproto
from apps.whiteboard.links import BoardLink, board_id, digest_of, view_token
from apps.whiteboard.names import BOARDS, OLD_VIEW_KEYS
from runtime import DurableObject, Node, Settings, rpc
from tests.conftest import TEST_SETTINGS
from tests.support import boardfuzz
from tests.support.servers import LocalServer, NodeProcess
from tests.support.yclient import PycrdtDoc, YClient, YpyDoc

FAST = WhiteboardConfig(awareness_timeout=1.0)


async def board_server(serve, config: WhiteboardConfig = FAST, **settings) -> LocalServer:
    return await serve(apps=(make_app(config),), **settings)


def url(server: LocalServer, room: str) -> str:
    return f"{server.ws}/whiteboard/ws/{room}"


async def stats(server: LocalServer, room: str) -> dict[str, int]:
    env = server.node.env
    board = env.namespace(BOARDS).get(board_id(env, BoardLink(digest_of(room), read_only=False)))
    return await board.stats()


async def test_pycrdt_and_y_py_clients_converge_through_the_server(serve) -> None:
    server = await board_server(serve)
    room = secrets.token_hex(8)
    a = await YClient.open(url(server, room) + "?user=a")  # query parameters are allowed
    await asyncio.wait_for(a.synced.wait(), 5)
    await a.add("s1", {"type": "pen", "color": "#ff0000", "width": 2.0})
    b = await YClient.open(url(server, room))
    await b.until(lambda: b.doc.names() == {"s1"})
    await b.add("s2", {"type": "rect", "x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0})
    await a.until(lambda: a.doc.names() == {"s1", "s2"})
    c = await YClient.open(url(server, room), doc=YpyDoc())
    await c.until(lambda: c.doc.names() == {"s1", "s2"})
    await c.add("s3", {"type": "text", "text": "from y-py"})
    await a.until(lambda: "s3" in a.doc.names())
    await b.until(lambda: "s3" in b.doc.names())
    assert isinstance(a.doc, PycrdtDoc) and isinstance(b.doc, PycrdtDoc)
    assert a.doc.shapes.to_py() == b.doc.shapes.to_py()
    assert a.doc.shapes.to_py()["s3"] == {"type": "text", "text": "from y-py"}
    await b.send_update(b.doc.remove("s1"))  # deletions travel too
    await c.until(lambda: c.doc.names() == {"s2", "s3"})
    for client in (a, b, c):
        await client.close()


async def test_awareness_appears_updates_and_leaves_on_close_and_on_timeout(serve) -> None:
    server = await board_server(serve)
    room = secrets.token_hex(8)
    a = await YClient.open(url(server, room))
    b = await YClient.open(url(server, room))
    await a.set_presence(101, 1, {"user": {"name": "Ada"}, "cursor": None})
    await b.until(lambda: b.awareness.get(101) == {"user": {"name": "Ada"}, "cursor": None})
    await a.set_presence(101, 2, {"user": {"name": "Ada"}, "cursor": {"x": 5, "y": 6}})
    await b.until(lambda: (b.awareness.get(101) or {}).get("cursor") == {"x": 5, "y": 6})
    # A newcomer gets every known state on connect; a query gets them again.
    c = await YClient.open(url(server, room))
    await c.until(lambda: 101 in c.awareness)
    await c.ws.send(yproto.query_awareness())
    await c.until(lambda: sum(isinstance(m, yproto.Awareness) for m in c.received) >= 2)
    await a.close()
    await b.until(lambda: 101 in b.awareness and b.awareness[101] is None)
    # c says who it is, then falls silent: after the timeout (1 s here) it is gone for b.
    await c.set_presence(202, 1, {"user": {"name": "Bob"}})
    await b.until(lambda: b.awareness.get(202) is not None)
    await b.until(lambda: 202 in b.awareness and b.awareness[202] is None, timeout=5)
    assert (await stats(server, room))["presence"] == 0
    await b.close()
    await c.close()


async def test_a_view_link_reads_live_but_cannot_write(serve) -> None:
    server = await board_server(serve)
    room = secrets.token_hex(8)
    editor = await YClient.open(url(server, room))
    await editor.add("s1", {"type": "pen"})
    token = await view_token(server.node.env, room)
    viewer = await YClient.open(url(server, token))
    await viewer.until(lambda: viewer.doc.names() == {"s1"} and viewer.denied is not None)
    assert "view-only" in (viewer.denied or "")
    # Edits from the view link, as a step 2 and as an update, are dropped by the server.
    forged = viewer.doc.add("evil", {"type": "pen"})
    await viewer.ws.send(yproto.sync(yproto.STEP2, forged))
    await viewer.send_update(forged)
    await viewer.set_presence(77, 1, {"user": {"name": "viewer"}})  # viewers show presence
    await editor.until(lambda: editor.awareness.get(77) == {"user": {"name": "viewer"}})
    await editor.add("s2", {"type": "pen"})  # and the viewer still follows live edits
    await viewer.until(lambda: "s2" in viewer.doc.names())
    fresh = await YClient.open(url(server, room))
    await fresh.until(lambda: fresh.doc.names() == {"s1", "s2"})
    await asyncio.sleep(0.2)
    assert editor.doc.names() == {"s1", "s2"}
    assert fresh.doc.names() == {"s1", "s2"}
    # A tampered token, or a made-up one, opens nothing.
    for bad in (token[:-2] + ("AA" if not token.endswith("AA") else "BB"), "v-nope"):
        with pytest.raises(InvalidStatus) as refused:
            await YClient.open(url(server, bad))
        assert refused.value.response.status_code == 404
    async with httpx.AsyncClient(base_url=server.http) as http:
        assert (await http.get(f"/whiteboard/b/{token[:-1]}x")).status_code == 404
        created = await http.post("/whiteboard/api/boards")
        assert created.status_code == 201
        assert created.json()["url"] == f"/whiteboard/b/{created.json()['room']}"
        assert (await http.get(f"/whiteboard/ws/{room}")).status_code == 400
    for client in (editor, viewer, fresh):
        await client.close()


async def test_limits_and_malformed_frames_close_one_socket_and_change_nothing(serve) -> None:
    config = WhiteboardConfig(max_update_bytes=64 * 1024, max_board_bytes=256 * 1024)
    server = await board_server(serve, config)
    room = secrets.token_hex(8)
    good = await YClient.open(url(server, room))
    await good.add("s1", {"type": "pen"})
    await asyncio.sleep(0.1)
    before = await stats(server, room)
    cases = [
        (PycrdtDoc().add("big", {"blob": "x" * 70_000}), 1009, "larger than 65536"),
        (b"\x80", 1002, "truncated varUint"),
        (b"\x07\x00", 1002, "unknown message type"),
        (yproto.sync(yproto.UPDATE, b"\xff" * 16), 1007, "not a Yjs update"),
    ]
    for frame, code, reason in cases:
        bad = await YClient.open(url(server, room))
        await bad.set_presence(555, 1, {"user": "mallory"})
        await good.until(lambda: good.awareness.get(555) is not None)
        if code == 1009:
            await bad.send_update(frame)
        else:
            await bad.ws.send(frame)
        got_code, got_reason = await bad.closed()
        assert got_code == code and reason in got_reason
        await good.until(lambda: good.awareness.get(555, 0) is None)  # its presence went
    text = await YClient.open(url(server, room))
    await text.ws.send("hello")
    assert (await text.closed())[0] == 1003
    # Fill the board to its limit: the update that would overflow it is refused.
    filler = await YClient.open(url(server, room))
    accepted = 0
    for i in range(10):
        await filler.add(f"f{i}", {"blob": "y" * 60_000})
        try:
            await good.until(lambda i=i: f"f{i}" in good.doc.names(), timeout=2)
        except TimeoutError:
            break
        accepted += 1
    code, reason = await filler.closed()
    assert code == 1009 and "full" in reason
    after = await stats(server, room)
    assert after["log_bytes"] <= config.max_board_bytes
    assert 2 <= accepted < 10
    assert after["log_updates"] == before["log_updates"] + accepted
    # The good client never noticed, and can still edit.
    await good.add("s2", {"type": "pen"})
    fresh = await YClient.open(url(server, room))
    await fresh.until(lambda: fresh.doc.names() == good.doc.names())
    assert {"s1", "s2"} <= fresh.doc.names() and "big" not in fresh.doc.names()
    await good.close()
    await fresh.close()


async def test_a_board_is_compacted_and_survives_a_node_restart(serve) -> None:
    config = WhiteboardConfig(compact_updates=50, compact_quiet=0.3)
    first = await board_server(serve, config)
    room = secrets.token_hex(8)
    writer = await YClient.open(url(first, room))
    for i in range(120):
        await writer.add(f"s{i}", {"type": "pen", "n": float(i)})
    for i in range(0, 120, 2):
        await writer.send_update(writer.doc.remove(f"s{i}"))  # deletions are compacted away
    expected = writer.doc.shapes.to_py()
    reader = await YClient.open(url(first, room))
    await reader.until(lambda: reader.doc.shapes.to_py() == expected)
    grown = await stats(first, room)
    assert grown["log_updates"] == 180 and grown["snapshot_bytes"] == 0
    await writer.close()
    await reader.close()
    for _ in range(50):  # compaction waits for 0.3 s of quiet, then runs from the alarm
        await asyncio.sleep(0.1)
        compacted = await stats(first, room)
        if compacted["log_updates"] == 0:
            break
    assert compacted["log_updates"] == 0 and compacted["log_bytes"] == 0
    assert 0 < compacted["snapshot_bytes"] < grown["log_bytes"]
    await first.stop()

    second = await board_server(serve, config)
    again = await YClient.open(url(second, room))
    await again.until(lambda: again.doc.shapes.to_py() == expected)
    await again.add("after", {"type": "pen"})  # the log grows again on top of the snapshot
    await asyncio.sleep(0.1)
    assert (await stats(second, room))["log_updates"] == 1
    await again.close()


async def test_a_board_nobody_has_open_leaves_memory_and_comes_back_whole(serve) -> None:
    server = await board_server(serve, idle_timeout=0.5)
    room = secrets.token_hex(8)
    client = await YClient.open(url(server, room))
    await client.add("s1", {"type": "pen"})
    await asyncio.sleep(0.1)
    boards = [i for i in server.node.live_ids() if i.startswith(BOARDS.name)]
    assert len(boards) == 1
    await client.close()
    for _ in range(40):
        await asyncio.sleep(0.1)
        if not [i for i in server.node.live_ids() if i.startswith(BOARDS.name)]:
            break
    assert not [i for i in server.node.live_ids() if i.startswith(BOARDS.name)]
    again = await YClient.open(url(server, room))
    await again.until(lambda: again.doc.names() == {"s1"})
    await again.close()


async def test_a_board_page_tells_the_browser_the_update_limit_this_server_applies(serve) -> None:
    # The page script sizes text and strokes to fit maxUpdateBytes; it must be the limit
    # of the app being served, not the default.
    config = WhiteboardConfig(max_update_bytes=64 * 1024)
    server = await board_server(serve, config)
    async with httpx.AsyncClient(base_url=server.http) as http:
        page = await http.get(f"/whiteboard/b/{secrets.token_hex(8)}")
    assert page.status_code == 200
    assert '"maxUpdateBytes": 65536' in page.text


async def test_an_update_of_more_parts_than_one_storage_batch_is_stored_and_sent(serve) -> None:
    # An update is stored in parts of one storage value; past max_batch_keys parts (a 16 MiB
    # update by default, which the docs invite with bigger frame and update limits) one
    # put_many() refused it after the document had taken it: nobody heard of the edit, and
    # memory and storage disagreed until the board was reloaded.
    settings = {"max_value_bytes": 4096, "max_batch_keys": 8}
    first = await board_server(serve, **settings)
    room = secrets.token_hex(8)
    writer = await YClient.open(url(first, room))
    reader = await YClient.open(url(first, room))
    await writer.add("big", {"blob": "z" * 40_000})  # ten parts of 4 KiB
    await reader.until(lambda: "big" in reader.doc.names())
    assert (await stats(first, room))["log_updates"] == 1
    await writer.close()
    await reader.close()
    await first.stop()
    second = await board_server(serve, **settings)
    again = await YClient.open(url(second, room))
    await again.until(lambda: "big" in again.doc.names())
    await again.close()


async def test_a_hibernated_board_wakes_with_its_document_and_its_view_only_sockets(serve) -> None:
    # Boards hibernate after 60 s of quiet; this one after 0.3 s. The rebuilt instance
    # takes its sessions and their rights from the sockets' attachments.
    app = make_app(FAST)
    app.objects[BOARDS] = type("Board", (app.objects[BOARDS],), {"hibernate_after": 0.3})
    server = await serve(apps=(app,), sweep_interval=0.1)
    room = secrets.token_hex(8)
    editor = await YClient.open(url(server, room))
    await editor.add("s1", {"type": "pen"})
    viewer = await YClient.open(url(server, await view_token(server.node.env, room)))
    await viewer.until(lambda: viewer.doc.names() == {"s1"} and viewer.denied is not None)
    node = server.node

    def board_in_memory() -> bool:
        return any(i.startswith(BOARDS.name) for i in node.live_ids())

    for _ in range(50):
        await asyncio.sleep(0.1)
        if not board_in_memory():
            break
    assert node.stats.hibernations >= 1 and not board_in_memory()
    await viewer.send_update(viewer.doc.add("evil", {"type": "pen"}))  # wakes it: still read-only
    await editor.add("s2", {"type": "pen"})
    await viewer.until(lambda: "s2" in viewer.doc.names())
    fresh = await YClient.open(url(server, room))
    await fresh.until(lambda: fresh.doc.names() == {"s1", "s2"})
    await asyncio.sleep(0.2)
    assert editor.doc.names() == {"s1", "s2"} == fresh.doc.names()
    for client in (editor, viewer, fresh):
        await client.close()


async def test_an_update_that_makes_yrs_panic_closes_that_socket_with_1007(serve) -> None:
    # A Rust panic reaches Python as a BaseException: it went past every handler, the
    # socket was dropped with no close frame, and the board kept the session for ever.
    server = await board_server(serve)
    room = secrets.token_hex(8)
    good = await YClient.open(url(server, room))
    bad = await YClient.open(url(server, room))
    author = Doc(client_id=1234)
    author.get("shapes", type=Map)["s0"] = Map({"type": "pen"})
    await bad.send_update(author.get_update())
    await good.until(lambda: "s0" in good.doc.names())
    await bad.send_update(bytes.fromhex("0101d20988d209017c4080000000"))
    assert await bad.closed() == (1007, "not a Yjs update")
    await good.add("s1", {"type": "pen"})
    fresh = await YClient.open(url(server, room))
    await fresh.until(lambda: fresh.doc.names() == {"s0", "s1"})
    assert (await stats(server, room))["sessions"] == 2
    await good.close()
    await fresh.close()


async def test_an_update_of_exactly_the_default_limit_is_accepted_and_one_byte_more_is_not(
    serve,
) -> None:
    server = await board_server(serve, WhiteboardConfig())
    limit = WhiteboardConfig().max_update_bytes

    def update_of(size: int) -> bytes:
        """An update of exactly ``size`` bytes (a fixed client ID keeps its length steady)."""
        blob = size
        for _ in range(5):
            doc = Doc(client_id=4242)
            doc.get("shapes", type=Map)["big"] = Map({"blob": "x" * blob})
            update = doc.get_update()
            if len(update) == size:
                return update
            blob += size - len(update)
        raise AssertionError(f"no update of {size} bytes")

    room = secrets.token_hex(8)
    writer = await YClient.open(url(server, room))
    reader = await YClient.open(url(server, room), max_size=None)  # (the client's own limit)
    await writer.send_update(update_of(limit))
    await reader.until(lambda: "big" in reader.doc.names(), timeout=10)
    over = await YClient.open(url(server, room), max_size=None)
    await over.send_update(update_of(limit + 1))
    code, reason = await over.closed()
    assert code == 1009 and reason == f"update larger than {limit} bytes"
    for client in (writer, reader):
        await client.close()


class StrictClock:
    """time.time() that never returns the same value twice (this machine's clock often
    does), so a comparison of two readings cannot pass by luck."""

    def __init__(self) -> None:
        self.last = 0.0

    def time(self) -> float:
        self.last = max(real_time.time(), self.last + 1e-6)
        return self.last


async def test_a_board_that_is_never_quiet_is_compacted_once_its_log_is_long(
    serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(board_module, "time", StrictClock())
    config = WhiteboardConfig(compact_updates=10, compact_quiet=3600.0, compact_force_updates=30)
    server = await board_server(serve, config)
    room = secrets.token_hex(8)
    writer = await YClient.open(url(server, room))
    compacted = False
    for i in range(200):  # one edit every 20 ms: never a quiet second
        await writer.add(f"s{i}", {"type": "pen"})
        await asyncio.sleep(0.02)
        state = await stats(server, room)
        if state["snapshot_bytes"] and state["log_updates"] < 30:
            compacted = True
            break
    assert compacted, state
    reader = await YClient.open(url(server, room))
    await reader.until(lambda: reader.doc.names() == writer.doc.names())
    await writer.close()
    await reader.close()


def test_a_board_survives_its_node_process_being_stopped_and_another_started(
    redis_url: str, tmp_path
) -> None:
    """Process restarts, not just in-process ones: SIGTERM drains, the next node reloads."""
    room = secrets.token_hex(8)

    async def draw(node: NodeProcess, names: list[str]) -> set[str]:
        client = await YClient.open(f"{node.ws}/whiteboard/ws/{room}")
        await asyncio.wait_for(client.synced.wait(), 10)
        found = client.doc.names()
        for name in names:
            await client.add(name, {"type": "pen"})
        # another client seeing them means they were committed (the output gate)
        witness = await YClient.open(f"{node.ws}/whiteboard/ws/{room}")
        await witness.until(lambda: set(names) <= witness.doc.names(), timeout=10)
        await client.close()
        await witness.close()
        return found

    def node(i: int) -> NodeProcess:
        return NodeProcess(
            redis_url=redis_url,
            node_id=f"wb-{i}",
            apps=(),
            suite=True,
            log_path=tmp_path / f"{i}.log",
        ).start()

    first = node(1)
    try:
        assert asyncio.run(draw(first, ["a", "b"])) == set()
    finally:
        assert first.stop(signal.SIGTERM) == 0
    second = node(2)
    try:
        assert asyncio.run(draw(second, ["c"])) == {"a", "b"}
    finally:
        second.stop()


async def test_an_awareness_flood_is_coalesced_for_editors_and_view_links(serve) -> None:
    server = await board_server(serve)
    room = secrets.token_hex(8)
    watcher = await YClient.open(url(server, room))
    for source in (url(server, room), url(server, await view_token(server.node.env, room))):
        flooder = await YClient.open(source)
        client = 4000 + len(watcher.awareness)
        big = "x" * 8000
        started = real_time.monotonic()
        for clock in range(1, 401):  # 400 states of 8 KB as fast as the socket takes them
            await flooder.set_presence(client, clock, {"n": clock, "pad": big})
        sent_for = real_time.monotonic() - started
        # The newest state always arrives...
        await watcher.until(lambda c=client: (watcher.awareness.get(c) or {}).get("n") == 400)
        await asyncio.sleep(0.2)
        relayed = sum(
            1
            for m in watcher.received
            if isinstance(m, yproto.Awareness) and any(e.client == client for e in m.entries)
        )
        # ...but at most one state per 50 ms of the flood (plus the last), not 400.
        assert relayed <= sent_for / 0.05 + 3, (relayed, sent_for)
        assert relayed < 100
        await flooder.close()
        watcher.received.clear()
    await watcher.close()


async def test_updates_deleting_unseen_items_are_snapshotted_at_most_once_per_interval(
    serve,
) -> None:
    # Each of three crafted updates asks for a snapshot (deletions of items the board never
    # saw). The first gets one at once; the others share one, taken when the interval is up,
    # so a writer cannot make the board rewrite itself on every message. Nothing is lost.
    updates, _ = boardfuzz.unseen_deletions(3)
    config = WhiteboardConfig(snapshot_interval=3.0, compact_quiet=3600.0)
    first = await board_server(serve, config)
    room = secrets.token_hex(8)
    writer = await YClient.open(url(first, room))
    sent = real_time.monotonic()
    for update in updates:
        await writer.send_update(update)
    served = Doc()  # what a new client gets once the board has taken every update
    served.apply_update(boardfuzz.replayed(updates).full_state())
    expected = boardfuzz.shape_of(served)
    live = await YClient.open(url(first, room))
    await live.until(lambda: boardfuzz.shape_of(live.doc.doc) == expected)
    early = await stats(first, room)
    assert real_time.monotonic() - sent < 2.5  # (still inside the interval)
    assert early["snapshot_gen"] == 1 and early["log_updates"] > 0
    for _ in range(60):
        await asyncio.sleep(0.1)
        later = await stats(first, room)
        if later["snapshot_gen"] == 2:
            break
    assert later["snapshot_gen"] == 2 and later["log_updates"] == 0
    await writer.close()
    await live.close()
    await first.stop()

    second = await board_server(serve, config)
    again = await YClient.open(url(second, room))
    await again.until(lambda: boardfuzz.shape_of(again.doc.doc) == expected)
    await again.close()


async def processed(client: YClient) -> None:
    """Wait until the board has handled (and committed) everything ``client`` sent: its
    messages run in order, and the answer to a query waits for the commits before it."""
    count = len(client.received)
    await client.ws.send(yproto.query_awareness())
    await client.until(lambda: len(client.received) > count)


@pytest.mark.parametrize("order", ["dependent first", "in order", "dependent first, compacted"])
async def test_an_update_held_for_its_dependency_survives_a_node_restart(serve, order) -> None:
    # Two tabs share edits locally: the second's edit (a point added to a stroke) may reach
    # the server before the first's (the stroke). Yrs holds it back, in memory, until the
    # stroke comes. If the node restarts in between, the board must still end up as the
    # same board never restarted: the point was accepted and must not be lost.
    author = Doc()
    shapes = author.get("shapes", type=Map)
    before = author.get_state()
    shapes["s1"] = Map({"type": "pen", "pts": Array([1.0, 2.0])})
    stroke = author.get_update(before)
    before = author.get_state()
    shapes["s1"]["pts"].append(3.0)
    point = author.get_update(before)
    earlier, later = (stroke, point) if order == "in order" else (point, stroke)
    config = WhiteboardConfig(compact_updates=1, compact_quiet=0.1)
    room, control = secrets.token_hex(8), secrets.token_hex(8)

    first = await board_server(serve, config)
    tab = await YClient.open(url(first, room))
    if order.endswith("compacted"):
        await tab.add("s0", {"type": "pen"})  # a log for the alarm to fold into a snapshot
    await tab.send_update(earlier)
    await processed(tab)
    if order.endswith("compacted"):
        for _ in range(50):
            await asyncio.sleep(0.1)
            if (await stats(first, room))["snapshot_gen"] > 0:
                break
        assert (await stats(first, room))["snapshot_gen"] > 0
    await tab.close()
    await first.stop()

    second = await board_server(serve, config)
    tab = await YClient.open(url(second, room))
    await tab.send_update(later)
    await processed(tab)
    # The same board, never restarted: the same updates, in the same order, on one node.
    same = await YClient.open(url(second, control))
    if order.endswith("compacted"):
        await same.send_update(tab.doc.diff(b"\x00"))  # (what s0 was: the board's own)
    for update in (earlier, later):
        await same.send_update(update)
    await processed(same)
    boards = []
    for name in (room, control):
        reader = await YClient.open(url(second, name))
        await asyncio.wait_for(reader.synced.wait(), 5)
        boards.append(reader.doc.shapes.to_py())
        await reader.close()
    assert boards[0]["s1"] == {"type": "pen", "pts": [1.0, 2.0, 3.0]}
    assert boards[0] == boards[1]
    assert (await stats(second, room))["held_updates"] == 0  # taken in: the copy is gone
    await tab.close()
    await same.close()


# ------------------------------------------------------------------ view links and keys

KEY_A, KEY_B = "a" * 64, "b" * 64


class OldKeyRing(DurableObject):
    """The whiteboard's own key ring as it was before view links were signed with the
    runtime's keys (kept here word for word, to make a key the way it was made)."""

    @rpc
    async def view_key(self) -> str:
        key = await self.storage.get("view")
        if key is None:
            key = secrets.token_hex(32)
            await self.storage.put("view", key)
        return str(key)


def old_view_token(key_hex: str, edit_name: str) -> str:
    """A view token as the whiteboard signed them before (its own key, the same format)."""
    digest = digest_of(edit_name)
    mac = hmac.new(bytes.fromhex(key_hex), b"view:" + digest.encode(), hashlib.sha256).digest()
    return f"v-{digest}.{base64.urlsafe_b64encode(mac[:16]).decode().rstrip('=')}"


async def page_status(server: LocalServer, room: str) -> int:
    async with httpx.AsyncClient(base_url=server.http) as http:
        return (await http.get(f"/whiteboard/b/{room}")).status_code


async def old_key_status(server: LocalServer, expected: str) -> None:
    old = server.node.namespace(OLD_VIEW_KEYS.name).get_by_name(old_view_key.NAME)
    for _ in range(100):
        if await old.status() == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the old key is {await old.status()!r}, not {expected!r}")


async def test_rotating_secret_key_revokes_view_links(serve) -> None:
    first = await board_server(serve, secret_key=KEY_A)
    room = secrets.token_hex(16)
    token = await view_token(first.node.env, room)
    assert await page_status(first, token) == 200
    viewer = await YClient.open(url(first, token))
    await viewer.until(lambda: viewer.denied is not None)  # read-only: the link verified
    await viewer.close()
    await first.stop()
    rotated = await board_server(serve, secret_key=KEY_B)  # restarted with another secret
    assert await page_status(rotated, token) == 404
    with pytest.raises(InvalidStatus) as refused:
        await YClient.open(url(rotated, token))
    assert refused.value.response.status_code == 404
    assert await page_status(rotated, await view_token(rotated.node.env, room)) == 200


async def test_a_view_link_signed_the_old_way_works_until_secret_key_is_rotated(
    redis_url: str, serve
) -> None:
    # Before the upgrade: the whiteboard's own key ring made its key and signed a link.
    before = Node(Settings(**TEST_SETTINGS), redis_url)
    before.register(OLD_VIEW_KEYS.name, OldKeyRing)
    await before.start()
    room = secrets.token_hex(16)
    token = old_view_token(
        await before.namespace(OLD_VIEW_KEYS.name).get_by_name(old_view_key.NAME).view_key(), room
    )
    await before.stop()
    # After the upgrade, the link still opens the board read-only...
    upgraded = await board_server(serve, secret_key=KEY_A)
    await old_key_status(upgraded, "honoured")  # bound to KEY_A at start
    assert await page_status(upgraded, token) == 200
    viewer = await YClient.open(url(upgraded, token))
    await viewer.until(lambda: viewer.denied is not None)
    await viewer.close()
    await upgraded.stop()
    # ...until a node starts with another SECRET_KEY: then it is refused for good, even by a
    # node started with the first key again (whose own links work again).
    rotated = await board_server(serve, secret_key=KEY_B)
    await old_key_status(rotated, "retired")
    assert await page_status(rotated, token) == 404
    await rotated.stop()
    back = await board_server(serve, secret_key=KEY_A)
    assert await page_status(back, token) == 404
    assert await page_status(back, await view_token(back.node.env, room)) == 200


async def test_old_view_links_are_retired_at_a_rotation_even_if_none_was_opened(
    redis_url: str, serve
) -> None:
    before = Node(Settings(**TEST_SETTINGS), redis_url)
    before.register(OLD_VIEW_KEYS.name, OldKeyRing)
    await before.start()
    room = secrets.token_hex(16)
    key = await before.namespace(OLD_VIEW_KEYS.name).get_by_name(old_view_key.NAME).view_key()
    await before.stop()
    upgraded = await board_server(serve, secret_key=KEY_A)
    await old_key_status(upgraded, "honoured")  # the binding is made at start, not at first use
    await upgraded.stop()
    rotated = await board_server(serve, secret_key=KEY_B)
    await old_key_status(rotated, "retired")
    assert await page_status(rotated, old_view_token(key, room)) == 404
