"""A very small HTTP/1.1 client (h11 over asyncio streams) for crowds of simulated users.

httpx's connection pool does work per request that grows with the requests and connections
it holds, which makes one test process with a thousand concurrent users CPU-bound on the
client side. Each request here opens its own connection and closes it: no pool at all.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

import h11


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k == name), None)


@dataclass
class Browser:
    """One user's cookies (every node of a test is 127.0.0.1: one jar for all of them)."""

    cookies: dict[str, str] = field(default_factory=dict)

    async def request(
        self,
        base: str,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        timeout: float = 60.0,
    ) -> Reply:
        reply = await asyncio.wait_for(self._request(base, method, path, headers, body), timeout)
        for key, value in reply.headers:
            if key == "set-cookie":
                jar: SimpleCookie = SimpleCookie(value)
                for name, morsel in jar.items():
                    if morsel["max-age"] == "0" or not morsel.value:
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = morsel.value
        return reply

    async def _request(
        self, base: str, method: str, path: str, headers: dict[str, str] | None, body: bytes
    ) -> Reply:
        host, port = base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            conn = h11.Connection(h11.CLIENT)
            head = [("host", f"{host}:{port}"), ("connection", "close")]
            head += [(k.lower(), v) for k, v in (headers or {}).items()]
            if self.cookies:
                head.append(("cookie", "; ".join(f"{k}={v}" for k, v in self.cookies.items())))
            head.append(("content-length", str(len(body))))
            data = conn.send(h11.Request(method=method, target=path, headers=head))
            data += conn.send(h11.Data(data=body)) if body else b""
            data += conn.send(h11.EndOfMessage())
            writer.write(data)
            await writer.drain()
            status, got, chunks = 0, [], []
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    got = [(k.decode().lower(), v.decode("latin-1")) for k, v in event.headers]
                elif isinstance(event, h11.Data):
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    return Reply(status, got, b"".join(chunks))
        finally:
            writer.close()
