"""Chat settings, from the environment (``CHAT_*``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from runtime import ConfigurationError


@dataclass(frozen=True)
class ChatConfig:
    #: CHAT_RATE_LIMIT=0 turns the per-IP limiter off (benchmarks and load tests do).
    rate_limit: bool = True
    #: Each message pushes an address's next allowed time this much (CHAT_RATE_INTERVAL)...
    rate_interval: float = 5.0
    #: ...and messages pass while it is at most this far ahead (CHAT_RATE_GRACE).
    rate_grace: float = 20.0
    #: Messages kept per room; older ones are pruned by an alarm (CHAT_HISTORY).
    history: int = 1000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ChatConfig:
        env = os.environ if env is None else env
        try:
            return cls(
                rate_limit=env.get("CHAT_RATE_LIMIT", "1").strip() not in ("0", "false", "off"),
                rate_interval=float(env.get("CHAT_RATE_INTERVAL", cls.rate_interval)),
                rate_grace=float(env.get("CHAT_RATE_GRACE", cls.rate_grace)),
                history=int(env.get("CHAT_HISTORY", cls.history)),
            )
        except ValueError as exc:
            raise ConfigurationError(f"chat settings: {exc}") from None

    def __post_init__(self) -> None:
        if self.history < 100:
            raise ConfigurationError("CHAT_HISTORY must be at least 100 (the join backlog)")
        if self.rate_interval <= 0 or self.rate_grace < 0:
            raise ConfigurationError("CHAT_RATE_INTERVAL must be > 0 and CHAT_RATE_GRACE >= 0")
