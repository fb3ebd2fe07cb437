"""Redis: scripts and their batcher, leases, commits, and the storage API objects call."""
