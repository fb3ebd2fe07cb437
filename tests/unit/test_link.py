"""The node-to-node protocol without sockets: frames in, messages and frames out; the
challenges, the liveness clock, malformed input, handshakes."""

from __future__ import annotations

import msgpack
import pytest

from runtime.base.errors import Fenced, ObjectMoved, RpcError, StorageUnavailable, error_headers
from runtime.cluster import auth
from runtime.cluster import protocol as link
from runtime.cluster.protocol import (
    Answer,
    CalleeProtocol,
    CallerProtocol,
    Challenge,
    Close,
    Frame,
    Liveness,
    Reply,
    Request,
)


def raw(messages: list[list[object]]) -> bytes:
    """A frame as any peer would write it: a msgpack array of arrays."""
    return msgpack.packb(messages, use_bin_type=True)  # type: ignore[no-any-return]


def test_messages_round_trip_in_one_frame_as_the_wire_format_says() -> None:
    messages = [
        Request(1, "rpc", "probe", "ab" * 32, 0, ["increment", b"\x92\x90\x80"]),
        Reply(1, True, b"\x01"),
        Frame(7, True, "text \ud800 with a lone surrogate"),
        Close(7, 4000, "bye"),
        Challenge(b"c" * 32),
        Answer(b"a" * 32),
    ]
    frame = link.encode(messages)
    assert link.decode(frame) == messages
    assert msgpack.unpackb(frame, raw=False, unicode_errors="surrogatepass")[0] == [
        0,
        1,
        "rpc",
        "probe",
        "ab" * 32,
        0,
        ["increment", b"\x92\x90\x80"],
    ]


@pytest.mark.parametrize(
    "frame",
    [
        b"\xc1",  # not msgpack
        raw({"a": 1}),  # type: ignore[arg-type]  # not a list
        raw([[0]]),  # too short
        raw([["0", 1]]),
        raw([[0, 1, "nope", "ns", "id", 0, []]]),  # unknown kind
        raw([[0, 1, "rpc", "ns", "id", -1, []]]),  # negative hops
        raw([[1, 1, True]]),
        raw([[2, 1, True, 5]]),
        raw([[3, 1, "x", "y"]]),
        raw([[5, 0, "text"]]),
        raw([[9, 1]]),
    ],
)
def test_malformed_frames_are_refused(frame: bytes) -> None:
    with pytest.raises(link.LinkProtocolError):
        link.decode(frame)


# ------------------------------------------------------------------ the two ends


def pair(interval: float = 60.0) -> tuple[CallerProtocol, CalleeProtocol]:
    return CallerProtocol("s3cret", "n1", "n2"), CalleeProtocol("s3cret", "n2", "n1", interval)


def test_a_callee_acts_on_nothing_before_the_answer() -> None:
    _, callee = pair()
    callee.start(0.0)
    (challenge,) = link.decode(callee.data_to_send()[0])
    assert isinstance(challenge, Challenge) and len(challenge.nonce) == 32
    with pytest.raises(link.LinkProtocolError):
        callee.receive(link.encode([Request(1, "rpc", "p", "x", 0, [])]), 1.0)


def test_a_caller_proves_the_secret_and_its_requests_pass() -> None:
    caller, callee = pair()
    callee.start(0.0)
    assert caller.receive(callee.data_to_send()[0]) == []  # the challenge, answered inside
    request = Request(1, "rpc", "probe", "x", 0, ["m", b""])
    caller.send(request)
    (frame,) = caller.data_to_send()  # the answer and the request, in one frame
    assert callee.receive(frame, 1.0) == [request]
    assert callee.proven and callee.answers == 1
    callee.send(Reply(1, True, b"ok"))
    assert caller.receive(callee.data_to_send()[0]) == [Reply(1, True, b"ok")]


def test_a_wrong_answer_fails_the_link_even_later() -> None:
    _, callee = pair()
    callee.start(0.0)
    nonce = link.decode(callee.data_to_send()[0])[0].nonce  # type: ignore[union-attr]
    with pytest.raises(link.Unproven):
        callee.receive(link.encode([Answer(auth.answer("guess", "n1", "n2", nonce))]), 1.0)


def test_the_callee_challenges_again_each_interval_and_wants_answers_in_time() -> None:
    caller, callee = pair(interval=10.0)
    callee.start(0.0)
    caller.receive(callee.data_to_send()[0])
    callee.receive(caller.data_to_send()[0], 1.0)
    assert callee.tick(5.0) == 11.0  # (proven at 1.0: the next challenge at 11.0)
    assert callee.data_to_send() == []
    assert callee.tick(11.0) == 11.0 + link.ANSWER_TIMEOUT
    (again,) = link.decode(callee.data_to_send()[0])
    assert isinstance(again, Challenge)
    with pytest.raises(link.Unproven):  # never answered
        callee.tick(11.0 + link.ANSWER_TIMEOUT + 0.1)


def test_a_burst_goes_out_a_frame_at_a_time() -> None:
    caller, _ = pair()
    sent = [caller.send(Frame(1, True, f"m{i}")) for i in range(70)]
    assert sent.count(True) == 2 and sent[link.BATCH - 1] and sent[2 * link.BATCH - 1]
    frames = caller.data_to_send()
    assert [len(link.decode(f)) for f in frames] == [32, 32, 6]
    assert caller.data_to_send() == []


def test_liveness_gives_up_a_silent_peer_but_not_for_our_own_pause() -> None:
    live = Liveness(0.5, 1.5, now=0.0)
    assert live.tick(0.5) and live.tick(1.0) and live.tick(1.5)
    live.hear(1.4)
    assert live.tick(2.0) and live.tick(2.5)
    assert not live.tick(3.0)  # nothing heard since 1.4: 1.6 s of silence
    paused = Liveness(0.5, 1.5, now=0.0)
    assert paused.tick(0.5)
    assert paused.tick(9.0)  # this end slept 8.5 s: the peer gets a fresh window
    assert paused.tick(9.5) and paused.tick(10.0) and paused.tick(10.5)
    assert not paused.tick(11.0)  # ...of 1.5 s, from then


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
        return lower(auth.auth_headers("s3cret", "n1", "n2", now))

    assert auth.Verifier("s3cret", "n2").verify(fresh(), now + 30) == ("n1", "")
    assert auth.Verifier("s3cret", "n3").verify(fresh(), now)[0] is None  # meant for n2
    assert auth.Verifier("s3cret", "n2").verify(fresh(), now + 120)[0] is None  # too old
    assert auth.Verifier("other", "n2").verify(fresh(), now)[0] is None
    assert auth.Verifier("", "n2").verify(fresh(), now)[0] is None  # no secret: no links
    good = fresh()
    for broken in (
        {},
        {**good, "x-cluster-time": "9" * 400},
        {**good, "x-cluster-auth": "é"},
        {**good, "x-cluster-time": "soon"},
        {**good, "x-cluster-nonce": ""},
        {**good, "x-cluster-nonce": "0" * 32},  # another nonce: the MAC no longer holds
    ):
        assert auth.Verifier("s3cret", "n2").verify(broken, now)[0] is None
    assert "s3cret" not in "".join(good.values())


def test_a_handshake_is_good_once() -> None:
    now = 1_800_000_000.0
    verifier = auth.Verifier("s3cret", "n2")
    captured = lower(auth.auth_headers("s3cret", "n1", "n2", now))
    assert verifier.verify(captured, now)[0] == "n1"
    caller, why = verifier.verify(captured, now + 5)  # replayed within the minute
    assert caller is None and "replay" in why
    assert verifier.verify(lower(auth.auth_headers("s3cret", "n1", "n2", now)), now)[0] == "n1"
    # Nonces are forgotten only once their handshakes are too old to pass anyway.
    assert verifier.verify(captured, now + 121)[0] is None


def test_challenges_are_answered_only_with_the_secret() -> None:
    challenge = auth.new_challenge()
    good = auth.answer("s3cret", "n1", "n2", challenge)
    assert auth.check_answer("s3cret", "n1", "n2", challenge, good)
    assert not auth.check_answer("s3cret", "n1", "n2", auth.new_challenge(), good)
    assert not auth.check_answer("s3cret", "n3", "n2", challenge, good)
    assert not auth.check_answer(
        "s3cret", "n1", "n2", challenge, auth.answer("x", "n1", "n2", challenge)
    )


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
