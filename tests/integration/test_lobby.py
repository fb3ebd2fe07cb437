"""The lobby's JSON interface end to end on one node: real sockets, a real Valkey."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from websockets.exceptions import InvalidStatus

from apps.lobby import LobbyConfig, make_app
from apps.lobby.names import GAMES
from tests.support.lobbyclient import Player, Sock, create_lobby

FAST = LobbyConfig(directory_tick=0.02)


async def lobby_server(serve, config: LobbyConfig = FAST, **settings):
    return await serve(apps=(make_app(config),), **settings)


async def ready_pair(server, **lobby) -> tuple[str, Player, Player]:
    """A lobby with two ready members, Ann (the host) and Bob."""
    lobby_id, _ = await create_lobby(server.http, **lobby)
    ann = await Player.join(server.ws, lobby_id, "Ann")
    bob = await Player.join(server.ws, lobby_id, "Bob")
    for p in (ann, bob):
        await p.lobby.send(type="ready", ready=True)
    await ann.lobby.state(lambda s: all(p["ready"] for p in s["players"]))
    return lobby_id, ann, bob


async def start_game(server, ann: Player, bob: Player) -> str:
    """The host starts; both take their seats. Returns the game's ID."""
    await ann.lobby.send(type="start")
    for p in (ann, bob):
        message = await p.lobby.expect("game")
        p.game_token = message["token"]
        await p.sit(server.ws, message["game"])
    return str(message["game"])


async def test_the_http_interface_and_its_refusals(serve) -> None:
    server = await lobby_server(serve)
    async with httpx.AsyncClient(base_url=server.http) as client:
        r = await client.post(
            "/lobby/api/lobbies", json={"name": "Open", "public": True, "max_players": 4}
        )
        assert r.status_code == 201
        public, code = r.json()["lobby"], r.json()["code"]
        assert len(public) == 64 and len(code) == 6 and not set(code) & set("0O1IL")
        r = await client.post(
            "/lobby/api/lobbies", json={"name": "Hidden", "public": False, "max_players": 2}
        )
        private, private_code = r.json()["lobby"], r.json()["code"]
        listed = (await client.get("/lobby/api/lobbies")).json()["lobbies"]
        assert listed == [
            {"lobby": public, "name": "Open", "players": 0, "max_players": 4, "status": "open"}
        ]
        assert (await client.get(f"/lobby/api/codes/{code}")).json() == {"lobby": public}
        spaced = f"{private_code[:3].lower()}-{private_code[3:].lower()}"
        assert (await client.get(f"/lobby/api/codes/{spaced}")).json() == {"lobby": private}
        for bad in ("ZZZZZZ" if "ZZZZZZ" not in (code, private_code) else "YYYYYY", "O0O0O0"):
            r = await client.get(f"/lobby/api/codes/{bad}")
            assert r.status_code == 404 and r.json()["error"]
        for body, status, why in [
            ({"name": "", "public": True, "max_players": 4}, 400, "empty"),
            ({"name": "x", "public": 1, "max_players": 4}, 400, "public"),
            ({"name": "x", "public": True, "max_players": 9}, 400, "2 to 8"),
            ({"name": "x" * 41, "public": True, "max_players": 2}, 400, "too long"),
            ([1, 2], 400, "JSON object"),
        ]:
            r = await client.post("/lobby/api/lobbies", json=body)
            assert r.status_code == status and why in r.json()["error"], r.text
        r = await client.post("/lobby/api/lobbies", content=b"{nope")
        assert r.status_code == 400 and "JSON" in r.json()["error"]
        r = await client.post("/lobby/api/lobbies", content=b" " * 3000)
        assert r.status_code == 413
        assert len((await client.get("/lobby/api/lobbies")).json()["lobbies"]) == 1
        assert (await client.get("/lobby/api/games/" + "ab" * 32)).status_code == 404
        assert (await client.get(f"/lobby/api/lobbies/{private}")).json() == {
            "lobby": private,
            "name": "Hidden",
            "players": 0,
            "max_players": 2,
            "status": "open",
            "public": False,
        }
        tampered = public[:-1] + ("1" if public.endswith("0") else "0")  # (never itself)
        for missing in ("ab" * 32, "nope", tampered):
            assert (await client.get(f"/lobby/api/lobbies/{missing}")).status_code == 404
        assert (await client.get("/lobby/api/nothing")).status_code == 404
        r = await client.get(f"/lobby/ws/{public}")
        assert (r.status_code, r.text) == (400, "expected a WebSocket")
        page = await client.get("/lobby/")
        assert page.status_code == 200 and "main.js" in page.text
    for path in ("ws/" + "ab" * 32, "ws/not-an-id", "ws/game/" + public):  # a lobby's ID
        with pytest.raises(InvalidStatus) as info:
            await Sock.open(f"{server.ws}/lobby/{path}")
        assert info.value.response.status_code == 404


async def test_join_ready_chat_start_play_to_a_win_and_the_result_in_the_lobby(serve) -> None:
    server = await lobby_server(serve)
    lobby_id, code = await create_lobby(server.http, name="Friday")
    async with httpx.AsyncClient(base_url=server.http) as client:
        found = (await client.get(f"/lobby/api/codes/{code}")).json()["lobby"]
    assert found == lobby_id
    ann = await Player.join(server.ws, lobby_id, "Ann")
    state = await ann.lobby.state()
    assert state["players"] == [
        {
            "player": ann.id,
            "name": "Ann",
            "ready": False,
            "host": True,
            "connected": True,
            "wins": 0,
            "seat": None,
        }
    ]
    assert state["host"] == ann.id and state["status"] == "open" and state["code"] == code
    bob = await Player.join(server.ws, found, "Bob")
    await ann.lobby.state(lambda s: len(s["players"]) == 2)
    await bob.lobby.send(type="chat", text="  hello   <b>all</b> ")
    for p in (ann, bob):
        line = await p.lobby.expect("chat")
        assert (line["name"], line["text"]) == ("Bob", "hello <b>all</b>")
    await ann.lobby.send(type="start")
    assert "at least 2" in await ann.lobby.error()
    await bob.lobby.send(type="start")
    assert "only the host" in await bob.lobby.error()
    await bob.lobby.send(type="ready", ready=True)
    await ann.lobby.send(type="start")
    assert "at least 2" in await ann.lobby.error()
    await ann.lobby.send(type="ready", ready=True)
    await ann.lobby.state(lambda s: all(p["ready"] for p in s["players"]))
    game = await start_game(server, ann, bob)
    state = await bob.lobby.state(lambda s: s["status"] == "playing")
    assert state["game"] == game
    assert [p["seat"] for p in state["players"]] == [1, 2]
    assert ann.game is not None and bob.game is not None
    watcher = await Sock.open(f"{server.ws}/lobby/ws/game/{game}")
    first = await watcher.expect("state")
    assert first["you"] is None and first["turn"] == 1 and first["board"] == [[0] * 7] * 6
    # Refusals: out of turn, a spectator, a bad column, a full column; the sockets stay open.
    await bob.game.send(type="move", column=3)
    assert "not your turn" in await bob.game.error()
    await watcher.send(type="move", column=3)
    assert "spectators" in await watcher.error()
    for bad in (7, -1, "3", None, 2.5):
        await ann.game.send(type="move", column=bad)
        assert "from 0 to 6" in await ann.game.error()
    for p in [ann, bob] * 3:
        seen = await p.move(0, watcher)
    assert [row[0] for row in seen["board"]] == [2, 1, 2, 1, 2, 1]
    await ann.game.send(type="move", column=0)
    assert "column 0 is full" in await ann.game.error()
    for p, column in [(ann, 2), (bob, 6), (ann, 3), (bob, 6), (ann, 4), (bob, 6)]:
        await p.move(column, watcher)
    final = await ann.move(5, watcher)  # 2-3-4-5 on the bottom row
    assert (final["winner"], final["draw"], final["ended_by"]) == (1, False, "four")
    assert final["line"] == [[5, 2], [5, 3], [5, 4], [5, 5]]
    mine = await ann.game.state(lambda m: m["winner"] is not None)
    assert mine["you"] == 1 and mine["board"] == final["board"]
    await bob.game.send(type="move", column=5)
    assert "over" in await bob.game.error()
    # The result reaches the lobby: open again, readiness reset, a win for Ann.
    state = await ann.lobby.state(lambda s: s["status"] == "open")
    assert state["results"][0]["winner"] == ann.id and state["results"][0]["game"] == game
    assert [(p["wins"], p["ready"]) for p in state["players"]] == [(1, False), (0, False)]
    # A rematch: both ask, round 2 starts with Bob moving first; the lobby plays again.
    await bob.game.send(type="rematch")
    assert (await watcher.state(lambda m: m["rematch"] == [2]))["round"] == 1
    await ann.game.send(type="rematch")
    again = await watcher.state(lambda m: m["round"] == 2)
    assert again["turn"] == 2 and again["winner"] is None and again["scores"] == {"1": 1, "2": 0}
    await ann.lobby.state(lambda s: s["status"] == "playing")
    async with httpx.AsyncClient(base_url=server.http) as client:
        info = (await client.get(f"/lobby/api/games/{game}")).json()
    assert info["state"]["round"] == 2 and [r["ended_by"] for r in info["history"]] == ["four"]
    # The results are stored (a key of their own, written as a round ends): a game rebuilt
    # from storage has them.
    games = server.node.namespaces[GAMES.name]
    record = server.node.record_of(games, games.id_from_string(game))
    assert record is not None and record.instance is not None
    record.instance = None  # (the next event builds it again from what is stored)
    async with httpx.AsyncClient(base_url=server.http) as client:
        again_info = (await client.get(f"/lobby/api/games/{game}")).json()
    assert again_info["history"] == info["history"]
    assert record.instance is not None


async def test_kick_host_handover_and_migration(serve) -> None:
    server = await lobby_server(serve, LobbyConfig(grace=1.0, directory_tick=0.02))
    lobby_id, _ = await create_lobby(server.http)
    ann = await Player.join(server.ws, lobby_id, "Ann")
    bob = await Player.join(server.ws, lobby_id, "Bob")
    cy = await Player.join(server.ws, lobby_id, "Cy")
    dee = await Player.join(server.ws, lobby_id, "Dee")
    await bob.lobby.send(type="kick", player=cy.id)
    assert "only the host" in await bob.lobby.error()
    await ann.lobby.send(type="kick", player=cy.id)
    assert await cy.lobby.expect("kicked") == {"type": "kicked"}
    assert (await cy.lobby.closed())[0] == 4003
    state = await ann.lobby.state(lambda s: len(s["players"]) == 3)
    assert cy.id not in {p["player"] for p in state["players"]}
    with pytest.raises(LookupError, match="gone"):  # the kicked token no longer resumes
        await Player.resume(server.ws, lobby_id, cy.token)
    await ann.lobby.send(type="host", player=dee.id)
    state = await bob.lobby.state(lambda s: s["host"] == dee.id)
    assert [p["host"] for p in state["players"]] == [False, False, True]
    await dee.lobby.send(type="leave")
    assert (await dee.lobby.closed())[0] == 1000
    state = await bob.lobby.state(lambda s: len(s["players"]) == 2)
    assert state["host"] == ann.id  # the longest-present member
    await ann.lobby.close()  # the host drops and stays away past the grace period
    state = await bob.lobby.state(lambda s: not s["players"][0]["connected"])
    assert state["host"] == ann.id  # still the host while the place is kept
    state = await bob.lobby.state(lambda s: len(s["players"]) == 1)
    assert state["host"] == bob.id


async def test_a_dropped_member_resumes_and_forged_tokens_are_refused(serve) -> None:
    server = await lobby_server(serve, LobbyConfig(chat_history=2))
    lobby_id, _ = await create_lobby(server.http)
    ann = await Player.join(server.ws, lobby_id, "Ann")
    await ann.lobby.send(type="ready", ready=True)
    await ann.lobby.state(lambda s: s["players"][0]["ready"])
    for text in ("one", "two", "three"):
        await ann.lobby.send(type="chat", text=text)
        await ann.lobby.until(lambda m, t=text: m["type"] == "chat" and m["text"] == t)
    await ann.lobby.close()
    back = await Player.resume(server.ws, lobby_id, ann.token)
    assert back.id == ann.id and back.token == ann.token
    history = await back.lobby.expect("history")
    assert [m["text"] for m in history["messages"]] == ["two", "three"]  # the last 2 kept
    state = await back.lobby.state()
    assert state["players"][0]["ready"] and state["players"][0]["connected"]
    stranger = await Sock.open(f"{server.ws}/lobby/ws/{lobby_id}")
    forged = ann.token[:-2] + ("AA" if not ann.token.endswith("AA") else "BB")
    for token in (forged, "garbage", 42):
        await stranger.send(type="resume", token=token)
        assert "not valid" in await stranger.error()
    other_id, _ = await create_lobby(server.http)
    elsewhere = await Sock.open(f"{server.ws}/lobby/ws/{other_id}")
    await elsewhere.send(type="resume", token=ann.token)  # a real token, another lobby
    assert "not valid" in await elsewhere.error()
    await stranger.send(type="ready", ready=True)
    assert "join the lobby first" in await stranger.error()
    await stranger.send(type="join", name="Zed")  # the socket stayed open and usable
    assert (await stranger.expect("welcome"))["player"]
    # Two tabs of one member: the newer takes the place, the older is closed.
    again = await Player.resume(server.ws, lobby_id, ann.token)
    assert (await back.lobby.closed())[0] == 4001
    await again.lobby.state(lambda s: len(s["players"]) == 2)


async def test_game_seats_tokens_reconnection_and_garbage(serve) -> None:
    server = await lobby_server(serve)
    _, ann, bob = await ready_pair(server)
    game = await start_game(server, ann, bob)
    assert ann.game is not None and bob.game is not None and ann.game_token
    forged = ann.game_token[:-3] + "xyz"
    spy = await Sock.open(f"{server.ws}/lobby/ws/game/{game}?token={forged}")
    assert "not valid" in await spy.error()
    assert (await spy.expect("state"))["you"] is None  # kept open, as a spectator
    await spy.send(type="move", column=0)
    assert "spectators" in await spy.error()
    # A lobby token of another lobby is no seat here.
    other_lobby, _ = await create_lobby(server.http, name="Elsewhere")
    stranger = await Player.join(server.ws, other_lobby, "Sam")
    elsewhere = await Sock.open(f"{server.ws}/lobby/ws/game/{game}?token={stranger.token}")
    assert "not valid" in await elsewhere.error()
    assert (await elsewhere.expect("state"))["you"] is None
    for garbage in (b"\x00\x01", "{nope", "[]", '{"type": "dance"}', "x" * 5000):
        await ann.game.send_raw(garbage)
        assert await ann.game.error()
    await ann.game.send(type="move", column=3)
    await bob.game.state(lambda s: s["moves"] == 1)
    # Bob drops: both see it; he comes back with his token and finds the board as it was.
    await bob.game.close()
    gone = await ann.game.state(lambda s: not s["players"]["2"]["connected"])
    assert gone["board"][5][3] == 1
    back = await bob.sit(server.ws, game)
    state = await ann.game.state(lambda s: s["players"]["2"]["connected"])
    assert back.seen[-1]["you"] == 2 and back.seen[-1]["board"] == state["board"]
    await back.send(type="move", column=3)
    await ann.game.state(lambda s: s["moves"] == 2)
    # A second socket on one seat replaces the first.
    first = ann.game
    await ann.sit(server.ws, game)
    assert (await first.closed())[0] == 4001


async def test_the_turn_timer_forfeits_once_and_reports_to_the_lobby(serve) -> None:
    config = LobbyConfig(turn_time=0.8, game_ttl=2.0, directory_tick=0.02)
    server = await lobby_server(serve, config)
    _, ann, bob = await ready_pair(server)
    game = await start_game(server, ann, bob)
    assert ann.game is not None
    await ann.game.send(type="move", column=2)
    state = await ann.game.state(lambda s: s["ended_by"] is not None)
    assert (state["ended_by"], state["winner"], state["moves"]) == ("timeout", 1, 1)
    lobby = await ann.lobby.state(lambda s: s["status"] == "open" and s["results"])
    assert lobby["results"][0]["ended_by"] == "timeout"
    await asyncio.sleep(0.8)
    async with httpx.AsyncClient(base_url=server.http) as client:
        info = (await client.get(f"/lobby/api/games/{game}")).json()
        assert [r["ended_by"] for r in info["history"]] == ["timeout"]
        assert len((await bob.lobby.state(lambda s: True))["results"]) == 1
        # Once over for game_ttl, the game is removed: its sockets close, its URL is gone.
        assert (await ann.game.closed(timeout=5))[0] == 4004
        assert (await client.get(f"/lobby/api/games/{game}")).status_code == 404


async def test_the_directory_pushes_changes_and_empty_lobbies_are_removed(serve) -> None:
    server = await lobby_server(serve, LobbyConfig(empty_ttl=1.0, directory_tick=0.02))
    watcher = await Sock.open(f"{server.ws}/lobby/ws/directory")
    assert await watcher.next() == {"type": "lobbies", "lobbies": []}
    lobby_id, _ = await create_lobby(server.http, name="Live", max_players=2)
    await create_lobby(server.http, name="Secret", public=False)
    added = await watcher.expect("lobby")
    assert added["lobby"] == {
        "lobby": lobby_id,
        "name": "Live",
        "players": 0,
        "max_players": 2,
        "status": "open",
    }
    ann = await Player.join(server.ws, lobby_id, "Ann")
    bob = await Player.join(server.ws, lobby_id, "Bob")
    full = await watcher.until(lambda m: m["type"] == "lobby" and m["lobby"]["players"] == 2)
    assert full["lobby"]["lobby"] == lobby_id
    late = await Sock.open(f"{server.ws}/lobby/ws/directory")
    assert (await late.next())["lobbies"][0]["players"] == 2
    cy = await Sock.open(f"{server.ws}/lobby/ws/{lobby_id}")
    await cy.send(type="join", name="Cy")
    assert "full" in await cy.error()
    await cy.send(type="watch")
    assert (await cy.state(lambda s: s["spectators"] == 1))["players"][1]["name"] == "Bob"
    for p in (ann, bob):
        await p.lobby.send(type="leave")
    empty = await watcher.until(lambda m: m["type"] == "lobby" and m["lobby"]["players"] == 0)
    assert empty["lobby"]["lobby"] == lobby_id
    assert await watcher.expect("removed", timeout=5) == {"type": "removed", "lobby": lobby_id}
    assert (await cy.closed())[0] == 4004
    async with httpx.AsyncClient(base_url=server.http) as client:
        assert (await client.get("/lobby/api/lobbies")).json() == {"lobbies": []}
    with pytest.raises(InvalidStatus):
        await Sock.open(f"{server.ws}/lobby/ws/{lobby_id}")
    assert all(m["type"] != "lobby" or m["lobby"]["name"] != "Secret" for m in watcher.seen)


async def test_quick_play_pairs_waiting_players_into_a_game(serve) -> None:
    server = await lobby_server(serve)
    ann = await Sock.open(f"{server.ws}/lobby/ws/quickplay")
    await ann.send(type="queue", name="Ann")
    assert await ann.next() == {"type": "queued", "waiting": 1}
    await ann.send(type="queue", name="Ann")
    assert "already" in await ann.error()
    bob = await Sock.open(f"{server.ws}/lobby/ws/quickplay")
    await bob.send(type="queue", name="Bob")
    a, b = await ann.expect("matched"), await bob.expect("matched")
    assert a["game"] == b["game"] and (a["seat"], b["seat"]) == (1, 2)
    assert (a["opponent"], b["opponent"]) == ("Bob", "Ann")
    assert (await ann.closed())[0] == 1000
    seat = await Sock.open(f"{server.ws}/lobby/ws/game/{a['game']}?token={a['token']}")
    state = await seat.expect("state")
    assert state["you"] == 1 and state["lobby"] is None
    await seat.send(type="move", column=3)
    assert (await seat.state(lambda s: s["moves"] == 1))["board"][5][3] == 1


async def test_objects_rebuilt_after_hibernation_keep_members_and_seats(serve) -> None:
    server = await lobby_server(serve, hibernate_after=0.3, sweep_interval=0.1)
    _, ann, bob = await ready_pair(server)
    game = await start_game(server, ann, bob)
    assert ann.game is not None and bob.game is not None
    await ann.game.send(type="move", column=1)
    await bob.game.state(lambda s: s["moves"] == 1)
    await ann.lobby.send(type="chat", text="before the nap")
    await bob.lobby.expect("chat")
    before = server.node.stats.hibernations
    for _ in range(50):  # the lobby and the game hibernate: only their sockets remain
        await asyncio.sleep(0.1)
        if server.node.stats.hibernations - before >= 2:
            break
    assert server.node.stats.hibernations - before >= 2
    await bob.game.send(type="move", column=1)
    state = await ann.game.state(lambda s: s["moves"] == 2)
    assert (state["you"], state["turn"], state["board"][4][1]) == (1, 1, 2)
    await bob.lobby.send(type="chat", text="still here")
    heard = await ann.lobby.until(lambda m: m["type"] == "chat" and m["text"] == "still here")
    assert heard["player"] == bob.id
    lobby_id = next(m["lobby"] for m in ann.lobby.seen if m["type"] == "welcome")
    late = await Sock.open(f"{server.ws}/lobby/ws/{lobby_id}")
    await late.send(type="watch")
    history = await late.expect("history")
    assert [m["text"] for m in history["messages"]] == ["before the nap", "still here"]
    await ann.lobby.send(type="kick", player=bob.id)  # the host is still the host
    assert (await bob.lobby.closed())[0] == 4003
    assert game in {m.get("game") for m in ann.lobby.seen}


async def test_the_welcome_token_seats_its_holder_at_every_game_of_its_lobby(serve) -> None:
    config = LobbyConfig(directory_tick=0.02, turn_time=30.0)
    server = await lobby_server(serve, config)
    lobby_id, ann, bob = await ready_pair(server)
    cy = await Player.join(server.ws, lobby_id, "Cy")  # a member who does not play
    game = await start_game(server, ann, bob)
    assert ann.game is not None
    # Bob's lobby token (from "welcome") takes his seat, as his game token would: the older
    # socket on that seat is replaced, and the seat plays.
    first = bob.game
    assert first is not None
    bob.game = await Sock.open(f"{server.ws}/lobby/ws/game/{game}?token={bob.token}")
    assert (await first.closed())[0] == 4001
    assert (await bob.game.expect("state"))["you"] == 2
    await ann.game.send(type="move", column=3)
    await bob.game.state(lambda s: s["moves"] == 1)
    await bob.game.send(type="move", column=4)
    await ann.game.state(lambda s: s["moves"] == 2)
    # Cy's lobby token is good here too, but Cy has no seat: Cy watches, with no error.
    watcher = await Sock.open(f"{server.ws}/lobby/ws/game/{game}?token={cy.token}")
    state = await watcher.expect("state")
    assert state["you"] is None and not [m for m in watcher.seen if m["type"] == "error"]
    # The next game of the same lobby takes the same token.
    await ann.game.send(type="resign")
    await ann.lobby.state(lambda s: s["status"] == "open")
    for p in (ann, bob):
        await p.lobby.send(type="ready", ready=True)
    await ann.lobby.state(lambda s: sum(p["ready"] for p in s["players"]) == 2)
    await ann.lobby.send(type="start")
    second_game = (await bob.lobby.expect("game"))["game"]
    assert second_game != game
    seat = await Sock.open(f"{server.ws}/lobby/ws/game/{second_game}?token={bob.token}")
    assert (await seat.expect("state"))["you"] == 2


async def test_resign_draw_claim_and_abort_end_rounds_and_reach_the_lobby(serve) -> None:
    config = LobbyConfig(directory_tick=0.02, claim_after=0.5, grace=30.0)
    server = await lobby_server(serve, config)
    _, ann, bob = await ready_pair(server)
    await start_game(server, ann, bob)
    assert ann.game is not None and bob.game is not None
    # garbage and refusals change nothing
    await ann.game.send(type="draw", offer="yes")
    assert "offer" in await ann.game.error()
    await ann.game.send(type="claim_win")
    assert "opponent is here" in await ann.game.error()
    await ann.game.send(type="move", column=0)
    await bob.game.state(lambda s: s["moves"] == 1)
    await bob.game.send(type="move", column=1)
    await ann.game.state(lambda s: s["moves"] == 2)
    await ann.game.send(type="abort")
    assert "aborted before both" in await ann.game.error()
    # a draw: offered, seen by the other, accepted
    await ann.game.send(type="draw")
    assert (await bob.game.state(lambda s: s["draw_offer"] == 1))["ended_by"] is None
    await bob.game.send(type="draw")
    state = await ann.game.state(lambda s: s["ended_by"] is not None)
    assert (state["ended_by"], state["draw"], state["winner"]) == ("agreed", True, None)
    lobby = await ann.lobby.state(lambda s: s["status"] == "open" and s["results"])
    assert lobby["results"][0]["ended_by"] == "agreed"
    # a rematch, then Bob goes away: Ann waits claim_after, then claims the win
    for p in (ann, bob):
        await p.game.send(type="rematch")
    await ann.game.state(lambda s: s["round"] == 2 and s["ended_by"] is None)
    await bob.game.close()
    away = await ann.game.state(lambda s: not s["players"]["2"]["connected"])
    assert away["players"]["2"]["away_for"] is not None and away["claim_after"] == 0.5
    await asyncio.sleep(0.6)
    await ann.game.send(type="claim_win")
    state = await ann.game.state(lambda s: s["ended_by"] is not None)
    assert (state["ended_by"], state["winner"], state["scores"]) == ("claimed", 1, {"1": 1, "2": 0})
    lobby = await ann.lobby.state(lambda s: len(s["results"]) == 2)
    assert lobby["results"][0]["ended_by"] == "claimed"
    assert [p["wins"] for p in lobby["players"]] == [1, 0]


async def test_a_seated_player_who_leaves_the_lobby_gives_the_round_up(serve) -> None:
    server = await lobby_server(serve)
    _, ann, bob = await ready_pair(server)
    await start_game(server, ann, bob)
    assert ann.game is not None
    await bob.lobby.send(type="leave")
    state = await ann.game.state(lambda s: s["ended_by"] is not None)
    assert (state["ended_by"], state["winner"]) == ("left", 1)
    lobby = await ann.lobby.state(lambda s: s["status"] == "open" and len(s["players"]) == 1)
    assert lobby["results"][0]["ended_by"] == "left"


async def test_one_address_creating_lobbies_or_trying_codes_too_fast_gets_429(serve) -> None:
    # (slow refills, so the test's own pace never earns a try back: one per 2 s, per 10 s)
    config = LobbyConfig(
        directory_tick=0.02, create_rate=30.0, create_burst=3, code_rate=6.0, code_burst=4
    )
    server = await lobby_server(serve, config, trusted_proxies=("127.0.0.1",))
    body = {"name": "Mine", "public": True, "max_players": 2}
    async with httpx.AsyncClient(
        base_url=server.http, headers={"X-Forwarded-For": "10.9.0.1"}
    ) as a:
        made = [await a.post("/lobby/api/lobbies", json=body) for _ in range(4)]
        assert [r.status_code for r in made] == [201, 201, 201, 429]
        refusal = made[-1]
        wait = int(refusal.headers["retry-after"])
        assert 1 <= wait <= 2 and refusal.json()["retry_after"] == wait
        assert f"creating lobbies); try again in {wait} s" in refusal.json()["error"]
        assert (await a.post("/lobby/api/lobbies", json={"name": ""})).status_code == 400
        codes = [(await a.get(f"/lobby/api/codes/ABC{c * 3}")).status_code for c in "23456"]
        assert codes == [404, 404, 404, 404, 429]  # (no such codes; then too many tries)
        guessing = await a.get("/lobby/api/codes/ZZZ234")
        assert guessing.status_code == 429 and "join codes" in guessing.json()["error"]
        # Nothing refused was made: three lobbies are listed.
        assert len((await a.get("/lobby/api/lobbies")).json()["lobbies"]) == 3
        await asyncio.sleep(wait + 0.1)  # then one more each 2 s
        assert (await a.post("/lobby/api/lobbies", json=body)).status_code == 201
    # Another address has its own allowance.
    async with httpx.AsyncClient(
        base_url=server.http, headers={"X-Forwarded-For": "10.9.0.2"}
    ) as b:
        assert (await b.post("/lobby/api/lobbies", json=body)).status_code == 201
        assert (await b.get(f"/lobby/api/codes/{'ABC234'}")).status_code == 404


async def test_the_limits_can_be_turned_off(serve) -> None:
    server = await lobby_server(serve, LobbyConfig(create_rate=0, code_rate=0, create_burst=1))
    async with httpx.AsyncClient(base_url=server.http) as client:
        body = {"name": "Bench", "public": False, "max_players": 2}
        made = await asyncio.gather(
            *(client.post("/lobby/api/lobbies", json=body) for _ in range(30))
        )
        assert {r.status_code for r in made} == {201}
        tried = await asyncio.gather(*(client.get("/lobby/api/codes/QQQ234") for _ in range(40)))
        assert {r.status_code for r in tried} == {404}


async def test_a_game_stored_before_results_had_a_key_keeps_them(serve) -> None:
    """Games stored with their results inside the game's value (before they had a key of
    their own) still load with them, and the next save moves them to the new key."""
    server = await lobby_server(serve)
    _, ann, bob = await ready_pair(server)
    game = await start_game(server, ann, bob)
    watcher = await Sock.open(f"{server.ws}/lobby/ws/game/{game}")
    await watcher.expect("state")
    for p, column in [(ann, 2), (bob, 6), (ann, 3), (bob, 6), (ann, 4), (bob, 6), (ann, 5)]:
        await p.move(column, watcher)
    url = f"/lobby/api/games/{game}"
    async with httpx.AsyncClient(base_url=server.http) as client:
        results = (await client.get(url)).json()["history"]
        assert [r["ended_by"] for r in results] == ["four"]
        games = server.node.namespaces[GAMES.name]
        record = server.node.record_of(games, games.id_from_string(game))
        assert record is not None and record.storage is not None
        old = {**await record.storage.get("game"), "history": results}  # the old layout
        await record.storage.put("game", old)
        await record.storage.delete("history")
        await record.storage.sync()
        for step in ("loaded", "saved again", "loaded again"):
            record.instance = None  # (the next event builds it from storage)
            if step == "saved again":
                await bob.game.send(type="rematch")  # a save without a new result
                await watcher.state(lambda m: m["rematch"] == [2])
            assert (await client.get(url)).json()["history"] == results, step
