"""The waiting room in a real Chromium: a waiting page turns into the site by itself, the
admin raises capacity and waiting pages move on live, and the chat behind a room."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from playwright.async_api import Page, Request, async_playwright, expect

from apps.chat import ChatConfig
from apps.chat import make_app as make_chat
from apps.waiting_room import WaitingRoomConfig, make_app
from tests.browser.conftest import CHROMIUM, FLAGS, new_page

FAST = WaitingRoomConfig(push_interval=0.05, gate_cache_seconds=0.5, sample_interval=0.25)


async def create(base: str, **settings: object) -> dict:
    body = {
        "total_active_users": 1,
        "new_users_per_minute": 1000,
        "session_duration": 60,
        "queueing_method": "fifo",
        **settings,
    }
    async with httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/waiting-room/api/rooms", json=body)
        assert r.status_code == 201, r.text
        return r.json()


async def queued(page: Page, url: str, position: int) -> None:
    await page.goto(url)
    await expect(page.locator("#waiting")).to_be_visible()
    await expect(page.locator("#position")).to_have_text(str(position), timeout=10_000)


async def test_a_waiting_page_turns_into_the_site_when_a_slot_frees(serve, browser, pages) -> None:
    server = await serve(apps=(make_app(FAST),))
    made = await create(server.http, name="Gig tickets")
    site = server.http + made["site_url"]
    ada = await new_page(browser, pages)
    bob = await new_page(browser, pages, viewport={"width": 390, "height": 844})  # a phone
    await ada.goto(site)
    await expect(ada.locator("#page-title")).to_have_text("Welcome")
    await queued(bob, site, 1)
    await expect(bob.locator("#eta")).not_to_have_text("unknown")
    await expect(bob.locator(".wr-brand")).to_have_text("Gig tickets")
    await ada.get_by_role("link", name="Tickets").click()  # browsing renews her session
    await expect(ada.locator("#page-title")).to_have_text("Tickets")
    await ada.click("#leave")
    await expect(ada.locator("#bye-title")).to_have_text("You left")
    await expect(bob.locator("#site")).to_be_visible(timeout=10_000)  # by itself
    await expect(bob.locator("#page-title")).to_have_text("Welcome")
    await bob.reload()
    await expect(bob.locator("#site")).to_be_visible()  # admitted: the cookie says who bob is


async def test_the_admin_raises_capacity_and_waiting_pages_move_on(serve, browser, pages) -> None:
    server = await serve(apps=(make_app(FAST),))
    made = await create(server.http)
    site = server.http + made["site_url"]
    first = await new_page(browser, pages)
    await first.goto(site)
    await expect(first.locator("#site")).to_be_visible()
    waiting = [await new_page(browser, pages) for _ in range(3)]
    for i, page in enumerate(waiting, 1):
        await queued(page, site, i)
    admin = await new_page(browser, pages, viewport={"width": 1280, "height": 900})
    await admin.goto(f"{server.http}{made['admin_url']}#token={made['admin_token']}")
    await expect(admin.locator("#state")).to_have_text("Live", timeout=10_000)
    assert "token" not in admin.url  # the token left the address bar
    await expect(admin.locator("#active")).to_have_text("1")
    await expect(admin.locator("#queued")).to_have_text("3")
    await expect(admin.locator("#chart-queued polyline")).to_have_count(1)
    await admin.fill("input[name=total_active_users]", "3")
    await admin.fill("input[name=title]", "Nearly there")
    await admin.click("#save")
    await expect(admin.locator("#saved")).to_contain_text("Saved")
    for page in waiting[:2]:
        await expect(page.locator("#site")).to_be_visible(timeout=10_000)
    await expect(waiting[2].locator("#position")).to_have_text("1")
    await expect(admin.locator("#capacity")).to_have_text("3")
    await expect(admin.locator("#active")).to_have_text("3", timeout=10_000)
    await waiting[2].reload()
    await expect(waiting[2].locator("#title")).to_have_text("Nearly there")
    # a bad value is refused with its reason, and nothing changes
    await admin.fill("input[name=session_duration]", "0")
    await admin.evaluate("document.getElementById('settings').noValidate = true")
    await admin.click("#save")
    await expect(admin.locator("#settings-error")).to_contain_text("session_duration")


async def test_the_chat_behind_a_room(serve, browser, pages) -> None:
    server = await serve(apps=(make_app(FAST), make_chat(ChatConfig(rate_limit=False))))
    await create(server.http, gate_prefix="/chat", session_duration=3)
    ada = await new_page(browser, pages)
    await ada.goto(server.http + "/chat/#lobby")
    await ada.fill("#name", "Ada")
    await ada.click("#join-public")
    await expect(ada.locator("#status")).to_have_text("connected", timeout=10_000)
    bob = await new_page(browser, pages)
    await bob.goto(server.http + "/chat/")
    await expect(bob).to_have_url(re.compile(r"/waiting-room/r/[0-9a-f]{64}/\?return=/chat/"))
    await expect(bob.locator("#position")).to_have_text("1")
    # ada sends no request for 3 s (her socket is open, but sessions count requests): her
    # slot ends, bob's waiting page goes to the chat by itself, and they talk
    await expect(bob.locator("#name")).to_be_visible(timeout=15_000)
    assert bob.url.endswith("/chat/")
    await bob.fill("#name", "Bob")
    await bob.fill("#room", "lobby")
    await bob.click("#join-public")
    await expect(bob.locator("#status")).to_have_text("connected", timeout=10_000)
    await bob.fill("#message", "made it in")
    await bob.press("#message", "Enter")
    await expect(ada.locator(".log .msg .text")).to_have_text(["made it in"])


async def test_a_browser_that_blocks_cookies_is_not_reloaded_again_and_again(
    serve, tmp_path: Path
) -> None:
    server = await serve(apps=(make_app(FAST),))
    made = await create(server.http)
    site = server.http + made["site_url"]
    # Chromium set to block every site's cookies (and with them session storage): the
    # waiting page's socket never has a cookie and is refused with 4001 each time.
    (tmp_path / "Default").mkdir()
    blocked = {"profile": {"default_content_setting_values": {"cookies": 2}}}
    (tmp_path / "Default" / "Preferences").write_text(json.dumps(blocked))
    async with async_playwright() as p:
        context = await p.chromium.launch_persistent_context(
            str(tmp_path), executable_path=CHROMIUM, args=FLAGS, headless=True
        )
        try:
            first = await context.new_page()
            await first.goto(site)  # (takes the only slot)
            page = await context.new_page()
            loads: list[Request] = []
            page.on("request", lambda request: loads.append(request))
            await page.goto(site)
            await expect(page.locator("#waiting")).to_be_visible()
            await expect(page.locator("#live")).to_have_text("Reconnecting…", timeout=10_000)
            await page.wait_for_timeout(3_000)
            documents = [r.url for r in loads if r.resource_type == "document"]
            assert len(documents) <= 2, documents  # one reload at most, then HTTP and backoff
            await expect(page.locator("#position")).to_have_text(re.compile(r"\d+"))
        finally:
            await context.close()


async def test_an_operator_creates_a_room_from_the_start_page(serve, browser, pages) -> None:
    server = await serve(apps=(make_app(FAST),))
    page = await new_page(browser, pages)
    await page.goto(server.http + "/waiting-room/")
    await expect(page.locator("#empty")).to_be_visible()
    await page.fill("input[name=name]", "Concert")
    await page.fill("input[name=total_active_users]", "5")
    await page.select_option("select[name=queueing_method]", "random")
    await page.click("#create-button")
    await expect(page).to_have_url(re.compile(r"/waiting-room/admin/[0-9a-f]{64}$"))
    await expect(page.locator("#state")).to_have_text("Live", timeout=10_000)
    await expect(page.locator("h1")).to_contain_text("Concert")
    await expect(page.locator("select[name=queueing_method]")).to_have_value("random")
    await expect(page.locator("#capacity")).to_have_text("5")
    await page.goto(server.http + "/waiting-room/")
    await expect(page.locator("#rooms li strong")).to_have_text(["Concert"])
    await page.get_by_role("link", name="admin").click()  # the token came along
    await expect(page.locator("#state")).to_have_text("Live", timeout=10_000)
    await page.goto(server.http + "/waiting-room/")
    await page.fill("input[name=gate_prefix]", "/static")
    await page.click("#create-button")
    await expect(page.locator("#create-error")).to_contain_text("gate_prefix")
