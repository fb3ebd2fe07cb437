"""The called end of a node link: :class:`LinkSession`, the asyncio around a CalleeProtocol.

A link another node opened at ``/_cluster/link``, its handshake already checked
(auth.Verifier). The protocol challenges the peer at once and every
``LINK_REAUTH_INTERVAL`` and acts on nothing before the first answer; the session runs each
request as its own task through the node's router, and each tunnelled client socket as a
:class:`TunnelConnection`, which an object's socket uses exactly like a local one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from ..base.errors import DurableObjectError
from ..objects.events import Event, from_wire
from ..sockets.asgi import Connection
from ..sockets.frames import OutFrame
from ..sockets.websocket import Received, Sink, SocketRequest, Transport
from .protocol import (
    CalleeProtocol,
    Close,
    Frame,
    LinkProtocolError,
    Message,
    Reply,
    Request,
    Unproven,
    error_value,
)

if TYPE_CHECKING:
    from ..base.config import Settings
    from ..base.stats import NodeStats
    from ..objects.ids import ObjectId
    from ..objects.namespace import Namespace

log = logging.getLogger("runtime.cluster")

#: Tunnelled frames a slow object may have waiting before its socket is closed (1013).
_TUNNEL_QUEUE = 1000


class Forwarder(Protocol):
    """Where forwarded events go on this node (its router)."""

    async def dispatch(
        self, namespace: Namespace, object_id: ObjectId, event: Event, hops: int = 0
    ) -> Any: ...
    async def connect(
        self,
        namespace: Namespace,
        object_id: ObjectId,
        conn: Transport,
        request: SocketRequest,
        hops: int = 0,
    ) -> None: ...


class CalleeHost(Protocol):
    """What a link another node opened needs from this node."""

    node_id: str
    settings: Settings
    stats: NodeStats

    @property
    def router(self) -> Forwarder: ...
    def namespace(self, name: str) -> Namespace: ...
    def alarm_report(self, what: str, count: int = 1) -> None: ...
    def link_refused(self, peer: str, why: str) -> None: ...


class LinkSession:
    """One link another node opened to this one."""

    def __init__(self, node: CalleeHost, conn: Connection, peer: str) -> None:
        self.node = node
        self.conn = conn
        self.peer = peer
        settings = node.settings
        self.protocol = CalleeProtocol(
            settings.cluster_secret, node.node_id, peer, settings.link_reauth_interval
        )
        self._tunnels: dict[int, TunnelConnection] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._flush_soon = False
        self.closed = False
        #: Set when a challenge was answered: the clock's next tick is sooner then.
        self._answered = asyncio.Event()

    @property
    def tunnel_count(self) -> int:
        return len(self._tunnels)

    def send(self, message: Message) -> None:
        """Queue a message: written at the end of this loop turn, or now if a frame is full."""
        if self.protocol.send(message):
            self._flush()
        elif not self._flush_soon:
            self._flush_soon = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        frames = self.protocol.data_to_send()
        if not self.closed:
            for frame in frames:
                self.conn.write(OutFrame(frame))

    def backlog(self) -> int:
        return self.conn.backlog()

    async def run(self) -> None:
        self.protocol.start(time.monotonic())
        self._flush()
        watch = asyncio.get_running_loop().create_task(self._watch())
        try:
            while True:
                received = await self.conn.receive()
                if received.kind == "close":
                    return
                if received.kind != "bytes" or not isinstance(received.data, bytes):
                    raise LinkProtocolError("text frame on a link")
                answers = self.protocol.answers
                for m in self.protocol.receive(received.data, time.monotonic()):
                    self._received(m)
                if self.protocol.answers > answers:
                    self._counted(answers)
                    self._answered.set()
        except Unproven as exc:
            self.node.link_refused(self.peer, str(exc))
            await self.conn.close_now(1008, "authentication failed")
        except LinkProtocolError as exc:
            log.warning("link from %s sent garbage (%s); closing it", self.peer, exc)
            await self.conn.close_now(1002, "protocol error")
        except Exception:
            log.exception("link from %s failed; closing it", self.peer)
            await self.conn.close_now(1011, "internal error")
        finally:
            self.closed = True
            watch.cancel()
            for tunnel in list(self._tunnels.values()):
                tunnel.feed(Received("close", b"", 1006, "the client's node went away"))

    def _counted(self, before: int) -> None:
        stats = self.node.stats
        if before == 0:
            stats.links_accepted += 1
            stats.link_reauthentications += self.protocol.answers - 1
        else:
            stats.link_reauthentications += self.protocol.answers - before

    async def _watch(self) -> None:
        """Tick the protocol's clock: a new challenge when due, the link closed (1008) when
        one goes unanswered."""
        try:
            while not self.closed:
                wake = self.protocol.tick(time.monotonic())
                self._flush()
                self._answered.clear()
                try:
                    await asyncio.wait_for(
                        self._answered.wait(), max(0.01, wake - time.monotonic())
                    )
                except TimeoutError:
                    pass
        except Unproven as exc:
            if not self.closed:
                self.node.link_refused(self.peer, str(exc))
                await self.conn.close_now(1008, "authentication failed")

    def _received(self, m: Message) -> None:
        if isinstance(m, Request):
            if m.kind == "open":  # registered now, so frames right behind it find it
                tunnel = TunnelConnection(self, m.id, self.node.settings.max_send_buffer_bytes)
                self._tunnels[m.id] = tunnel
                work = self._open(m, tunnel)
            else:
                work = self._handle(m)
            task = asyncio.get_running_loop().create_task(work)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(m, Frame):
            if (t := self._tunnels.get(m.tunnel)) is not None:
                t.feed(Received("text" if m.text else "bytes", m.data))
        elif isinstance(m, Close) and (t := self._tunnels.get(m.tunnel)) is not None:
            t.feed(Received("close", b"", m.code, m.reason))

    async def _handle(self, m: Request) -> None:
        try:
            namespace = self.node.namespace(m.namespace)
            object_id = namespace.id_from_string(m.object)
            event = from_wire(namespace, m.kind, m.body, self.node.settings, self.node.alarm_report)
            value = await self.node.router.dispatch(namespace, object_id, event, hops=m.hops)
            self.send(Reply(m.id, True, value))
        except Exception as exc:
            if not isinstance(exc, DurableObjectError):
                log.exception("forwarded %s event failed", m.kind)
            self.send(Reply(m.id, False, error_value(exc)))

    async def _open(self, m: Request, tunnel: TunnelConnection) -> None:
        try:
            namespace = self.node.namespace(m.namespace)
            object_id = namespace.id_from_string(m.object)
            request = SocketRequest.from_wire(m.body[0])
            await self.node.router.connect(namespace, object_id, tunnel, request, hops=m.hops)
        except Exception as exc:
            if not tunnel.accepted and not tunnel.closed:
                self.send(Reply(m.id, False, error_value(exc)))
            elif not isinstance(exc, DurableObjectError):
                log.exception("tunnelled socket failed")
        finally:
            self._tunnels.pop(m.id, None)


class TunnelConnection:
    """The owner's end of a tunnelled client socket: a Connection over a link session."""

    def __init__(self, session: LinkSession, rid: int, max_buffer: int) -> None:
        self.session = session
        self.rid = rid
        self.max_buffer = max_buffer
        self.accepted = False
        self.closed = False
        self._queue: asyncio.Queue[Received] = asyncio.Queue()

    async def accept(self, subprotocol: str | None = None) -> None:
        self.accepted = True
        self.session.send(Reply(self.rid, True, [True, 101, ""]))

    async def deny(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        self.closed = True
        # (the headers ride as a fourth item only when there are some: a node of an older
        # release, mid rolling upgrade, reads a three-item answer as before)
        value: list[Any] = [False, status, text, headers] if headers else [False, status, text]
        self.session.send(Reply(self.rid, True, value))

    @property
    def gone(self) -> bool:
        return self.closed or self.session.closed

    def write(self, frame: OutFrame) -> bool:
        if self.gone or self.session.backlog() > self.max_buffer:
            return False
        self.session.send(Frame(self.rid, isinstance(frame.message, str), frame.message))
        return True

    def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.session.send(Close(self.rid, code, reason))
        self._queue.put_nowait(Received("close", b"", code, reason))

    async def receive(self) -> Received:
        return await self._queue.get()

    def detach(self, sink: Sink) -> bool:
        return False  # (a tunnel's messages come from its link session; it keeps its queue)

    def resume(self) -> None:
        pass

    def feed(self, received: Received) -> None:
        """A frame or close from the client's node."""
        if received.kind == "close":
            self.closed = True
        elif self._queue.qsize() >= _TUNNEL_QUEUE:
            self.close(1013, "object busy, try again later")
            return
        self._queue.put_nowait(received)
