"""uvicorn's sans-I/O ``websockets`` protocol, exposing its transport to the runtime.

The runtime writes pre-encoded frames straight to the transport of sockets this node serves
(see ``Connection.write``): a broadcast encodes a message once and costs one
``transport.write`` per socket, instead of an ASGI ``send`` and a frame encoding per socket.
Receiving, handshakes, pings and closing stay exactly as uvicorn does them.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from .websocket import TRANSPORT_EXTENSION


class FastWebSocketProtocol(WebSocketsSansIOProtocol):
    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][TRANSPORT_EXTENSION] = self
