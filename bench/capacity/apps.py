"""What each reference app's own code costs per event, measured on its rules alone (the
sans-I/O cores: input in, effects out), in this process, with no node, socket or Redis.
The model adds it to the runtime's costs; the checks then compare the sum with the app
running on a node."""

from __future__ import annotations

import random
import statistics
import time

from apps.chat import rules as chat
from apps.waiting_room import rules as waiting
from apps.waiting_room.cookies import CookieSigner, Pass
from apps.waiting_room.room_settings import RoomSettings
from bench.whiteboard_bench import pen_update_cost


def chat_message(messages: int = 20_000, sessions: int = 20) -> float:
    """Seconds of the chat's rules per chat message, in a room of ``sessions`` named
    sessions: parsing, checking and encoding the message, its history key."""
    room = chat.ChatRules()
    for s in range(sessions):
        room.connect(s, [])
        room.receive(s, f'{{"name": "user{s}"}}', 0, [])
    frame = '{"message": "hello, this is message number 12345"}'
    now = int(time.time() * 1000)
    t0 = time.perf_counter()
    for i in range(messages):
        room.receive(i % sessions, frame, now + i)
    return (time.perf_counter() - t0) / messages


def waiting_room_decision(visitors: int = 5000) -> float:
    """Seconds of the waiting room's own work per decision, as the benchmark's visitors
    make them (arrive, renew twice, leave): the room's rules, then reading and signing
    the visitor's cookie (the route's part)."""
    settings = RoomSettings(
        total_active_users=1_000_000, new_users_per_minute=1_000_000, session_duration=600
    )
    now = time.time()
    room = waiting.RoomRules(settings, now=now, rng=random.Random(1))
    signer = CookieSigner(b"k" * 32)
    t0 = time.perf_counter()
    for i in range(visitors):
        visitor = f"{i:032x}"
        cookie = signer.sign(Pass("room", visitor, "active", int(now) + 600))
        for _ in range(3):  # arrive, renew, renew: a decision and a new cookie each
            signer.read(cookie, "room", now)
            room.visit(visitor, now)  # (its effects: what the object would store)
            room.next_wake(now)
            cookie = signer.sign(Pass("room", visitor, "active", int(now) + 600))
        signer.read(cookie, "room", now)
        room.leave(visitor, now)
        room.next_wake(now)
    return (time.perf_counter() - t0) / (visitors * 4)


def whiteboard_update(strokes: int = 20, updates: int = 400) -> float:
    """Seconds of the whiteboard's rules per pen update on a small board (as the fan-out
    benchmark's: a stroke per client, points appended)."""
    runs = pen_update_cost(3, strokes=strokes, updates=updates)
    return statistics.median(r["p50_us"] for r in runs) / 1e6
