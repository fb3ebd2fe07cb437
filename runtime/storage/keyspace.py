"""Where everything lives in Redis.

All keys of one object share the hash tag ``{namespace:id}``, so each Lua script touches a
single Redis Cluster slot. With the default prefix ``do``::

    do:{chat:9f..}:l    lease: "holder:epoch" with a TTL (holder is "node@incarnation")
    do:{chat:9f..}:e    epoch counter, only ever incremented (the fencing token)
    do:{chat:9f..}:d    hash: user key -> msgpack value
    do:{chat:9f..}:i    sorted set of the user keys (all score 0) for ordered range reads
    do:{chat:9f..}:a    the alarm: msgpack [due time in ms, retry count]

Global keys are sharded the same way, one slot per shard::

    do:alarms:{3}       alarm index shard 3: "namespace:id" -> due time in ms
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ObjectKeys:
    lease: str
    epoch: str
    data: str
    index: str
    alarm: str
    #: The alarm-index member that names this object: "namespace:id".
    member: str

    @classmethod
    def of(cls, prefix: str, namespace: str, object_hex: str) -> ObjectKeys:
        tag = f"{prefix}:{{{namespace}:{object_hex}}}"
        return cls(
            lease=f"{tag}:l",
            epoch=f"{tag}:e",
            data=f"{tag}:d",
            index=f"{tag}:i",
            alarm=f"{tag}:a",
            member=f"{namespace}:{object_hex}",
        )


def alarm_shard_key(prefix: str, shard: int) -> str:
    return f"{prefix}:alarms:{{{shard}}}"


def alarm_shard_of(member: str, shards: int) -> int:
    """Which index shard holds an object's alarm: stable across nodes and restarts."""
    return zlib.crc32(member.encode()) % shards
