"""Rate limiting per client IP: one RateLimiter object per address (a second object class).

Each message pushes the address's next allowed time ``interval`` seconds further; messages
pass while that time is at most ``grace`` seconds ahead. With the defaults (5 s, 20 s) a
client sends 5 messages in a burst, then one every 5 s. A refused message does not push the
time further, so a client that waits is let through again.

The state lives in memory only, as in the demo: a limiter that leaves memory forgets, which
only ever errs on the side of letting a message through.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from runtime import DurableObject, rpc


@dataclass
class Allowance:
    """The rule, with no clock of its own (tests drive ``now``)."""

    interval: float = 5.0
    grace: float = 20.0
    next_allowed: float = 0.0

    def take(self, now: float) -> bool:
        """Spend one message at ``now``; False when the client must slow down."""
        self.next_allowed = max(now, self.next_allowed)
        if self.next_allowed - now > self.grace:
            return False
        self.next_allowed += self.interval
        return True


class RateLimiter(DurableObject):
    """One per client IP (``id_from_name(ip)``)."""

    interval = 5.0
    grace = 20.0

    def __init__(self, ctx: object, env: object) -> None:
        super().__init__(ctx, env)  # type: ignore[arg-type]
        self.allowance = Allowance(self.interval, self.grace)

    @rpc
    async def take(self) -> bool:
        """Spend one message now; False when the address is over its rate."""
        return self.allowance.take(time.time())
