"""The token bucket behind the lobby's per-address limits (creating lobbies, trying codes)."""

from __future__ import annotations

import pytest

from apps.lobby.config import LobbyConfig
from apps.lobby.throttle import Bucket
from runtime import ConfigurationError


def test_a_burst_then_the_rate_and_a_refusal_says_how_long() -> None:
    bucket = Bucket(rate=60.0, burst=3)  # one a second after a burst of three
    assert [bucket.take(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(100.0) == pytest.approx(1.0)
    assert bucket.take(100.5) == pytest.approx(0.5)  # a refusal spends nothing
    assert bucket.take(101.0) == 0.0
    assert bucket.take(101.0) == pytest.approx(1.0)


def test_a_rested_bucket_holds_no_more_than_its_burst() -> None:
    bucket = Bucket(rate=6.0, burst=2)  # one each 10 s
    assert bucket.take(0.0) == 0.0
    assert [bucket.take(1000.0) for _ in range(2)] == [0.0, 0.0]
    assert bucket.take(1000.0) == pytest.approx(10.0)


def test_rate_zero_is_no_limit() -> None:
    bucket = Bucket(rate=0.0, burst=1)
    assert {bucket.take(5.0) for _ in range(1000)} == {0.0}


@pytest.mark.parametrize(
    "settings", [{"create_rate": -1.0}, {"code_rate": -0.5}, {"create_burst": 0}, {"code_burst": 0}]
)
def test_limits_are_checked(settings) -> None:
    with pytest.raises(ConfigurationError):
        LobbyConfig(**settings)
