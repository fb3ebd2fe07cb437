"""The waiting room's namespaces, declared once (object IDs and stored keys derive from the
names: never rename one)."""

from __future__ import annotations

from runtime import Binding

#: WaitingRoom objects, one per room (waiting_room.py; unique IDs).
ROOMS = Binding("waiting_room")
#: RoomShard objects, one per room and node with slot leasing (room_shard.py).
SHARDS = Binding("waiting_room_shard")
#: The GateDirectory object: path prefix -> room, for gated apps (gate_directory.py).
GATES = Binding("waiting_room_gates")
#: The GateDirectory's one object's name.
GATES_NAME = "gates"
