"""The input gate, the output gate and an object's commits, driven through their host
protocols by hosts written here: no Redis, no sockets. What the hosts record is what the
pieces told them; what the tests resolve is what Redis would have answered."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from runtime.base import codec
from runtime.base.errors import DurableObjectError, Fenced, ObjectOverloaded, StorageUnavailable
from runtime.objects.gate import Delivery, InputGate, _current, outbound, run_blocking
from runtime.objects.output import OutputGate
from runtime.storage.batch import WriteBatch
from runtime.storage.commits import INDEX_MARGIN_MS, Commits
from runtime.storage.keyspace import ObjectKeys
from runtime.storage.lease import Lease

# ------------------------------------------------------------------ input gate


async def test_events_take_the_gate_in_arrival_order() -> None:
    gate = InputGate(max_queue=10)
    order: list[int] = []

    async def event(i: int) -> None:
        await gate.enter("o")
        order.append(i)
        await asyncio.sleep(0)  # a turn of the loop, holding the gate
        gate.leave()

    await gate.enter("o")  # the first event holds it while the others arrive
    tasks = [asyncio.create_task(event(i)) for i in range(5)]
    await asyncio.sleep(0)
    assert gate.waiting == 5
    gate.leave()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]


async def test_a_full_queue_refuses_at_once_and_says_not_run() -> None:
    gate = InputGate(max_queue=2)
    await gate.enter("o")
    waiters = [asyncio.create_task(gate.enter("o")) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(ObjectOverloaded) as info:
        await gate.enter("busy:object")
    assert info.value.may_have_run is False and "busy:object" in str(info.value)
    gate.leave()
    for waiter in waiters:
        await waiter
        gate.leave()


async def test_a_call_to_another_object_opens_the_gate_and_takes_it_back() -> None:
    gate = InputGate(max_queue=10)
    opened: list[Delivery] = []
    await gate.enter("o")
    event = Delivery(gate, owner="record", on_open=opened.append)
    token = _current.set(event)
    other_ran = asyncio.Event()

    async def other_event() -> None:  # another event of the same object
        await gate.enter("o")
        other_ran.set()
        gate.leave()

    async def call() -> str:  # the other object answers once the other event ran
        await other_ran.wait()
        return "answer"

    try:
        task = asyncio.create_task(other_event())
        assert await outbound(call()) == "answer"  # no deadlock: the gate opened meanwhile
        assert event.opened and event.holding and opened == [event]
        await task
        assert gate.locked  # taken back before outbound returned
    finally:
        _current.reset(token)
        gate.leave()


async def test_a_call_inside_block_concurrency_while_keeps_the_gate_but_counts() -> None:
    gate = InputGate(max_queue=10)
    await gate.enter("o")
    event = Delivery(gate, owner="record", on_open=lambda e: None)
    token = _current.set(event)
    try:

        async def call() -> str:
            assert gate.locked  # nobody else may run meanwhile
            return "ok"

        assert await run_blocking(lambda: outbound(call())) == "ok"
        assert event.opened  # it called another object: it may have had effects there
        assert event.holding and event.calls == 0
    finally:
        _current.reset(token)
        gate.leave()


# ------------------------------------------------------------------ output gate


def test_held_output_goes_in_order_once_its_batch_is_committed() -> None:
    delivered: list[tuple[Any, Any]] = []
    gate = OutputGate(lambda ws, item: delivered.append((ws, item)))
    gate.send("a", "now", None)  # nothing pending: at once
    gate.send("a", "after 1", 1)
    gate.send("b", "after 2", 2)
    gate.send("a", "also after 2", 2)
    assert delivered == [("a", "now")] and gate
    gate.release(1)
    assert delivered[-1] == ("a", "after 1") and len(delivered) == 2
    gate.release(2)
    assert delivered[-2:] == [("b", "after 2"), ("a", "also after 2")] and not gate


def test_a_failed_commit_drops_what_waited_for_it() -> None:
    delivered: list[Any] = []
    gate = OutputGate(lambda ws, item: delivered.append(item))
    gate.send("a", "held", 3)
    gate.clear()
    gate.release(3)
    assert delivered == []


# ------------------------------------------------------------------ commits


class Batcher:
    """Stands where the script batcher stands: every call waits here until the test says
    what Redis answered."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, tuple[Any, ...], asyncio.Future[Any]]] = []

    def submit(self, script: Any, keys: Any, args: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.calls.append((script, tuple(args), future))
        return future


class Host:
    """A CommitHost: what the record would be told."""

    def __init__(self) -> None:
        self.keys = ObjectKeys.of("do", "probe", "ab" * 32)
        self.lease = Lease("n1@x:1", 1, 0.0)
        self.batcher = Batcher()
        self.scripts = type("Scripts", (), {"commit": "commit.lua"})()
        self.committed: list[int] = []
        self.failed: list[DurableObjectError] = []
        self.indexed: list[int] = []
        self.commits: Commits | None = None

    def on_committed(self, batch: WriteBatch) -> None:
        self.committed.append(batch.seq)
        if self.commits is not None:  # as the record does: what gathered meanwhile goes next
            self.commits.flush()

    def on_commit_failed(self, error: DurableObjectError) -> None:
        self.failed.append(error)

    def commit_observed(self, seconds: float, keys: int) -> None:
        pass

    async def index_alarm(self, due_ms: int) -> None:
        self.indexed.append(due_ms)


def write(commits: Commits, key: str, value: bytes) -> int:
    """An event's write, absorbed and flushed as the record does at the event's end."""
    batch = WriteBatch()
    batch.entries[key] = value
    commits.absorb(batch, None)
    commits.flush()
    return commits.latest_seq


async def test_one_commit_in_flight_and_the_next_one_gathers_behind_it() -> None:
    host = Host()
    applied: list[int] = []
    commits = host.commits = Commits(host, lambda b: applied.append(b.seq))
    first = write(commits, "a", b"1")
    await asyncio.sleep(0)
    assert len(host.batcher.calls) == 1  # the first commit went out
    second = write(commits, "b", b"2")
    write(commits, "c", b"3")  # (joins the same open batch)
    assert len(host.batcher.calls) == 1 and commits.latest_seq == second
    waiter = commits.wait_committed(second)
    host.batcher.calls[0][2].set_result(1)  # Redis: stored
    await asyncio.sleep(0)
    assert host.committed == [first] and applied == [first]
    assert len(host.batcher.calls) == 2  # the second followed, with both later writes
    assert "b" in host.batcher.calls[1][1] and "c" in host.batcher.calls[1][1]
    host.batcher.calls[1][2].set_result(1)
    await waiter
    assert commits.committed_seq == second and not commits.has_uncommitted


async def test_a_commit_never_sent_was_not_stored_and_nothing_after_it_either() -> None:
    host = Host()
    commits = Commits(host, lambda b: None)
    first = write(commits, "a", b"1")
    await asyncio.sleep(0)
    later = write(commits, "b", b"2")
    refused = StorageUnavailable("connection refused", may_have_run=False)
    host.batcher.calls[0][2].set_exception(refused)
    await asyncio.sleep(0)
    assert host.failed == [refused] and commits.failure is refused
    assert commits.may_be_stored(first) is False and commits.may_be_stored(later) is False
    assert len(host.batcher.calls) == 1  # the later batch is never sent
    with pytest.raises(StorageUnavailable):
        await commits.wait_committed(later)


async def test_a_commit_with_no_answer_may_have_been_stored_but_the_next_was_not() -> None:
    host = Host()
    commits = Commits(host, lambda b: None)
    first = write(commits, "a", b"1")
    await asyncio.sleep(0)
    later = write(commits, "b", b"2")
    host.batcher.calls[0][2].set_exception(StorageUnavailable("no reply within 5 s"))
    await asyncio.sleep(0)
    assert commits.may_be_stored(first) is True and commits.may_be_stored(later) is False


async def test_a_commit_the_lease_check_refused_stored_nothing() -> None:
    host = Host()
    commits = Commits(host, lambda b: None)
    first = write(commits, "a", b"1")
    await asyncio.sleep(0)
    host.batcher.calls[0][2].set_result(0)  # commit.lua: the lease is someone else's
    await asyncio.sleep(0)
    assert isinstance(commits.failure, Fenced) and commits.failure.may_have_run is False
    assert commits.may_be_stored(first) is False


async def test_a_read_in_flight_fails_with_the_object() -> None:
    host = Host()
    commits = Commits(host, lambda b: None)
    read = host.batcher.submit("read.lua", (), ())
    pending = asyncio.create_task(commits.unless_failed(read))
    await asyncio.sleep(0)
    commits.fail(Fenced("given up", may_have_run=False))
    with pytest.raises(Fenced) as info:
        await pending
    assert info.value.may_have_run is False
    assert read.done()  # (the batcher skips a call whose future is done when Redis answers)


async def test_an_alarm_is_indexed_before_its_commit_goes_out() -> None:
    host = Host()
    commits = Commits(host, lambda b: None)
    batch = WriteBatch()
    batch.set_alarm(b"\x92\xcf\x00\x00\x01\x8b\xcf\xe5\x68\x00\x00")  # [due ms, retries]
    commits.absorb(batch, None)
    commits.flush()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert len(host.indexed) == 1 and len(host.batcher.calls) == 1  # index, then the commit


async def test_a_waiter_cancelled_in_line_or_as_it_is_handed_the_gate_passes_it_on() -> None:
    gate = InputGate(max_queue=10)
    assert gate.try_enter() and not gate.try_enter()
    first = asyncio.create_task(gate.enter("o"))
    second = asyncio.create_task(gate.enter("o"))
    third = asyncio.create_task(gate.enter("o"))
    await asyncio.sleep(0)
    first.cancel()  # cancelled while waiting in line
    await asyncio.sleep(0)
    assert gate.waiting == 2
    gate.leave()  # handed to the second...
    second.cancel()  # ...which is cancelled before it ran: the gate goes on to the third
    await asyncio.sleep(0)
    await third
    assert gate.locked and gate.waiting == 0
    gate.leave()
    assert not gate.locked and gate.try_enter()


def alarm_at(due_ms: int) -> WriteBatch:
    batch = WriteBatch()
    batch.set_alarm(codec.encode([due_ms, 0]))
    return batch


async def test_an_alarm_pushed_later_skips_the_index_while_the_entry_is_far_ahead() -> None:
    host = Host()
    commits = host.commits = Commits(host, lambda b: None)
    now = int(time.time() * 1000)

    async def commit(due_ms: int) -> None:
        commits.absorb(alarm_at(due_ms), None)
        commits.flush()
        for _ in range(3):
            await asyncio.sleep(0)
        host.batcher.calls[-1][2].set_result(1)
        await asyncio.sleep(0)

    await commit(now + 60_000)  # first alarm: indexed
    await commit(now + 61_000)  # later, and the entry is a minute ahead: not again
    await commit(now + 30_000)  # earlier than the entry: indexed
    assert host.indexed == [now + 60_000, now + 30_000] and len(host.batcher.calls) == 3
    commits.indexed_ms = now + INDEX_MARGIN_MS - 500  # the entry is about to be claimed
    await commit(now + 90_000)
    assert host.indexed[-1] == now + 90_000
