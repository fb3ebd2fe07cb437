"""WebSocket frame encoding against the websockets library, and settings parsing."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode

from runtime.config import Settings
from runtime.errors import ConfigurationError, InvalidValue
from runtime.frames import OutFrame


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
