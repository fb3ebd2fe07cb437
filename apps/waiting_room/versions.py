"""Read-your-writes across requests (docs/replicas.md, guarantee 3): the room's version
travels with the client.

A route that writes to a room (a visit, a leave, a change of settings) hands the client the
version of the room's commit that holds it, in a cookie per room (``wr_v_<room>``,
HttpOnly, SameSite=Lax, for browsers) and in the ``X-Room-Version`` header (for programs).
A status read starts its stub from the newest version the request carries
(``ns.get(id, after=version)``): a replica behind it waits for that commit or sends the call
to the primary, so a visitor who left through one node is never shown still there by
another.

A visit hands back only the header (the cookie would ride on every request of every app,
and no browser page reads the status API); a leave, a change of settings and a delete set
the cookie too. A status read hands back the version it read at, so a client that sends
it back never reads older (monotonic reads).

The version is a hint, not authority: a missing, malformed or out-of-range value reads as
none (0). A forged high one costs that client's own read a short wait and sends it to the
primary; it leaves nothing behind on the replica (runtime/host/replica.py).
"""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.responses import Response

#: The header a write's answer carries and a read may send back.
HEADER = "X-Room-Version"
PREFIX = "wr_v_"
#: Versions are counted from 1 per room by every commit; nothing real comes near 2**53.
MAX_VERSION = 2**53
#: The cookie outlives the replicas' staleness bound (a second) by far: any later read is
#: served at least this current anyway.
MAX_AGE = 600
_MAX_DIGITS = len(str(MAX_VERSION))
_HEADER_RAW = HEADER.lower().encode("latin-1")


def cookie_name(room: str) -> str:
    """The room's version cookie (128 bits of its ID, as its visitor cookie)."""
    return PREFIX + room[:32]


def parse(text: str | None) -> int:
    """A carried version: an integer in 1..MAX_VERSION, else 0 (ignored)."""
    if not text or len(text) > _MAX_DIGITS or not text.isascii() or not text.isdigit():
        return 0
    version = int(text)
    return version if 0 < version <= MAX_VERSION else 0


def carried(request: HTTPConnection, room: str) -> int:
    """The newest version of ``room`` the request carries (cookie or header; 0: none)."""
    return max(parse(request.cookies.get(cookie_name(room))), parse(request.headers.get(HEADER)))


def remember(
    response: Response, room: str, version: int, secure: bool = False, cookie: bool = True
) -> Response:
    """Hand the client ``version`` (if there is one: a decision made by a node's shard
    has no version of the room) in the header, and in the cookie unless ``cookie`` is
    False (a read, or a visit: the cookie is for the writes a status read must show)."""
    if 0 < version <= MAX_VERSION:
        # (appended to the raw headers: on every decision, MutableHeaders costs µs)
        response.raw_headers.append((_HEADER_RAW, str(version).encode("latin-1")))
        if cookie:
            text = f"{PREFIX}{room[:32]}={version}; Path=/; Max-Age={MAX_AGE}; HttpOnly"
            text += "; SameSite=Lax; Secure" if secure else "; SameSite=Lax"
            response.raw_headers.append((b"set-cookie", text.encode("latin-1")))
    return response
