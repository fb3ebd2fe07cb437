"""Plain-data codec, write batches and key ranges (no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.base import codec
from runtime.base.errors import InvalidValue
from runtime.storage.batch import MISSING, UNCHANGED, KeyRange, WriteBatch, prefix_successor

plain = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.text()
    | st.binary()
    | st.floats(allow_nan=False),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


@given(plain)
def test_plain_data_round_trips(value) -> None:
    assert codec.decode(codec.encode(value)) == value


@pytest.mark.parametrize("bad", [{1, 2}, object(), 2**64, complex(1, 2), [b"ok", {3}]])
def test_non_plain_data_is_refused(bad) -> None:
    with pytest.raises(InvalidValue):
        codec.encode(bad)
    assert codec.decode(codec.encode([1])) == [1]  # the shared packer is not left broken


def test_garbage_bytes_are_refused() -> None:
    with pytest.raises(InvalidValue):
        codec.decode(b"\xc1")


def test_write_batch_layers() -> None:
    batch = WriteBatch()
    assert not batch and batch.lookup("a") is MISSING and batch.lookup_alarm() is MISSING
    batch.entries["a"] = b"1"
    batch.entries["b"] = None
    assert batch.lookup("a") == b"1" and batch.lookup("b") is None
    batch.clear_all()
    assert batch.lookup("a") is None and batch.lookup_alarm() is None
    top = WriteBatch()
    top.entries["c"] = b"3"
    top.alarm = b"al"
    batch.absorb(top)
    assert batch.delete_all and batch.entries == {"c": b"3"} and batch.alarm == b"al"


def test_commit_arguments_follow_the_script_header() -> None:
    batch = WriteBatch()
    batch.entries.update({"p1": b"v1", "d1": None, "p2": b"v2"})
    assert batch.script_args("n@i:3") == ["n@i:3", "0", "", 2, "p1", b"v1", "p2", b"v2", "d1"]
    batch.alarm = None
    assert batch.script_args("x")[2] == "-"
    batch.alarm = UNCHANGED
    batch.delete_all = True
    assert batch.script_args("x")[1] == "1"


def test_prefix_successor() -> None:
    assert prefix_successor(b"a") == b"b"
    assert prefix_successor(b"a\xff") == b"b"
    assert prefix_successor(b"\xff\xff") is None
    assert prefix_successor(b"ab") == b"ac"


@given(
    keys=st.lists(st.text(max_size=4), max_size=30),
    start=st.none() | st.text(max_size=3),
    end=st.none() | st.text(max_size=3),
    prefix=st.none() | st.text(max_size=2),
)
def test_key_range_matches_a_plain_filter(keys, start, end, prefix) -> None:
    try:
        span = KeyRange(start, end, prefix)
        encoded = [k.encode() for k in keys]
    except UnicodeEncodeError:
        return
    expected = [
        k
        for k in keys
        if (start is None or k.encode() >= start.encode())
        and (end is None or k.encode() < end.encode())
        and (not prefix or k.startswith(prefix))
    ]
    assert [k for k, e in zip(keys, encoded, strict=True) if e in span] == expected
