"""The node-to-node link protocol, sans I/O: messages, batches, errors, authentication.

A link is one WebSocket from a node to another (``/_cluster/link``), multiplexing requests
and tunnelled client sockets. Each binary frame is a msgpack array of messages, so everything
sent in one turn of the event loop travels in one frame:

    [0, id, kind, namespace, object hex, hops, body]   REQUEST  (kind: rpc, fetch, alarm, open)
    [1, id, ok, value]                                  REPLY    (value: result, or
                                                                  [error code, message, type])
    [2, tunnel, is_text, data]                          FRAME    a tunnelled socket message
    [3, tunnel, code, reason]                           CLOSE    a tunnelled socket closed
    [4, 0, challenge]                                   CHALLENGE  callee -> caller: prove it
    [5, 0, answer]                                      ANSWER     caller -> callee

``open`` asks the owner to accept a client socket; its reply is ``[accepted, status, text]``
and the request id then names the tunnel in FRAME and CLOSE, both ways.

Authentication, in two steps; the secret itself never travels:

1. The opening handshake carries ``X-Cluster-Node``, ``X-Cluster-Time``, ``X-Cluster-Nonce``
   and ``X-Cluster-Auth``: an HMAC-SHA256 of "caller|callee|time|nonce" under the cluster
   secret, accepted within ``MAX_SKEW`` (60 s) of the callee's clock, only by the node it
   names, and only once: the callee remembers the nonces it has seen for that long.
2. Right after the handshake, and again every ``reauth_interval``, the callee sends a fresh
   random CHALLENGE; the caller answers with an HMAC of it. Nothing the caller sends is acted
   on before the first answer, and a link that does not answer in time is closed. So a
   captured handshake opens nothing, and no link lives long without proving the secret.

Links are plain ``ws://`` unless the nodes serve TLS (``wss://``, see the TLS settings):
either keep node-to-node traffic on a private network or use TLS.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

import msgpack

from ..base.errors import BY_CODE, DurableObjectError, RpcError

REQUEST, REPLY, FRAME, CLOSE, CHALLENGE, ANSWER = 0, 1, 2, 3, 4, 5
KINDS = ("rpc", "fetch", "alarm", "open")
MAX_SKEW = 60.0
#: Seconds a peer has to answer a challenge.
ANSWER_TIMEOUT = 5.0
#: Nonces remembered at most (past it the oldest go: their handshakes are stale by then).
MAX_NONCES = 100_000
PATH = "/_cluster/link"


class LinkProtocolError(Exception):
    """A peer sent something that is not this protocol."""


def encode(messages: list[list[Any]]) -> bytes:
    # surrogatepass: a lone surrogate in some text (an error message, say) must not make a
    # whole batch unsendable.
    data: bytes = msgpack.packb(messages, use_bin_type=True, unicode_errors="surrogatepass")
    return data


def decode(frame: bytes) -> list[list[Any]]:
    """The messages of one frame, each checked for shape."""
    try:
        messages = msgpack.unpackb(
            frame, raw=False, strict_map_key=False, unicode_errors="surrogatepass"
        )
    except Exception as exc:
        raise LinkProtocolError(f"not a msgpack frame: {exc}") from None
    if not isinstance(messages, list):
        raise LinkProtocolError("a frame holds a list of messages")
    for m in messages:
        if not (
            isinstance(m, list) and len(m) >= 2 and isinstance(m[0], int) and isinstance(m[1], int)
        ):
            raise LinkProtocolError("malformed message")
        kind = m[0]
        if kind == REQUEST and not (
            len(m) == 7
            and m[2] in KINDS
            and isinstance(m[3], str)
            and isinstance(m[4], str)
            and isinstance(m[5], int)
            and m[5] >= 0
            and isinstance(m[6], list)
        ):
            raise LinkProtocolError("malformed request")
        if kind == REPLY and len(m) != 4:
            raise LinkProtocolError("malformed reply")
        if kind == FRAME and not (len(m) == 4 and isinstance(m[3], str | bytes)):
            raise LinkProtocolError("malformed frame")
        if kind == CLOSE and not (len(m) == 4 and isinstance(m[2], int) and isinstance(m[3], str)):
            raise LinkProtocolError("malformed close")
        if kind in (CHALLENGE, ANSWER) and not (len(m) == 3 and isinstance(m[2], bytes)):
            raise LinkProtocolError("malformed challenge or answer")
        if kind not in (REQUEST, REPLY, FRAME, CLOSE, CHALLENGE, ANSWER):
            raise LinkProtocolError(f"unknown message type {kind}")
    return messages


def error_value(exc: BaseException) -> list[Any]:
    """An exception as it travels in a REPLY: [code, message, type name, may have run]."""
    if isinstance(exc, RpcError):
        return [exc.code, exc.remote_message, exc.type_name, exc.may_have_run]
    if isinstance(exc, DurableObjectError):
        return [exc.code, str(exc), type(exc).__name__, exc.may_have_run]
    return ["error", "the remote node failed to handle the event", type(exc).__name__, True]


def error_from(value: Any) -> DurableObjectError:
    """Rebuild the exception a REPLY carries, with its class and outcome (a node of an
    earlier version sends no outcome: its class's default stands)."""
    if not isinstance(value, list | tuple) or len(value) not in (3, 4):
        return DurableObjectError("malformed error from another node")
    code, message, type_name = value[:3]
    outcome = value[3] if len(value) == 4 and isinstance(value[3], bool) else None
    if code == RpcError.code:
        return RpcError(str(type_name), str(message), may_have_run=outcome)
    return BY_CODE.get(code, DurableObjectError)(str(message), may_have_run=outcome)


def _mac(secret: str, *parts: str) -> str:
    message = "|".join(parts).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def auth_headers(secret: str, caller: str, callee: str, now: float) -> dict[str, str]:
    """Handshake headers for a link (or an operator request) from ``caller`` to ``callee``."""
    stamp = str(int(now))
    nonce = secrets.token_hex(16)
    return {
        "X-Cluster-Node": caller,
        "X-Cluster-Time": stamp,
        "X-Cluster-Nonce": nonce,
        "X-Cluster-Auth": _mac(secret, caller, callee, stamp, nonce),
    }


class Verifier:
    """Checks handshakes for one node (``me``): HMAC, clock skew, and each nonce once."""

    def __init__(self, secret: str, me: str) -> None:
        self._secret = secret
        self._me = me
        self._seen: dict[str, float] = {}  # nonce -> when it may be forgotten

    def verify(self, headers: dict[str, str], now: float) -> tuple[str | None, str]:
        """(the calling node's id, "") when the credentials hold, else (None, why)."""
        if not self._secret:
            return None, "this node has no CLUSTER_SECRET"
        try:
            caller = headers.get("x-cluster-node", "")
            stamp = headers.get("x-cluster-time", "")
            nonce = headers.get("x-cluster-nonce", "")
            given = headers.get("x-cluster-auth", "")
            if not caller or not nonce or len(nonce) > 64:
                return None, "missing credentials"
            if abs(now - int(stamp)) > MAX_SKEW:
                return None, "the handshake's time is off by more than 60 s (clocks, or a replay)"
            want = _mac(self._secret, caller, self._me, stamp, nonce)
            if not hmac.compare_digest(given.encode(), want.encode()):
                return None, "wrong credentials (do the nodes share one CLUSTER_SECRET?)"
        except (ValueError, TypeError, OverflowError, UnicodeError):
            return None, "malformed credentials"
        self._forget(now)
        if nonce in self._seen:
            return None, "a handshake seen before (a replay)"
        self._seen[nonce] = now + 2 * MAX_SKEW
        return caller, ""

    def _forget(self, now: float) -> None:
        while self._seen:
            nonce, until = next(iter(self._seen.items()))
            if until > now and len(self._seen) < MAX_NONCES:
                return
            del self._seen[nonce]


def new_challenge() -> bytes:
    return secrets.token_bytes(32)


def answer(secret: str, caller: str, callee: str, challenge: bytes) -> bytes:
    """What the caller sends back for ``challenge``: proof it holds the secret, now."""
    return hmac.new(
        secret.encode(), b"answer|" + f"{caller}|{callee}|".encode() + challenge, hashlib.sha256
    ).digest()


def check_answer(secret: str, caller: str, callee: str, challenge: bytes, given: bytes) -> bool:
    return hmac.compare_digest(answer(secret, caller, callee, challenge), given)
