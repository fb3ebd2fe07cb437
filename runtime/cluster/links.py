"""All node links of this node: its links to others (client.NodeLink, one per node), the
links others opened to it (server.LinkSession), and what it remembers of them: nodes it
could not reach lately, and refusals both ways (shown in /healthz).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import TYPE_CHECKING, Protocol

from .client import NodeLink
from .server import CalleeHost, LinkSession

if TYPE_CHECKING:
    from .registry import NodeInfo

log = logging.getLogger("runtime.cluster")


class LinkHost(CalleeHost, Protocol):
    """What the node's links need from it: what a link others opened needs
    (server.CalleeHost), and who hears of broken links (its router)."""

    def forget_node(self, node_id: str) -> None: ...


class Links:
    """All links of this node: out to other nodes, and in from them."""

    #: How long a refusal is remembered (and shown in /healthz), and logged at most once.
    REFUSAL_MEMORY = 300.0
    LOG_EVERY = 60.0

    def __init__(self, node: LinkHost, forwarded: Counter[tuple[str, str, str]]) -> None:
        self.node = node
        self.node_id = node.node_id
        self.settings = node.settings
        self.stats = node.stats
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

    def forget_node(self, node_id: str) -> None:
        """A link to ``node_id`` broke: the node's router stops sending its objects there."""
        self.node.forget_node(node_id)

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
            if out.tunnel_count:
                counts[(peer, "client")] = out.tunnel_count
        for session in self.sessions:
            if session.tunnel_count:
                key = (session.peer, "owner")
                counts[key] = counts.get(key, 0) + session.tunnel_count
        return counts

    async def close(self) -> None:
        await asyncio.gather(
            *(ln.close() for ln in list(self._out.values())), return_exceptions=True
        )
