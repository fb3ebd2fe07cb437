"""One whiteboard across three node processes: clients on every node converge, the board
has one instance, and it survives the death of its node."""

from __future__ import annotations

import asyncio
import secrets

from tests.cluster.conftest import live_ids
from tests.support.yclient import YClient, YpyDoc


async def test_clients_of_one_board_on_different_nodes_converge_and_outlive_its_node(
    nodes,
) -> None:
    cluster = nodes(3, suite=True)
    room = secrets.token_hex(8)
    clients = [
        await YClient.open(f"{node.ws}/whiteboard/ws/{room}", doc=YpyDoc() if i == 2 else None)
        for i, node in enumerate(cluster)
    ]
    for client in clients:
        await asyncio.wait_for(client.synced.wait(), 10)

    async def draw(i: int, client: YClient) -> None:
        for n in range(15):
            await client.add(f"n{i}-{n}", {"type": "pen", "by": i})

    await asyncio.gather(*(draw(i, c) for i, c in enumerate(clients)))
    expected = {f"n{i}-{n}" for i in range(3) for n in range(15)}
    for client in clients:
        await client.until(lambda client=client: client.doc.names() == expected, timeout=10)
    hosts = [n for n in cluster if any(i.startswith("whiteboard_board:") for i in live_ids(n))]
    assert len(hosts) == 1  # one board, one instance, wherever the sockets came in

    # The owner dies: sockets tunnelled to it from the other nodes are told to reconnect
    # (1012), and the board comes back on a survivor with every acknowledged stroke.
    owner = hosts[0]
    owner.kill()
    survivors = [n for n in cluster if n is not owner]
    for node, client in zip(cluster, clients, strict=True):
        if node is not owner:
            code, _ = await client.closed(timeout=10)
            assert code == 1012
    again = await YClient.open(f"{survivors[0].ws}/whiteboard/ws/{room}")
    await again.until(lambda: again.doc.names() == expected, timeout=15)
    await again.add("after", {"type": "pen"})
    other = await YClient.open(f"{survivors[1].ws}/whiteboard/ws/{room}")
    await other.until(lambda: other.doc.names() == expected | {"after"}, timeout=10)
    await again.close()
    await other.close()


async def test_view_links_on_other_nodes_watch_replicas_and_see_presence(nodes) -> None:
    """A board watched through view links on two other nodes: each node's replica sends
    the strokes to its viewers (the primary has no socket of theirs), and presence crosses
    both ways, editors' cursors to viewers and viewers' to editors."""
    import re

    import httpx

    from tests.cluster.conftest import node_stats

    n1, n2, n3 = nodes(3, suite=True)
    room = secrets.token_hex(8)
    editor = await YClient.open(f"{n1.ws}/whiteboard/ws/{room}")
    await editor.add("s1", {"type": "pen"})
    async with httpx.AsyncClient() as http:
        page = (await http.get(f"{n1.http}/whiteboard/b/{room}", timeout=10)).text
    token = re.search(r"/whiteboard/b/(v-[A-Za-z0-9_.\-]+)", page)
    assert token is not None, "the board page shows its view link"
    viewers = [await YClient.open(f"{node.ws}/whiteboard/ws/{token.group(1)}") for node in (n2, n3)]
    for viewer in viewers:
        await viewer.until(lambda v=viewer: v.doc.names() == {"s1"} and v.denied is not None)
    await editor.set_presence(11, 1, {"user": {"name": "editor"}})
    await viewers[0].set_presence(22, 1, {"user": {"name": "viewer"}})
    for n in range(5):
        await editor.add(f"s{n + 2}", {"type": "pen"})
    expected = {f"s{n + 1}" for n in range(6)}
    for viewer in viewers:
        await viewer.until(lambda v=viewer: v.doc.names() == expected, timeout=10)
        await viewer.until(lambda v=viewer: v.awareness.get(11) == {"user": {"name": "editor"}})
    await editor.until(lambda: editor.awareness.get(22) == {"user": {"name": "viewer"}})
    await viewers[1].until(lambda: viewers[1].awareness.get(22) == {"user": {"name": "viewer"}})
    for node in (n2, n3):  # each viewer's node applied the strokes to its own replica
        assert node_stats(node)["replica_applied"] >= 1  # (commits may carry many strokes)
    for client in (editor, *viewers):
        await client.close()
