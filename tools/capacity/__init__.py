"""Capacity planning for the runtime: measured costs (costs.py), a model of utilisation
and queueing (model.py, queueing.py), and discrete-event simulations of what the formulas
get wrong at scale (simulation.py and one module per scenario: leases.py, storm.py,
hot.py, rolling.py). ``python -m tools.capacity`` runs the 100-node scenarios
(``make simulate``); docs/scale.md explains the figures."""
