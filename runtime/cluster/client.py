"""The calling end of a node link: :class:`NodeLink`, the asyncio around a CallerProtocol.

One WebSocket (the ``websockets`` client) to another node, opened on first use, carrying
this node's forwarded events (``request``) and its clients' tunnelled sockets (``tunnel``).
What is sent in one loop turn goes out in one frame (or every 32 messages, so the other node
starts on a burst while this one goes on). Liveness (protocol.Liveness) is judged with
WebSocket pings every quarter of a lease TTL: a link on which the other node shows no sign
of life for three quarters of one is aborted at once, so nothing waits on a paused or
cut-off node longer than it could keep its leases.

If a link breaks, requests in flight fail ``OutcomeUnknown`` (they may have run) and
tunnelled client sockets close with 1012 so their clients reconnect.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import ssl
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.protocol import State

from ..base.errors import ObjectMoved, OutcomeUnknown
from ..sockets.frames import OutFrame
from ..sockets.websocket import SocketRequest, Transport
from . import auth
from .protocol import (
    ANSWER_TIMEOUT,
    PATH,
    CallerProtocol,
    Close,
    Frame,
    LinkProtocolError,
    Liveness,
    Message,
    Reply,
    Request,
    error_from,
)

if TYPE_CHECKING:
    from ..base.config import Settings
    from ..base.stats import NodeStats
    from .registry import NodeInfo

log = logging.getLogger("runtime.cluster")

_ids = itertools.count(1)


class CallerHost(Protocol):
    """What a link to another node needs from this node's link registry (links.Links)."""

    node_id: str
    settings: Settings
    stats: NodeStats
    #: (peer, kind, outcome) -> events forwarded.
    forwarded: Counter[tuple[str, str, str]]

    def unreachable(self, node_id: str, seconds: float = 1.0) -> None: ...
    def is_unreachable(self, node_id: str) -> bool: ...
    def refused_by(self, node_id: str, why: str) -> None: ...
    def dropped(self, node_link: NodeLink) -> None: ...
    def forget_node(self, node_id: str) -> None: ...


class NodeLink:
    """This node's link to one other node."""

    def __init__(self, host: CallerHost, info: NodeInfo) -> None:
        self.host = host
        self.info = info
        self.ws: ClientConnection | None = None
        self.protocol: CallerProtocol | None = None
        self._pending: dict[int, asyncio.Future[tuple[bool, Any]]] = {}
        self._tunnels: dict[int, _ClientTunnel] = {}
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._flush_soon = False
        self.liveness = Liveness(host.settings.lease_ttl / 4, host.settings.lease_ttl * 0.75, 0.0)

    @property
    def tunnel_count(self) -> int:
        return len(self._tunnels)

    async def _ensure(self) -> ClientConnection:
        if self.ws is not None:
            return self.ws
        async with self._lock:
            if self.ws is not None:
                return self.ws
            peer = self.info.node_id
            if self.host.is_unreachable(peer):  # just failed: fail fast
                raise ObjectMoved(f"node {peer} cannot be reached")
            ws = await self._open()
            protocol = CallerProtocol(self.host.settings.cluster_secret, self.host.node_id, peer)
            try:  # the other node challenges us at once: answer before anything else
                first = await asyncio.wait_for(ws.recv(), ANSWER_TIMEOUT)
                if not isinstance(first, bytes) or protocol.receive(first) or not protocol.answers:
                    raise LinkProtocolError("the link did not start with a challenge")
                self._write_to(ws, protocol)
            except (WebSocketException, OSError, TimeoutError, LinkProtocolError) as exc:
                ws.transport.abort()
                self.host.unreachable(peer)
                self.host.refused_by(peer, f"no challenge ({exc})")
                raise ObjectMoved(f"node {peer} cannot be reached ({exc})") from None
            self.ws, self.protocol = ws, protocol
            self.liveness.hear(time.monotonic())
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._read(ws)), loop.create_task(self._watch(ws))]
            return ws

    async def _open(self) -> ClientConnection:
        """The WebSocket to the other node, its handshake signed (auth.py)."""
        settings, peer = self.host.settings, self.info.node_id
        headers = auth.auth_headers(settings.cluster_secret, self.host.node_id, peer, time.time())
        tls = None
        if self.info.url.startswith("wss://"):  # check the other node's certificate
            tls = ssl.create_default_context(cafile=settings.link_ca_file or None)
        try:
            return await connect(
                self.info.url + PATH,
                ssl=tls,
                additional_headers=headers,
                max_size=None,
                max_queue=None,
                compression=None,
                ping_interval=None,  # (liveness is ours, tuned to the lease: _watch)
                ping_timeout=None,
                open_timeout=settings.lease_ttl / 2,
            )
        except InvalidStatus as exc:
            self.host.unreachable(peer)
            status = exc.response.status_code
            if status in (401, 403):
                self.host.refused_by(peer, f"handshake refused ({status})")
            raise ObjectMoved(f"node {peer} refused the link ({status})") from None
        except (OSError, TimeoutError, WebSocketException) as exc:
            # (InvalidHandshake, or the connection closed mid-handshake: a proxy in between
            # that accepted but could not reach the node): nothing was sent.
            self.host.unreachable(peer)
            raise ObjectMoved(f"node {peer} cannot be reached ({exc})") from None

    @staticmethod
    def _write_to(ws: ClientConnection, protocol: CallerProtocol) -> bool:
        """Write what the protocol has queued; False if the connection cannot take it."""
        if ws.protocol.state is not State.OPEN:
            return False
        for frame in protocol.data_to_send():
            ws.protocol.send_binary(frame)
        ws.send_data()
        return True

    def send(self, message: Message) -> None:
        """Queue a message: written at the end of this loop turn, or at once when a frame is
        full (so requests leave as soon as they are made)."""
        protocol = self.protocol
        if protocol is None:
            return  # the link is gone: what is pending fails with it
        if protocol.send(message):
            self._flush()
        elif not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        if self.ws is not None and self.protocol is not None:
            self._write_to(self.ws, self.protocol)  # (if closed, the reader fails what waits)

    async def request(self, kind: str, ns: str, hex_id: str, hops: int, body: list[Any]) -> Any:
        """Send one event; its result, or its error rebuilt with its class and outcome."""
        await self._ensure()
        rid = next(_ids)
        future: asyncio.Future[tuple[bool, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        self.send(Request(rid, kind, ns, hex_id, hops, body))
        counts, peer = self.host.forwarded, self.info.node_id
        try:
            ok, value = await future
        except OutcomeUnknown:
            counts[(peer, kind, "unknown")] += 1
            raise
        finally:
            self._pending.pop(rid, None)
        counts[(peer, kind, "ok" if ok else "error")] += 1
        if ok:
            return value
        raise error_from(value)

    async def tunnel(
        self, ns: str, hex_id: str, hops: int, request: SocketRequest, conn: Transport
    ) -> None:
        """Bridge a client socket of this node to its object on the other node."""
        await self._ensure()
        rid = next(_ids)
        tunnel = _ClientTunnel(self, rid, conn)
        self._tunnels[rid] = tunnel
        future: asyncio.Future[tuple[bool, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        self.send(Request(rid, "open", ns, hex_id, hops, [request.wire()]))
        opened = False
        try:
            ok, value = await future
            if not ok:
                raise error_from(value)
            accepted, status, text, *rest = value
            if not accepted:
                headers = rest[0] if rest and isinstance(rest[0], dict) else None
                await conn.deny(int(status), str(text), headers)
                return
            opened = True
            await conn.accept()
            await tunnel.pump()
        finally:
            self._pending.pop(rid, None)
            self._tunnels.pop(rid, None)
            if opened and not tunnel.closed:  # the client went away some other way
                self.send(Close(rid, 1006, "the client's connection ended"))

    async def _watch(self, ws: ClientConnection) -> None:
        """Ping every quarter of a lease TTL; abort the link once the other node has shown
        no sign of life for three quarters of one (protocol.Liveness)."""
        liveness = self.liveness

        def answered(pong: asyncio.Future[float]) -> None:
            if not pong.cancelled() and pong.exception() is None:
                liveness.hear(time.monotonic())

        while ws.protocol.state is State.OPEN:
            await asyncio.sleep(liveness.interval)
            now = time.monotonic()
            if not liveness.tick(now):
                self.host.stats.link_timeouts += 1
                log.warning(
                    "node %s showed no sign of life for %.1fs; closing the link to it",
                    self.info.node_id,
                    liveness.silence(now),
                )
                self.host.unreachable(self.info.node_id, self.host.settings.lease_ttl)
                ws.transport.abort()
                return
            try:
                pong = await asyncio.wait_for(ws.ping(), liveness.interval)
            except TimeoutError:
                continue  # (writes are backed up: the silence is measured all the same)
            except WebSocketException:
                return
            asyncio.ensure_future(pong).add_done_callback(answered)  # (it is a future)

    async def _read(self, ws: ClientConnection) -> None:
        clean = False
        protocol = self.protocol
        assert protocol is not None
        try:
            async for frame in ws:
                self.liveness.hear(time.monotonic())
                if not isinstance(frame, bytes):
                    raise LinkProtocolError("text frame on a link")
                for m in protocol.receive(frame):
                    self._received(m)
                self._flush()  # (answers to challenges)
            clean = True
        except (WebSocketException, OSError, LinkProtocolError) as exc:
            log.warning("link to %s failed: %s", self.info.node_id, exc)
        except Exception:
            log.exception("link to %s failed", self.info.node_id)
        finally:
            ws.transport.abort()  # never leave the other end believing the link is up
            self._lost(clean)

    def _received(self, m: Message) -> None:
        if isinstance(m, Reply):
            future = self._pending.get(m.id)
            if future is not None and not future.done():
                future.set_result((m.ok, m.value))
        elif isinstance(m, Frame):
            if (t := self._tunnels.get(m.tunnel)) is not None:
                t.from_owner(m.data)
        elif isinstance(m, Close) and (t := self._tunnels.get(m.tunnel)) is not None:
            t.owner_closed(m.code, m.reason)

    def _lost(self, clean: bool = True) -> None:
        self.ws, self.protocol = None, None
        if not clean:  # a broken link: do not route to that node for a moment
            self.host.unreachable(self.info.node_id)
            self.host.forget_node(self.info.node_id)
        error = OutcomeUnknown(
            f"node {self.info.node_id} went away before answering; the event may have run"
        )
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        for tunnel in list(self._tunnels.values()):
            tunnel.conn.close(1012, "node went away")
        self.host.dropped(self)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        for task in self._tasks:
            task.cancel()


class _ClientTunnel:
    """A client socket on this node whose object lives on the other end of a link."""

    def __init__(self, link: NodeLink, rid: int, conn: Transport) -> None:
        self.link = link
        self.rid = rid
        self.conn = conn
        self.closed_by_owner = False
        self.closed = False
        # What the owner sent in the same breath as "accepted" waits for the handshake.
        self._early: list[str | bytes | tuple[int, str]] | None = []

    async def pump(self) -> None:
        """Client -> owner, until the client's socket ends."""
        early, self._early = self._early or [], None
        for item in early:
            if isinstance(item, tuple):
                self.owner_closed(*item)
            else:
                self.from_owner(item)
        while True:
            received = await self.conn.receive()
            if received.kind == "close":
                self.closed = True
                if not self.closed_by_owner:
                    self.link.send(Close(self.rid, received.code, received.reason))
                return
            self.link.send(Frame(self.rid, received.kind == "text", received.data))

    def from_owner(self, data: str | bytes) -> None:
        if self._early is not None:
            self._early.append(data)
        elif not self.conn.write(OutFrame(data)):
            self.conn.close(1013, "client is not reading fast enough")

    def owner_closed(self, code: int, reason: str) -> None:
        if self._early is not None:
            self._early.append((code, reason))
            return
        self.closed_by_owner = True
        self.conn.close(code, reason)
