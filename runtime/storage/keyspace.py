"""Where everything lives in Redis.

All keys of one object share the hash tag ``{namespace:id}``, so each Lua script touches a
single Redis Cluster slot. With the default prefix ``do``::

    do:{chat:9f..}:l    lease: "holder:epoch" with a TTL (holder is "node@incarnation")
    do:{chat:9f..}:e    epoch counter, only ever incremented (the fencing token)
    do:{chat:9f..}:d    hash: user key -> msgpack value
    do:{chat:9f..}:i    sorted set of the user keys (all score 0) for ordered range reads
    do:{chat:9f..}:a    the alarm: msgpack [due time in ms, retry count]
    do:{chat:9f..}:v    (replicated classes) the version: commits so far, never restarted
    do:{chat:9f..}:c    (replicated classes) the pub/sub channel each commit is published on
    do:{chat:9f..}:t    (replicated classes) the channel of what the primary tells its replicas

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
    version: str
    channel: str
    tell: str
    #: The KEYS of commit.lua: with the version and channel when the class is replicated.
    commit: tuple[str, ...]

    @classmethod
    def of(
        cls, prefix: str, namespace: str, object_hex: str, replicated: bool = False
    ) -> ObjectKeys:
        tag = f"{prefix}:{{{namespace}:{object_hex}}}"
        lease, data, index, alarm = f"{tag}:l", f"{tag}:d", f"{tag}:i", f"{tag}:a"
        version, channel = f"{tag}:v", f"{tag}:c"
        commit = (lease, data, index, alarm)
        return cls(
            lease=lease,
            epoch=f"{tag}:e",
            data=data,
            index=index,
            alarm=alarm,
            member=f"{namespace}:{object_hex}",
            version=version,
            channel=channel,
            tell=f"{tag}:t",
            commit=(*commit, version, channel) if replicated else commit,
        )


def alarm_shard_key(prefix: str, shard: int) -> str:
    return f"{prefix}:alarms:{{{shard}}}"


def alarm_shard_of(member: str, shards: int) -> int:
    """Which index shard holds an object's alarm: stable across nodes and restarts."""
    return zlib.crc32(member.encode()) % shards
