"""The chat over real WebSockets, against a node with a real Valkey."""

from __future__ import annotations

import asyncio
import json
import logging
import signal

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from apps.chat import ChatConfig, make_app
from apps.chat.rules import RATE_LIMITED
from tests.support.servers import NodeProcess

NO_LIMIT = ChatConfig(rate_limit=False)
#: Fields this app adds to the demo's frames (who a frame is about; a cooldown's length).
#: Most tests read frames as the demo's clients do, without them; ``raw`` keeps them.
ADDED = ("id", "retry_after")


class Client:
    """One chat session."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.raw: list[dict] = []  # every frame received, as sent

    @classmethod
    async def open(cls, base: str, room: str, **kwargs) -> Client:
        return cls(await connect(f"{base}/chat/api/room/{room}/websocket", **kwargs))

    async def join(self, name: str, **extra: object) -> list[dict]:
        """Send the name; return everything received up to and including ready."""
        await self.ws.send(json.dumps({"name": name, **extra}))
        got = []
        while True:
            got.append(await self.next())
            if got[-1].get("ready"):
                return got

    async def say(self, text: str) -> None:
        await self.ws.send(json.dumps({"message": text}))

    async def next(self) -> dict:
        """The next frame, as a client of the demo reads it (without the added fields)."""
        data = json.loads(await asyncio.wait_for(self.ws.recv(), 5))
        self.raw.append(data)
        return {k: v for k, v in data.items() if k not in ADDED}

    async def until(self, predicate) -> dict:
        while True:
            data = await self.next()
            if predicate(data):
                return data


async def chat_server(serve, config: ChatConfig = NO_LIMIT, **settings):
    return await serve(apps=(make_app(config),), **settings)


async def test_http_endpoints_and_errors(serve) -> None:
    server = await chat_server(serve)
    async with httpx.AsyncClient(base_url=server.http) as client:
        created = await client.post("/chat/api/room")
        assert created.status_code == 200 and len(created.text) == 64
        assert created.headers["access-control-allow-origin"] == "*"
        room = created.text
        server.node.namespace("chat_room").id_from_string(room)  # a valid unique ID
        for method in ("GET", "PUT", "DELETE"):
            r = await client.request(method, "/chat/api/room")
            assert (r.status_code, r.text) == (405, "Method not allowed")
        r = await client.get(f"/chat/api/room/{room}/websocket")
        assert (r.status_code, r.text) == (400, "expected websocket")
        r = await client.get("/chat/api/room/lobby/websocket")
        assert (r.status_code, r.text) == (400, "expected websocket")
        r = await client.get(f"/chat/api/room/{'n' * 33}/websocket")
        assert (r.status_code, r.text) == (404, "Name too long")
        r = await client.get(f"/chat/api/room/{'ab' * 32}/websocket")
        assert r.status_code == 404 and r.text == "Invalid room id"  # 64 hex, not ours
        assert (await client.get("/chat/api/nothing")).status_code == 404
        page = await client.get("/chat/")
        assert page.status_code == 200 and "chat.js" in page.text
    for name, status in (("n" * 33, 404), ("ab" * 32, 404)):
        with pytest.raises(InvalidStatus) as info:
            await Client.open(server.ws, name)
        assert info.value.response.status_code == status


async def test_room_names_that_are_not_utf8_are_refused(serve, caplog) -> None:
    # %ff and %c0%af would both decode to U+FFFD: two names, one room. Neither is a name.
    server = await chat_server(serve)
    async with httpx.AsyncClient(base_url=server.http) as client:
        for bad in ("%ff", "%c0%af", "a%e9b"):
            r = await client.get(f"/chat/api/room/{bad}/websocket")
            assert (r.status_code, r.text) == (400, "the path is not valid UTF-8")
        fine = await client.get("/chat/api/room/%C3%A9t%C3%A9/websocket")
        assert fine.text == "expected websocket"  # a valid name, asked without an upgrade
    caplog.set_level("INFO")
    logging.getLogger("uvicorn.error").addHandler(caplog.handler)  # (it does not propagate)
    with pytest.raises(InvalidStatus) as info:
        await Client.open(server.ws, "%ff")
    assert info.value.response.status_code == 400
    ok = await Client.open(server.ws, "%C3%A9t%C3%A9")  # "été": valid UTF-8, a fine name
    assert (await ok.join("x"))[-1] == {"ready": True}
    await ok.ws.close()
    # A refused handshake is one INFO line with its reason, never an ERROR.
    refusals = [r for r in caplog.records if "refused a WebSocket" in r.getMessage()]
    assert [r.levelname for r in refusals] == ["INFO"]
    assert "not valid UTF-8" in refusals[0].getMessage()
    assert not [r for r in caplog.records if "without completing handshake" in r.getMessage()]
    logging.getLogger("uvicorn.error").removeHandler(caplog.handler)


async def test_join_order_and_broadcast_including_the_sender(serve) -> None:
    server = await chat_server(serve)
    ann = await Client.open(server.ws, "order")
    assert (await ann.join("ann"))[-1] == {"ready": True}
    await ann.say("first")
    first = await ann.until(lambda d: "message" in d)
    bob = await Client.open(server.ws, "order")  # connected, not yet named
    await asyncio.sleep(0.1)
    await ann.say("while bob is silent")
    missed = await ann.until(lambda d: "message" in d)
    cat = await Client.open(server.ws, "order")
    await cat.join("cat")
    got = await bob.join("bob")
    assert got == [
        {"joined": "ann"},
        first,
        missed,
        {"joined": "cat"},
        {"joined": "bob"},
        {"ready": True},
    ]
    assert first["name"] == "ann" and missed["timestamp"] > first["timestamp"]
    assert await ann.until(lambda d: "joined" in d) == {"joined": "cat"}
    assert await ann.until(lambda d: "joined" in d) == {"joined": "bob"}
    await bob.ws.close()
    assert await ann.until(lambda d: "quit" in d) == {"quit": "bob"}
    for c in (ann, cat):
        await c.ws.close()


async def test_history_replay_is_exactly_the_last_100(serve) -> None:
    server = await chat_server(serve)
    talker = await Client.open(server.ws, "history")
    await talker.join("t")
    for i in range(150):
        await talker.say(f"m{i}")
    for i in range(150):
        assert (await talker.until(lambda d: "message" in d))["message"] == f"m{i}"
    late = await Client.open(server.ws, "history")
    got = await late.join("late")
    messages = [d["message"] for d in got if "message" in d]
    assert messages == [f"m{i}" for i in range(50, 150)]
    stamps = [d["timestamp"] for d in got if "timestamp" in d]
    assert stamps == sorted(set(stamps))


async def test_limits_on_names_messages_and_garbage(serve) -> None:
    server = await chat_server(serve)
    watcher = await Client.open(server.ws, "limits")
    await watcher.join("watcher")
    long_name = await Client.open(server.ws, "limits")
    await long_name.ws.send(json.dumps({"name": "x" * 33}))
    assert await long_name.next() == {"error": "Name too long."}
    with pytest.raises(ConnectionClosed) as info:
        await long_name.next()
    assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    talker = await Client.open(server.ws, "limits")
    await talker.join("talker")
    await talker.say("m" * 257)
    assert await talker.until(lambda d: "error" in d) == {"error": "Message too long."}
    await talker.ws.send("{not json")
    error = (await talker.until(lambda d: "error" in d))["error"]
    assert "JSON" in error and "Traceback" not in error and len(error) < 80
    await talker.say("still here")
    assert (await talker.until(lambda d: "message" in d))["message"] == "still here"
    got = await watcher.until(lambda d: "message" in d)
    assert got["message"] == "still here"  # nothing refused reached the room


async def test_rate_limiting_per_client_address(serve) -> None:
    config = ChatConfig(rate_limit=True, rate_interval=0.5, rate_grace=2.0)
    server = await chat_server(serve, config, trusted_proxies=("127.0.0.1",))
    a = await Client.open(server.ws, "limited", additional_headers={"X-Forwarded-For": "10.0.0.1"})
    await a.join("a")  # the name is one message too, as in the demo
    for i in range(6):
        await a.say(f"burst{i}")
    results = [await a.until(lambda d: "message" in d or "error" in d) for _ in range(6)]
    assert [r.get("message") for r in results[:4]] == ["burst0", "burst1", "burst2", "burst3"]
    assert results[4] == results[5] == {"error": RATE_LIMITED}
    other = await Client.open(
        server.ws, "limited", additional_headers={"X-Forwarded-For": "10.0.0.2"}
    )
    await other.join("other")  # another address has its own allowance
    await other.say("fine")
    assert (await other.until(lambda d: "message" in d))["message"] == "fine"
    await asyncio.sleep(0.6)
    await a.say("after waiting")
    assert (await a.until(lambda d: d.get("message") == "after waiting" or "error" in d)) == {
        "name": "a",
        "message": "after waiting",
        "timestamp": pytest.approx(0, abs=10**13),
    }


async def test_a_limited_address_can_still_join_from_a_new_connection(serve) -> None:
    # The demo's limiter is per connection: one person's burst cools their own connection
    # down, and someone else behind the same address (an office) still joins and reads.
    config = ChatConfig(rate_limit=True, rate_interval=30, rate_grace=60)  # 3 pass, then no
    server = await chat_server(serve, config)
    a = await Client.open(server.ws, "office")
    await a.join("a")
    await a.say("one")
    await a.say("two")
    await a.say("refused")
    results = [await a.until(lambda d: "message" in d or "error" in d) for _ in range(3)]
    assert [r.get("message") for r in results[:2]] == ["one", "two"]
    assert results[2] == {"error": RATE_LIMITED}  # a is cooling down
    b = await Client.open(server.ws, "office")  # same address, new connection
    joined = await b.join("b")
    assert [d["message"] for d in joined if "message" in d] == ["one", "two"]  # history
    assert joined[-1] == {"ready": True}
    assert await a.until(lambda d: "joined" in d) == {"joined": "b"}
    await b.say("from b")  # its first message after the name is its own affair: cooling now
    assert "error" in await b.until(lambda d: "message" in d or "error" in d)
    reloaded = await Client.open(server.ws, "office")  # a reload: a third connection
    assert (await reloaded.join("a"))[-1] == {"ready": True}
    for c in (a, b, reloaded):
        await c.ws.close()


async def test_a_mass_drop_gives_exactly_one_quit_per_departure(serve) -> None:
    server = await chat_server(serve)
    survivor = await Client.open(server.ws, "mass")
    leavers = [await Client.open(server.ws, "mass") for _ in range(60)]
    for i, c in enumerate(leavers):
        await c.join(f"p{i}")
    await survivor.join("survivor")  # a silent survivor: named, says nothing
    await asyncio.gather(*(c.ws.transport.abort() or asyncio.sleep(0) for c in leavers))
    quits: list[str] = []
    while len(quits) < 60:
        got = await survivor.next()
        if "quit" in got:
            quits.append(got["quit"])
    assert sorted(quits) == sorted(f"p{i}" for i in range(60))
    with pytest.raises(TimeoutError):  # and not one more
        while True:
            got = json.loads(await asyncio.wait_for(survivor.ws.recv(), 1.0))
            assert "quit" not in got, got
    await survivor.ws.close()


async def test_x_forwarded_for_is_ignored_unless_trusted(serve) -> None:
    config = ChatConfig(rate_limit=True, rate_interval=30, rate_grace=90)  # 4 pass, then no
    server = await chat_server(serve, config)  # no trusted proxies
    a = await Client.open(server.ws, "spoof", additional_headers={"X-Forwarded-For": "10.0.0.1"})
    await a.join("a")
    for i in range(2):
        await a.say(f"x{i}")
    for _ in range(2):
        await a.until(lambda d: "message" in d)
    b = await Client.open(server.ws, "spoof", additional_headers={"X-Forwarded-For": "10.9.9.9"})
    await b.join("b")  # the 4th message from 127.0.0.1, whatever the header says
    await b.say("y")
    assert "error" in await b.until(lambda d: "message" in d or "error" in d)


async def test_private_rooms(serve) -> None:
    server = await chat_server(serve)
    async with httpx.AsyncClient(base_url=server.http) as client:
        room = (await client.post("/chat/api/room")).text
    a = await Client.open(server.ws, room)
    await a.join("a")
    b = await Client.open(server.ws, room)
    assert (await b.join("b"))[0] == {"joined": "a"}
    await b.say("secret")
    assert (await a.until(lambda d: "message" in d))["message"] == "secret"
    public = await Client.open(server.ws, "lobby")
    assert [d for d in await public.join("c") if "message" in d] == []


async def test_a_hibernated_room_keeps_its_roster(serve) -> None:
    server = await chat_server(serve, hibernate_after=0.3, sweep_interval=0.1)
    ann = await Client.open(server.ws, "sleepy")
    await ann.join("ann")
    bob = await Client.open(server.ws, "sleepy")
    await bob.join("bob")
    await ann.say("before")
    await ann.until(lambda d: "message" in d)
    await bob.until(lambda d: "message" in d)
    for _ in range(50):
        await asyncio.sleep(0.1)
        if server.node.live_objects == 0:
            break
    assert server.node.live_objects == 0 and server.node.stats.hibernations >= 1
    cat = await Client.open(server.ws, "sleepy")
    got = await cat.join("cat")
    assert {"joined": "ann"} in got and {"joined": "bob"} in got  # names from attachments
    assert [d["message"] for d in got if "message" in d] == ["before"]
    await bob.say("after")
    after = await ann.until(lambda d: "message" in d)
    assert after["name"] == "bob" and after["message"] == "after"
    for _ in range(50):  # let it hibernate again, then have bob leave
        await asyncio.sleep(0.1)
        if server.node.live_objects == 0:
            break
    assert server.node.live_objects == 0
    await bob.ws.close()
    assert await ann.until(lambda d: "quit" in d) == {"quit": "bob"}


async def test_history_is_pruned_by_an_alarm(serve, sync_redis) -> None:
    server = await chat_server(serve, ChatConfig(rate_limit=False, history=100))
    talker = await Client.open(server.ws, "pruned")
    await talker.join("t")
    for i in range(115):
        await talker.say(f"m{i}")
    for _ in range(115):
        await talker.until(lambda d: "message" in d)
    stub = server.node.namespace("chat_room").get_by_name("pruned")
    keys = f"do:{{chat_room:{stub.id.hex}}}:i"
    for _ in range(50):
        await asyncio.sleep(0.1)
        if sync_redis.zcount(keys, "-inf", "+inf") <= 101:
            break
    stored = [k.decode() for k in sync_redis.zrange(keys, 0, -1)]
    assert len([k for k in stored if k.startswith("m/")]) == 100
    late = await Client.open(server.ws, "pruned")
    got = [d["message"] for d in await late.join("late") if "message" in d]
    assert got == [f"m{i}" for i in range(15, 115)]


def test_history_survives_a_node_restart(redis_url: str, tmp_path) -> None:
    async def session(node: NodeProcess, say: list[str]) -> list[str]:
        client = await Client.open(node.ws, "durable")
        got = [d["message"] for d in await client.join("d") if "message" in d]
        for text in say:
            await client.say(text)
            await client.until(lambda d, text=text: d.get("message") == text)
        await client.ws.close()
        return got

    env = {"CHAT_RATE_LIMIT": "0"}
    first = NodeProcess(
        redis_url=redis_url,
        node_id="chat-1",
        apps=(),
        suite=True,
        env=env,
        log_path=tmp_path / "1.log",
    ).start()
    try:
        assert asyncio.run(session(first, ["one", "two"])) == []
    finally:
        assert first.stop(signal.SIGTERM) == 0
    second = NodeProcess(
        redis_url=redis_url,
        node_id="chat-2",
        apps=(),
        suite=True,
        env=env,
        log_path=tmp_path / "2.log",
    ).start()
    try:
        assert asyncio.run(session(second, [])) == ["one", "two"]
    finally:
        second.stop()


async def test_two_people_with_one_name_are_told_apart_by_their_ids(serve) -> None:
    server = await chat_server(serve)
    first = await Client.open(server.ws, "twins")
    await first.join("Ada", key="first-browser-key-0001")
    mine = first.raw[-1]["id"]  # {"ready": true, "id": ...}
    second = await Client.open(server.ws, "twins")
    await second.join("Ada", key="second-browser-key-002")
    theirs = second.raw[-1]["id"]
    assert mine != theirs and len(mine) == len(theirs) == 12
    assert {"joined": "Ada", "id": mine} in second.raw  # the roster names the first Ada
    await first.until(lambda d: "joined" in d)
    assert first.raw[-1] == {"joined": "Ada", "id": theirs}
    await second.say("hello")
    await first.until(lambda d: "message" in d)
    assert first.raw[-1]["id"] == theirs and first.raw[-1]["name"] == "Ada"
    # The same browser (the same key) is the same person after a reconnect...
    await first.ws.close()
    await second.until(lambda d: "quit" in d)
    assert second.raw[-1] == {"quit": "Ada", "id": mine}
    back = await Client.open(server.ws, "twins")
    got = await back.join("Ada", key="first-browser-key-0001")
    assert back.raw[-1]["id"] == mine
    assert [d["message"] for d in got if "message" in d] == ["hello"]
    assert [r["id"] for r in back.raw if "message" in r] == [theirs]  # history keeps ids
    # ...and a key that is not one is refused, with the socket left open and unnamed.
    odd = await Client.open(server.ws, "twins")
    await odd.ws.send(json.dumps({"name": "Eve", "key": "no"}))
    assert "key" in (await odd.next())["error"]
    assert (await odd.join("Eve"))[-1] == {"ready": True}
    for c in (second, back, odd):
        await c.ws.close()


async def test_a_refused_message_says_how_long_to_wait(serve) -> None:
    config = ChatConfig(rate_limit=True, rate_interval=4, rate_grace=4)  # 2 pass, then 4 s
    server = await chat_server(serve, config)
    a = await Client.open(server.ws, "countdown")
    await a.join("a")
    await a.say("one")
    await a.say("refused")
    await a.until(lambda d: "error" in d)
    refusal = a.raw[-1]
    assert refusal["error"] == RATE_LIMITED  # the demo's words, kept
    assert isinstance(refusal["retry_after"], int) and 1 <= refusal["retry_after"] <= 4
    await a.ws.close()
