"""/metrics on a three-node cluster under a chat and whiteboard workload: the counters move
as the work says they must, and a kill -9 shows as a lease takeover on a survivor."""

from __future__ import annotations

import asyncio
import json
import secrets

import httpx
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from tests.cluster.conftest import live_ids
from tests.support.yclient import YClient

TOKEN = "ops-token-for-tests"


def scrape(node) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A node's /metrics as {(sample name, sorted labels): value}."""
    text = httpx.get(
        f"{node.http}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    ).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples, name: str, **labels: str) -> float:
    return sum(
        v
        for (n, ls), v in samples.items()
        if n == name and all(dict(ls).get(k) == want for k, want in labels.items())
    )


async def test_counters_follow_a_chat_and_whiteboard_workload(nodes) -> None:
    cluster = nodes(3, env={"CHAT_RATE_LIMIT": "0", "OPS_TOKEN": TOKEN}, suite=True)
    before = [scrape(n) for n in cluster]
    chatters = []
    for i, node in enumerate(cluster):  # one room, a client on every node
        ws = await connect(f"{node.ws}/chat/api/room/metered/websocket")
        await ws.send(json.dumps({"name": f"u{i}"}))
        while not json.loads(await ws.recv()).get("ready"):
            pass
        chatters.append(ws)
    for n in range(20):
        await chatters[n % 3].send(json.dumps({"message": f"m{n}"}))
    for ws in chatters:
        heard = 0
        while heard < 20:
            if "message" in json.loads(await asyncio.wait_for(ws.recv(), 10)):
                heard += 1
    room = secrets.token_hex(8)
    boards = [await YClient.open(f"{n.ws}/whiteboard/ws/{room}") for n in cluster[:2]]
    for b in boards:
        await asyncio.wait_for(b.synced.wait(), 10)
    for k in range(10):
        await boards[k % 2].add(f"s{k}", {"type": "pen"})
    for b in boards:
        await b.until(lambda b=b: len(b.doc.names()) == 10, timeout=10)
    # An editor's page carries a view link, signed with a key one KeyRing object holds. Asked
    # on node 0 first, that object lives there (the first node that needs it hosts it), so
    # the other two nodes' pages must forward their call for the key to node 0.
    for node in cluster:
        page = httpx.get(f"{node.http}/whiteboard/b/{room}", timeout=10)
        assert page.status_code == 200 and "/whiteboard/b/v-" in page.text

    after = [scrape(n) for n in cluster]
    owner = next(
        i for i, n in enumerate(cluster) if any(x.startswith("chat_room:") for x in live_ids(n))
    )
    # Events: 3 names and 20 messages ran as "message" events on the room's node.
    grew = total(after[owner], "do_events_total", kind="message", outcome="ok") - total(
        before[owner], "do_events_total", kind="message", outcome="ok"
    )
    assert grew >= 23
    # Commits: the room stored 20 messages (each event's writes, coalesced or not).
    assert total(after[owner], "do_commit_seconds_count") > total(
        before[owner], "do_commit_seconds_count"
    )
    assert total(after[owner], "do_commit_keys_sum") >= 20
    # Sockets: the three chat sockets all end at the room's node; two came through tunnels.
    assert total(after[owner], "do_client_sockets", app="chat") == 3
    assert sum(total(a, "do_tunnels", side="client") for a in after) >= 2
    assert total(after[owner], "do_tunnels", side="owner") >= 2
    handshakes = sum(
        total(a, "do_client_socket_handshakes_total", app="chat", outcome="accepted") for a in after
    )
    assert handshakes == 3
    bytes_out = total(after[owner], "do_client_socket_bytes_total", app="chat", direction="out")
    assert bytes_out > 20 * 3 * 30  # 20 messages to 3 sockets, each over 30 bytes

    # Forwarded events: each of the other nodes sent its key call to node 0, and counted it
    # there, by peer, kind and outcome (tunnelled sockets are not forwarded events).
    def key_calls(samples) -> float:
        return total(
            samples, "do_forwarded_events_total", peer=cluster[0].node_id, kind="rpc", outcome="ok"
        )

    for i in (1, 2):
        assert key_calls(after[i]) - key_calls(before[i]) >= 1, f"{cluster[i].node_id} sent none"
    assert key_calls(after[0]) == 0  # node 0 ran its own call, and nothing forwards to itself
    for ws in chatters:
        await ws.close()
    for b in boards:
        await b.close()

    # kill -9 of the room's node: the next use of the room on a survivor takes its lease
    # over once it expires, and says so.
    victim = cluster[owner]
    survivor = next(n for i, n in enumerate(cluster) if i != owner)
    takeovers = total(scrape(survivor), "do_leases_total", event="takeover")
    victim.kill()
    ws = await connect(f"{survivor.ws}/chat/api/room/metered/websocket", open_timeout=15)
    await ws.send(json.dumps({"name": "back"}))
    while not json.loads(await asyncio.wait_for(ws.recv(), 15)).get("ready"):
        pass
    await ws.close()
    assert total(scrape(survivor), "do_leases_total", event="takeover") >= takeovers + 1


async def test_metrics_and_ops_need_the_token_on_a_cluster(nodes) -> None:
    (node,) = nodes(1, env={"OPS_TOKEN": TOKEN})
    async with httpx.AsyncClient(base_url=node.http) as client:
        assert (await client.get("/metrics")).status_code == 401
        assert (await client.get("/ops/api/cluster")).status_code == 401
        wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        page = await client.get("/ops")
        assert page.status_code == 401 and 'name="token"' in page.text
        login = await client.get(f"/ops?token={TOKEN}", follow_redirects=True)  # cookie, page
        assert login.status_code == 200 and "Where does an object live?" in login.text
        assert TOKEN not in str(login.url)
        assert (await client.get("/ops/api/cluster")).status_code == 200  # the cookie works
