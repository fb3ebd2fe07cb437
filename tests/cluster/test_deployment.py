"""The shipped deployment: compose.yaml is valid, and its topology — Valkey, three nodes and
nginx with deploy/nginx.conf (templated only in its upstream addresses) — works as plain
processes."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
import yaml
from websockets.asyncio.client import connect

from tests.cluster.conftest import live_ids

ROOT = Path(__file__).resolve().parents[2]
BALANCER = "http://127.0.0.1:8080"


def test_compose_file_describes_the_topology() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"valkey", "node1", "node2", "node3", "balancer"}
    command = services["valkey"]["command"]
    assert "--appendonly" in command
    assert command[command.index("--appendfsync") + 1] == "always"
    for name in ("node1", "node2", "node3"):
        node = services[name]
        env = node["environment"]
        assert env["NODE_ID"] == name and env["ADVERTISE_URL"] == f"ws://{name}:8000"
        assert env["REDIS_URL"].startswith("redis://valkey:")
        assert "CLUSTER_SECRET" in env and "?" in env["CLUSTER_SECRET"]  # must be given
        assert node["build"] == "." and "healthcheck" in node
    mount = services["balancer"]["volumes"][0].split(":")
    assert (ROOT / mount[0]).is_file() and mount[1] == "/etc/nginx/nginx.conf"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.count("runtime") >= 2
    # The image carries the browser bundle, built from the lockfile in a Node stage.
    assert "npm ci" in dockerfile and "npm run build" in dockerfile
    assert "COPY --from=bundle /build/static/build ./static/build" in dockerfile
    assert (ROOT / "package-lock.json").is_file()


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        pytest.fail("nginx not found: `make test` installs it (apt-get install nginx-light)")
    return found


async def test_clients_through_the_balancer(nodes, tmp_path) -> None:
    cluster = nodes(3, env={"CHAT_RATE_LIMIT": "0"}, suite=True)
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    for i, node in enumerate(cluster, start=1):  # only the upstream addresses change
        conf, n = re.subn(rf"server node{i}:8000", f"server 127.0.0.1:{node.port}", conf)
        assert n == 1
    (tmp_path / "nginx.conf").write_text(conf)
    nginx = subprocess.Popen(
        [
            nginx_binary(),
            "-p",
            str(tmp_path),
            "-c",
            str(tmp_path / "nginx.conf"),
            "-g",
            f"daemon off; pid {tmp_path / 'nginx.pid'};",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        async with httpx.AsyncClient(base_url=BALANCER) as client:
            for _ in range(100):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    await asyncio.sleep(0.05)
            answered = {(await client.get("/healthz")).json()["node"] for _ in range(9)}
            assert answered == {"n1", "n2", "n3"}  # round robin over every node
            values = [(await client.post("/counter/front")).json()["value"] for _ in range(9)]
            assert values == list(range(1, 10))
            assert (await client.get("/_cluster/objects")).status_code == 404  # not public
            page = await client.get("/chat/")
            assert page.status_code == 200
        sockets = []
        for i in range(3):  # browsers behind the balancer: same-origin, spread over nodes
            ws = await connect(
                "ws://127.0.0.1:8080/chat/api/room/front/websocket", origin="http://127.0.0.1:8080"
            )
            await ws.send(json.dumps({"name": f"p{i}"}))
            while not json.loads(await ws.recv()).get("ready"):
                pass
            sockets.append(ws)
        await sockets[0].send(json.dumps({"message": "through nginx"}))
        for ws in sockets:
            while True:
                data = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if "message" in data:
                    assert data["message"] == "through nginx"
                    break
        hosts = [n for n in cluster if any(i.startswith("chat_room:") for i in live_ids(n))]
        assert len(hosts) == 1
        for ws in sockets:
            await ws.close()
    finally:
        nginx.terminate()
        nginx.wait(10)
