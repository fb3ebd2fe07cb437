"""The node's log lines: text for a terminal, or one JSON object per line (LOG_FORMAT=json).

Every line carries the node's id; lines about one object also carry ``object_class``,
``namespace`` and ``object_id`` (its first 12 hex characters: enough to find it, not enough
to use it, since a whole unique ID may be a capability). No line carries a secret or a
message body (the websockets library's DEBUG dump of headers and frames is dropped).
python-json-logger writes the JSON.
"""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _NodeField(logging.Filter):
    """Adds the node's id to every record."""

    def __init__(self, node_id: str) -> None:
        super().__init__()
        self.node_id = node_id

    def filter(self, record: logging.LogRecord) -> bool:
        record.node = self.node_id
        record.__dict__.pop("color_message", None)  # uvicorn's, for terminals
        return True


class _NoWireDump(logging.Filter):
    """Drops the websockets library's DEBUG dump of what crosses a socket ("< Cookie: ...",
    "> frame ..."): handshake headers carry cookies and link credentials, frames carry
    message bodies. uvicorn hands the library its own logger, so the lines come from
    ``uvicorn.error`` as well as ``websockets.*``."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        return not (
            record.levelno <= logging.DEBUG
            and isinstance(msg, str)
            and msg.startswith(("< ", "> "))
        )


def configure(level: str, form: str, node_id: str) -> None:
    """Set up the root logger (and uvicorn's, which do not propagate) for a node process."""
    handler = logging.StreamHandler()
    if form == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(node)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT))
    handler.addFilter(_NodeField(node_id))
    handler.addFilter(_NoWireDump())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
