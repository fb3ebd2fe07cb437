"""The node-to-node link protocol, sans I/O: messages, batches, errors, authentication.

A link is one WebSocket from a node to another (``/_cluster/link``), multiplexing requests
and tunnelled client sockets. Each binary frame is a msgpack array of messages, so everything
sent in one turn of the event loop travels in one frame:

    [0, id, kind, namespace, object hex, hops, body]   REQUEST  (kind: rpc, fetch, alarm, open)
    [1, id, ok, value]                                  REPLY    (value: result, or
                                                                  [error code, message, type])
    [2, tunnel, is_text, data]                          FRAME    a tunnelled socket message
    [3, tunnel, code, reason]                           CLOSE    a tunnelled socket closed

``open`` asks the owner to accept a client socket; its reply is ``[accepted, status, text]``
and the request id then names the tunnel in FRAME and CLOSE, both ways.

The opening handshake carries ``X-Cluster-Node``, ``X-Cluster-Time`` and ``X-Cluster-Auth``:
an HMAC-SHA256 of "caller|callee|time" under the cluster secret, accepted within a minute of
the callee's clock and only by the node it names. The secret itself never travels. Links are
plain ``ws://``: keep node-to-node traffic on a private network (or put TLS in front).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import msgpack

from .errors import BY_CODE, DurableObjectError, RpcError

REQUEST, REPLY, FRAME, CLOSE = 0, 1, 2, 3
KINDS = ("rpc", "fetch", "alarm", "open")
MAX_SKEW = 60.0
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
        if kind not in (REQUEST, REPLY, FRAME, CLOSE):
            raise LinkProtocolError(f"unknown message type {kind}")
    return messages


def error_value(exc: BaseException) -> list[Any]:
    """An exception as it travels in a REPLY."""
    if isinstance(exc, RpcError):
        return [exc.code, exc.remote_message, exc.type_name]
    if isinstance(exc, DurableObjectError):
        return [exc.code, str(exc), type(exc).__name__]
    return ["error", "the remote node failed to handle the event", type(exc).__name__]


def error_from(value: Any) -> DurableObjectError:
    """Rebuild the exception a REPLY carries, with its class."""
    try:
        code, message, type_name = value
    except (TypeError, ValueError):
        return DurableObjectError("malformed error from another node")
    if code == RpcError.code:
        return RpcError(str(type_name), str(message))
    return BY_CODE.get(code, DurableObjectError)(str(message))


def _mac(secret: str, caller: str, callee: str, timestamp: str) -> str:
    message = f"{caller}|{callee}|{timestamp}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def auth_headers(secret: str, caller: str, callee: str, now: float) -> dict[str, str]:
    """Handshake headers for a link from node ``caller`` to node ``callee``."""
    stamp = str(int(now))
    return {
        "X-Cluster-Node": caller,
        "X-Cluster-Time": stamp,
        "X-Cluster-Auth": _mac(secret, caller, callee, stamp),
    }


def verify(secret: str, headers: dict[str, str], me: str, now: float) -> str | None:
    """The calling node's id when its credentials hold for this node (``me``), else None."""
    if not secret:
        return None
    try:
        caller = headers.get("x-cluster-node", "")
        stamp = headers.get("x-cluster-time", "")
        given = headers.get("x-cluster-auth", "")
        if not caller or abs(now - int(stamp)) > MAX_SKEW:
            return None
        if not hmac.compare_digest(given.encode(), _mac(secret, caller, me, stamp).encode()):
            return None
    except (ValueError, TypeError, OverflowError, UnicodeError):
        return None
    return caller
