"""The y-websocket protocol with no sockets: byte vectors worked out by hand from lib0's spec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.whiteboard import protocol
from apps.whiteboard.protocol import (
    Auth,
    Awareness,
    AwarenessEntry,
    MalformedMessage,
    QueryAwareness,
    Reader,
    Sync,
    decode,
    encode,
    write_var_uint,
)


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (0, "00"),
        (1, "01"),
        (127, "7f"),
        (128, "8001"),  # low 7 bits first, continuation bit set
        (300, "ac02"),  # 300 = 0b10_0101100 -> 0xAC, 0x02
        (16384, "808001"),
        (2**32 - 1, "ffffffff0f"),  # a Yjs client ID is a uint32
        (2**53 - 1, "ffffffffffffff0f"),  # the largest lib0 reads into a JS number
    ],
)
def test_var_uint_round_trips_to_known_bytes(value: int, wire: str) -> None:
    out = bytearray()
    write_var_uint(out, value)
    assert out.hex() == wire
    reader = Reader(bytes.fromhex(wire))
    assert reader.var_uint() == value
    reader.end()


@pytest.mark.parametrize(
    ("message", "wire"),
    [
        # sync step 1 with an empty state vector (varUint 0): type 0, step 0, 1 byte of data
        (Sync(protocol.STEP1, b"\x00"), "00000100"),
        # sync step 2 carrying an empty update (no structs, no deletes): 00 00
        (Sync(protocol.STEP2, b"\x00\x00"), "0001020000"),
        (Sync(protocol.UPDATE, bytes.fromhex("aabbcc")), "000203aabbcc"),
        # awareness: one entry, client 1, clock 2, state {"a":1} (7 bytes); body is 11 bytes
        (
            Awareness((AwarenessEntry(1, 2, '{"a":1}'),)),
            "010b" + "01" + "01" + "02" + "07" + b'{"a":1}'.hex(),
        ),
        # a client gone: state null
        (Awareness((AwarenessEntry(300, 5, "null"),)), "0109" + "01ac0205" + "04" + b"null".hex()),
        # auth: permission denied (0) with reason "no"
        (Auth("no"), "0200026e6f"),
        (QueryAwareness(), "03"),
    ],
)
def test_every_message_type_encodes_and_decodes(message: protocol.Message, wire: str) -> None:
    assert encode(message).hex() == wire
    assert decode(bytes.fromhex(wire)) == message


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        ("", "truncated varUint"),
        ("80", "truncated varUint"),
        ("00", "truncated varUint"),  # sync without its step
        ("04", "unknown message type 4"),
        ("ff01", "unknown message type 255"),
        ("000300", "unknown sync step 3"),
        ("00020561", "truncated byte array"),
        ("0300", "unexpected bytes"),
        ("00000100ff", "unexpected bytes"),
        ("8080808080808080808001", "longer than 8 bytes"),
        ("0201", "unknown auth message"),
        ("020002ffff", "not UTF-8"),
        ("0106" + "01" + "0102" + "02" + b"{x".hex(), "not JSON"),
        ("0104" + "7f" + "010200", "announces 127 entries"),
        ("0103" + "02" + "0102", "truncated"),
    ],
)
def test_malformed_frames_are_rejected_with_a_reason(wire: str, why: str) -> None:
    with pytest.raises(MalformedMessage, match=why):
        decode(bytes.fromhex(wire))


@given(st.binary(max_size=64))
def test_any_bytes_decode_or_raise_malformed(data: bytes) -> None:
    try:
        message = decode(data)
    except MalformedMessage:
        return
    assert decode(encode(message)) == message  # (lib0 accepts overlong varints; so do we)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**32 - 1),
            st.integers(0, 2**53 - 1),
            st.sampled_from(["null", "{}", '{"user":{"name":"Ada ✏️"}}', "[1,2]"]),
        ),
        max_size=5,
    )
)
def test_awareness_round_trips(entries: list[tuple[int, int, str]]) -> None:
    message = Awareness(tuple(AwarenessEntry(*e) for e in entries))
    assert decode(encode(message)) == message


def awareness_frame(state: str) -> bytes:
    """An awareness message with one entry (client 1, clock 1) whose state is ``state``."""
    body = bytearray(b"\x01\x01\x01")
    protocol.write_var_string(body, state)
    out = bytearray(b"\x01")
    protocol.write_var_bytes(out, bytes(body))
    return bytes(out)


@pytest.mark.parametrize("state", ["NaN", "Infinity", '{"x":-Infinity}', "[1,NaN]"])
def test_awareness_states_are_json_as_javascript_reads_it(state: str) -> None:
    # Python's json reads NaN and Infinity; JSON.parse throws on them, inside y-protocols'
    # applyAwarenessUpdate: relayed, one such state would cost every browser the entries
    # after it (a newcomer gets them all in one message).
    with pytest.raises(MalformedMessage, match="not JSON"):
        decode(awareness_frame(state))


def test_a_deeply_nested_awareness_state_is_malformed_not_a_crash() -> None:
    # json.loads raises RecursionError (not a ValueError) past ~1,000 levels.
    state = "[" * 50_000 + "]" * 50_000
    with pytest.raises(MalformedMessage, match="not JSON"):
        decode(awareness_frame(state))


@pytest.mark.parametrize("state", ["null", " null", "null\n", "\tnull "])
def test_any_json_null_means_the_client_is_gone(state: str) -> None:
    # y-protocols removes an entry whose state JSON.parse reads as null, however it is spelt.
    message = decode(awareness_frame(state))
    assert isinstance(message, Awareness)
    [entry] = message.entries
    assert entry.gone and entry.state == "null"
