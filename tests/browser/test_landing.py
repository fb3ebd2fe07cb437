"""The landing page in a real browser, on a phone and a desktop viewport."""

from __future__ import annotations

import json

import httpx
from playwright.async_api import expect
from websockets.asyncio.client import connect

from apps.chat import make_app as chat_app
from examples.counter import app as counter_app
from tests.browser.conftest import new_page
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
        # what to try first, and the tutorial's counter is a link
        assert "two windows" in await page.locator(".app-card .try").inner_text()
        assert await page.locator(".for-developers a").get_attribute("href") == "/counter/"
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
    await page.wait_for_url("**/counter/**")
    # The count shows on load, and stays live: another window's "add one" shows here.
    await page.fill("#name", "from-the-browser")
    await page.click("#f button")
    await expect(page.locator("#value")).to_have_text("0")
    await expect(page.locator("#state")).to_have_attribute("data-kind", "ok")
    other = await new_page(browser, pages, viewport={"width": 390, "height": 844})
    await other.goto(server.http + "/counter/#from-the-browser")
    await expect(other.locator("#value")).to_have_text("0")
    await expect(other.locator("#add")).to_be_enabled()
    await other.click("#add")
    await expect(other.locator("#value")).to_have_text("1")
    await expect(page.locator("#value")).to_have_text("1")  # live, no reload
    radius = await page.locator(".counter-card").evaluate(
        "el => getComputedStyle(el).borderTopLeftRadius"
    )
    assert radius not in ("", "0px")  # styled


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


async def test_an_unknown_address_gets_a_page_with_a_way_back(serve, browser, pages) -> None:
    server = await serve(apps=(counter_app, chat_app()))
    for viewport in ((1280, 800), (390, 844)):
        page = await new_page(
            browser, pages, viewport={"width": viewport[0], "height": viewport[1]}
        )
        answer = await page.goto(server.http + "/no/such/page")
        assert answer is not None and answer.status == 404
        assert await page.title() == "Not found · Durable Objects on Redis"
        assert await page.locator("html").get_attribute("lang") == "en"
        await expect(page.locator("#not-found-title")).to_have_text("There is no page here")
        await expect(page.locator(".not-found-why code")).to_have_text("/no/such/page")
        await page.get_by_role("link", name="All apps").last.click()
        await page.wait_for_url(server.http + "/")
        # Inside an app, the way back leads to the app too.
        await page.goto(server.http + "/chat/nothing-here")
        await expect(page.locator(".not-found-ways a")).to_have_text(
            ["Chat: start page", "All apps"]
        )
    # Programs keep what they always got: plain text, and the chat's pinned 404s.
    async with httpx.AsyncClient(base_url=server.http) as http:
        r = await http.get("/no/such/page", headers={"Accept": "application/json"})
        assert (r.status_code, r.text) == (404, "Not Found")
        r = await http.get("/chat/api/nothing")
        assert (r.status_code, r.text) == (404, "Not found")
        r = await http.get(f"/chat/api/room/{'ab' * 32}/websocket", headers={"Accept": "text/html"})
        assert (r.status_code, r.text) == (404, "Invalid room id")
