"""The router's retry rule, driven through its host protocol by a node written here: no
Redis, no sockets. An event comes back from the node it was forwarded to ``ObjectMoved``;
it is sent again only if that says nothing ran there."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from runtime.base.config import Settings
from runtime.base.errors import ObjectMoved, ObjectUnavailable
from runtime.cluster.registry import NodeInfo
from runtime.host.routing import Router

OWNER = NodeInfo("n2", "n2@1", "ws://127.0.0.1:1", ())


class Link:
    """The link to the owner: every request comes back with the errors given, in turn."""

    def __init__(self, answers: list[BaseException | str]) -> None:
        self.answers = answers
        self.requests = 0

    async def request(self, *args: Any) -> Any:
        answer = self.answers[min(self.requests, len(self.answers) - 1)]
        self.requests += 1
        if isinstance(answer, BaseException):
            raise answer
        return answer


class Node:
    """A node that hosts nothing and believes ``OWNER`` has the object."""

    def __init__(self, link: Link) -> None:
        self.node_id = "n1"
        self.settings = Settings(
            node_id="n1", cluster_secret="s" * 32, lease_ttl=2.0, activation_timeout=0.5
        )
        self.stopping = False
        self.link = link
        self.links = SimpleNamespace(to=lambda info: link, is_unreachable=lambda node_id: False)

    def record_of(self, namespace: Any, object_id: Any) -> None:
        return None

    def reaches_store(self, object_id: Any) -> bool:
        return True

    def local_record(self, namespace: Any, object_id: Any) -> Any:
        raise AssertionError("the event must not be taken over here")


NAMESPACE = SimpleNamespace(name="counter", replicated=False)
OBJECT = SimpleNamespace(hex="ab" * 32, jurisdiction=None)
EVENT = SimpleNamespace(kind="rpc", wait_output=True, wire=lambda: ["increment", b""])


async def _always_owner(*args: Any) -> NodeInfo:
    return OWNER


def router_for(link: Link) -> Router:
    """A router that finds the object on ``OWNER`` at every look."""
    router = Router(Node(link))  # type: ignore[arg-type]
    router._where = _always_owner  # type: ignore[method-assign]
    return router


async def dispatch(router: Router, hops: int = 0) -> Any:
    return await router.dispatch(NAMESPACE, OBJECT, EVENT, hops)  # type: ignore[arg-type]


async def test_an_event_the_owner_did_not_run_is_sent_again() -> None:
    link = Link([ObjectMoved("not here"), "ran once"])
    router = router_for(link)
    assert await dispatch(router) == "ran once"
    assert link.requests == 2


@pytest.mark.parametrize("hops", [0, 1])
async def test_an_event_that_may_have_run_is_never_sent_again(hops: int) -> None:
    # An ObjectMoved that says the event may have run there (a node of another version, or
    # one that ran it and then lost the object): retrying would apply it twice.
    link = Link([ObjectMoved("ran, then moved", may_have_run=True), "ran twice"])
    router = router_for(link)
    with pytest.raises((ObjectMoved, ObjectUnavailable)) as caught:
        await dispatch(router, hops)
    assert link.requests == 1
    # Back to the node that forwarded it as it came; to a route, unavailable, and unknown.
    assert type(caught.value) is (ObjectMoved if hops else ObjectUnavailable)
    assert caught.value.may_have_run and caught.value.outcome == "unknown"


async def test_a_route_hears_not_run_when_nothing_ran() -> None:
    link = Link([ObjectMoved("not here")])
    router = router_for(link)
    looks = iter(range(1000))

    async def owner_then_moved(*args: Any) -> NodeInfo:
        if next(looks) > 0:  # (the owner said it has nothing; no node can host it now)
            raise ObjectMoved("this node cannot host it")
        return OWNER

    router._where = owner_then_moved  # type: ignore[method-assign]
    with pytest.raises(ObjectUnavailable) as caught:
        await dispatch(router)
    assert not caught.value.may_have_run and caught.value.outcome == "not-run"
