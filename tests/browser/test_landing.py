"""The landing page in a real browser, on a phone and a desktop viewport."""

from __future__ import annotations

import json

from playwright.async_api import expect
from websockets.asyncio.client import connect

from apps.chat import make_app as chat_app
from examples.counter import app as counter_app
from tests.browser.conftest import new_page, until
from tests.conftest import ARTIFACTS


async def test_landing_page_renders_on_desktop_and_phone(serve, browser, pages) -> None:
    server = await serve(apps=(counter_app,))
    for label, viewport in (("desktop", (1280, 800)), ("phone", (390, 844))):
        page = await new_page(
            browser, pages, viewport={"width": viewport[0], "height": viewport[1]}
        )
        await page.goto(server.http + "/")
        assert await page.title() == "Durable Objects on Redis"
        assert await page.locator("#node-id").inner_text() == "test-node"
        card = page.locator(".app-card a")
        assert await card.inner_text() == "Counter"
        # styles loaded: the card has a border radius from site.css
        radius = await page.locator(".app-card").evaluate(
            "el => getComputedStyle(el).borderTopLeftRadius"
        )
        assert radius not in ("", "0px")
        # no horizontal overflow on a phone
        overflow = await page.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth"
        )
        assert not overflow
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / f"landing-{label}.png"), full_page=True)
    await card.click()
    page = pages[-1]
    await page.wait_for_url("**/counter/")
    await page.fill("#name", "from-the-browser")
    await page.click("button")
    await until(page, "document.getElementById('out').textContent.length > 0")
    assert await page.locator("#out").inner_text() == "from-the-browser = 1"


async def test_landing_page_shows_an_apps_live_numbers_as_they_change(
    serve, browser, pages
) -> None:
    server = await serve(apps=(counter_app, chat_app()))
    page = await new_page(browser, pages)
    await page.goto(server.http + "/")
    chat = page.locator('.live[data-app="chat"]')
    await expect(chat).to_have_text("0 rooms open · 0 people connected", timeout=10_000)
    # Someone joins a room: the page, left open, catches up on its next refresh (every 5 s).
    ws = await connect(f"{server.ws}/chat/api/room/landing/websocket")
    await ws.send(json.dumps({"name": "Ada"}))
    while not json.loads(await ws.recv()).get("ready"):
        pass
    await expect(chat).to_have_text("1 rooms open · 1 people connected", timeout=12_000)
    await ws.close()  # the person leaves; the room stays until it has been idle a while
    await expect(chat).to_have_text("1 rooms open · 0 people connected", timeout=12_000)
