"""The host that runs objects: records, routing, the node, alarms, signing keys."""
