"""WebSocket frame encoding against the websockets library, and settings parsing."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from runtime.base.config import Settings
from runtime.base.errors import ConfigurationError, InvalidValue
from runtime.sockets.frames import CORK, OutFrame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_frames_match_an_independent_encoder(size: int) -> None:
    text = "é" * (size // 2) + "a" * (size % 2)
    expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
    assert OutFrame(text).wire == expected
    data = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    expected = Frame(Opcode.BINARY, data).serialize(mask=False, extensions=[])
    assert OutFrame(data).wire == expected


def test_frames_take_only_text_or_bytes() -> None:
    with pytest.raises(InvalidValue):
        OutFrame({"not": "a message"})  # type: ignore[arg-type]


def test_settings_from_environment_and_overrides() -> None:
    s = Settings.from_env(
        {"LEASE_TTL": "3.5", "MAX_QUEUE": "7", "ALLOWED_ORIGINS": "https://a, https://b"},
        max_queue=9,
    )
    assert s.lease_ttl == 3.5 and s.max_queue == 9
    assert s.allowed_origins == ("https://a", "https://b")
    assert Settings.from_env({}).embedded


@pytest.mark.parametrize(
    "env",
    [{"LEASE_TTL": "soon"}, {"NODE_ID": "bad id!"}, {"LEASE_TTL": "0.5"}, {"MAX_QUEUE": "0"}],
)
def test_bad_settings_are_clear_errors(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        Settings.from_env(env)


def test_a_node_id_is_made_up_when_missing() -> None:
    a = Settings().with_node_id().node_id
    assert a and a != Settings().with_node_id().node_id


def test_app_settings_parse_bools_tuples_and_name_the_variable() -> None:
    from dataclasses import dataclass
    from typing import ClassVar

    from runtime import BaseSettings

    @dataclass(frozen=True)
    class Demo(BaseSettings):
        env_prefix: ClassVar[str] = "DEMO_"
        on: bool = False
        names: tuple[str, ...] = ()
        ratio: float = 1.0

    got = Demo.from_env({"DEMO_ON": "Yes", "DEMO_NAMES": "a, b,,c", "ON": "no"}, ratio=2.5)
    assert got == Demo(on=True, names=("a", "b", "c"), ratio=2.5)
    assert Demo.from_env({"DEMO_ON": "off"}).on is False
    with pytest.raises(ConfigurationError, match="DEMO_ON='perhaps'"):
        Demo.from_env({"DEMO_ON": "perhaps"})
    with pytest.raises(ConfigurationError, match="DEMO_RATIO"):
        Demo.from_env({"DEMO_RATIO": "fast"})
    with pytest.raises(ConfigurationError, match="unexpected keyword"):
        Demo.from_env({}, nope=1)


class _Quiet:
    """A transport that is never written to (these tests never accept the socket)."""

    accepted = closed = gone = False


def test_socket_attachments_are_copied_once_and_tags_are_checked() -> None:
    from runtime import ObjectWebSocket, SocketRequest, StorageLimitExceeded

    ws = ObjectWebSocket(_Quiet(), SocketRequest("", "/", (), (), None), 64)  # type: ignore[arg-type]
    value = {"name": "ada", "seen": [1, 2]}
    ws.attachment = value
    value["seen"].append(3)  # the caller's later edits do not leak in
    assert ws.attachment == {"name": "ada", "seen": [1, 2]}
    assert ws.attachment is ws.attachment  # decoded once, not on every read
    with pytest.raises(StorageLimitExceeded):
        ws.attachment = "x" * 100
    assert ws.attachment == {"name": "ada", "seen": [1, 2]}  # unchanged by the refusal
    ws.tags = ["a", "b"]
    assert ws.tags == ("a", "b")
    ws.tags = "solo"
    assert ws.tags == ("solo",)
    for bad in (["x"] * 11, ["y" * 257], [5]):
        with pytest.raises(InvalidValue):
            ws.tags = bad  # type: ignore[assignment]
    assert ws.tags == ("solo",)
    with pytest.raises(InvalidValue):
        ws.reject(200)


class Recorder:
    """Stands in for an asyncio transport: keeps what is written to it."""

    def __init__(self, closing: bool = False) -> None:
        self.writes: list[bytes] = []
        self.closing = closing

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def is_closing(self) -> bool:
        return self.closing


def test_a_cork_gives_each_transport_its_frames_in_one_write_in_order() -> None:
    a, b, gone = Recorder(), Recorder(), Recorder(closing=True)
    CORK.write(a, b"now")  # not held: straight through
    assert a.writes == [b"now"]
    with CORK:
        for n in range(3):
            CORK.write(a, b"a%d" % n)
            CORK.write(b, b"b%d" % n)
        CORK.write(gone, b"lost")
        with CORK:  # held twice (a release inside a release): let go by the outer one only
            CORK.write(b, b"b3")
        assert a.writes == [b"now"] and b.writes == []
    assert a.writes == [b"now", b"a0a1a2"]
    assert b.writes == [b"b0b1b2b3"]
    assert gone.writes == []  # a transport closed meanwhile (aborted) gets nothing
    CORK.write(b, b"after")
    assert b.writes[-1] == b"after"  # nothing held once let go


def test_a_cork_hands_a_big_release_over_in_pieces() -> None:
    # Past flush_at a transport's bytes go out at once (the system takes what it can), so
    # what the cork holds for one socket never grows past it.
    big = Recorder()
    with CORK:
        for n in range(5):
            CORK.write(big, bytes([n]) * 30_000)
            assert CORK.pending(big) < CORK.flush_at
        assert [len(w) for w in big.writes] == [90_000]  # three frames, then the threshold
    assert b"".join(big.writes) == b"".join(bytes([n]) * 30_000 for n in range(5))
    assert len(big.writes) == 2 and CORK.pending(big) == 0
