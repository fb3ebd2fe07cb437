"""The chat UI in a real Chromium: two users, reloads, a node restart, phone and desktop."""

from __future__ import annotations

import asyncio
import json
import signal

from playwright.async_api import Page, expect
from websockets.asyncio.client import connect

from apps.chat import ChatConfig, make_app
from runtime.storage.embedded import free_port
from tests.browser.conftest import new_page
from tests.conftest import ARTIFACTS
from tests.support.servers import NodeProcess

NO_LIMIT = ChatConfig(rate_limit=False)


async def join(page: Page, base: str, room: str, name: str) -> None:
    await page.goto(f"{base}/chat/#{room}")
    await page.fill("#name", name)
    await page.click("#join-public")
    await expect(page.locator("#status")).to_have_text("connected", timeout=10_000)


async def say(page: Page, text: str) -> None:
    await page.fill("#message", text)
    await page.press("#message", "Enter")


async def test_two_users_chat_and_see_each_other(serve, browser, pages) -> None:
    server = await serve(apps=(make_app(NO_LIMIT),))
    ada = await new_page(browser, pages)
    bob = await new_page(browser, pages)
    await join(ada, server.http, "browsers", "Ada")
    await join(bob, server.http, "browsers", "Bob")
    for page in (ada, bob):
        await expect(page.locator("#roster li")).to_have_text(["Ada", "Bob"])
    await expect(ada.locator(".log .event")).to_have_text(["Bob joined"])
    await say(ada, "Hello Bob <b>not bold</b>")
    await expect(bob.locator(".log .msg .text")).to_have_text(["Hello Bob <b>not bold</b>"])
    await say(bob, "Hi Ada")
    await expect(ada.locator(".log .msg .text")).to_have_text(
        ["Hello Bob <b>not bold</b>", "Hi Ada"]
    )
    await expect(ada.locator(".log .msg.mine .who")).to_have_text(["Ada"])
    await bob.close()
    await expect(ada.locator("#roster li")).to_have_text(["Ada"])
    await expect(ada.locator(".log .event").last).to_have_text("Bob left")


async def test_a_reload_shows_the_history_once(serve, browser, pages) -> None:
    server = await serve(apps=(make_app(NO_LIMIT),))
    page = await new_page(browser, pages)
    await join(page, server.http, "reloaded", "Cy")
    for text in ("one", "two", "three"):
        await say(page, text)
    await expect(page.locator(".log .msg .text")).to_have_text(["one", "two", "three"])
    await page.reload()  # name and room are remembered: it joins by itself
    await expect(page.locator("#status")).to_have_text("connected", timeout=10_000)
    await expect(page.locator(".log .msg .text")).to_have_text(["one", "two", "three"])
    await asyncio.sleep(0.3)
    assert await page.locator(".log .msg").count() == 3


async def test_a_private_room_from_the_button(serve, browser, pages) -> None:
    server = await serve(apps=(make_app(NO_LIMIT),))
    page = await new_page(browser, pages)
    await page.goto(server.http + "/chat/")
    await page.fill("#name", "Dee")
    await page.click("#create-private")
    await expect(page.locator("#status")).to_have_text("connected", timeout=10_000)
    room = page.url.split("#", 1)[1]
    assert len(room) == 64 and all(c in "0123456789abcdef" for c in room)
    await expect(page.locator("#title")).to_have_text("Private room")
    friend = await new_page(browser, pages)
    await join(friend, server.http, room, "Eve")  # the shared link works
    await expect(page.locator("#roster li")).to_have_text(["Dee", "Eve"])


async def test_a_room_the_server_refuses_is_explained_not_retried(serve, browser, pages):
    server = await serve(apps=(make_app(NO_LIMIT),))
    page = await new_page(browser, pages)
    await page.goto(f"{server.http}/chat/")
    await page.fill("#name", "Hal")
    await page.evaluate("location.hash = '#' + 'ab'.repeat(32)")  # 64 hex, not minted here
    await page.click("#join-public")  # the link's room is what the form joins
    await expect(page.locator("#banner")).to_contain_text("Invalid room id", timeout=10_000)
    await expect(page.locator("#status")).to_have_text("refused")
    await page.evaluate("location.hash = '#' + 'x'.repeat(40)")  # too long for a room
    await expect(page.locator("#join-error")).to_contain_text("1 to 32 characters")


async def test_switching_rooms_starts_clean(serve, browser, pages) -> None:
    server = await serve(apps=(make_app(NO_LIMIT),))
    other = await new_page(browser, pages)
    await join(other, server.http, "second", "Ivy")
    page = await new_page(browser, pages)
    await join(page, server.http, "first", "Jo")
    await page.evaluate("location.hash = '#second'")
    await expect(page.locator("#roster li")).to_have_text(["Ivy", "Jo"], timeout=10_000)
    await expect(page.locator("#status")).to_have_text("connected")
    assert await page.locator(".log .event").count() == 0  # the roster replay is not news


async def test_the_page_reconnects_after_a_node_restart(redis_url, browser, pages, tmp_path):
    port = free_port()
    env = {"CHAT_RATE_LIMIT": "0"}

    def start(n: int) -> NodeProcess:
        return NodeProcess(
            redis_url=redis_url,
            node_id=f"ui-{n}",
            apps=(),
            suite=True,
            env=env,
            port=port,
            log_path=tmp_path / f"{n}.log",
        ).start()

    node = start(1)
    try:
        page = await new_page(browser, pages)
        await join(page, node.http, "restarts", "Flo")
        await say(page, "before the restart")
        await expect(page.locator(".log .msg .text")).to_have_text(["before the restart"])
        assert node.stop(signal.SIGTERM) == 0  # clients get 1012 and reconnect
        await expect(page.locator("#status")).to_contain_text("reconnecting", timeout=5_000)
        node = start(2)
        await expect(page.locator("#status")).to_have_text("connected", timeout=20_000)
        await say(page, "after the restart")
        await expect(page.locator(".log .msg .text")).to_have_text(
            ["before the restart", "after the restart"]
        )
    finally:
        node.stop()


async def test_layout_holds_on_a_phone_and_a_desktop(serve, browser, pages) -> None:
    server = await serve(apps=(make_app(NO_LIMIT),))
    crowd = []
    for i in range(30):
        # these clients never read: do not wait long for their closing handshakes
        ws = await connect(f"{server.ws}/chat/api/room/crowded/websocket", close_timeout=0.5)
        await ws.send(json.dumps({"name": f"user-with-a-long-name-{i:02d}"}))
        crowd.append(ws)
    await crowd[0].send(json.dumps({"message": "W" * 256}))
    await crowd[1].send(json.dumps({"message": "a normal sentence, " * 12}))
    for n, (label, size) in enumerate((("phone", (390, 844)), ("desktop", (1280, 800)))):
        page = await new_page(browser, pages, viewport={"width": size[0], "height": size[1]})
        await page.goto(f"{server.http}/chat/")
        await expect(page.locator("#chat")).to_be_hidden()  # only the join form shows
        await expect(page.locator("#join")).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / f"chat-join-{label}.png"))
        await join(page, server.http, "crowded", "Gus")
        await expect(page.locator("#count")).to_have_text(str(31 + n))  # Gus is there twice
        await expect(page.locator(".log .msg")).to_have_count(2)
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth"
        )
        assert not overflow, label
        box = await page.locator("#send").bounding_box()
        assert box is not None and box["y"] + box["height"] <= size[1]  # input stays on screen
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / f"chat-{label}.png"))
    await asyncio.gather(*(ws.close() for ws in crowd))
