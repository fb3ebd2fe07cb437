"""Clients that write operations with ids to a ledger object, and honest accounting of them.

Every operation is retried (same id) until acknowledged. An attempt whose outcome is
unknown (the node or Redis went away mid-way) may or may not have been applied; a retry after
one may therefore apply the operation twice, and only then is a duplicate allowed.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from tests.support.servers import NodeProcess

#: Error codes after which the write may or may not have happened.
MAYBE_APPLIED = {"unknown_outcome", "storage_unavailable", "reset", "fenced", "error"}


@dataclass
class Ledger:
    acked: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)  # ops with at least one unknown attempt
    latencies: list[float] = field(default_factory=list)  # of acknowledged attempts
    ack_times: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)

    async def attempt(
        self, client: httpx.AsyncClient, node: NodeProcess, name: str, op: str
    ) -> bool:
        start = time.monotonic()
        try:
            r = await client.post(f"{node.http}/probe/{name}/op/{op}", timeout=15)
        except httpx.ConnectError:
            self.statuses["connect-error"] += 1
            return False  # never reached a node
        except httpx.HTTPError as exc:
            self.statuses[type(exc).__name__] += 1
            self.unknown.add(op)
            return False
        if r.status_code == 200:
            self.acked.add(op)
            self.latencies.append(time.monotonic() - start)
            self.ack_times.append(time.monotonic())
            return True
        code = r.headers.get("x-error-code", str(r.status_code))
        self.statuses[f"{r.status_code}:{code}"] += 1
        if code in MAYBE_APPLIED or (r.status_code >= 500 and "x-error-code" not in r.headers):
            self.unknown.add(op)
        return False

    async def run_client(
        self, nodes: list[NodeProcess], name: str, prefix: str, stop: asyncio.Event
    ) -> None:
        async with httpx.AsyncClient() as client:
            i = 0
            while not stop.is_set():
                op = f"{prefix}-{i}"
                for _ in range(200):
                    if await self.attempt(client, random.choice(nodes), name, op):
                        break
                    await asyncio.sleep(0.05)
                i += 1

    def check(self, applied: list[str]) -> None:
        """Nothing acknowledged is missing; nothing is doubled without an unknown outcome."""
        counts = Counter(applied)
        missing = self.acked - counts.keys()
        assert not missing, f"acknowledged but lost: {sorted(missing)[:10]}"
        doubled = {op for op, n in counts.items() if n > 1}
        assert doubled <= self.unknown, f"applied twice without cause: {sorted(doubled)[:10]}"
        strays = counts.keys() - self.acked - self.unknown
        assert not strays, f"applied though never acknowledged nor unknown: {sorted(strays)}"
