"""/metrics, /ops and the landing page's live numbers on one node."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from apps.chat import make_app as chat_app
from examples.counter import app as counter_app
from runtime.cluster import auth
from runtime.cluster import protocol as link
from tests.support.servers import NodeProcess


async def test_on_a_laptop_metrics_and_ops_answer_without_credentials(serve) -> None:
    server = await serve(apps=(counter_app, chat_app()))
    async with httpx.AsyncClient(base_url=server.http) as client:
        await client.post("/counter/seen")
        text = (await client.get("/metrics")).text
        names = {f.name for f in text_string_to_metric_families(text)}
        assert {"do_events", "do_objects", "do_commit_seconds", "do_leases"} <= names
        assert 'do_objects{namespace="counter",state="live"} 1.0' in text
        assert 'do_events_total{kind="rpc",outcome="ok"} 1.0' in text
        cluster = (await client.get("/ops/api/cluster")).json()
        assert [n["node"] for n in cluster["nodes"]] == ["test-node"]
        assert cluster["nodes"][0]["objects"]["counter"] == {"live": 1, "hibernated": 0}
        where = (
            await client.get("/ops/api/locate", params={"namespace": "counter", "key": "seen"})
        ).json()
        assert where["node"] == "test-node" and where["app"] == "counter"
        nowhere = await client.get(
            "/ops/api/locate", params={"namespace": "counter", "key": "never"}
        )
        assert nowhere.json()["node"] is None
        bad = await client.get(
            "/ops/api/locate", params={"namespace": "chat_room", "key": "ab" * 32}
        )
        assert bad.status_code == 400  # 64 hex this namespace never minted
        # Passed on by a proxy on this machine, a request may come from anywhere: refused.
        proxied = {"X-Forwarded-For": "203.0.113.9"}
        assert (await client.get("/metrics", headers=proxied)).status_code in (401, 403)
        assert (await client.get("/ops/api/cluster", headers=proxied)).status_code in (401, 403)
        unknown = await client.get("/ops/api/locate", params={"namespace": "nope", "key": "x"})
        assert unknown.status_code == 404 and "counter" in unknown.json()["error"]
        # name= and id= say which they give; the ID the answer names finds the same object.
        by_name = await client.get(
            "/ops/api/locate", params={"namespace": "counter", "name": "seen"}
        )
        by_id = await client.get(
            "/ops/api/locate", params={"namespace": "counter", "id": by_name.json()["id"]}
        )
        assert by_id.status_code == 200 and by_id.json() == by_name.json() == where
        for params, says in (
            ({"namespace": "counter", "id": "seen"}, "64 hex characters"),
            ({"namespace": "counter", "name": "seen", "id": where["id"]}, "give one of"),
            ({"namespace": "counter"}, "give one of"),
            ({"name": "seen"}, "give namespace="),
        ):
            refused = await client.get("/ops/api/locate", params=params)
            assert refused.status_code == 400 and says in refused.json()["error"], params
        apps = (await client.get("/api/apps")).json()["apps"]
        counter = next(a for a in apps if a["name"] == "counter")
        assert counter["live"]["counters in use"] == 1
        page = await client.get("/ops")
        assert page.status_code == 200 and "ops/ops.js" in page.text


async def test_with_metrics_off_there_are_none(serve) -> None:
    server = await serve(apps=(counter_app,), metrics=False)
    async with httpx.AsyncClient(base_url=server.http) as client:
        await client.post("/counter/x")
        assert (await client.get("/metrics")).status_code == 404
    assert server.node.stats.events == {}  # the labelled counters are not kept


#: Every secret a node takes, each one unlike anything else in a log.
SECRETS = {
    "CLUSTER_SECRET": "cluster-" + secrets.token_hex(16),
    "OPS_TOKEN": "ops-" + secrets.token_hex(16),
    "SECRET_KEY": "signing-" + secrets.token_hex(16),
    "ID_KEY": "ids-" + secrets.token_hex(16),
}


COOKIE_VALUE = "c00k1e-" + "9" * 24


async def test_a_json_logging_node_names_the_failing_object_and_no_secret(
    redis_url: str, tmp_path: Path
) -> None:
    # Two real node processes logging JSON at debug level (the most a node ever says), with
    # every secret set, through work that handles them: a link between the nodes and a
    # refused one (the cluster secret), the ops API (the token), object IDs (the ID key);
    # SECRET_KEY is read at start. Then an object fails: its log lines must name it.
    env = {**SECRETS, "LOG_FORMAT": "json", "LEASE_TTL": "2"}
    pair = [
        NodeProcess(
            redis_url=redis_url,
            node_id=f"json{i}",
            env=env,
            log_path=tmp_path / f"json{i}.log",
            suite=True,
        )
        for i in (1, 2)
    ]
    for node in pair:
        node.args[node.args.index("--log-level") + 1] = "debug"
    try:
        owner, other = (node.start() for node in pair)
        ops = {"Authorization": f"Bearer {SECRETS['OPS_TOKEN']}"}
        async with httpx.AsyncClient(timeout=10) as client:
            assert (await client.post(f"{owner.http}/probe/crashy/incr")).status_code == 200
            # From the other node, forwarded over the link.
            assert (await client.post(f"{other.http}/probe/crashy/incr")).json() == {"value": 2}
            where = await client.get(
                f"{other.http}/ops/api/locate",
                params={"namespace": "probe", "key": "crashy"},
                headers=ops,
            )
            full_id = where.json()["id"]
            assert where.json()["node"] == owner.node_id and len(full_id) == 64
            intruder = auth.auth_headers("not-the-secret", "intruder", owner.node_id, time.time())
            with pytest.raises(InvalidStatus):
                await connect(f"{owner.ws}{link.PATH}", additional_headers=intruder)
        # The object's handshake handler raises (after accepting): the node logs it, and the
        # refusal, tunnelled back from the owner, says the handler may have had an effect.
        with pytest.raises(InvalidStatus) as crashed:
            await connect(f"{other.ws}/probe/crashy/ws?crash=1", open_timeout=5)
        assert crashed.value.response.status_code == 500
        assert crashed.value.response.headers["X-Outcome"] == "unknown"
        # A browser's cookies ride on every handshake (a waiting room's admission, the ops
        # token): the websockets library logs handshake headers at DEBUG.
        cookie = {"Cookie": f"ops_token={COOKIE_VALUE}"}
        ws = await connect(f"{owner.ws}/probe/crashy/ws", additional_headers=cookie)
        assert await ws.recv() == "welcome"
        await ws.send("raise")  # and a message handler raises
        await ws.send("get")
        assert await ws.recv() == "value:2"  # (the socket outlived it)
        await ws.close()
    finally:
        for node in pair:
            if node.process is not None:
                node.stop()

    text = "".join((tmp_path / f"json{i}.log").read_text() for i in (1, 2))
    lines = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    assert all(line["node"] in ("json1", "json2") for line in lines)
    about_it = [
        line
        for line in lines
        if line.get("object_class") == "Probe"
        and line.get("namespace") == "probe"
        and line.get("object_id") == full_id[:12]
    ]
    messages = {(line["node"], line["level"], line["message"]) for line in about_it}
    assert ("json1", "ERROR", "Probe.websocket_connect raised") in messages
    assert ("json1", "ERROR", f"socket handler of probe:{full_id[:12]} raised") in messages
    assert any("handler failed on purpose" in line.get("exc_info", "") for line in about_it)
    assert any(line.get("message", "").startswith("refused a node link") for line in lines)
    for name, value in SECRETS.items():
        assert value not in text, f"{name} is in the log"
    assert full_id not in text  # a whole ID may be a capability (a private room's)
    assert COOKIE_VALUE not in text  # no header of a handshake either
