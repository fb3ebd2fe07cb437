"""The node-to-node protocol without sockets: frames, malformed input, handshakes."""

from __future__ import annotations

import pytest

from runtime.base.errors import Fenced, ObjectMoved, RpcError, StorageUnavailable, error_headers
from runtime.cluster import protocol as link


def test_messages_round_trip_in_one_frame() -> None:
    messages = [
        [link.REQUEST, 1, "rpc", "probe", "ab" * 32, 0, ["increment", b"\x92\x90\x80"]],
        [link.REPLY, 1, True, b"\x01"],
        [link.FRAME, 7, True, "text \ud800 with a lone surrogate"],
        [link.CLOSE, 7, 4000, "bye"],
    ]
    assert link.decode(link.encode(messages)) == messages


@pytest.mark.parametrize(
    "frame",
    [
        b"\xc1",  # not msgpack
        link.encode({"a": 1}),  # not a list
        link.encode([[0]]),  # too short
        link.encode([["0", 1]]),
        link.encode([[link.REQUEST, 1, "nope", "ns", "id", 0, []]]),  # unknown kind
        link.encode([[link.REQUEST, 1, "rpc", "ns", "id", -1, []]]),  # negative hops
        link.encode([[link.REPLY, 1, True]]),
        link.encode([[link.FRAME, 1, True, 5]]),
        link.encode([[link.CLOSE, 1, "x", "y"]]),
        link.encode([[9, 1]]),
    ],
)
def test_malformed_frames_are_refused(frame: bytes) -> None:
    with pytest.raises(link.LinkProtocolError):
        link.decode(frame)


def test_errors_keep_their_class_across_nodes() -> None:
    assert isinstance(link.error_from(link.error_value(Fenced("gone"))), Fenced)
    moved = link.error_from(link.error_value(ObjectMoved("elsewhere")))
    assert isinstance(moved, ObjectMoved) and str(moved) == "elsewhere"
    rpc = link.error_from(link.error_value(RpcError("ValueError", "bad")))
    assert isinstance(rpc, RpcError) and rpc.type_name == "ValueError"
    assert "remote node failed" in str(link.error_from(link.error_value(KeyError("x"))))
    assert link.error_from("garbage").code == "error"


def lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def test_handshakes_hold_only_for_their_target_and_a_minute() -> None:
    now = 1_800_000_000.0

    def fresh() -> dict[str, str]:
        return lower(link.auth_headers("s3cret", "n1", "n2", now))

    assert link.Verifier("s3cret", "n2").verify(fresh(), now + 30) == ("n1", "")
    assert link.Verifier("s3cret", "n3").verify(fresh(), now)[0] is None  # meant for n2
    assert link.Verifier("s3cret", "n2").verify(fresh(), now + 120)[0] is None  # too old
    assert link.Verifier("other", "n2").verify(fresh(), now)[0] is None
    assert link.Verifier("", "n2").verify(fresh(), now)[0] is None  # no secret: no links
    good = fresh()
    for broken in (
        {},
        {**good, "x-cluster-time": "9" * 400},
        {**good, "x-cluster-auth": "é"},
        {**good, "x-cluster-time": "soon"},
        {**good, "x-cluster-nonce": ""},
        {**good, "x-cluster-nonce": "0" * 32},  # another nonce: the MAC no longer holds
    ):
        assert link.Verifier("s3cret", "n2").verify(broken, now)[0] is None
    assert "s3cret" not in "".join(good.values())


def test_a_handshake_is_good_once() -> None:
    now = 1_800_000_000.0
    verifier = link.Verifier("s3cret", "n2")
    captured = lower(link.auth_headers("s3cret", "n1", "n2", now))
    assert verifier.verify(captured, now)[0] == "n1"
    caller, why = verifier.verify(captured, now + 5)  # replayed within the minute
    assert caller is None and "replay" in why
    assert verifier.verify(lower(link.auth_headers("s3cret", "n1", "n2", now)), now)[0] == "n1"
    # Nonces are forgotten only once their handshakes are too old to pass anyway.
    assert verifier.verify(captured, now + 121)[0] is None


def test_challenges_are_answered_only_with_the_secret() -> None:
    challenge = link.new_challenge()
    good = link.answer("s3cret", "n1", "n2", challenge)
    assert link.check_answer("s3cret", "n1", "n2", challenge, good)
    assert not link.check_answer("s3cret", "n1", "n2", link.new_challenge(), good)
    assert not link.check_answer("s3cret", "n3", "n2", challenge, good)
    assert not link.check_answer(
        "s3cret", "n1", "n2", challenge, link.answer("x", "n1", "n2", challenge)
    )
    frame = link.encode([[link.CHALLENGE, 0, challenge], [link.ANSWER, 0, good]])
    assert link.decode(frame)[1][2] == good
    with pytest.raises(link.LinkProtocolError):
        link.decode(link.encode([[link.ANSWER, 0, "text"]]))


def test_errors_keep_their_outcome_across_nodes() -> None:
    refused = StorageUnavailable("refused", may_have_run=False)
    again = link.error_from(link.error_value(refused))
    assert isinstance(again, StorageUnavailable) and again.may_have_run is False
    assert again.outcome == "not-run"
    sent = link.error_from(link.error_value(StorageUnavailable("no answer")))
    assert sent.may_have_run is True and sent.outcome == "unknown"
    assert link.error_from(link.error_value(ObjectMoved("x"))).may_have_run is False
    rpc = link.error_from(link.error_value(RpcError("ValueError", "bad", may_have_run=False)))
    assert rpc.may_have_run is False
    # A node of an earlier version sends three fields: the class's default stands.
    old = link.error_from(["fenced", "gone", "Fenced"])
    assert isinstance(old, Fenced) and old.may_have_run is True
    assert link.error_from(["moved", "x", "ObjectMoved"]).may_have_run is False


def test_an_error_with_another_outcome_is_a_copy() -> None:
    shared = StorageUnavailable("Redis failed")
    mine = shared.with_outcome(False)
    assert mine is not shared and shared.may_have_run is True and mine.may_have_run is False
    assert type(mine) is StorageUnavailable and str(mine) == "Redis failed"
    assert shared.with_outcome(True) is shared
    assert error_headers(mine) == {
        "X-Error-Code": "storage_unavailable",
        "X-Outcome": "not-run",
        "Retry-After": "1",
    }
