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
    await expect(ada.locator("#roster li")).to_have_text(["Ada(you)", "Bob"])
    await expect(bob.locator("#roster li")).to_have_text(["Bob(you)", "Ada"])
    await expect(ada.locator(".log .event")).to_have_text(["Bob joined"])
    await say(ada, "Hello Bob <b>not bold</b>")
    await expect(bob.locator(".log .msg .text")).to_have_text(["Hello Bob <b>not bold</b>"])
    await say(bob, "Hi Ada")
    await expect(ada.locator(".log .msg .text")).to_have_text(
        ["Hello Bob <b>not bold</b>", "Hi Ada"]
    )
    await expect(ada.locator(".log .msg.mine .who")).to_have_text(["Ada"])
    await bob.close()
    await expect(ada.locator("#roster li")).to_have_text(["Ada(you)"])
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
    await expect(page.locator("#roster li")).to_have_text(["Dee(you)", "Eve"])


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
    await expect(page.locator("#roster li")).to_have_text(["Jo(you)", "Ivy"], timeout=10_000)
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
        await expect(page.locator("#count")).to_have_text(str(31 + n))  # two Guses (browsers)
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


PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 800}}


async def test_two_people_named_ada_are_told_apart(serve, browser, pages) -> None:
    server = await serve(apps=(make_app(NO_LIMIT),))
    first = await new_page(browser, pages, **DESKTOP)
    second = await new_page(browser, pages, **PHONE)
    await join(first, server.http, "twins", "Ada")
    await join(second, server.http, "twins", "Ada")
    # Two people, not one person twice: each is listed, each with a tag, "(you)" on one.
    for page in (first, second):
        await expect(page.locator("#count")).to_have_text("2")
        await expect(page.locator("#roster li")).to_have_count(2)
        await expect(page.locator("#roster .tag")).to_have_count(2)
        await expect(page.locator("#roster li.me")).to_have_count(1)
    mine = await first.locator("#roster li.me .tag").inner_text()
    theirs = await second.locator("#roster li.me .tag").inner_text()
    assert mine != theirs and mine.startswith("#") and len(mine) == 5
    # The newcomer's join is news to the first Ada, with the newcomer's tag.
    await expect(first.locator(".log .event")).to_have_text([f"Ada{theirs} joined"])
    await say(second, "I am the other Ada")
    await say(first, "hello twin")
    for page in (first, second):
        await expect(page.locator(".log .msg .text")).to_have_text(
            ["I am the other Ada", "hello twin"]
        )
    # Each sees only their own message as theirs, and every message says whose it is.
    await expect(first.locator(".log .msg.mine .text")).to_have_text(["hello twin"])
    await expect(second.locator(".log .msg.mine .text")).to_have_text(["I am the other Ada"])
    await expect(first.locator(".log .msg .who .tag")).to_have_text([theirs, mine])
    # A reload is the same person (the browser's key), not a third Ada.
    await second.reload()
    await expect(second.locator("#status")).to_have_text("connected", timeout=10_000)
    await expect(second.locator("#roster li.me .tag")).to_have_text(theirs)
    await expect(second.locator(".log .msg.mine .text")).to_have_text(["I am the other Ada"])
    await expect(first.locator("#count")).to_have_text("2")
    await second.close()
    await expect(first.locator(".log .event").last).to_have_text(f"Ada{theirs} left")
    await expect(first.locator("#roster li")).to_have_count(1)


async def test_a_rate_limited_sender_sees_a_countdown_that_ends(serve, browser, pages) -> None:
    config = ChatConfig(rate_limit=True, rate_interval=2, rate_grace=2)  # 2 pass, then wait
    server = await serve(apps=(make_app(config),), trusted_proxies=("127.0.0.1",))
    for n, size in enumerate((DESKTOP, PHONE)):
        # each as if from its own address: the limiter counts per address
        address = {"X-Forwarded-For": f"10.1.0.{n + 1}"}
        page = await new_page(browser, pages, extra_http_headers=address, **size)
        await join(page, server.http, f"limited-{n}", "Kim")
        await say(page, "one")
        await expect(page.locator(".log .msg .text")).to_have_text(["one"])
        await say(page, "two, refused")
        notice = page.locator("#cooldown")
        await expect(notice).to_be_visible()
        await expect(notice).to_contain_text("You can send again in")
        await expect(page.locator("#send")).to_be_disabled()
        await expect(page.locator("#message")).to_have_value("two, refused")  # not lost
        await expect(notice).to_be_hidden(timeout=6_000)  # the countdown runs out...
        await expect(page.locator("#send")).to_be_enabled()
        await page.press("#message", "Enter")  # ...and the message goes through
        await expect(page.locator(".log .msg .text")).to_have_text(["one", "two, refused"])
        # Cooling down again; a reconnect starts afresh, with no notice left over.
        await say(page, "three")
        await expect(notice).to_be_visible()
        await page.reload()
        await expect(page.locator("#status")).to_have_text("connected", timeout=10_000)
        await expect(notice).to_be_hidden()


async def test_an_empty_room_links_and_a_private_rooms_copy_link_on_a_phone(
    serve, browser, pages
) -> None:
    server = await serve(apps=(make_app(NO_LIMIT),))
    for size in (DESKTOP, PHONE):
        page = await new_page(browser, pages, **size)
        await page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        await page.goto(server.http + "/chat/")
        await page.fill("#name", "Lou")
        await page.click("#create-private")
        await expect(page.locator("#status")).to_have_text("connected", timeout=10_000)
        empty = page.locator("#empty")
        await expect(empty).to_be_visible()  # not a blank panel
        await expect(empty).to_contain_text("No messages yet")
        share = page.locator("#share")
        await expect(share).to_be_visible()
        box = await share.bounding_box()
        assert box is not None and box["x"] + box["width"] <= size["viewport"]["width"]
        await share.click()
        await expect(share).to_have_text("Copied")
        assert await page.evaluate("navigator.clipboard.readText()") == page.url
        await say(page, "read https://example.org/guide. then <b>reply</b>")
        await expect(empty).to_be_hidden()
        link = page.locator(".log .msg .text a")
        await expect(link).to_have_attribute("href", "https://example.org/guide")
        await expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
        await expect(page.locator(".log .msg .text")).to_have_text(
            "read https://example.org/guide. then <b>reply</b>"
        )
        assert await page.locator(".log .msg .text b").count() == 0  # text, never HTML


async def test_a_name_too_long_is_explained_not_cut(serve, browser, pages) -> None:
    server = await serve(apps=(make_app(NO_LIMIT),))
    for size in (DESKTOP, PHONE):
        page = await new_page(browser, pages, **size)
        await page.goto(server.http + "/chat/#long")
        long = "Ada Augusta King, Countess of Lovelace"  # 38 characters
        await page.fill("#name", long)
        await expect(page.locator("#name")).to_have_value(long)  # nothing cut
        await expect(page.locator("#name-count")).to_have_text("38/32: too long")
        await page.click("#join-public")
        await expect(page.locator("#join-error")).to_have_text(
            "A name is at most 32 characters; this one has 38."
        )
        await expect(page.locator("#chat")).to_be_hidden()
        await page.fill("#name", "Ada Lovelace")
        await page.click("#join-public")
        await expect(page.locator("#status")).to_have_text("connected", timeout=10_000)
