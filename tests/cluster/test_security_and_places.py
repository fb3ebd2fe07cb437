"""Node links need the cluster secret; jurisdictions keep objects (and keys) in their place;
a chat room's clients on different nodes see one conversation."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import msgpack
import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from runtime.base.config import DEFAULT_ID_KEY
from runtime.cluster import auth
from runtime.cluster import protocol as link
from runtime.objects.ids import IdFactory
from runtime.storage.embedded import ValkeyProcess
from tests.cluster.conftest import SECRET, live_ids, node_stats


async def test_node_links_refuse_missing_or_forged_credentials(nodes, tmp_path) -> None:
    (node,) = nodes(1)
    url = f"{node.ws}{link.PATH}"
    now = time.time()
    forged = [
        {},
        {"X-Cluster-Node": "intruder", "X-Cluster-Time": str(int(now)), "X-Cluster-Auth": "0" * 64},
        auth.auth_headers("not-the-secret", "intruder", node.node_id, now),
        auth.auth_headers(SECRET, "old-node", node.node_id, now - 3600),  # replayed, old
        auth.auth_headers(SECRET, "friend", "some-other-node", now),  # meant for another
        {"X-Cluster-Node": "x", "X-Cluster-Time": "9" * 400, "X-Cluster-Auth": "e"},
    ]
    for headers in forged:
        with pytest.raises(InvalidStatus) as info:
            await connect(url, additional_headers=headers, open_timeout=5)
        assert info.value.response.status_code == 403
    ws = await connect(
        url, additional_headers=auth.auth_headers(SECRET, "friend", node.node_id, now)
    )
    await ws.close()
    async with httpx.AsyncClient(base_url=node.http) as client:
        assert (await client.get("/_cluster/objects")).status_code == 403
        pages = [(await client.get(p)).text for p in ("/", "/healthz")]
    node.stop()
    log_text = (tmp_path / "n1.log").read_text()
    assert "refused a node link" in log_text
    assert SECRET not in log_text and not any(SECRET in page for page in pages)


async def test_without_the_secret_nodes_do_not_forward(nodes) -> None:
    (owner,) = nodes(1)
    (loner,) = nodes(1, env={"CLUSTER_SECRET": "", "ACTIVATION_TIMEOUT": "1"})
    async with httpx.AsyncClient() as client:
        assert (await client.post(f"{owner.http}/probe/kept/incr")).status_code == 200
        refused = await client.post(f"{loner.http}/probe/kept/incr", timeout=10)
    assert refused.status_code == 503
    assert "CLUSTER_SECRET" in refused.text


async def test_an_eu_object_lives_only_on_eu_nodes_and_in_the_eu_redis(
    nodes, tmp_path, sync_redis: redis.Redis
) -> None:
    eu = ValkeyProcess(tmp_path / "eu", appendonly=False).start()
    try:
        (plain,) = nodes(1, env={"KNOWN_JURISDICTIONS": "eu"})
        async with httpx.AsyncClient() as client:
            r = await client.post(f"{plain.http}/probe/eu/thing/incr", timeout=10)
            assert r.status_code == 503 and "jurisdiction 'eu'" in r.text  # no eu node yet
            (eu_node,) = nodes(1, env={"JURISDICTIONS": "eu", "REDIS_URL_EU": eu.url})
            for expected, node in ((1, plain), (2, eu_node), (3, plain)):
                r = await client.post(f"{node.http}/probe/eu/thing/incr", timeout=10)
                assert r.json() == {"value": expected}
        hex_id = IdFactory("probe", DEFAULT_ID_KEY.encode(), ["eu"]).from_name("thing", "eu").hex
        eu_keys = [k.decode() for k in redis.Redis.from_url(eu.url).keys("*")]
        assert any(hex_id in k for k in eu_keys)
        assert not any(hex_id in k.decode() for k in sync_redis.keys("*"))  # none elsewhere
        assert f"probe:{hex_id}" in live_ids(eu_node)
        assert f"probe:{hex_id}" not in live_ids(plain)
    finally:
        eu.stop()


async def test_a_chat_room_across_three_nodes(nodes) -> None:
    cluster = nodes(3, env={"CHAT_RATE_LIMIT": "0"}, suite=True)
    clients = []
    for i, node in enumerate(cluster):
        ws = await connect(f"{node.ws}/chat/api/room/spread/websocket")
        await ws.send(json.dumps({"name": f"user{i}"}))
        while not json.loads(await ws.recv()).get("ready"):
            pass
        clients.append(ws)

    async def say(ws, i: int) -> None:
        for n in range(20):
            await ws.send(json.dumps({"message": f"{i}:{n}"}))

    async def hear(ws) -> list[str]:
        heard = []
        while len(heard) < 60:
            data = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if "message" in data:
                heard.append(data["message"])
        return heard

    listeners = [asyncio.create_task(hear(ws)) for ws in clients]
    await asyncio.gather(*(say(ws, i) for i, ws in enumerate(clients)))
    heard = await asyncio.gather(*listeners)
    assert heard[0] == heard[1] == heard[2]  # everyone, every message, the same order
    assert sorted(heard[0]) == sorted(f"{i}:{n}" for i in range(3) for n in range(20))
    hosts = [n for n in cluster if any(i.startswith("chat_room:") for i in live_ids(n))]
    assert len(hosts) == 1  # one room, one instance
    for ws in clients:
        await ws.close()


#: The link's wire format, spelled out here as a peer of another make would (protocol.py).
REQUEST, REPLY, FRAME, CLOSE, CHALLENGE, ANSWER = range(6)


def wire(messages: list[list[Any]]) -> bytes:
    return msgpack.packb(messages, use_bin_type=True)  # type: ignore[no-any-return]


def unwire(frame: Any) -> list[list[Any]]:
    return list(msgpack.unpackb(frame, raw=False))


def probe_id(name: str) -> str:
    return IdFactory("probe", DEFAULT_ID_KEY.encode()).from_name(name).hex


async def test_a_captured_handshake_opens_nothing(nodes, tmp_path) -> None:
    (node,) = nodes(1)
    url = f"{node.ws}{link.PATH}"
    captured = auth.auth_headers(SECRET, "n9", node.node_id, time.time())
    request = wire(
        [[REQUEST, 1, "rpc", "probe", probe_id("replayed"), 0, ["increment", b"\x92\x90\x80"]]]
    )
    # Whoever opens a link is challenged first; a request sent without the answer is not
    # acted on, and the link is closed.
    ws = await connect(url, additional_headers=captured)
    (challenge,) = unwire(await ws.recv())
    assert challenge[0] == CHALLENGE and len(challenge[2]) == 32
    await ws.send(request)
    await ws.wait_closed()
    assert ws.close_code == 1002
    # The same handshake again, within the minute: refused at the door.
    with pytest.raises(InvalidStatus) as info:
        await connect(url, additional_headers=captured, open_timeout=5)
    assert info.value.response.status_code == 403
    # A wrong answer, or none within 5 s, closes a link too.
    wrong = await connect(
        url, additional_headers=auth.auth_headers(SECRET, "n9", "n1", time.time())
    )
    (challenge,) = unwire(await wrong.recv())
    await wrong.send(wire([[ANSWER, 0, auth.answer("guess", "n9", "n1", challenge[2])]]))
    await wrong.wait_closed()
    assert wrong.close_code == 1008
    silent = await connect(
        url, additional_headers=auth.auth_headers(SECRET, "n9", "n1", time.time())
    )
    started = time.monotonic()
    await asyncio.wait_for(silent.wait_closed(), 10)
    assert silent.close_code == 1008 and 4 < time.monotonic() - started < 8
    async with httpx.AsyncClient() as client:  # nothing the request asked for ever ran
        assert (await client.post(f"{node.http}/probe/replayed/incr")).json() == {"value": 1}
        health = (await client.get(f"{node.http}/healthz")).json()
    assert "n9 at 127.0.0.1" in health["links_refused"]["of"]
    node.stop()
    text = (tmp_path / "n1.log").read_text()
    assert (
        "a handshake seen before (a replay)" in text and "no answer to the link's challenge" in text
    )


async def test_links_reauthenticate_while_they_carry_traffic(nodes) -> None:
    owner, other = nodes(2, env={"LINK_REAUTH_INTERVAL": "0.5"})
    async with httpx.AsyncClient() as client:
        assert (await client.post(f"{owner.http}/probe/busy/incr")).json() == {"value": 1}
        for expected in range(2, 14):  # forwarded over one link for 3 s
            r = await client.post(f"{other.http}/probe/busy/incr", timeout=10)
            assert r.json() == {"value": expected}
            await asyncio.sleep(0.25)
        assert "links_refused" not in (await client.get(f"{owner.http}/healthz")).json()
    # The owner challenged that link again and again while it carried the traffic (every
    # 0.5 s: about six times in 3 s), each answered: one link, never re-opened.
    stats = node_stats(owner)
    assert stats["links_accepted"] == 1
    assert stats["link_reauthentications"] >= 4


class HandDrivenLink:
    """A link to a node that proves the secret once, as a node does, then does only what its
    test says: so it can fall silent, or answer a challenge wrongly, which a node never does."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._waiting: list[list[Any]] = []  # messages read but not yet asked for

    @classmethod
    async def open(cls, node, caller: str) -> HandDrivenLink:
        headers = auth.auth_headers(SECRET, caller, node.node_id, time.time())
        ws = await connect(f"{node.ws}{link.PATH}", additional_headers=headers)
        self = cls(ws)
        first = await self.next(CHALLENGE)
        await ws.send(wire([self.answer(first, caller, node.node_id)]))
        return self

    @staticmethod
    def answer(challenge: list[Any], caller: str, callee: str, secret: str = SECRET) -> list[Any]:
        return [ANSWER, 0, auth.answer(secret, caller, callee, challenge[2])]

    async def next(self, kind: int) -> list[Any]:
        """The next message of ``kind``; the ones before it wait for their own turn."""
        while True:
            for i, m in enumerate(self._waiting):
                if m[0] == kind:
                    return self._waiting.pop(i)
            self._waiting += unwire(await asyncio.wait_for(self.ws.recv(), 10))

    @staticmethod
    def increment(rid: int, name: str) -> list[Any]:
        return [
            REQUEST,
            rid,
            "rpc",
            "probe",
            probe_id(name),
            0,
            ["increment", b"\x92\x90\x80"],
        ]

    async def call(self, rid: int, name: str) -> Any:
        await self.ws.send(wire([self.increment(rid, name)]))
        reply = await self.next(REPLY)
        assert reply[1] == rid and reply[2] is True, reply
        return msgpack.unpackb(reply[3]) if isinstance(reply[3], bytes) else reply[3]


async def test_a_link_that_stops_answering_its_challenges_is_closed(nodes, tmp_path) -> None:
    (node,) = nodes(1, env={"LINK_REAUTH_INTERVAL": "0.5"})
    peer = await HandDrivenLink.open(node, "n7")
    assert await peer.call(1, "quiet") == 1  # proven once: the link carries requests
    await peer.next(CHALLENGE)  # the next challenge comes; this peer never answers it
    asked = time.monotonic()
    await asyncio.wait_for(peer.ws.wait_closed(), link.ANSWER_TIMEOUT + 5)
    waited = time.monotonic() - asked
    assert peer.ws.close_code == 1008  # authentication failed
    assert link.ANSWER_TIMEOUT - 1 < waited < link.ANSWER_TIMEOUT + 2
    with pytest.raises(ConnectionClosed):  # nothing more goes through that link
        await peer.ws.send(wire([HandDrivenLink.increment(2, "quiet")]))
    async with httpx.AsyncClient() as client:
        assert (await client.post(f"{node.http}/probe/quiet/incr")).json() == {"value": 2}
        health = (await client.get(f"{node.http}/healthz")).json()
    assert "no answer to the link's challenge" in health["links_refused"]["of"]["n7"]
    stats = node_stats(node)
    assert (stats["links_accepted"], stats["link_reauthentications"]) == (1, 0)
    node.stop()
    assert "refused a node link from n7: no answer" in (tmp_path / "n1.log").read_text()


async def test_a_wrong_answer_to_a_later_challenge_closes_the_link_at_once(nodes) -> None:
    (node,) = nodes(1, env={"LINK_REAUTH_INTERVAL": "0.5"})
    peer = await HandDrivenLink.open(node, "n7")
    assert await peer.call(1, "misled") == 1
    again = await peer.next(CHALLENGE)  # answered right: the link stays
    await peer.ws.send(wire([HandDrivenLink.answer(again, "n7", node.node_id)]))
    assert await peer.call(2, "misled") == 2
    wrong = HandDrivenLink.answer(await peer.next(CHALLENGE), "n7", node.node_id, "guess")
    # A request right behind the wrong answer, in the same frame, must not run.
    await peer.ws.send(wire([wrong, HandDrivenLink.increment(3, "misled")]))
    asked = time.monotonic()
    await asyncio.wait_for(peer.ws.wait_closed(), 5)
    assert peer.ws.close_code == 1008 and time.monotonic() - asked < 2
    async with httpx.AsyncClient() as client:
        assert (await client.post(f"{node.http}/probe/misled/incr")).json() == {"value": 3}
        health = (await client.get(f"{node.http}/healthz")).json()
    assert "a wrong answer" in health["links_refused"]["of"]["n7"]
    stats = node_stats(node)
    assert (stats["links_accepted"], stats["link_reauthentications"]) == (1, 1)


async def test_nodes_with_different_secrets_say_so_on_both_sides(nodes, tmp_path) -> None:
    (n1,) = nodes(1, env={"ACTIVATION_TIMEOUT": "2"})
    (n2,) = nodes(1, env={"ACTIVATION_TIMEOUT": "2", "CLUSTER_SECRET": "another-secret-entirely"})
    async with httpx.AsyncClient() as client:
        assert (await client.post(f"{n1.http}/probe/held/incr")).status_code == 200
        assert (await client.post(f"{n2.http}/probe/held/incr", timeout=10)).status_code == 503
        h1 = (await client.get(f"{n1.http}/healthz")).json()
        h2 = (await client.get(f"{n2.http}/healthz")).json()
    assert "n2 at 127.0.0.1" in h1["links_refused"]["of"]
    assert "n1" in h2["links_refused"]["by"]
    n1.stop()
    n2.stop()
    assert "refused a node link from n2" in (tmp_path / "n1.log").read_text()
    told = (tmp_path / "n2.log").read_text()
    assert "node n1 refused this node's link" in told and "CLUSTER_SECRET" in told


def make_certificates(directory) -> tuple[str, str, str]:
    """A throwaway CA, and a certificate it signed for 127.0.0.1 (with openssl)."""
    import subprocess

    d = str(directory)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)

    new_key = ["-newkey", "rsa:2048", "-nodes"]
    run("req", "-x509", *new_key, "-days", "1", "-subj", "/CN=test CA", "-keyout", f"{d}/ca.key",
        "-out", f"{d}/ca.pem")  # fmt: skip
    run("req", *new_key, "-subj", "/CN=127.0.0.1", "-keyout", f"{d}/node.key",
        "-out", f"{d}/node.csr")  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    signing = ["-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key", "-CAcreateserial", "-days", "1"]
    run("x509", "-req", "-in", f"{d}/node.csr", *signing, "-extfile", f"{d}/san.ext",
        "-out", f"{d}/node.pem")  # fmt: skip
    return f"{d}/ca.pem", f"{d}/node.pem", f"{d}/node.key"


async def test_node_links_over_tls(nodes, tmp_path) -> None:
    ca, cert, key = make_certificates(tmp_path)
    env = {"TLS_CERT_FILE": cert, "TLS_KEY_FILE": key, "LINK_CA_FILE": ca}
    owner, other = nodes(2, env=env)
    assert owner.http.startswith("https://")
    async with httpx.AsyncClient(verify=owner.verify) as client:
        assert (await client.post(f"{owner.http}/probe/secure/incr")).json() == {"value": 1}
        forwarded = await client.post(f"{other.http}/probe/secure/incr", timeout=10)
        assert forwarded.json() == {"value": 2}  # forwarded over wss://, certificate checked
    assert f"probe:{probe_id('secure')}" in live_ids(owner)
