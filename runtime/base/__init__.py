"""The base every layer stands on: errors, settings, msgpack, logs, counters."""
