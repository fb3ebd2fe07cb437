"""Proving the cluster secret on node-to-node requests and links (sans I/O).

Two steps; the secret itself never travels:

1. The opening handshake (of a link, or an operator request between nodes) carries
   ``X-Cluster-Node``, ``X-Cluster-Time``, ``X-Cluster-Nonce`` and ``X-Cluster-Auth``: an
   HMAC-SHA256 of "caller|callee|time|nonce" under the cluster secret, accepted within
   ``MAX_SKEW`` (60 s) of the callee's clock, only by the node it names, and only once: the
   callee remembers the nonces it has seen for that long (:class:`Verifier`).
2. On a link, right after the handshake and again every ``LINK_REAUTH_INTERVAL``, the callee
   sends a fresh random challenge and the caller answers with an HMAC of it
   (:func:`answer`, :func:`check_answer`; the link protocol in protocol.py runs the rounds).
   So a captured handshake opens nothing, and no link lives long without proving the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

MAX_SKEW = 60.0
#: Nonces remembered at most (past it the oldest go: their handshakes are stale by then).
MAX_NONCES = 100_000


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
