"""uvicorn's sans-I/O ``websockets`` protocol, exposing its transport to the runtime.

The runtime writes pre-encoded frames straight to the transport of sockets this node serves
(see ``Connection.write``): a broadcast encodes a message once and costs one
``transport.write`` per socket, instead of an ASGI ``send`` and a frame encoding per socket.
Receiving, handshakes, pings and closing stay exactly as uvicorn does them.
"""

from __future__ import annotations

import logging
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from .link import PATH as LINK_PATH
from .websocket import TRANSPORT_EXTENSION

#: Node links carry batches of up to 32 messages of up to a megabyte or so each.
LINK_MAX_SIZE = 128 * 1024 * 1024


class FastWebSocketProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][TRANSPORT_EXTENSION] = self
            if scope["path"] == LINK_PATH:  # not the clients' frame limit
                self.conn.max_message_size = LINK_MAX_SIZE


class _QuietProtocolErrors(logging.Filter):
    """uvicorn logs a client's invalid UTF-8 with a full traceback; one bad client could
    fill the logs. The socket is closed with 1007 all the same: keep one line, no stack."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Invalid UTF-8 sequence received from client"):
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


logging.getLogger("uvicorn.error").addFilter(_QuietProtocolErrors())
