"""/metrics, /ops and the landing page's live numbers on one node."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
from prometheus_client.parser import text_string_to_metric_families

from apps.chat import make_app as chat_app
from examples.counter import app as counter_app
from tests.support.servers import ROOT


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
        assert unknown.status_code == 404
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


def test_json_logs_carry_the_node_and_the_object_and_no_secret(tmp_path) -> None:
    # A node process logging JSON; its lines parse, name the node, never the secret.
    script = (
        "import logging\n"
        "from runtime.logs import configure\n"
        "configure('info', 'json', 'n7')\n"
        "log = logging.getLogger('runtime.record')\n"
        "log.warning('commit failed for chat_room:0123456789ab: fenced', extra={"
        "'object_class': 'ChatRoom', 'namespace': 'chat_room', 'object_id': '0123456789ab'})\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    line = json.loads(run.stderr.strip().splitlines()[-1])
    assert line["node"] == "n7" and line["level"] == "WARNING"
    assert line["object_class"] == "ChatRoom" and line["object_id"] == "0123456789ab"
    assert line["message"].startswith("commit failed")
