"""Chat settings: ``CHAT_<FIELD NAME IN CAPITALS>`` in the environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from runtime import BaseSettings, ConfigurationError


@dataclass(frozen=True)
class ChatConfig(BaseSettings):
    env_prefix: ClassVar[str] = "CHAT_"

    #: CHAT_RATE_LIMIT=0 turns the per-address limiter off (benchmarks and load tests do).
    rate_limit: bool = True
    #: Each message pushes an address's next allowed time this much (CHAT_RATE_INTERVAL)...
    rate_interval: float = 5.0
    #: ...and a connection cools down while it is more than this far ahead (CHAT_RATE_GRACE).
    rate_grace: float = 20.0
    #: Messages kept per room; older ones are pruned by an alarm (CHAT_HISTORY).
    history: int = 1000

    def __post_init__(self) -> None:
        if self.history < 100:
            raise ConfigurationError("CHAT_HISTORY must be at least 100 (the join backlog)")
        if self.rate_interval <= 0 or self.rate_grace < 0:
            raise ConfigurationError("CHAT_RATE_INTERVAL must be > 0 and CHAT_RATE_GRACE >= 0")
