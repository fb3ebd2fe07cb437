"""What the runtime uses of uvicorn's insides (runtime/sockets/asgi.py), checked on a live
socket, so an upgrade of uvicorn that changes them fails here rather than in production."""

from __future__ import annotations

import asyncio
import json

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.asyncio.client import connect

from runtime import App
from runtime.sockets.asgi import TRANSPORT_EXTENSION, Connection, FastWebSocketProtocol
from runtime.sockets.frames import OutFrame


async def inspect(websocket: WebSocket) -> None:
    """Report what the protocol object exposes, then write through the fast path."""
    fast = websocket.scope["extensions"].get(TRANSPORT_EXTENSION)
    conn = Connection(websocket, max_buffer=1 << 20)
    await conn.accept()
    transport = getattr(fast, "transport", None)
    facts = {
        "protocol": type(fast).__name__,
        "is_sansio": isinstance(fast, WebSocketsSansIOProtocol),
        "transport": all(
            callable(getattr(transport, m, None))
            for m in ("write", "get_write_buffer_size", "is_closing", "abort")
        ),
        "close_sent": type(getattr(fast, "close_sent", None)).__name__,
        "disconnected": type(getattr(fast, "disconnected", None)).__name__,
        "max_message_size": getattr(getattr(fast, "conn", None), "max_message_size", None),
        "gone": conn.gone,
        "backlog": conn.backlog(),
    }
    await websocket.send_text(json.dumps(facts))
    assert conn.write(OutFrame("written straight to the transport"))
    assert conn.write(OutFrame(b"\x00binary"))
    received = await conn.receive()
    conn.close(4001, f"got {received.data!r}")
    await asyncio.sleep(0.1)


app = App(name="asgi", title="asgi", routes=[WebSocketRoute("/ws", inspect)], listed=False)


def test_uvicorns_http_protocol_has_the_hooks_the_head_limits_use() -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    for hook in (
        "connection_made",
        "connection_lost",
        "data_received",
        "on_message_complete",
        "on_response_complete",
        "handle_websocket_upgrade",
    ):
        assert callable(getattr(HttpToolsProtocol, hook, None)), hook
    # (loop, transport, cycle and client, on a live protocol: test_request_heads.py)


async def test_uvicorns_protocol_object_has_what_the_fast_path_uses(serve) -> None:
    assert callable(getattr(WebSocketsSansIOProtocol, "handle_connect", None))
    assert issubclass(FastWebSocketProtocol, WebSocketsSansIOProtocol)
    server = await serve(apps=(app,), max_frame_bytes=4096)
    async with connect(f"{server.ws}/asgi/ws") as ws:
        facts = json.loads(await ws.recv())
        assert facts == {
            "protocol": "FastWebSocketProtocol",
            "is_sansio": True,
            "transport": True,
            "close_sent": "bool",
            "disconnected": "bool",
            "max_message_size": 4096,  # the node's frame limit reached uvicorn's protocol
            "gone": False,
            "backlog": 0,
        }
        assert await ws.recv() == "written straight to the transport"
        assert await ws.recv() == b"\x00binary"
        await ws.send("bye")
        await ws.wait_closed()
        assert ws.close_code == 4001 and ws.close_reason == "got 'bye'"
