"""Rate limiting per client address, as the edge chat demo does it.

Two parts:

- :class:`RateLimiter`, one object per client address (``id_from_name(address)``): each
  message from the address pushes its next allowed time ``interval`` seconds further, and
  the object answers how long the asking connection must cool down: how far that time is
  more than ``grace`` seconds ahead (with the defaults, 5 s and 20 s, an address sends a
  burst of five messages, then one every five seconds).
- the room's side, per connection (chat_room.py): a connection that is not cooling down always
  sends its next message, then asks the limiter how long to cool down, and refuses its
  messages until then. So a new connection's first message (its name) always passes, and
  one person's burst never locks everyone else behind the same address (an office, a
  school) out of joining.

The limiter's state lives in memory only, as in the demo: a limiter that leaves memory
forgets, which only ever errs on the side of letting a message through.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from runtime import DurableObject, Env, ObjectContext, rpc

from .config import ChatConfig


@dataclass
class Allowance:
    """The rule, with no clock of its own (tests drive ``now``)."""

    interval: float = 5.0
    grace: float = 20.0
    next_allowed: float = 0.0

    def spend(self, now: float) -> float:
        """Count one message sent at ``now``; the seconds its connection must cool down."""
        self.next_allowed = max(now, self.next_allowed) + self.interval
        return max(0.0, self.next_allowed - now - self.grace)


class RateLimiter(DurableObject):
    """One per client address."""

    def __init__(self, ctx: ObjectContext, env: Env) -> None:
        super().__init__(ctx, env)
        config = env.app_settings(ChatConfig)
        self.allowance = Allowance(config.rate_interval, config.rate_grace)

    @rpc
    async def spend(self) -> float:
        """A message was sent from this address: how long its connection cools down (s)."""
        return self.allowance.spend(time.time())
