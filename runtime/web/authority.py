"""Who holds the node operator's authority: what ``/ops`` asks for, and what an app asks
for before it lets a request change another app (the waiting room gating a path).

Three things carry it: the node's ``OPS_TOKEN`` (an ``Authorization: Bearer`` header, or
the cookie ``/ops?token=...`` leaves), another node's link credentials, and, on a laptop
(no CLUSTER_SECRET, no OPS_TOKEN, listening on loopback only, asked directly), being on
this machine.
"""

from __future__ import annotations

import hmac
import time
from typing import Protocol

from starlette.requests import HTTPConnection

from ..base.config import Settings
from ..cluster.auth import Verifier

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
#: The cookie ``/ops?token=...`` leaves, so the page's own requests carry the token.
COOKIE = "ops_token"


class OperatorHost(Protocol):
    """What the check needs from the node: its settings and its node-link verifier."""

    settings: Settings
    verifier: Verifier


def open_to_all(node: OperatorHost, request: HTTPConnection) -> bool:
    """The laptop setup: nothing configured for a cluster, reachable from this machine only,
    and asked directly (a request a proxy passed on may come from anywhere)."""
    s = node.settings
    proxied = "x-forwarded-for" in request.headers or "forwarded" in request.headers
    return not s.cluster_secret and not s.ops_token and s.host in LOOPBACK and not proxied


def allowed(node: OperatorHost, request: HTTPConnection) -> bool:
    """Whether ``request`` carries the operator's authority (see the module's docstring)."""
    token = node.settings.ops_token
    if token:
        given = request.headers.get("authorization", "")
        bearer = given[7:] if given.lower().startswith("bearer ") else ""
        for candidate in (bearer, request.cookies.get(COOKIE, "")):
            if candidate and hmac.compare_digest(candidate.encode(), token.encode()):
                return True
    if node.verifier.verify({k.lower(): v for k, v in request.headers.items()}, time.time())[0]:
        return True  # another node asking for this node's figures
    return open_to_all(node, request)
