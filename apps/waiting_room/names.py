"""The namespaces of the waiting room's objects (unique across a node)."""

from __future__ import annotations

#: WaitingRoom objects, one per room (room.py).
ROOMS = "waiting_room"
#: RoomShard objects, one per room and node with slot leasing (shard.py).
SHARDS = "waiting_room_shard"
#: The GateDirectory object: path prefix -> room, for gated apps (gates.py).
GATES = "waiting_room_gates"
