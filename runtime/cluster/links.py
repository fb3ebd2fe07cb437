"""Node-to-node links: forwarded events and tunnelled client sockets (protocol in link.py).

Client side, :class:`NodeLink` keeps one WebSocket (the ``websockets`` client) to another
node, multiplexing requests and tunnels; what is sent in one loop turn goes in one frame.
Server side, :class:`LinkSession` answers one link accepted at ``/_cluster/link``: each
request runs as its own task through the node's router, and each tunnel is a
:class:`TunnelConnection`, which an object's socket uses exactly like a local one.

If a link breaks, requests in flight fail with ``OutcomeUnknown`` (they may have run), and
tunnelled client sockets are closed with 1012 so their clients reconnect. A link whose other
node stops answering pings (it is paused, cut off, or gone without closing anything) counts as
broken within three quarters of a lease TTL: no event waits on a node longer than that node
could keep its leases.
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

from ..base.errors import DurableObjectError, ObjectMoved, OutcomeUnknown
from ..objects.events import Event, from_wire
from ..sockets.asgi import Connection
from ..sockets.frames import OutFrame
from ..sockets.websocket import Received, Sink, SocketRequest, Transport
from . import protocol as link

if TYPE_CHECKING:
    from ..base.config import Settings
    from ..base.stats import NodeStats
    from ..objects.ids import ObjectId
    from ..objects.namespace import Namespace
    from .registry import NodeInfo

log = logging.getLogger("runtime.cluster")

_ids = itertools.count(1)
#: Tunnelled frames a slow object may have waiting before its socket is closed (1013).
_TUNNEL_QUEUE = 1000
#: Messages per frame at most: a longer burst goes out in several frames as it is made.
_BATCH = 32


class Forwarder(Protocol):
    """Where forwarded events go on this node, and who hears of broken links (the router)."""

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
    def forget_node(self, node_id: str) -> None: ...


class LinkHost(Protocol):
    """What links need from their node."""

    node_id: str
    settings: Settings
    stats: NodeStats

    @property
    def router(self) -> Forwarder: ...
    def namespace(self, name: str) -> Namespace: ...
    def alarm_report(self, what: str, count: int = 1) -> None: ...
    def link_refused(self, peer: str, why: str) -> None: ...


class _Outbox:
    """Messages gathered during one loop turn, sent as one frame (or sooner, every
    ``_BATCH`` messages, so the other node starts on them while this one goes on)."""

    def __init__(self, flush: Any) -> None:
        self.messages: list[list[Any]] = []
        self._flush = flush
        self._scheduled = False

    def add(self, message: list[Any]) -> None:
        self.messages.append(message)
        if len(self.messages) >= _BATCH:
            batch, self.messages = self.messages, []
            self._flush(batch)
        elif not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._run)

    def _run(self) -> None:
        self._scheduled = False
        batch, self.messages = self.messages, []
        if batch:
            self._flush(batch)


class NodeLink:
    """This node's link to one other node."""

    def __init__(self, links: Links, info: NodeInfo) -> None:
        self.links = links
        self.node = links.node
        self.info = info
        self.ws: ClientConnection | None = None
        self._pending: dict[int, asyncio.Future[tuple[bool, Any]]] = {}
        self._tunnels: dict[int, _ClientTunnel] = {}
        self._outbox = _Outbox(self._write)
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        #: When the other node last showed it is alive (a frame, or a pong), monotonic.
        self.heard = 0.0

    async def _ensure(self) -> ClientConnection:
        if self.ws is not None:
            return self.ws
        async with self._lock:
            if self.ws is not None:
                return self.ws
            if self.links.is_unreachable(self.info.node_id):  # just failed: fail fast
                raise ObjectMoved(f"node {self.info.node_id} cannot be reached")
            settings = self.node.settings
            headers = link.auth_headers(
                settings.cluster_secret, self.node.node_id, self.info.node_id, time.time()
            )
            tls = None
            if self.info.url.startswith("wss://"):  # check the other node's certificate
                tls = ssl.create_default_context(cafile=settings.link_ca_file or None)
            try:
                ws = await connect(
                    self.info.url + link.PATH,
                    ssl=tls,
                    additional_headers=headers,
                    max_size=None,
                    max_queue=None,
                    compression=None,
                    # (liveness is this module's own, tuned to the lease: see _watch)
                    ping_interval=None,
                    ping_timeout=None,
                    open_timeout=settings.lease_ttl / 2,
                )
            except InvalidStatus as exc:
                self.links.unreachable(self.info.node_id)
                status = exc.response.status_code
                if status in (401, 403):
                    self.links.refused_by(self.info.node_id, f"handshake refused ({status})")
                raise ObjectMoved(f"node {self.info.node_id} refused the link ({status})") from None
            except (OSError, TimeoutError, WebSocketException) as exc:
                # (InvalidHandshake, or the connection closed mid-handshake: a proxy in
                # between that accepted but could not reach the node): nothing was sent.
                self.links.unreachable(self.info.node_id)
                raise ObjectMoved(f"node {self.info.node_id} cannot be reached ({exc})") from None
            try:  # the other node challenges us at once: answer before anything else
                first = await asyncio.wait_for(ws.recv(), link.ANSWER_TIMEOUT)
                messages = link.decode(first) if isinstance(first, bytes) else []
                if not messages or messages[0][0] != link.CHALLENGE:
                    raise link.LinkProtocolError("the link did not start with a challenge")
                self._answer(ws, messages[0][2])
            except (WebSocketException, OSError, TimeoutError, link.LinkProtocolError) as exc:
                ws.transport.abort()
                self.links.unreachable(self.info.node_id)
                self.links.refused_by(self.info.node_id, f"no challenge ({exc})")
                raise ObjectMoved(f"node {self.info.node_id} cannot be reached ({exc})") from None
            self.ws = ws
            self.heard = time.monotonic()
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._read(ws)), loop.create_task(self._watch(ws))]
            return ws

    def _answer(self, ws: ClientConnection, challenge: bytes) -> None:
        settings = self.node.settings
        proof = link.answer(
            settings.cluster_secret, self.node.node_id, self.info.node_id, challenge
        )
        ws.protocol.send_binary(link.encode([[link.ANSWER, 0, proof]]))
        ws.send_data()

    def _write(self, batch: list[list[Any]]) -> None:
        """Write a frame now (the websockets protocol object frames it; the transport
        buffers it), so requests leave as soon as they are made."""
        ws = self.ws
        if ws is None or ws.protocol.state is not State.OPEN:
            return  # the reader fails what is pending when it sees the connection end
        ws.protocol.send_binary(link.encode(batch))
        ws.send_data()

    async def request(self, kind: str, ns: str, hex_id: str, hops: int, body: list[Any]) -> Any:
        """Send one event; its result, or its error rebuilt with its class."""
        await self._ensure()
        rid = next(_ids)
        future: asyncio.Future[tuple[bool, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        self._outbox.add([link.REQUEST, rid, kind, ns, hex_id, hops, body])
        counts = self.links.forwarded
        peer = self.info.node_id
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
        raise link.error_from(value)

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
        self._outbox.add([link.REQUEST, rid, "open", ns, hex_id, hops, [request.wire()]])
        opened = False
        try:
            ok, value = await future
            if not ok:
                raise link.error_from(value)
            accepted, status, text = value
            if not accepted:
                await conn.deny(int(status), str(text))
                return
            opened = True
            await conn.accept()
            await tunnel.pump()
        finally:
            self._pending.pop(rid, None)
            self._tunnels.pop(rid, None)
            if opened and not tunnel.closed:  # the client went away some other way
                self.send([link.CLOSE, rid, 1006, "the client's connection ended"])

    def send(self, message: list[Any]) -> None:
        self._outbox.add(message)

    async def _watch(self, ws: ClientConnection) -> None:
        """Ping the other node every quarter of a lease TTL. If it shows no sign of life
        (no pong, no frame) for three quarters of one, it is paused, cut off or gone: close
        the link at once, so what waits on it fails now and new events look again (its
        leases will have run out by the time they do). Time this node itself spent asleep
        (it was paused) is not held against the other."""
        ttl = self.node.settings.lease_ttl
        interval, timeout = ttl / 4, ttl * 0.75
        tick = time.monotonic()

        def answered(pong: asyncio.Future[float]) -> None:
            if not pong.cancelled() and pong.exception() is None:
                self.heard = max(self.heard, time.monotonic())

        while ws.protocol.state is State.OPEN:
            await asyncio.sleep(interval)
            now = time.monotonic()
            if now - tick > 2 * interval + 0.25:  # this node was paused: start over
                self.heard = now
            tick = now
            if now - self.heard > timeout:
                self.node.stats.link_timeouts += 1
                log.warning(
                    "node %s showed no sign of life for %.1fs; closing the link to it",
                    self.info.node_id,
                    now - self.heard,
                )
                self.links.unreachable(self.info.node_id, ttl)
                ws.transport.abort()
                return
            try:
                pong = await asyncio.wait_for(ws.ping(), interval)
            except TimeoutError:
                continue  # (writes are backed up: the silence is measured all the same)
            except WebSocketException:
                return
            asyncio.ensure_future(pong).add_done_callback(answered)  # (it is a future)

    async def _read(self, ws: ClientConnection) -> None:
        clean = False
        try:
            async for frame in ws:
                self.heard = time.monotonic()
                if not isinstance(frame, bytes):
                    raise link.LinkProtocolError("text frame on a link")
                for m in link.decode(frame):
                    if m[0] == link.CHALLENGE:
                        self._answer(ws, m[2])
                    elif m[0] == link.REPLY:
                        future = self._pending.get(m[1])
                        if future is not None and not future.done():
                            future.set_result((bool(m[2]), m[3]))
                    elif m[0] == link.FRAME:
                        if (t := self._tunnels.get(m[1])) is not None:
                            t.from_owner(m[3])
                    elif m[0] == link.CLOSE and (t := self._tunnels.get(m[1])) is not None:
                        t.owner_closed(m[2], m[3])
            clean = True
        except (WebSocketException, OSError, link.LinkProtocolError) as exc:
            log.warning("link to %s failed: %s", self.info.node_id, exc)
        except Exception:
            log.exception("link to %s failed", self.info.node_id)
        finally:
            ws.transport.abort()  # never leave the other end believing the link is up
            self._lost(clean)

    def _lost(self, clean: bool = True) -> None:
        self.ws = None
        if not clean:  # a broken link: do not route to that node for a moment
            self.links.unreachable(self.info.node_id)
            self.node.router.forget_node(self.info.node_id)
        error = OutcomeUnknown(
            f"node {self.info.node_id} went away before answering; the event may have run"
        )
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        for tunnel in list(self._tunnels.values()):
            tunnel.conn.close(1012, "node went away")
        self.links.dropped(self)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        for task in self._tasks:
            task.cancel()


class _ClientTunnel:
    """A client socket on this node whose object lives on the other end of a link."""

    def __init__(self, owner: NodeLink, rid: int, conn: Transport) -> None:
        self.owner = owner
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
                    self.owner.send([link.CLOSE, self.rid, received.code, received.reason])
                return
            self.owner.send([link.FRAME, self.rid, received.kind == "text", received.data])

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
        self.session.send([link.REPLY, self.rid, True, [True, 101, ""]])

    async def deny(self, status: int, text: str) -> None:
        self.closed = True
        self.session.send([link.REPLY, self.rid, True, [False, status, text]])

    @property
    def gone(self) -> bool:
        return self.closed or self.session.closed

    def write(self, frame: OutFrame) -> bool:
        if self.gone or self.session.backlog() > self.max_buffer:
            return False
        self.session.send([link.FRAME, self.rid, isinstance(frame.message, str), frame.message])
        return True

    def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.session.send([link.CLOSE, self.rid, code, reason])
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


class _Unproven(Exception):
    """The peer of a link failed its challenge."""


class LinkSession:
    """One link another node opened to this one.

    Its handshake was checked already (link.Verifier); the session then challenges the peer
    at once and every ``link_reauth_interval``, acts on nothing before the first answer,
    and closes the link if an answer is wrong or late (see link.py)."""

    def __init__(self, node: LinkHost, conn: Connection, peer: str) -> None:
        self.node = node
        self.conn = conn
        self.peer = peer
        self._tunnels: dict[int, TunnelConnection] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._outbox = _Outbox(self._write)
        self.closed = False
        self.verified = False
        self._challenge: bytes | None = None
        #: Set when the challenge out is answered (its watcher waits on it).
        self._answered = asyncio.Event()

    def _write(self, batch: list[list[Any]]) -> None:
        if not self.closed:
            self.conn.write(OutFrame(link.encode(batch)))

    def send(self, message: list[Any]) -> None:
        self._outbox.add(message)

    def backlog(self) -> int:
        return self.conn.backlog()

    async def run(self) -> None:
        watch = asyncio.get_running_loop().create_task(self._watch())
        try:
            self._ask()
            while True:
                received = await self.conn.receive()
                if received.kind == "close":
                    return
                if received.kind != "bytes":
                    raise link.LinkProtocolError("text frame on a link")
                assert isinstance(received.data, bytes)
                for m in link.decode(received.data):
                    if m[0] == link.ANSWER:
                        self._check(m[2])
                    elif not self.verified:
                        raise link.LinkProtocolError("a message before the challenge's answer")
                    else:
                        self._dispatch(m)
        except _Unproven as exc:
            self.node.link_refused(self.peer, str(exc))
            await self.conn.close_now(1008, "authentication failed")
        except link.LinkProtocolError as exc:
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

    def _ask(self) -> None:
        """Challenge the peer to prove, now, that it holds the cluster secret."""
        self._challenge = link.new_challenge()
        self._answered.clear()
        self.send([link.CHALLENGE, 0, self._challenge])

    def _check(self, given: bytes) -> None:
        challenge, self._challenge = self._challenge, None
        settings = self.node.settings
        if challenge is None or not link.check_answer(
            settings.cluster_secret, self.peer, self.node.node_id, challenge, given
        ):
            raise _Unproven("a wrong answer to the link's challenge")
        if self.verified:
            self.node.stats.link_reauthentications += 1
        else:
            self.node.stats.links_accepted += 1
        self.verified = True
        self._answered.set()

    async def _watch(self) -> None:
        """Close the link if a challenge goes unanswered; ask again every interval."""
        settings = self.node.settings
        while not self.closed:
            # Wait for the answer itself, not a fixed ANSWER_TIMEOUT: an interval shorter
            # than that timeout must still mean a challenge every interval.
            try:
                await asyncio.wait_for(self._answered.wait(), link.ANSWER_TIMEOUT)
            except TimeoutError:
                if not self.closed:
                    why = f"no answer to the link's challenge within {link.ANSWER_TIMEOUT:.0f}s"
                    self.node.link_refused(self.peer, why)
                    await self.conn.close_now(1008, "authentication failed")
                return
            await asyncio.sleep(settings.link_reauth_interval)
            if not self.closed:
                self._ask()

    def _dispatch(self, m: list[Any]) -> None:
        if m[0] == link.REQUEST:
            if m[2] == "open":  # registered now, so frames right behind it find it
                tunnel = TunnelConnection(self, m[1], self.node.settings.max_send_buffer_bytes)
                self._tunnels[m[1]] = tunnel
                work = self._open(m, tunnel)
            else:
                work = self._handle(m)
            task = asyncio.get_running_loop().create_task(work)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif m[0] == link.FRAME:
            if (t := self._tunnels.get(m[1])) is not None:
                t.feed(Received("text" if m[2] else "bytes", m[3]))
        elif m[0] == link.CLOSE and (t := self._tunnels.get(m[1])) is not None:
            t.feed(Received("close", b"", m[2], m[3]))

    async def _handle(self, m: list[Any]) -> None:
        _, rid, kind, ns, hex_id, hops, body = m
        try:
            namespace = self.node.namespace(ns)
            object_id = namespace.id_from_string(hex_id)
            event = from_wire(namespace, kind, body, self.node.settings, self.node.alarm_report)
            value = await self.node.router.dispatch(namespace, object_id, event, hops=hops)
            self.send([link.REPLY, rid, True, value])
        except Exception as exc:
            if not isinstance(exc, DurableObjectError):
                log.exception("forwarded %s event failed", kind)
            self.send([link.REPLY, rid, False, link.error_value(exc)])

    async def _open(self, m: list[Any], tunnel: TunnelConnection) -> None:
        _, rid, _, ns, hex_id, hops, body = m
        try:
            namespace = self.node.namespace(ns)
            object_id = namespace.id_from_string(hex_id)
            request = SocketRequest.from_wire(body[0])
            await self.node.router.connect(namespace, object_id, tunnel, request, hops=hops)
        except Exception as exc:
            if not tunnel.accepted and not tunnel.closed:
                self.send([link.REPLY, rid, False, link.error_value(exc)])
            elif not isinstance(exc, DurableObjectError):
                log.exception("tunnelled socket failed")
        finally:
            self._tunnels.pop(rid, None)


class Links:
    """All links of this node: out to other nodes, and in from them."""

    #: How long a refusal is remembered (and shown in /healthz), and logged at most once.
    REFUSAL_MEMORY = 300.0
    LOG_EVERY = 60.0

    def __init__(self, node: LinkHost, forwarded: Counter[tuple[str, str, str]]) -> None:
        self.node = node
        #: (peer, kind, outcome) -> events forwarded (the node's stats).
        self.forwarded = forwarded
        #: Links other nodes opened to this one (their tunnels count for the metrics).
        self.sessions: set[LinkSession] = set()
        self._out: dict[str, NodeLink] = {}
        self._unreachable: dict[str, float] = {}
        #: Nodes that refused our links, and peers whose links we refused: id -> (when, why).
        self._refused_by: dict[str, tuple[float, str]] = {}
        self._refused: dict[str, tuple[float, str]] = {}

    def to(self, info: NodeInfo) -> NodeLink:
        current = self._out.get(info.node_id)
        if current is None or current.info.holder != info.holder:
            if current is not None:  # the node restarted: its old link is dead weight
                asyncio.get_running_loop().create_task(current.close())
            current = NodeLink(self, info)
            self._out[info.node_id] = current
        return current

    def dropped(self, node_link: NodeLink) -> None:
        if self._out.get(node_link.info.node_id) is node_link:
            del self._out[node_link.info.node_id]

    def unreachable(self, node_id: str, seconds: float = 1.0) -> None:
        """Send nothing to ``node_id`` for ``seconds`` (or longer, if said before)."""
        until = time.monotonic() + seconds
        self._unreachable[node_id] = max(until, self._unreachable.get(node_id, 0.0))

    def is_unreachable(self, node_id: str) -> bool:
        until = self._unreachable.get(node_id)
        return until is not None and time.monotonic() < until

    def refused_by(self, node_id: str, why: str) -> None:
        """Another node would not take our link: say so (at most once a minute per node)."""
        if self._note(self._refused_by, node_id, why):
            log.warning(
                "node %s refused this node's link: %s. Do the nodes share one CLUSTER_SECRET?",
                node_id,
                why,
            )

    def refused(self, peer: str, why: str) -> None:
        """We would not take a link from ``peer`` (a node id, or an address)."""
        if self._note(self._refused, peer, why):
            log.warning("refused a node link from %s: %s", peer, why)

    def _note(self, table: dict[str, tuple[float, str]], who: str, why: str) -> bool:
        """Remember a refusal; True when it is worth a log line (new, or a new reason, or
        the same one a minute later), so a peer retrying every second cannot flood logs."""
        now = time.monotonic()
        last = table.get(who)
        if len(table) >= 100 and who not in table:
            table.pop(next(iter(table)))
        tell = last is None or last[1] != why or now - last[0] >= self.LOG_EVERY
        table[who] = (now if tell or last is None else last[0], why)
        return tell

    def refusals(self) -> dict[str, dict[str, str]]:
        """Recent refusals both ways, for /healthz: {"by": {node: why}, "of": {peer: why}}."""
        now = time.monotonic()
        recent = {
            key: {
                who: why for who, (when, why) in table.items() if now - when < self.REFUSAL_MEMORY
            }
            for key, table in (("by", self._refused_by), ("of", self._refused))
        }
        return recent

    def tunnels(self) -> dict[tuple[str, str], int]:
        """(peer, side) -> tunnelled client sockets: "client" (the client is here, its
        object there) and "owner" (the object is here)."""
        counts: dict[tuple[str, str], int] = {}
        for peer, out in self._out.items():
            if out._tunnels:
                counts[(peer, "client")] = len(out._tunnels)
        for session in self.sessions:
            if session._tunnels:
                key = (session.peer, "owner")
                counts[key] = counts.get(key, 0) + len(session._tunnels)
        return counts

    async def close(self) -> None:
        await asyncio.gather(
            *(ln.close() for ln in list(self._out.values())), return_exceptions=True
        )
