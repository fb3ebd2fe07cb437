"""Clients that drive the cluster and record every operation in a history (history.py).

Each client is bound to one node (as a browser is to the balancer's pick) and runs one
operation at a time on a random key: a fetch-and-increment counter
(``POST /counter/<key>``, reads with ``GET``), a register (``/probe/<key>/register``:
read, write, compare-and-set), or an append-only log read on replicas (``/shelf/<key>``:
appends go to the primary, counts are read-only calls; the client carries the version each
answer gives it in ``X-Version``, as a browser carries a cookie). What a client makes of an
answer:

    200                                   ok, with the value
    an error with X-Outcome: not-run      fail: it surely did not happen
    an error with X-Outcome: unknown      info: it may have happened
    an error without X-Outcome            info (and noted: every error must say)
    no connection could be made           fail: nothing was sent
    a timeout, a connection cut mid-way   info
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.nemesis.history import FAIL, INFO, OK, History, Op


@dataclass
class Workload:
    """What the clients do: ``kind`` "counter", "register" or "replica", on ``keys``."""

    kind: str
    keys: list[str]
    clients: int = 9
    timeout: float = 6.0  # per operation: past it the outcome is unknown
    reads: float = 0.2  # share of reads (counters)
    #: (status, X-Error-Code, X-Outcome or "-") -> how many error answers came back.
    errors: Counter[tuple[int, str, str]] = field(default_factory=Counter)
    rng: random.Random = field(default_factory=lambda: random.Random(1))
    _written: int = 0
    _appended: set[str] = field(default_factory=set)

    def request(self, key: str) -> tuple[str, Any, str, str, dict[str, str]]:
        """(f, arg, method, path, params) of the next operation on ``key``."""
        if self.kind == "replica":
            if key in self._appended and self.rng.random() < 0.7:
                return "read", None, "GET", f"/shelf/{key}/count", {}
            self._appended.add(key)
            self._written += 1
            line = f"line-{self._written}"
            return "append", line, "POST", f"/shelf/{key}/append", {"line": line}
        if self.kind == "counter":
            if self.rng.random() < self.reads:
                return "read", None, "GET", f"/counter/{key}", {}
            return "inc", None, "POST", f"/counter/{key}", {}
        roll = self.rng.random()
        if roll < 0.4:
            return "read", None, "GET", f"/probe/{key}/register", {}
        self._written += 1
        if roll < 0.75:
            value = self.rng.randrange(5)
            return "write", value, "PUT", f"/probe/{key}/register", {"value": str(value)}
        expected, new = self.rng.randrange(5), self.rng.randrange(5)
        params = {"from": str(expected), "to": str(new)}
        return "cas", [expected, new], "POST", f"/probe/{key}/register", params

    def value_of(self, f: str, body: dict[str, Any]) -> Any:
        if self.kind == "replica":
            return body.get("lines")
        if f in ("inc", "read"):
            return body.get("value")
        return bool(body.get("ok")) if f == "cas" else None

    async def one(
        self,
        client: httpx.AsyncClient,
        history: History,
        process: int,
        node: str,
        base: str,
        key: str,
        carried: dict[str, str] | None = None,
        number: int = 0,
    ) -> Op:
        """One operation of client ``number``; ``carried`` is what the client keeps across
        its requests (the version of each key it last heard of: the replica workload)."""
        f, arg, method, path, params = self.request(key)
        op = history.invoke(process, key, f, arg, time.monotonic(), node)
        op.client = number
        headers = {"X-Version": carried.get(key, "0")} if carried is not None else {}
        try:
            reply = await client.request(
                method, base + path, params=params, headers=headers, timeout=self.timeout
            )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            history.finish(op, FAIL, time.monotonic(), detail=type(exc).__name__)
            return op
        except httpx.HTTPError as exc:
            history.finish(op, INFO, time.monotonic(), detail=type(exc).__name__)
            return op
        now = time.monotonic()
        if reply.status_code == 200:
            body = reply.json()
            where = "replica" if body.get("replica") else "primary"
            history.finish(op, OK, now, self.value_of(f, body), detail=where)
            if carried is not None and reply.headers.get("x-version", "0").isdigit():
                known = int(carried.get(key, "0"))
                carried[key] = str(max(known, int(reply.headers["x-version"])))
            return op
        outcome = reply.headers.get("x-outcome", "-")
        code = reply.headers.get("x-error-code", "-")
        self.errors[(reply.status_code, code, outcome)] += 1
        status = FAIL if outcome == "not-run" else INFO
        history.finish(op, status, now, detail=f"{reply.status_code} {code} {outcome}")
        return op

    async def client(
        self, history: History, node: str, base: str, stop: asyncio.Event, number: int = 0
    ) -> None:
        """Client ``number``, bound to one node, until ``stop``; a new process after each
        info."""
        process = history.new_process()
        carried: dict[str, str] | None = {} if self.kind == "replica" else None
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(limits=limits) as client:
            while not stop.is_set():
                op = await self.one(
                    client,
                    history,
                    process,
                    node,
                    base,
                    self.rng.choice(self.keys),
                    carried,
                    number,
                )
                if op.status == INFO:
                    process = history.new_process()
                elif op.status == FAIL:
                    await asyncio.sleep(0.02)  # (a refusal comes back at once: do not spin)


async def final_value(base_urls: list[str], path: str, tries: float = 20.0) -> Any:
    """Read ``path`` through any node until one answers (after every fault has healed)."""
    deadline = time.monotonic() + tries
    async with httpx.AsyncClient() as client:
        while True:
            for base in base_urls:
                try:
                    reply = await client.get(base + path, timeout=5)
                    if reply.status_code == 200:
                        return reply.json().get("value")
                except httpx.HTTPError:
                    pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"no node answered {path} for {tries:.0f}s")
            await asyncio.sleep(0.2)
