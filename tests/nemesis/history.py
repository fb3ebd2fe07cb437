"""A history of operations as clients saw them, the way Jepsen records one.

Each operation is invoked by a *process* (one client with at most one operation in flight)
and ends one of three ways:

- ``ok``: it happened, with the value it returned;
- ``fail``: it surely did not happen (the server said ``X-Outcome: not-run``, or the request
  never reached a server);
- ``info``: it may or may not have happened (a timeout, a dropped connection, an error that
  says ``X-Outcome: unknown``). Its end is unknown: it may take effect at any time after it
  was invoked, or never. A process whose operation ended ``info`` is retired, and the client
  goes on as a new process (the old one may still be "running" it).

Times are ``time.monotonic()`` of the test process; they order operations in real time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OK, FAIL, INFO = "ok", "fail", "info"


@dataclass(slots=True)
class Op:
    """One operation of one process on one key."""

    process: int
    key: str
    f: str  # "inc", "read", "write" or "cas"
    arg: Any = None  # the value written, or [expected, new] for a cas
    invoke: float = 0.0
    complete: float | None = None  # None while running, and for info operations
    status: str = ""  # ok, fail or info (empty while running)
    value: Any = None  # what an ok operation returned (a read's value, an inc's new value)
    node: str = ""  # the node the client sent it to
    detail: str = ""  # why it failed or is unknown: HTTP status, X-Error-Code, exception
    index: int = 0  # its place in the history
    returned: float | None = None  # when the client heard back or gave up (all statuses)
    client: int = 0  # the client (one browser: its processes share what it carries)

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def end(self) -> float:
        """When it completed (+inf for an info operation: it may take effect any time)."""
        return float("inf") if self.complete is None else self.complete


@dataclass
class History:
    """Every operation of a run, in the order they were invoked."""

    ops: list[Op] = field(default_factory=list)
    _next_process: int = 0

    def new_process(self) -> int:
        self._next_process += 1
        return self._next_process

    def invoke(self, process: int, key: str, f: str, arg: Any, now: float, node: str) -> Op:
        op = Op(process, key, f, arg, invoke=now, node=node, index=len(self.ops))
        self.ops.append(op)
        return op

    @staticmethod
    def finish(op: Op, status: str, now: float, value: Any = None, detail: str = "") -> None:
        op.status = status
        op.value = value
        op.detail = detail
        op.complete = None if status == INFO else now
        op.returned = now

    def __iter__(self) -> Iterator[Op]:
        return iter(self.ops)

    def __len__(self) -> int:
        return len(self.ops)

    def by_key(self) -> dict[str, list[Op]]:
        keys: dict[str, list[Op]] = {}
        for op in self.ops:
            keys.setdefault(op.key, []).append(op)
        return keys

    def counts(self) -> dict[str, int]:
        out = {OK: 0, FAIL: 0, INFO: 0}
        for op in self.ops:
            if op.status in out:
                out[op.status] += 1
        return out

    def dump(self, path: Path) -> None:
        """One JSON object per line (for reading a failed run later)."""
        with path.open("w") as out:
            for op in self.ops:
                out.write(json.dumps(asdict(op)) + "\n")

    @classmethod
    def load(cls, path: Path) -> History:
        return cls.of(Op(**json.loads(line)) for line in path.read_text().splitlines())

    @classmethod
    def of(cls, ops: Iterable[Op]) -> History:
        history = cls(list(ops))
        for i, op in enumerate(history.ops):
            op.index = i
        history._next_process = max((op.process for op in history.ops), default=0)
        return history
