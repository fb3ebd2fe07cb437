"""IDs: deterministic names, unguessable uniques, check values, jurisdictions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.base.errors import ConfigurationError, InvalidObjectId
from runtime.objects.ids import IdFactory, jurisdiction_code

KEY = b"test-key"


def factory(ns: str = "chat", jurisdictions: tuple[str, ...] = ("eu",)) -> IdFactory:
    return IdFactory(ns, KEY, jurisdictions)


def test_named_ids_are_deterministic_and_64_lowercase_hex() -> None:
    a, b = factory(), factory()
    one = a.from_name("lobby")
    assert one == b.from_name("lobby")
    assert one.hex == one.hex.lower() and len(one.hex) == 64
    int(one.hex, 16)
    assert one.name == "lobby" and not one.is_unique
    assert a.from_name("lobby") != a.from_name("Lobby")


def test_named_ids_depend_on_namespace_key_and_jurisdiction() -> None:
    assert factory("chat").from_name("x").hex != factory("game").from_name("x").hex
    assert IdFactory("chat", b"other").from_name("x").hex != factory().from_name("x").hex
    assert factory().from_name("x").hex != factory().from_name("x", "eu").hex


def test_unique_ids_are_random_and_marked() -> None:
    f = factory()
    ids = {f.new_unique().hex for _ in range(1000)}
    assert len(ids) == 1000
    assert all(f.from_string(h).is_unique for h in list(ids)[:10])


def test_from_string_round_trips_and_keeps_jurisdiction() -> None:
    f = factory()
    for made in (f.from_name("n"), f.new_unique(), f.new_unique("eu"), f.from_name("n", "eu")):
        parsed = f.from_string(made.hex)
        assert parsed == made and parsed.jurisdiction == made.jurisdiction


@pytest.mark.parametrize(
    "text",
    ["", "abc", "g" * 64, "A" * 64, "0" * 63, "0" * 65, "0" * 64, " " + "0" * 63, None, 7],
)
def test_malformed_ids_are_refused(text: object) -> None:
    with pytest.raises(InvalidObjectId):
        factory().from_string(text)  # type: ignore[arg-type]


def test_ids_of_other_namespaces_and_tampered_ids_are_refused() -> None:
    other = factory("game").new_unique()
    with pytest.raises(InvalidObjectId, match="not minted by namespace 'chat'"):
        factory("chat").from_string(other.hex)
    good = factory().new_unique().hex
    flipped = good[:10] + ("0" if good[10] != "0" else "1") + good[11:]
    with pytest.raises(InvalidObjectId):
        factory().from_string(flipped)


def test_unknown_jurisdictions_are_clear_errors() -> None:
    with pytest.raises(InvalidObjectId, match="not configured"):
        factory(jurisdictions=()).new_unique("eu")
    eu_id = factory().new_unique("eu")
    with pytest.raises(InvalidObjectId, match="jurisdiction"):
        factory(jurisdictions=()).from_string(eu_id.hex)
    with pytest.raises(ConfigurationError):
        factory(jurisdictions=("EU!",))
    assert 1 <= jurisdiction_code("eu") <= 127


@given(st.binary(min_size=32, max_size=32))
def test_random_strings_are_almost_never_accepted(raw: bytes) -> None:
    with pytest.raises(InvalidObjectId):
        factory().from_string(raw.hex())


@given(st.text(max_size=200))
def test_any_name_gives_a_valid_id(name: str) -> None:
    f = factory()
    try:
        made = f.from_name(name)
    except InvalidObjectId:
        return  # lone surrogates cannot be encoded
    assert f.from_string(made.hex) == made
