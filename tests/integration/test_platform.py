"""The app platform end to end: one App(...) brings settings, templates, static files, hooks,
named URLs and objects; sockets change tags, broadcast by tag and refuse with a reason."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from runtime import App, ConfigurationError, Node, Settings, create_app
from tests.conftest import TEST_SETTINGS
from tests.support import platform
from tests.support.platform import DemoConfig, Room


async def test_pages_extend_the_base_layout_and_build_urls_from_names(serve) -> None:
    server = await serve(apps=(platform.app,))
    async with httpx.AsyncClient(base_url=server.http) as client:
        page = await client.get("/demo/")
        assert page.status_code == 200 and page.headers["x-demo"] == "1"  # app middleware
        html = page.text
        assert '<meta name="app-base" content="/demo/">' in html
        assert '<link rel="icon" href="/static/favicon.svg"' in html
        assert '<a class="back" href="/">' in html
        assert '<a id="room-link" href="/demo/rooms/lobby">' in html
        assert (await client.get("/demo/rooms/a%20b")).json() == {"self": "/demo/rooms/a%20b"}
        icon = await client.get("/favicon.ico")
        assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
        assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO file
        css = await client.get("/demo/static/site.css")  # static="css": top-level static/css
        assert css.status_code == 200 and "--accent" in css.text
        assert (await client.get("/demo/static/../../pyproject.toml")).status_code == 404
        landing = await client.get("/")
        assert "x-demo" not in landing.headers  # the app's middleware wraps its routes only


async def test_settings_come_from_the_environment_under_the_apps_prefix(
    serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEMO_GREETING", "hi there")
    monkeypatch.setenv("DEMO_LOUD", "yes")
    server = await serve(apps=(platform.app,))
    async with httpx.AsyncClient(base_url=server.http) as client:
        assert '<p id="greeting">HI THERE</p>' in (await client.get("/demo/")).text
    await server.stop()  # (the next node takes the same object over)
    given = await serve(apps=(platform.app.with_settings(DemoConfig(greeting="given")),))
    async with httpx.AsyncClient(base_url=given.http) as client:
        assert '<p id="greeting">given</p>' in (await client.get("/demo/")).text


@pytest.mark.parametrize(
    ("variable", "value"), [("DEMO_LOUD", "maybe"), ("DEMO_GREETING", "x" * 41)]
)
async def test_bad_app_settings_stop_the_node_with_the_variables_name(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv("DEMO_GREETING", "x")
    monkeypatch.setenv(variable, value)
    node = Node(Settings(**TEST_SETTINGS), redis_url)
    with pytest.raises(ConfigurationError) as info:
        create_app(node, [platform.app])
    assert variable in str(info.value)


async def test_lifespan_and_node_middleware_hooks(serve) -> None:
    platform.EVENTS.clear()
    server = await serve(apps=(platform.app,))
    assert platform.EVENTS == ["start demo hello"]
    async with httpx.AsyncClient(base_url=server.http) as client:
        blocked = await client.get("/blocked-by-demo")  # not under /demo: node-wide
        assert blocked.status_code == 451 and blocked.text == "gated by demo"
    await server.stop()
    assert platform.EVENTS == ["start demo hello", "stop demo"]


async def test_clashing_names_are_clear_errors(redis_url: str) -> None:
    other = App(name="other", title="Other", objects={"demo_room": Room})
    node = Node(Settings(**TEST_SETTINGS), redis_url)
    with pytest.raises(ConfigurationError, match=r"'demo_room' of app 'other'.*app 'demo'"):
        create_app(node, [platform.app, other])
    with pytest.raises(ConfigurationError, match="two apps are named"):
        create_app(node, [platform.app, platform.app.with_settings(DemoConfig())])
    for bad in ("static", "Chat", "", "a/b"):
        with pytest.raises(ConfigurationError):
            App(name=bad, title="x")


async def open_room(server, name: str, **query: str):
    q = "&".join(f"{k}={v}" for k, v in query.items())
    return await connect(f"{server.ws}/demo/rooms/{name}/ws?{q}", open_timeout=5)


async def test_tags_change_after_accept_and_broadcast_selects_by_tag(serve) -> None:
    server = await serve(apps=(platform.app,))
    a, b, c = [await open_room(server, "tags") for _ in range(3)]
    await b.send("admit")  # b leaves "waiting"
    await a.send("to-waiting")
    assert await asyncio.wait_for(a.recv(), 5) == "for the waiting"
    assert await asyncio.wait_for(c.recv(), 5) == "for the waiting"
    await b.send("to-others")  # everyone open but b
    assert await asyncio.wait_for(a.recv(), 5) == "for the others"
    assert await asyncio.wait_for(c.recv(), 5) == "for the others"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(b.recv(), 0.3)  # b got neither
    await b.send("where")
    assert await asyncio.wait_for(b.recv(), 5) == server.node.node_id
    for ws in (a, b, c):
        await ws.close()


async def test_a_refused_handshake_says_why(serve) -> None:
    server = await serve(apps=(platform.app,))
    with pytest.raises(InvalidStatus) as info:
        await open_room(server, "picky", refuse="1")
    assert info.value.response.status_code == 404
    assert info.value.response.body == b"no such room"


async def test_background_work_keeps_an_object_in_memory_until_it_ends(serve) -> None:
    server = await serve(apps=(platform.app,), hibernate_after=0.1, sweep_interval=0.05)
    node = server.node
    ws = await open_room(server, "busy")

    def in_memory() -> bool:
        return any(i.startswith("demo_room:") for i in node.live_ids())

    await ws.send("slow")  # 0.5 s of background work
    await asyncio.sleep(0.35)
    assert in_memory()  # well past hibernate_after, but the work is not done
    for _ in range(40):
        await asyncio.sleep(0.05)
        if not in_memory():
            break
    assert not in_memory()  # then it hibernates
    stub = node.namespace("demo_room").get_by_name("busy")
    assert await stub.call("greeting") == "hello"
    storage_value = node.records[("demo_room", stub.id.hex)].storage
    assert storage_value is not None and await storage_value.get("finished") == ["slow"]
    await ws.close()


async def test_an_objects_exception_reaches_a_page_without_its_text(serve) -> None:
    server = await serve(apps=(platform.app,))
    async with httpx.AsyncClient(base_url=server.http) as client:
        failed = await client.get("/demo/fail")
    assert failed.status_code == 500
    assert failed.text == "internal error (ValueError)"
    assert failed.headers["x-error-code"] == "rpc_error"


async def test_an_app_in_its_own_module_serves_its_static_folder_beside_it(serve, tmp_path) -> None:
    # An app outside this repository cannot put its scripts in the runtime's static/ tree,
    # and the CSP refuses inline scripts: its own folder is served at /<name>/static/.
    from examples.counter import app as counter_app
    from tests.support import sideapp

    server = await serve(apps=(sideapp.app, counter_app))
    async with httpx.AsyncClient(base_url=server.http) as client:
        page = (await client.get("/side/")).text
        assert '<script src="/side/static/side.js"></script>' in page
        script = await client.get("/side/static/side.js")
        assert script.status_code == 200
        assert script.text == (sideapp.HERE / "static" / "side.js").read_text()
        assert "javascript" in script.headers["content-type"]
        assert (await client.get("/side/static/nothing.js")).status_code == 404
        assert (await client.get("/side/static/../__init__.py")).status_code == 404
        # The string form names a folder of the top-level static/ tree, as before.
        assert (await client.get("/counter/static/counter.js")).status_code == 200
    with pytest.raises(ConfigurationError, match="does not exist"):
        App(name="lost", title="Lost", static=tmp_path / "nowhere")
