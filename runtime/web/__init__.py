"""The web edge: apps, the Starlette server, guards, /ops, /metrics, the command line."""
