"""Join codes (readable, no ambiguous characters) and seat tokens (signed, unforgeable);
the checks every client message goes through."""

from __future__ import annotations

import random

import pytest

from apps.lobby import join_code, protocol
from apps.lobby.protocol import ProtocolError
from apps.lobby.seats import Seat, SeatSigner

KEY = bytes(range(32))
PLACE = "ab" * 32


def test_codes_are_six_unambiguous_characters() -> None:
    rng = random.Random(7)
    drawn = {join_code.new_code(rng.choice) for _ in range(5000)}
    assert len(drawn) == 5000  # 31**6 codes: no collision in a few thousand
    for code in drawn:
        assert len(code) == 6 and code == code.upper()
        assert not set(code) & set("0O1IL")
    assert set("".join(drawn)) == set(join_code.ALPHABET)


def test_typed_codes_are_normalized_or_refused() -> None:
    assert join_code.normalize(" abc-234 ") == "ABC234"
    assert join_code.normalize("abc 234") == "ABC234"
    for bad in ("ABC23", "ABC2345", "ABC10O", "ABCIL2", "", None, 123, "ÄBC234", "x" * 100):
        assert join_code.normalize(bad) is None


def test_a_token_names_its_seat_and_nothing_else_reads_as_one() -> None:
    signer = SeatSigner(KEY)
    seat = Seat("game", PLACE, "p1", 2)
    token = signer.sign(seat)
    assert signer.read(token) == seat
    assert signer.read(signer.sign(Seat("lobby", PLACE, "p1", 0))) == Seat("lobby", PLACE, "p1", 0)
    assert SeatSigner(bytes(32)).read(token) is None  # another key
    signature = token.rpartition(".")[2]
    forged = signer.sign(Seat("game", PLACE, "p1", 1)).rpartition(".")[0] + "." + signature
    assert signer.read(forged) is None
    for garbage in ("", "x", token + "x", token[:-1], "a" * 600, None, 5, ["t"]):
        assert signer.read(garbage) is None


def test_tokens_with_impossible_contents_are_refused_even_if_signed() -> None:
    from itsdangerous import URLSafeSerializer

    raw = URLSafeSerializer(KEY, salt="lobby-seat")
    signer = SeatSigner(KEY)
    for payload in (
        ["game", PLACE, "p", 3],
        ["game", PLACE, "p", 0],
        ["lobby", PLACE, "p", 1],
        ["game", PLACE, "p", True],
        ["other", PLACE, "p", 1],
        ["game", PLACE, 5, 1],
        ["game", PLACE, "p"],
        {"kind": "game"},
    ):
        assert signer.read(raw.dumps(payload)) is None


def test_client_messages_are_checked() -> None:
    types = frozenset({"move", "chat"})
    assert protocol.parse('{"type": "move", "column": 3}', 100, types)["column"] == 3
    for message, why in [
        (b'{"type": "move"}', "not binary"),
        ("x" * 101, "too large"),
        ("é" * 60, "too large"),
        ("{nope", "not JSON"),
        ("[1, 2]", '"type"'),
        ('{"type": 5}', '"type"'),
        ('{"type": "dance"}', "unknown message type 'dance'"),
        ("[" * 5000 + "]" * 5000, "too large"),
    ]:
        with pytest.raises(ProtocolError, match=why):
            protocol.parse(message, 100, types)
    with pytest.raises(ProtocolError, match="not JSON"):
        protocol.parse("[" * 5000, 10_000, types)
    assert protocol.clean_text(" a\tb\u200b\x00 c ", "name", 5) == "a b c"
    with pytest.raises(ProtocolError, match="name must not be empty"):
        protocol.clean_text("\u200b \n", "name", 5)
    with pytest.raises(ProtocolError, match="at most 5"):
        protocol.clean_text("abcdef", "name", 5)
    assert protocol.field({"ready": True}, "ready", bool) is True
    for data in ({"ready": 1}, {}, {"ready": "true"}):
        with pytest.raises(ProtocolError, match="true or false"):
            protocol.field(data, "ready", bool)
    with pytest.raises(ProtocolError, match="whole number"):
        protocol.field({"column": True}, "column", int)
    assert protocol.error("no") == '{"type":"error","error":"no"}'
