"""Fuzzing the whiteboard's rules with mutated ordinary Yjs updates (sans I/O).

Each trial builds a board's rules from ordinary edits (shapes, pen points, moves, titles,
deletions, as the page makes them), sends one mutated update through the rules as a client
would, then a few more ordinary ones, and checks what must always hold:

- nothing but the rules' own effects comes out (Yrs refusing input closes the socket);
- what the board stored (its Persist effects, and the updates it holds: Hold until
  Release), loaded as an activation loads it, rebuilds exactly the document it serves: a
  new client of the rebuilt board gets a document with the same state vector and the same
  deletions as a new client of the live one;
- loading never raises.

``tests/unit/test_whiteboard_fuzz.py`` runs a few thousand trials with a fixed seed;
``bench/whiteboard_fuzz.py`` (``make fuzz-whiteboard``) runs hundreds of thousands.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Array, Doc, Map, TransactionEvent

from apps.whiteboard import protocol
from apps.whiteboard.config import WhiteboardConfig
from apps.whiteboard.effects import Close, Hold, Persist, Release, Snapshot
from apps.whiteboard.rules import BoardRules, clocks

CONFIG = WhiteboardConfig(max_update_bytes=256 * 1024, max_board_bytes=4 * 1024 * 1024)


def ordinary_updates(rng: random.Random, edits: int) -> list[bytes]:
    """What two collaborating pages would send: each local transaction's update. (Their
    client IDs follow from ``rng``'s state without drawing from it, and shapes are picked
    from their sorted keys, not a map's own order, which Yrs hashes differently in every
    process: so a seed names the same updates in every process, and a trial seed found
    failing fails again.)"""
    ids = random.Random(str(rng.getstate()))
    docs = [Doc(client_id=ids.randrange(1, 2**32)), Doc(client_id=ids.randrange(1, 2**32))]
    out: list[bytes] = []
    for i, doc in enumerate(docs):
        doc.observe(lambda e, i=i: out.append(e.update))  # type: ignore[misc]
    for _ in range(edits):
        doc = rng.choice(docs)
        shapes: Map[Any] = doc.get("shapes", type=Map)
        meta: Map[Any] = doc.get("meta", type=Map)
        roll = rng.random()
        with doc.transaction():
            keys = sorted(shapes.keys())
            if roll < 0.4 or not keys:
                points = Array([rng.uniform(0, 900) for _ in range(rng.randrange(2, 40))])
                shape = Map({"type": "pen", "color": "#1e1e1e", "width": 4, "z": len(keys)})
                shapes[f"s{rng.randrange(10**9)}"] = shape
                shape["pts"] = points
            elif roll < 0.6:
                shape = shapes[rng.choice(keys)]
                shape["dx"], shape["dy"] = rng.randrange(-50, 50), rng.randrange(-50, 50)
            elif roll < 0.7:
                pts = shapes[rng.choice(keys)].get("pts")
                if isinstance(pts, Array) and len(pts) > 2:
                    del pts[0:2]
            elif roll < 0.85:
                del shapes[rng.choice(keys)]
            else:
                meta["title"] = "board " + str(rng.randrange(1000))
        if rng.random() < 0.3:  # the other page catches up
            a, b = docs
            b.apply_update(a.get_update(b.get_state()))
            a.apply_update(b.get_update(a.get_state()))
    return out


def mutate(rng: random.Random, data: bytes, others: list[bytes]) -> bytes:
    """A mutated update: flipped, inserted, deleted, duplicated or spliced bytes."""
    b = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        kind = rng.randrange(7)
        if not b:
            b = bytearray(rng.randbytes(rng.randrange(1, 16)))
        i = rng.randrange(len(b))
        if kind == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif kind == 1:
            b[i] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif kind == 2:
            b[i:i] = rng.randbytes(rng.randrange(1, 8))
        elif kind == 3:
            del b[i : i + rng.randrange(1, 8)]
        elif kind == 4:
            j = rng.randrange(len(b))
            b[j:j] = b[i : i + rng.randrange(1, 16)]
        elif kind == 5:
            other = rng.choice(others)
            if other:
                k = rng.randrange(len(other))
                b[i:] = other[k : k + rng.randrange(1, 64)]
        else:
            del b[i:]
    return bytes(b)


def delete_set(doc: Doc[Any]) -> dict[int, list[tuple[int, int]]]:
    """The document's deletions, {client: merged [start, end) ranges}."""
    reader = protocol.Reader(doc.get_update(doc.get_state()))
    if reader.var_uint() != 0:  # structs the state vector does not cover: report them raw
        return {-1: [(len(doc.get_update(doc.get_state())), 0)]}
    out: dict[int, list[tuple[int, int]]] = {}
    for _ in range(reader.var_uint()):
        client = reader.var_uint()
        ranges = sorted(
            (start, start + length)
            for start, length in (
                (reader.var_uint(), reader.var_uint()) for _ in range(reader.var_uint())
            )
        )
        merged: list[tuple[int, int]] = []
        for start, end in ranges:
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            elif end > start:
                merged.append((start, end))
        if merged:
            out[client] = merged
    return out


def shape_of(doc: Doc[Any]) -> tuple[dict[int, int], dict[int, list[tuple[int, int]]]]:
    """What a document is, for comparing two: its state vector and its deletions."""
    return clocks(doc.get_state()), delete_set(doc)


@dataclass
class Outcome:
    trials: int = 0
    refused: int = 0  # mutated updates Yrs refused (the socket was closed)
    divergent: list[tuple[int, str]] = field(default_factory=list)  # (trial seed, what)


def trial(seed: int, corpus: list[list[bytes]]) -> str | None:
    """One trial; None when every rule held, else what went wrong."""
    rng = random.Random(seed)
    base = rng.choice(corpus)
    cut = rng.randrange(1, len(base))
    rules = BoardRules(CONFIG)
    rules.connect(1, read_only=False)
    stored: list[bytes] = []
    held: dict[int, bytes] = {}
    closed = False

    def send(update: bytes) -> None:
        nonlocal closed
        if closed:
            return
        for effect in rules.receive(1, protocol.sync(protocol.UPDATE, update), 0.0):
            if isinstance(effect, Persist):
                stored.append(effect.update)
            elif isinstance(effect, Snapshot):  # the board's log becomes one snapshot
                stored[:] = [rules.full_state()]
            elif isinstance(effect, Hold):
                held[effect.key] = effect.update
            elif isinstance(effect, Release):
                for key in effect.keys:
                    del held[key]
            elif isinstance(effect, Close):
                closed = True

    for update in base[:cut]:
        send(update)
    others = [u for c in corpus for u in c[:5]]
    send(mutate(rng, rng.choice(base), others))
    if closed:  # a writer Yrs refused is gone; another one goes on editing
        closed = False
        rules.connect(1, read_only=False)
    for update in base[cut : cut + rng.randrange(0, 6)]:
        send(update)
    rebuilt = BoardRules(CONFIG)
    try:
        if Snapshot(unreadable=True) in rebuilt.load(stored, held):
            return "what was stored did not load in one transaction"
    except BaseException as exc:
        return f"loading what was stored raised {type(exc).__name__}: {exc}"
    served, restored = Doc(), Doc()
    try:
        served.apply_update(rules.full_state())
        restored.apply_update(rebuilt.full_state())
    except BaseException as exc:
        return f"a new client could not take the board: {type(exc).__name__}: {exc}"
    if shape_of(restored) != shape_of(served):
        return f"stored {shape_of(restored)} but serves {shape_of(served)}"
    return None


def run(trials: int, seed: int = 1) -> Outcome:
    rng = random.Random(seed)
    corpus = [ordinary_updates(random.Random(rng.random()), 25) for _ in range(20)]
    outcome = Outcome()
    for n in range(trials):
        trial_seed = rng.randrange(2**32)
        try:
            problem = trial(trial_seed, corpus)
        except BaseException as exc:
            problem = f"the rules raised {type(exc).__name__}: {exc}"
        outcome.trials = n + 1
        if problem is not None:
            outcome.divergent.append((trial_seed, problem))
    return outcome


__all__ = ["Outcome", "TransactionEvent", "ordinary_updates", "run", "shape_of", "trial"]


def unseen_deletions(count: int, seed: int = 7) -> tuple[list[bytes], int]:
    """Updates a board accepts, in order, ``count`` of which delete items it has never
    seen (each asks for a Snapshot); and how many updates that board had stored before the
    first one. For tests of what a board does with such updates over a real socket."""
    rng = random.Random(seed)
    corpus = [ordinary_updates(random.Random(rng.random()), 25) for _ in range(20)]
    pool = [u for c in corpus for u in c]
    sources = [u for c in corpus for u in c[:5]]
    sent: list[bytes] = list(corpus[0][:10])
    board = replayed(sent)
    asked = 0
    before_first = -1
    while asked < count:
        update = mutate(rng, rng.choice(pool), sources)
        effects = board.receive(1, protocol.sync(protocol.UPDATE, update), now=0)
        if any(isinstance(e, Close) for e in effects):
            board = replayed(sent)  # refused: as if it had never been sent
            continue
        if any(isinstance(e, Snapshot) for e in effects):
            if asked == 0:
                before_first = len(sent)
            asked += 1
        sent.append(update)
    return sent, before_first


def replayed(updates: list[bytes]) -> BoardRules:
    """A board's rules after one editor sent ``updates``."""
    board = BoardRules(CONFIG)
    board.connect(1, read_only=False)
    for update in updates:
        board.receive(1, protocol.sync(protocol.UPDATE, update), now=0)
    return board
