"""HTTP through real sockets: the landing page, /healthz, fetch to objects, error mapping."""

from __future__ import annotations

import httpx

from examples.counter import app as counter_app
from tests.support.objects import app as probe_app


async def test_landing_page_lists_apps_and_node_figures(serve) -> None:
    server = await serve(apps=(probe_app, counter_app))
    async with httpx.AsyncClient(base_url=server.http) as client:
        await client.post("/counter/visits")
        page = await client.get("/")
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        assert 'href="/counter/"' in page.text  # listed app
        assert "/probe/" not in page.text  # unlisted app
        assert "test-node" in page.text
        assert '<dd id="live-objects">1</dd>' in page.text
        css = await client.get("/static/css/site.css")
        assert css.status_code == 200 and "--accent" in css.text


async def test_healthz_reports_node_and_redis(serve) -> None:
    server = await serve()
    async with httpx.AsyncClient(base_url=server.http) as client:
        body = (await client.get("/healthz")).json()
    assert body == {
        "status": "ok",
        "node": "test-node",
        "redis": "ok",
        "live_objects": 0,
        "hosted_objects": 0,
    }


async def test_fetch_reaches_the_object_and_waits_for_its_commit(serve) -> None:
    server = await serve()
    async with httpx.AsyncClient(base_url=server.http) as client:
        r = await client.post("/probe/f/fetch", content="hello body")
        assert r.status_code == 200 and r.text == "stored"
        r = await client.get("/probe/f/fetch?x=1")
        assert r.json() == {"body": "hello body", "path": "/probe/f/fetch"}


async def test_oversized_bodies_are_refused_with_413(serve) -> None:
    server = await serve(max_body_bytes=1000)
    async with httpx.AsyncClient(base_url=server.http) as client:
        r = await client.post("/probe/big/fetch", content="x" * 1001)
        assert r.status_code == 413
        r = await client.get("/probe/big/fetch")
        assert r.json()["body"] is None  # nothing was stored


async def test_counter_example_over_http(serve) -> None:
    server = await serve(apps=(counter_app,))
    async with httpx.AsyncClient(base_url=server.http) as client:
        assert (await client.post("/counter/a")).json() == {"name": "a", "value": 1}
        assert (await client.post("/counter/a")).json() == {"name": "a", "value": 2}
        assert (await client.get("/counter/a")).json() == {"name": "a", "value": 2}
        assert (await client.get("/counter/" + "n" * 65)).status_code == 400
        assert (await client.delete("/counter/a")).status_code == 405
