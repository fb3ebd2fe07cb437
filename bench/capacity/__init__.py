"""The capacity benchmark (issue 26): the per-operation costs of tools/capacity measured on
a real node and Valkey, and the model's and the simulation's predictions checked against
measurements at the sizes this machine runs. ``python -m bench.capacity`` (``make
bench-capacity``); see docs/scale.md."""
