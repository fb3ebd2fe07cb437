"""Nodes talking to nodes: the link protocol (sans I/O), its client and server, the registry."""
