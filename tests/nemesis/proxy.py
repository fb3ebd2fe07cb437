"""A TCP proxy the nemesis controls, to cut one path (a node to Redis, or to a node) alone.

    python -m tests.nemesis.proxy LISTEN_PORT TARGET_HOST TARGET_PORT

It copies bytes both ways and does nothing else. The faults are signals to its process
(:class:`Proxy` sends them):

- SIGSTOP *freezes* the path: connections stay open, and bytes sent on them, and new
  connections (the kernel still completes their handshakes), go nowhere until SIGCONT. It
  is a black hole: what a lost route, a stuck switch or a full conntrack table look like.
- kill -9 *cuts* it: every connection is reset and new ones are refused until it starts
  again (:meth:`Proxy.restart`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(256 * 1024):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


async def _serve(port: int, host: str, target: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(host, target)
        except OSError:
            writer.transport.abort()
            return
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port, reuse_address=True, backlog=1024)
    async with server:
        await server.serve_forever()


class Proxy:
    """A proxy process: ``freeze``/``thaw`` (SIGSTOP/SIGCONT), ``cut``/``restart``."""

    def __init__(self, listen: int, target_host: str, target_port: int) -> None:
        self.port = listen
        self.target = (target_host, target_port)
        self.process: subprocess.Popen[bytes] | None = None
        self.frozen = False

    def start(self) -> Proxy:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.nemesis.proxy", str(self.port), *map(str, self.target)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        deadline = time.monotonic() + 10
        import socket

        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.02)
        raise RuntimeError(f"the proxy on {self.port} did not start")

    def freeze(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
        self.frozen = False

    def cut(self) -> None:
        if self.process is not None and self.process.poll() is None:
            if self.frozen:
                self.thaw()
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.cut()
        self.start()

    def stop(self) -> None:
        self.cut()


if __name__ == "__main__":
    listen, host, target = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(listen, host, target))
