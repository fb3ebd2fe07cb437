"""The shipped deployment: compose.yaml is valid, and its topology — Valkey, three nodes and
nginx with deploy/nginx.conf (templated only in its upstream addresses) — works as plain
processes."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import yaml
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake

from runtime.storage.embedded import free_port
from tests.cluster.conftest import live_ids
from tests.support import dashboard

ROOT = Path(__file__).resolve().parents[2]


def test_compose_file_describes_the_topology() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    always = {n for n, svc in services.items() if "profiles" not in svc}
    assert always == {"valkey", "node1", "node2", "node3", "balancer"}
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
        # Only the balancer's address is trusted for X-Forwarded-For, never "*".
        assert env["TRUSTED_PROXIES"] == "172.28.0.10"
        assert env["ALLOWED_HOSTS"].startswith("${ALLOWED_HOSTS")  # set per deployment
    balancer = services["balancer"]
    assert balancer["networks"]["default"]["ipv4_address"] == "172.28.0.10"
    subnet = compose["networks"]["default"]["ipam"]["config"][0]["subnet"]
    assert subnet == "172.28.0.0/24"
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


class Balancer:
    """nginx with deploy/nginx.conf, templated only in its addresses: the upstreams are the
    test's nodes, and it listens on a free port of the test's own. Not on 8080: test runs
    side by side on one machine would share one balancer there (the second nginx cannot
    bind and exits, and its test talks to the first one's nodes: a POST of the other run
    once made a counter here one too high)."""

    def __init__(self, cluster: list, tmp_path: Path) -> None:
        conf = (ROOT / "deploy" / "nginx.conf").read_text()
        for i, node in enumerate(cluster, start=1):
            conf, n = re.subn(rf"server node{i}:8000", f"server 127.0.0.1:{node.port}", conf)
            assert n == 1
        self.port = free_port()
        conf, n = re.subn(r"listen 8080;", f"listen 127.0.0.1:{self.port};", conf)
        assert n == 1
        (tmp_path / "nginx.conf").write_text(conf)
        self.log = tmp_path / "nginx.log"  # (a file: a pipe nobody reads could fill up)
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
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
                stderr=log,
            )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def check(self) -> None:
        """Fail unless this nginx is up and listening (what answered may be someone else)."""
        said = self.log.read_text(errors="replace")
        if self.process.poll() is not None or "[emerg]" in said:
            pytest.fail(f"nginx did not start on port {self.port}: {said.strip()}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


async def wait_for_balancer(client: httpx.AsyncClient, balancer: Balancer) -> None:
    for _ in range(100):
        try:
            if (await client.get("/healthz")).status_code == 200:
                break
        except httpx.HTTPError:
            await asyncio.sleep(0.05)
    balancer.check()


async def test_clients_through_the_balancer(nodes, tmp_path) -> None:
    cluster = nodes(3, env={"CHAT_RATE_LIMIT": "0"}, suite=True)
    nginx = Balancer(cluster, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=nginx.url) as client:
            await wait_for_balancer(client, nginx)
            answered = {(await client.get("/healthz")).json()["node"] for _ in range(9)}
            assert answered == {"n1", "n2", "n3"}  # round robin over every node
            values = [(await client.post("/counter/front")).json()["value"] for _ in range(9)]
            assert values == list(range(1, 10))
            assert (await client.get("/_cluster/objects")).status_code == 404  # not public
            page = await client.get("/chat/")
            assert page.status_code == 200
        sockets = []
        for i in range(3):  # browsers behind the balancer: same-origin, spread over nodes
            ws = await connect(f"{nginx.ws}/chat/api/room/front/websocket", origin=nginx.url)
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
        nginx.stop()


async def test_a_client_cannot_choose_its_address_behind_the_balancer(nodes, tmp_path) -> None:
    # The nodes trust only the balancer (here on 127.0.0.1) and the balancer passes on the
    # address it saw: made-up X-Forwarded-For values must not buy fresh rate allowances.
    env = {"TRUSTED_PROXIES": "127.0.0.1", "CHAT_RATE_INTERVAL": "30", "CHAT_RATE_GRACE": "60"}
    cluster = nodes(3, env=env, suite=True)
    nginx = Balancer(cluster, tmp_path)
    try:
        async with httpx.AsyncClient(base_url=nginx.url) as client:
            await wait_for_balancer(client, nginx)
        passed = refused = 0
        for i in range(15):  # 15 connections, each claiming another address
            async with connect(
                f"{nginx.ws}/chat/api/room/spoof/websocket",
                additional_headers={"X-Forwarded-For": f"10.{i}.{i}.{i}"},
            ) as ws:
                await ws.send(json.dumps({"name": f"p{i}"}))
                while not json.loads(await asyncio.wait_for(ws.recv(), 5)).get("ready"):
                    pass
                await ws.send(json.dumps({"message": f"m{i}"}))
                while True:
                    data = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if data.get("message") == f"m{i}":
                        passed += 1
                        break
                    if "error" in data:
                        refused += 1
                        break
        # One real address: 3 messages pass its allowance (names count), then every new
        # connection's name passes and cools it down, so its message is refused.
        assert passed <= 2 and refused >= 13, (passed, refused)
    finally:
        nginx.stop()


class BlackHole:
    """A port where connections are neither accepted nor refused, as at the address of a
    node whose container or machine died: a listening socket whose accept queue is full,
    so the kernel drops every new SYN and the connecting side hears nothing."""

    def __init__(self, port: int) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(0)
        self.fillers: list[socket.socket] = []
        while len(self.fillers) < 8:
            filler = socket.create_connection(("127.0.0.1", port))
            self.fillers.append(filler)
            probe = socket.socket()
            probe.settimeout(0.3)
            try:
                probe.connect(("127.0.0.1", port))
            except TimeoutError:
                return  # the queue is full: SYNs are dropped from now on
            finally:
                probe.close()
        raise AssertionError("the accept queue never filled up")

    def close(self) -> None:
        for s in (*self.fillers, self.listener):
            s.close()


async def test_a_dead_node_keeps_no_request_waiting_at_the_balancer(nodes, tmp_path) -> None:
    # Node n2 is killed and its address goes silent (a dead container's does: no process
    # is left to refuse). nginx must give up on it within proxy_connect_timeout and send
    # every request -- GETs, POSTs that never reached it, socket handshakes -- to a live node.
    # The slowest is the first request for a counter n2 held, when nginx tried n2 first:
    # 0.5 s there, then 2 s for the live node's link to n2 to fail to open (the runtime's
    # open timeout; in compose, n2's name stops resolving and that fails at once), then
    # the lease, expired by then: about 2.8 s.
    cluster = nodes(3, env={"CHAT_RATE_LIMIT": "0"}, suite=True)
    nginx = Balancer(cluster, tmp_path)
    waits: list[tuple[float, str, object]] = []
    values: list[dict] = []
    rounds = 0
    try:
        async with httpx.AsyncClient(base_url=nginx.url, timeout=30) as client:
            await wait_for_balancer(client, nginx)
            for i in range(12):  # counters on every node, n2 among them
                assert (await client.post(f"/counter/dead{i}")).json()["value"] == 1
            hosts = [n for n in cluster if any(i.startswith("counter:") for i in live_ids(n))]
            assert cluster[1] in hosts
            cluster[1].kill()
            hole = BlackHole(cluster[1].port)
            try:
                deadline = time.monotonic() + 8  # past the 5 s a failed node is left out
                while time.monotonic() < deadline:
                    rounds += 1
                    for i in range(12):
                        started = time.monotonic()
                        try:
                            got: object = (await client.post(f"/counter/dead{i}")).status_code
                        except httpx.HTTPError as exc:
                            got = repr(exc)
                        waits.append((time.monotonic() - started, f"POST counter {i}", got))
                    started = time.monotonic()
                    try:
                        got = (await client.get("/healthz")).status_code
                    except httpx.HTTPError as exc:
                        got = repr(exc)
                    waits.append((time.monotonic() - started, "GET /healthz", got))
                    started = time.monotonic()
                    try:
                        async with connect(
                            f"{nginx.ws}/chat/api/room/dead/websocket",
                            origin=nginx.url,
                            open_timeout=30,
                        ):
                            got = 101
                    except (OSError, TimeoutError, InvalidHandshake) as exc:
                        got = repr(exc)
                    waits.append((time.monotonic() - started, "chat handshake", got))
                values = [(await client.post(f"/counter/dead{i}")).json() for i in range(12)]
            finally:
                hole.close()
    finally:
        nginx.stop()
    failed = [w for w in waits if w[2] not in (200, 101)]
    slowest = max(waits)
    print(f"{len(waits)} requests after the kill; the slowest: {slowest}")
    assert not failed, failed[:5]
    assert len(waits) >= 60 and slowest[0] < 3.0, (len(waits), slowest)
    # Every write was acknowledged once and kept, on whichever node took each counter over.
    assert [v["value"] for v in values] == [rounds + 2] * 12, (values, rounds)


def test_a_slow_request_head_is_not_held(tmp_path) -> None:
    # A client that sends part of a request and stops (slowloris) is cut off after nginx's
    # client_header_timeout (10 s), not its default 60 s. No node is needed for that.
    nowhere = [SimpleNamespace(port=free_port()) for _ in range(3)]
    nginx = Balancer(nowhere, tmp_path)
    try:
        for _ in range(100):
            try:
                slow = socket.create_connection(("127.0.0.1", nginx.port))
                break
            except ConnectionRefusedError:
                time.sleep(0.05)
        nginx.check()
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n")  # and no more
        slow.settimeout(30)
        started = time.monotonic()
        assert slow.recv(1024) == b""  # closed, without an answer
        assert 8 < time.monotonic() - started < 15
        slow.close()
    finally:
        nginx.stop()


def test_balancers_side_by_side_each_answer_on_a_port_of_their_own(tmp_path) -> None:
    # Suites run side by side on one machine (one per worktree): each test's nginx must be
    # its own. On one fixed port the second could not bind and exited, and its test sent
    # its requests to the first one's nodes unawares.
    nowhere = [SimpleNamespace(port=free_port()) for _ in range(3)]
    balancers = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            balancers.append(Balancer(nowhere, tmp_path / name))
        for balancer in balancers:
            for _ in range(100):
                try:
                    answer = httpx.get(f"{balancer.url}/healthz", timeout=5)
                    break
                except httpx.ConnectError:
                    time.sleep(0.05)
            assert answer.status_code == 502  # from this nginx: none of its nodes is up
            balancer.check()
        assert balancers[0].port != balancers[1].port
    finally:
        for balancer in balancers:
            balancer.stop()


def dashboard_metrics() -> set[str]:
    """The metric names the Grafana dashboards' queries use."""
    return {
        name
        for board in dashboard.boards().values()
        for expr in dashboard.expressions(board)
        for name in dashboard.metric_names(expr)
    }


def test_the_monitoring_profile_scrapes_every_node_and_the_dashboard_loads() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert services["prometheus"]["profiles"] == ["monitoring"]
    assert services["grafana"]["profiles"] == ["monitoring"]
    mounted = {
        v.split(":")[0] for svc in ("prometheus", "grafana") for v in services[svc]["volumes"]
    }
    for path in mounted:
        assert (ROOT / path).exists(), path
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    (job,) = scrape["scrape_configs"]
    targets = job["static_configs"][0]["targets"]
    nodes = sorted(n for n in services if n.startswith("node"))
    assert targets == [f"{n}:8000" for n in nodes] and job["metrics_path"] == "/metrics"
    assert (
        job["authorization"]["credentials_file"] == services["prometheus"]["configs"][0]["target"]
    )
    assert "OPS_TOKEN" in compose["configs"]["ops_token"]["content"]
    assert "OPS_TOKEN" in services["node1"]["environment"]
    assert len(dashboard_metrics()) >= 10
    # Grafana finds the dashboards where compose mounts them, and Prometheus where its
    # datasource says (Grafana has no Debian package: the files are what is checked).
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/durable-redis.yml").read_text()
    )["providers"][0]
    mounted = f"./deploy/grafana/dashboards:{provider['options']['path']}:ro"
    assert mounted in services["grafana"]["volumes"]
    (source,) = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    assert source["url"] == "http://prometheus:9090" and "prometheus" in services
    boards = dashboard.boards()
    assert list(boards) == ["durable-redis.json"]
    for name, board in boards.items():
        assert dashboard.problems(board) == [], name


async def test_every_metric_the_dashboard_shows_is_served(nodes) -> None:
    (node,) = nodes(1, env={"OPS_TOKEN": "t"}, suite=True)
    async with httpx.AsyncClient(base_url=node.http) as client:
        await client.post("/counter/dash")  # (so histograms have samples too)
        text = (await client.get("/metrics", headers={"Authorization": "Bearer t"})).text
    served = set(re.findall(r"^(do_[a-z_]+)", text, re.MULTILINE))
    for name in re.findall(r"^# TYPE (do_[a-z_]+) ", text, re.MULTILINE):  # (even with no
        served |= {name, f"{name}_total", f"{name}_bucket"}  # sample yet, as on one node)
    assert dashboard_metrics() <= served, sorted(dashboard_metrics() - served)
