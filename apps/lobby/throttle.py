"""How fast one client address may create lobbies and look join codes up.

Without a limit, one client made 400 lobbies in 6 s and tried 1,000 join codes in 13 s: the
first fills the directory for everyone, the second guesses its way into private lobbies (a
code is one of 887 million, so guessing needs millions of tries: the limit keeps them from
coming fast). Each address gets a token bucket per action:

- :class:`Bucket` is the rule, as plain code with the time as an argument: ``burst`` tries
  at once, then ``rate`` per minute; a refused try says how many seconds until the next.
- :class:`Throttle` is one object per client address (``id_from_name(address)``), holding
  that address's buckets for the whole cluster, in memory only (like the chat's rate
  limiter: an address idle long enough for its object to leave memory starts afresh, which
  only ever errs on the side of letting a try through).

The routes answer a refused try with 429, ``Retry-After`` and a JSON error that says how
long to wait. ``LOBBY_CREATE_RATE`` / ``LOBBY_CODE_RATE`` set the rates (0 turns a limit
off, as benchmarks do); ``LOBBY_CREATE_BURST`` / ``LOBBY_CODE_BURST`` the bursts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from runtime import DurableObject, Env, ObjectContext, rpc

from .config import LobbyConfig

#: The actions limited, and what a refusal calls them.
CREATE, CODE = "create", "code"
ACTIONS = {CREATE: "creating lobbies", CODE: "trying join codes"}


@dataclass
class Bucket:
    """``burst`` tries at once, refilled at ``rate`` per minute (0: no limit)."""

    rate: float
    burst: int
    tokens: float = -1.0  # (-1: not used yet, so full)
    at: float = 0.0

    def take(self, now: float) -> float:
        """Spend one try at ``now``: 0 if it may go ahead, else the seconds to wait."""
        if self.rate <= 0:
            return 0.0
        per_second = self.rate / 60.0
        if self.tokens < 0:
            self.tokens = float(self.burst)
        else:
            self.tokens = min(float(self.burst), self.tokens + (now - self.at) * per_second)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / per_second


class Throttle(DurableObject):
    """One client address's buckets."""

    def __init__(self, ctx: ObjectContext, env: Env) -> None:
        super().__init__(ctx, env)
        config = env.app_settings(LobbyConfig)
        self.buckets = {
            CREATE: Bucket(config.create_rate, config.create_burst),
            CODE: Bucket(config.code_rate, config.code_burst),
        }

    @rpc
    async def take(self, action: str) -> float:
        """One try of ``action`` from this address: 0, or the seconds until it may try."""
        bucket = self.buckets.get(action)
        if bucket is None:
            raise ValueError(f"no such action {action!r}")
        return bucket.take(time.time())
