"""The node-to-node link protocol, sans I/O: typed messages, their encoding, and both ends of
a link as state machines that take frames in and give messages out (client.py and server.py
are the asyncio around them).

A link is one WebSocket from a node to another (``/_cluster/link``), multiplexing requests
and tunnelled client sockets. Each binary frame is a msgpack array of messages, so what is
sent in one turn of the event loop travels in one frame (at most ``BATCH`` per frame):

    [0, id, kind, namespace, object hex, hops, body]   Request  (kind: rpc, fetch, alarm, open)
    [1, id, ok, value]                                  Reply    (value: result, or
                                                                  [code, message, type, may run])
    [2, tunnel, is_text, data]                          Frame    a tunnelled socket message
    [3, tunnel, code, reason]                           Close    a tunnelled socket closed
    [4, 0, challenge]                                   Challenge  callee -> caller: prove it
    [5, 0, answer]                                      Answer     caller -> callee

``open`` asks the owner to accept a client socket; its reply is ``[accepted, status, text]``
and the request id then names the tunnel in Frame and Close, both ways.

The callee (:class:`CalleeProtocol`) challenges the caller at once and every re-auth
interval, acts on nothing before the first answer, and fails the link when an answer is
wrong or late (auth.py has the cryptography). The caller (:class:`CallerProtocol`) answers
challenges by itself and judges the callee's liveness (:class:`Liveness`). Links are plain
``ws://`` unless the nodes serve TLS: keep node-to-node traffic on a private network or use
TLS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

from ..base.errors import BY_CODE, DurableObjectError, RpcError
from . import auth

PATH = "/_cluster/link"
KINDS = ("rpc", "fetch", "alarm", "open")
#: Messages per frame at most: a longer burst goes out in several frames as it is made.
BATCH = 32
#: Seconds a caller has to answer a challenge.
ANSWER_TIMEOUT = 5.0


class LinkProtocolError(Exception):
    """A peer sent something that is not this protocol (close the link: 1002)."""


class Unproven(Exception):
    """The caller failed a challenge, or did not answer in time (close the link: 1008)."""


# ------------------------------------------------------------------ messages


@dataclass(slots=True)
class Request:
    id: int
    kind: str
    namespace: str
    object: str
    hops: int
    body: list[Any]

    def wire(self) -> list[Any]:
        return [0, self.id, self.kind, self.namespace, self.object, self.hops, self.body]


@dataclass(slots=True)
class Reply:
    id: int
    ok: bool
    value: Any

    def wire(self) -> list[Any]:
        return [1, self.id, self.ok, self.value]


@dataclass(slots=True)
class Frame:
    tunnel: int
    text: bool
    data: str | bytes

    def wire(self) -> list[Any]:
        return [2, self.tunnel, self.text, self.data]


@dataclass(slots=True)
class Close:
    tunnel: int
    code: int
    reason: str

    def wire(self) -> list[Any]:
        return [3, self.tunnel, self.code, self.reason]


@dataclass(slots=True)
class Challenge:
    nonce: bytes

    def wire(self) -> list[Any]:
        return [4, 0, self.nonce]


@dataclass(slots=True)
class Answer:
    proof: bytes

    def wire(self) -> list[Any]:
        return [5, 0, self.proof]


Message = Request | Reply | Frame | Close | Challenge | Answer


def encode(messages: list[Message]) -> bytes:
    """One frame holding ``messages``."""
    # surrogatepass: a lone surrogate in some text (an error message, say) must not make a
    # whole batch unsendable.
    data: bytes = msgpack.packb(
        [m.wire() for m in messages], use_bin_type=True, unicode_errors="surrogatepass"
    )
    return data


def decode(frame: bytes) -> list[Message]:
    """The messages of one frame, each checked for shape (a frame is input)."""
    try:
        raw = msgpack.unpackb(
            frame, raw=False, strict_map_key=False, unicode_errors="surrogatepass"
        )
    except Exception as exc:
        raise LinkProtocolError(f"not a msgpack frame: {exc}") from None
    if not isinstance(raw, list):
        raise LinkProtocolError("a frame holds a list of messages")
    return [_message(m) for m in raw]


def _message(m: Any) -> Message:
    if not (isinstance(m, list) and len(m) >= 2 and isinstance(m[0], int)):
        raise LinkProtocolError("malformed message")
    kind, n = m[0], len(m)
    if not isinstance(m[1], int):
        raise LinkProtocolError("malformed message")
    if kind == 0:
        if not (
            n == 7
            and m[2] in KINDS
            and isinstance(m[3], str)
            and isinstance(m[4], str)
            and isinstance(m[5], int)
            and m[5] >= 0
            and isinstance(m[6], list)
        ):
            raise LinkProtocolError("malformed request")
        return Request(m[1], m[2], m[3], m[4], m[5], m[6])
    if kind == 1:
        if n != 4:
            raise LinkProtocolError("malformed reply")
        return Reply(m[1], bool(m[2]), m[3])
    if kind == 2:
        if not (n == 4 and isinstance(m[3], str | bytes)):
            raise LinkProtocolError("malformed frame")
        return Frame(m[1], bool(m[2]), m[3])
    if kind == 3:
        if not (n == 4 and isinstance(m[2], int) and isinstance(m[3], str)):
            raise LinkProtocolError("malformed close")
        return Close(m[1], m[2], m[3])
    if kind in (4, 5):
        if not (n == 3 and isinstance(m[2], bytes)):
            raise LinkProtocolError("malformed challenge or answer")
        return Challenge(m[2]) if kind == 4 else Answer(m[2])
    raise LinkProtocolError(f"unknown message type {kind}")


def error_value(exc: BaseException) -> list[Any]:
    """An exception as it travels in a Reply: [code, message, type name, may have run]."""
    if isinstance(exc, RpcError):
        return [exc.code, exc.remote_message, exc.type_name, exc.may_have_run]
    if isinstance(exc, DurableObjectError):
        return [exc.code, str(exc), type(exc).__name__, exc.may_have_run]
    return ["error", "the remote node failed to handle the event", type(exc).__name__, True]


def error_from(value: Any) -> DurableObjectError:
    """Rebuild the exception a Reply carries, with its class and outcome (a node of an
    earlier version sends no outcome: its class's default stands)."""
    if not isinstance(value, list | tuple) or len(value) not in (3, 4):
        return DurableObjectError("malformed error from another node")
    code, message, type_name = value[:3]
    outcome = value[3] if len(value) == 4 and isinstance(value[3], bool) else None
    if code == RpcError.code:
        return RpcError(str(type_name), str(message), may_have_run=outcome)
    return BY_CODE.get(code, DurableObjectError)(str(message), may_have_run=outcome)


# ------------------------------------------------------------------ both ends


class _End:
    """What both ends share: messages waiting to go out, cut into frames of ``BATCH``."""

    def __init__(self) -> None:
        self._out: list[Message] = []
        self._frames: list[bytes] = []

    def send(self, message: Message) -> bool:
        """Queue ``message``; True when a frame's worth is waiting (send it now, so the other
        node starts on it while this one goes on)."""
        self._out.append(message)
        if len(self._out) >= BATCH:
            self._frames.append(encode(self._out))
            self._out = []
            return True
        return False

    def data_to_send(self) -> list[bytes]:
        """The frames to write now, everything queued included."""
        if self._out:
            self._frames.append(encode(self._out))
            self._out = []
        frames, self._frames = self._frames, []
        return frames


class CallerProtocol(_End):
    """The end of a link that opened it: sends requests and tunnel traffic, hears replies.

    ``receive`` answers challenges by itself (the answers wait in ``data_to_send``) and
    returns the rest: Reply, Frame and Close messages."""

    def __init__(self, secret: str, me: str, callee: str) -> None:
        super().__init__()
        self._secret, self._me, self._callee = secret, me, callee
        self.answers = 0  # challenges answered so far

    def receive(self, frame: bytes) -> list[Message]:
        events: list[Message] = []
        for m in decode(frame):
            if isinstance(m, Challenge):
                self.send(Answer(auth.answer(self._secret, self._me, self._callee, m.nonce)))
                self.answers += 1
            elif isinstance(m, Reply | Frame | Close):
                events.append(m)
            else:
                raise LinkProtocolError(f"a caller is sent no {type(m).__name__}")
        return events


class CalleeProtocol(_End):
    """The end of a link another node opened: challenges it (at once, then every
    ``reauth_interval``), and hands on its Request, Frame and Close messages once it has
    answered the first challenge. Time is given, never read: ``start(now)``,
    ``receive(frame, now)``, ``tick(now)``."""

    def __init__(self, secret: str, me: str, caller: str, reauth_interval: float) -> None:
        super().__init__()
        self._secret, self._me, self._caller = secret, me, caller
        self.reauth_interval = reauth_interval
        self.proven = False  # the first challenge was answered
        self.answers = 0  # challenges answered so far
        self._challenge: bytes | None = None
        self._asked = 0.0  # when the challenge out was sent
        self._next = 0.0  # when to challenge again

    def start(self, now: float) -> None:
        self._ask(now)

    def _ask(self, now: float) -> None:
        self._challenge = auth.new_challenge()
        self._asked = now
        self.send(Challenge(self._challenge))

    def receive(self, frame: bytes, now: float) -> list[Message]:
        events: list[Message] = []
        for m in decode(frame):
            if isinstance(m, Answer):
                self._check(m.proof, now)
            elif not self.proven:
                raise LinkProtocolError("a message before the challenge's answer")
            elif isinstance(m, Request | Frame | Close):
                events.append(m)
            else:
                raise LinkProtocolError(f"a callee is sent no {type(m).__name__}")
        return events

    def _check(self, given: bytes, now: float) -> None:
        challenge, self._challenge = self._challenge, None
        if challenge is None or not auth.check_answer(
            self._secret, self._caller, self._me, challenge, given
        ):
            raise Unproven("a wrong answer to the link's challenge")
        self.proven = True
        self.answers += 1
        self._next = now + self.reauth_interval

    def tick(self, now: float) -> float:
        """Check the clock: raise Unproven if a challenge went unanswered too long, send the
        next one when it is due. Returns when to tick again."""
        if self._challenge is not None:
            if now - self._asked > ANSWER_TIMEOUT:
                raise Unproven(f"no answer to the link's challenge within {ANSWER_TIMEOUT:.0f}s")
            return self._asked + ANSWER_TIMEOUT
        if now >= self._next:
            self._ask(now)
            return now + ANSWER_TIMEOUT
        return self._next


class Liveness:
    """Whether the other end of a link still shows signs of life, judged by the caller.

    Ping every ``interval``; a link on which nothing was heard (a pong, a frame) for
    ``timeout`` is dead. Time this end itself spent asleep (its process was paused: a tick
    far later than asked for) is not held against the other: it gets a fresh window."""

    def __init__(self, interval: float, timeout: float, now: float) -> None:
        self.interval = interval
        self.timeout = timeout
        self.heard = now
        self._ticked = now

    def hear(self, now: float) -> None:
        self.heard = max(self.heard, now)

    def tick(self, now: float) -> bool:
        """False when the other end is to be given up (else: ping it now)."""
        if now - self._ticked > 2 * self.interval + 0.25:  # we were paused: start over
            self.heard = now
        self._ticked = now
        return now - self.heard <= self.timeout

    def silence(self, now: float) -> float:
        return now - self.heard
