"""The lobby across three node processes: players and pages on different nodes, and a
kill -9 of the game's node mid-match."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.cluster.conftest import live_ids, node_stats
from tests.support.lobbyclient import Player, Sock, create_lobby

TURN = 5.0
ENV = {"LOBBY_TURN_TIME": str(TURN), "LOBBY_DIRECTORY_TICK": "0.02"}


def owner_of(cluster, prefix: str):
    hosts = [n for n in cluster if any(i.startswith(prefix) for i in live_ids(n))]
    assert len(hosts) == 1, hosts  # one instance, wherever the sockets came in
    return hosts[0]


async def test_a_match_across_nodes_survives_a_kill_9_of_its_node(nodes) -> None:
    cluster = nodes(3, env=ENV, suite=True)
    n1, n2, n3 = cluster
    page = await Sock.open(f"{n3.ws}/lobby/ws/directory")  # a directory page on node 3
    await page.expect("lobbies")
    lobby_id, code = await create_lobby(n1.http, name="Across")
    async with httpx.AsyncClient(base_url=n2.http) as client:
        assert (await client.get(f"/lobby/api/codes/{code}")).json() == {"lobby": lobby_id}
    ann = await Player.join(n1.ws, lobby_id, "Ann")
    bob = await Player.join(n2.ws, lobby_id, "Bob")
    await page.until(lambda m: m["type"] == "lobby" and m["lobby"]["players"] == 2, 10)
    for p in (ann, bob):
        await p.lobby.send(type="ready", ready=True)
    await ann.lobby.state(lambda s: all(p["ready"] for p in s["players"]))
    await ann.lobby.send(type="start")
    starts = [await p.lobby.expect("game") for p in (ann, bob)]
    game = starts[0]["game"]
    ann.game_token, bob.game_token = starts[0]["token"], starts[1]["token"]
    await ann.sit(n2.ws, game)  # each player's game socket on another node
    await bob.sit(n3.ws, game)
    watcher = await Sock.open(f"{n1.ws}/lobby/ws/game/{game}")
    await watcher.expect("state")
    await page.until(lambda m: m["type"] == "lobby" and m["lobby"]["status"] == "playing", 10)
    # The page on node 3 watched node 3's replica of the directory, which heard the reports
    # through Redis; the directory's primary sent nothing to it.
    assert node_stats(n3)["replica_applied"] >= 2

    for p, column in [(ann, 3), (bob, 3), (ann, 4), (bob, 2), (ann, 5)]:
        committed = await p.move(column, watcher)
    moved_at = time.time()  # Ann's last move: Bob's turn timer runs from here
    assert committed["moves"] == 5 and committed["turn"] == 2

    owner = owner_of(cluster, "lobby_game:")
    owner.kill()  # kill -9 mid-match
    survivors = [n for n in cluster if n is not owner]

    # Players come back through the survivors with their seat tokens: every committed move.
    seats = [await ann.sit(survivors[0].ws, game), await bob.sit(survivors[1].ws, game)]
    for sock, you in zip(seats, (1, 2), strict=True):
        state = sock.seen[0]
        assert state["board"] == committed["board"] and state["you"] == you
    # Bob does not move: the timer set before the kill fires on a survivor, once.
    ended = await seats[0].state(lambda s: s["ended_by"] is not None, timeout=TURN + 10)
    assert (ended["ended_by"], ended["winner"], ended["moves"]) == ("timeout", 1, 5)
    assert time.time() >= moved_at + TURN - 0.5
    back = await Player.resume(survivors[1].ws, lobby_id, ann.token)
    lobby = await back.lobby.state(lambda s: s["status"] == "open" and s["results"])
    assert [r["ended_by"] for r in lobby["results"]] == ["timeout"]
    await asyncio.sleep(1.5)  # nothing fires a second time
    async with httpx.AsyncClient(base_url=survivors[0].http) as client:
        info = (await client.get(f"/lobby/api/games/{game}")).json()
    assert [r["ended_by"] for r in info["history"]] == ["timeout"]
    assert len((await back.lobby.state())["results"]) == 1
    assert sum(1 for m in seats[0].seen if m.get("ended_by") == "timeout") == 1

    # The match goes on on its new node: a rematch, Bob opens round 2.
    for sock in seats:
        await sock.send(type="rematch")
    await seats[1].state(lambda s: s["round"] == 2)
    await seats[1].send(type="move", column=0)
    assert (await seats[0].state(lambda s: s["moves"] == 1))["board"][5][0] == 2
    assert owner_of(survivors, "lobby_game:") in survivors
