"""Read replicas' sans-I/O parts: the copy a replica keeps and the commits it applies, the
read-only marks, and events carrying a caller's least version (no Redis, no sockets)."""

from __future__ import annotations

import asyncio

import msgpack
import pytest

from runtime import Changes, DurableObject, ReadOnlyWrite, Settings, rpc
from runtime.base.errors import InvalidValue
from runtime.objects.events import RpcEvent, from_wire
from runtime.objects.object import is_readonly, rpc_method
from runtime.storage.api import Storage
from runtime.storage.keyspace import ObjectKeys
from runtime.storage.replica import ReplicaState, decode_commit


def published(version: int, puts: dict[str, bytes], deletes=(), all_=False, alarm=b"") -> bytes:
    pairs: list[bytes] = []
    for k, v in puts.items():
        pairs += [k.encode(), v]
    gone = [d.encode() for d in deletes]
    return msgpack.packb([version, 1700000000000, b"1" if all_ else b"0", alarm, pairs, gone])


def copy(**entries: bytes) -> ReplicaState:
    state = ReplicaState(Settings(), "test:0")
    pairs: list[bytes] = []
    for k, v in entries.items():
        pairs += [k.encode(), v]
    state.load(3, None, pairs)
    return state


def test_a_replica_applies_commits_and_lists_in_key_order() -> None:
    state = copy(b=b"\x01", a=b"\x02")
    state.apply(decode_commit(published(4, {"c": b"\x03", "a": b"\x09"}, deletes=["b"])))
    assert state.version == 4
    assert state.entries == {"a": b"\x09", "c": b"\x03"}
    storage = Storage(state)
    assert asyncio.run(storage.list()) == {"a": 9, "c": 3}
    assert asyncio.run(storage.list(reverse=True, limit=1)) == {"c": 3}
    assert asyncio.run(storage.get("b")) is None
    state.apply(decode_commit(published(5, {"z": b"\x05"}, all_=True, alarm=b"-")))
    assert state.entries == {"z": b"\x05"} and state.alarm is None and state.version == 5
    assert state.size == len("z") + 1


def test_a_replica_refuses_every_write_before_anything_changes() -> None:
    state = copy(a=b"\x01")
    storage = Storage(state)
    for attempt in (
        storage.put("a", 2),
        storage.put_many({"a": 2}),
        storage.delete("a"),
        storage.delete_all(),
        storage.set_alarm(1e9),
    ):
        with pytest.raises(ReadOnlyWrite):
            asyncio.run(attempt)

    async def in_a_transaction() -> None:
        async with storage.transaction() as txn:
            await txn.put("a", 3)

    with pytest.raises(ReadOnlyWrite):
        asyncio.run(in_a_transaction())
    assert state.entries == {"a": b"\x01"}


@pytest.mark.parametrize(
    "garbage",
    [b"", b"\xc1", msgpack.packb([1, 2, 3]), msgpack.packb(["v", 0, b"0", b"", [], []]),
     msgpack.packb([1, 0, b"0", b"", [b"odd"], []])],
)  # fmt: skip
def test_what_is_not_a_published_commit_is_refused(garbage: bytes) -> None:
    with pytest.raises(ValueError):
        decode_commit(garbage)


class Marked(DurableObject):
    replicated = True

    @rpc
    async def write(self) -> None: ...

    @rpc(readonly=True)
    async def read(self) -> int:
        return 1

    @rpc()
    async def plain(self) -> None: ...

    async def replica_update(self, changes: Changes) -> None: ...


def test_rpc_marks_read_only_methods_with_or_without_arguments() -> None:
    read, write, plain = (rpc_method(Marked, n) for n in ("read", "write", "plain"))
    assert read is not None and is_readonly(read)
    assert write is not None and not is_readonly(write)
    assert plain is not None and not is_readonly(plain)
    with pytest.raises(TypeError):
        rpc(readonly=True)(lambda self: None)  # type: ignore[arg-type]


class Target:
    name, cls, alarm_takes_info, replicated = "marked", Marked, True, True

    def is_rpc(self, method: str) -> bool:
        return rpc_method(Marked, method) is not None

    def is_readonly(self, method: str) -> bool:
        found = rpc_method(Marked, method)
        return found is not None and is_readonly(found)


def test_a_read_only_call_carries_its_least_version_between_nodes() -> None:
    event = RpcEvent(Target(), "read", msgpack.packb([[], {}]), min_version=7)
    assert event.readonly and event.wire()[2] == 7
    again = from_wire(Target(), "rpc", event.wire(), Settings())
    assert isinstance(again, RpcEvent) and again.min_version == 7 and again.readonly
    old = from_wire(Target(), "rpc", ["read", b"\x92\x90\x80"], Settings())  # (no version)
    assert isinstance(old, RpcEvent) and old.min_version == 0
    with pytest.raises(InvalidValue):
        from_wire(Target(), "rpc", ["read", b"\x92\x90\x80", -1], Settings())


def test_only_replicated_classes_commit_with_a_version_and_a_channel() -> None:
    plain = ObjectKeys.of("do", "ns", "ab")
    replicated = ObjectKeys.of("do", "ns", "ab", replicated=True)
    assert plain.commit == ("do:{ns:ab}:l", "do:{ns:ab}:d", "do:{ns:ab}:i", "do:{ns:ab}:a")
    assert replicated.commit == (*plain.commit, "do:{ns:ab}:v", "do:{ns:ab}:c")
