"""Tools for people who run or size the runtime (not shipped in the wheel)."""
