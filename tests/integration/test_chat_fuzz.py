"""Random and malformed frames never crash a room or stall the other sessions in it."""

from __future__ import annotations

import asyncio
import json
import random

import httpx

from apps.chat import ChatConfig, make_app
from tests.integration.test_chat import Client
from tests.support.rawws import RawSocket

PATH = "/chat/api/room/fuzzed/websocket"


async def named_raw(server) -> RawSocket:
    raw = await RawSocket.open("127.0.0.1", server.port, PATH)
    raw.text(json.dumps({"name": "fuzzer"}))
    while True:
        opcode, payload = await raw.read()
        assert opcode == 0x1, (opcode, payload)
        if json.loads(payload).get("ready"):
            return raw


def garbage(rng: random.Random) -> str | bytes:
    kind = rng.randrange(8)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 300))
    if kind == 1:
        return "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(0, 200)))
    if kind == 2:
        return "[" * rng.randrange(1, 5000) + "]" * rng.randrange(0, 5000)
    if kind == 3:
        value = rng.choice([None, True, 1.5, -7, "x" * rng.randrange(300), [1, {"a": []}]])
        return json.dumps({rng.choice(["message", "name", "other"]): value})
    if kind == 4:
        return json.dumps(rng.choice([[], 42, "str", None, {"message": {"nested": [1, 2]}}]))
    if kind == 5:
        return "{" + '"a":{' * rng.randrange(1, 3000)
    if kind == 6:
        return json.dumps({"message": "y" * rng.randrange(250, 20_000)})
    return '{"message": "ok ' + str(rng.random()) + '"}'


async def test_fuzzed_frames_never_crash_the_room_or_stall_others(serve) -> None:
    server = await serve(apps=(make_app(ChatConfig(rate_limit=False)),), max_frame_bytes=256 * 1024)
    watcher = await Client.open(server.ws, "fuzzed")
    await watcher.join("watcher")
    talker = await Client.open(server.ws, "fuzzed")
    await talker.join("talker")

    async def talk() -> None:
        for i in range(100):
            await talker.say(f"steady {i}")
            await asyncio.sleep(0.01)

    async def fuzz(seed: int) -> None:
        rng = random.Random(seed)
        raw = await named_raw(server)
        for _ in range(150):
            frame = garbage(rng)
            if isinstance(frame, bytes):
                raw.frame(0x2, frame)
            else:
                raw.text(frame)
            await asyncio.sleep(0)
        # Everything that comes back (errors, and broadcasts: this session is in the room)
        # is a JSON object of the protocol, never a stack trace.
        answers = 0
        while True:
            opcode, payload = await raw.read(timeout=1.0)
            if opcode == -2:  # quiet for a second: all answered
                break
            assert opcode == 0x1 and b"Traceback" not in payload
            data = json.loads(payload)
            assert set(data) & {"error", "message", "joined", "quit"}, data
            answers += 1
        assert answers >= 150
        raw.close()

    async def protocol_abuse() -> None:
        cases = [
            (lambda r: r.text(b"\xff\xfe invalid utf-8"), 1007),
            (lambda r: r.text("z" * (256 * 1024 + 1)), 1009),
            (lambda r: r.raw(b"\x00\x01\x02 not a frame at all"), 1002),
            (lambda r: r.frame(0x3, b"reserved opcode"), 1002),
        ]
        for send, code in cases:
            raw = await named_raw(server)
            send(raw)
            assert await raw.close_code() in (code, None)
            raw.close()
        # fragmented message and a ping are fine
        raw = await named_raw(server)
        raw.frame(0x1, b'{"message": "frag', fin=False)
        raw.frame(0x0, b'mented"}')
        raw.frame(0x9, b"ping!")
        pong = fragmented = False
        while not (pong and fragmented):  # other sessions' messages arrive meanwhile
            opcode, payload = await raw.read()
            assert opcode >= 0
            pong = pong or (opcode, payload) == (0xA, b"ping!")
            fragmented = fragmented or (
                opcode == 0x1 and json.loads(payload).get("message") == "fragmented"
            )
        raw.close()

    await asyncio.gather(talk(), fuzz(1), fuzz(2), fuzz(3), protocol_abuse())
    seen = []
    while len(seen) < 100:
        data = await watcher.next()
        if data.get("name") == "talker":
            seen.append(data["message"])
    assert seen == [f"steady {i}" for i in range(100)]  # every one, in order
    async with httpx.AsyncClient(base_url=server.http) as client:
        assert (await client.get("/healthz")).status_code == 200
    await talker.say("after the storm")
    assert (await watcher.until(lambda d: d.get("message") == "after the storm"))[
        "name"
    ] == "talker"
