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
    await expect(admin.locator("#state")).to_contain_text("Live", timeout=10_000)
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
    # a bad value is refused with its reason, under its field, and nothing changes
    await admin.fill("input[name=session_duration]", "0")
    await admin.click("#save")
    error = admin.locator("#settings-session_duration-error")
    await expect(error).to_have_text("Enter a whole number from 1 to 86,400.")
    await expect(admin.locator("input[name=session_duration]")).to_be_focused()
    await expect(admin.locator("input[name=session_duration]")).to_have_attribute(
        "aria-invalid", "true"
    )
    # ...and one the page cannot judge is refused by the server, under its field too
    await admin.fill("input[name=session_duration]", "60")
    await admin.fill("input[name=gate_prefix]", "/static")
    await admin.click("#save")
    await expect(admin.locator("#settings-gate_prefix-error")).not_to_be_empty()
    await expect(error).to_be_hidden()


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
    # Placeholders, not values: nothing is filled in for the operator.
    await expect(page.locator("input[name=total_active_users]")).to_have_value("")
    await expect(page.locator("input[name=total_active_users]")).to_have_attribute(
        "placeholder", "e.g. 100"
    )
    await page.fill("input[name=name]", "Concert")
    await page.fill("input[name=total_active_users]", "5")
    await page.click("#create-button")  # the other two numbers are missing: said so
    await expect(page.locator("#create-new_users_per_minute-error")).to_have_text("Fill this in.")
    await expect(page.locator("#create-session_duration-error")).to_have_text("Fill this in.")
    await expect(page.locator("#created")).to_be_hidden()
    await page.fill("input[name=new_users_per_minute]", "60")
    await page.fill("input[name=session_duration]", "120")
    await page.select_option("select[name=queueing_method]", "random")
    await page.click("#create-button")
    await expect(page.locator("#created")).to_be_visible()
    await expect(page.locator("#create-new_users_per_minute-error")).to_be_hidden()
    await expect(page.locator("#created-name")).to_have_text("Concert")
    admin_link = await page.input_value("#created-admin")
    assert re.fullmatch(r".*/waiting-room/admin/[0-9a-f]{64}#token=.+", admin_link)
    await page.click("#created-open")
    await expect(page).to_have_url(re.compile(r"/waiting-room/admin/[0-9a-f]{64}$"))
    await expect(page.locator("#state")).to_contain_text("Live", timeout=10_000)
    await expect(page.locator("h1")).to_contain_text("Concert")
    await expect(page.locator("select[name=queueing_method]")).to_have_value("random")
    await expect(page.locator("#capacity")).to_have_text("5")
    token = admin_link.split("#token=", 1)[1]
    assert token not in await page.content()  # the admin link is shown on no other page
    await page.goto(server.http + "/waiting-room/")
    await expect(page.locator("#rooms li strong")).to_have_text(["Concert"])
    await expect(page.locator("#created")).to_be_hidden()  # shown once
    await page.get_by_role("link", name="admin page of Concert").click()  # the token came along
    await expect(page.locator("#state")).to_contain_text("Live", timeout=10_000)
    await page.goto(server.http + "/waiting-room/")
    for name, value in (("total_active_users", "1"), ("new_users_per_minute", "1")):
        await page.fill(f"input[name={name}]", value)
    await page.fill("input[name=session_duration]", "1")
    await page.fill("input[name=gate_prefix]", "/static")
    await page.click("#create-button")
    await expect(page.locator("#create-gate_prefix-error")).not_to_be_empty()


DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


async def test_the_waiting_page_is_honest_live_and_can_be_left(serve, browser, pages) -> None:
    server = await serve(apps=(make_app(FAST),))
    made = await create(server.http, name="Gig tickets")
    site = server.http + made["site_url"]
    inside = await new_page(browser, pages)
    await inside.goto(site)
    await expect(inside.locator("#site")).to_be_visible()
    for n, size in enumerate((DESKTOP, PHONE)):
        page = await new_page(browser, pages, **size)
        await queued(page, site, 1 if n == 0 else 2)
        # At the head of the line it still waits: the bar is not full.
        bar = page.locator("#progress")
        await expect(bar).to_have_attribute("aria-valuenow", "0")
        width = await page.locator("#bar").evaluate("el => el.getBoundingClientRect().width")
        assert width < 1, width
        fresh = page.locator("#freshness")
        await expect(fresh).to_have_attribute("data-kind", "ok")
        await expect(fresh).to_contain_text(re.compile(r"Live · updated \d"))
    first, second = pages[1], pages[2]
    # The first in line leaves it: the second moves up, and the first's page says goodbye,
    # under the site's own header.
    await first.click("#leave-line")
    await expect(first.locator("#bye-title")).to_have_text("You left the line")
    await expect(first.locator(".wr-brand")).to_have_text("Gig tickets")
    await expect(second.locator("#position")).to_have_text("1", timeout=10_000)
    await expect(second.locator("#progress")).to_have_attribute("aria-valuenow", "50")
    await first.get_by_role("link", name="Join the line again").click()
    await expect(first.locator("#position")).to_have_text("2")  # at the back


async def test_pausing_and_deleting_a_room_from_its_admin_page(serve, browser, pages) -> None:
    server = await serve(apps=(make_app(FAST),))
    made = await create(server.http, name="Sale", total_active_users=1)
    site = server.http + made["site_url"]
    inside = await new_page(browser, pages)
    await inside.goto(site)
    waiting = await new_page(browser, pages, **PHONE)
    await queued(waiting, site, 1)
    await expect(waiting.locator("#paused")).to_be_hidden()
    # Another device: the admin page alone asks for the admin link, which opens it.
    admin = await new_page(browser, pages, **PHONE)
    await admin.goto(f"{server.http}{made['admin_url']}")
    await expect(admin.locator("#unlock")).to_be_visible()
    await admin.fill("#token-input", "not-the-token")
    await admin.click("#unlock button")
    await expect(admin.locator("#unlock-error")).to_contain_text("does not open this room")
    await admin.fill(
        "#token-input", f"{server.http}{made['admin_url']}#token={made['admin_token']}"
    )
    await admin.click("#unlock button")
    await expect(admin.locator("#state")).to_contain_text("Live", timeout=10_000)
    # Pause: the waiting page says so, and a slot freed lets nobody in.
    await admin.click("#pause")
    await expect(admin.locator("#paused-banner")).to_be_visible()
    await expect(admin.locator("#pause")).to_have_text("Resume the line")
    await expect(waiting.locator("#paused")).to_be_visible()
    await expect(waiting.locator("#eta")).to_have_text("paused")
    await inside.click("#leave")
    await expect(inside.locator("#bye-title")).to_have_text("You left")
    await waiting.wait_for_timeout(500)
    await expect(waiting.locator("#waiting")).to_be_visible()  # still in line
    await admin.click("#pause")  # resume
    await expect(admin.locator("#paused-banner")).to_be_hidden()
    await expect(waiting.locator("#site")).to_be_visible(timeout=10_000)
    # Delete: asked first, then the room and its pages are gone.
    late = await new_page(browser, pages)
    await queued(late, site, 1)
    await admin.click("#delete")
    await expect(admin.locator("#delete-confirm")).to_be_visible()
    await admin.click("#delete-no")
    await expect(admin.locator("#delete-confirm")).to_be_hidden()
    await admin.click("#delete")
    await admin.click("#delete-yes")
    await expect(admin.locator("#notice")).to_have_text("The room “Sale” was deleted.")
    await expect(late.locator("#error-message")).to_have_text("No such room.", timeout=10_000)


async def test_the_admin_charts_fill_their_width_from_the_start(serve, browser, pages) -> None:
    server = await serve(apps=(make_app(FAST),))
    made = await create(server.http)
    admin = await new_page(browser, pages, **DESKTOP)
    await admin.goto(f"{server.http}{made['admin_url']}#token={made['admin_token']}")
    await expect(admin.locator("#state")).to_contain_text("Live", timeout=10_000)
    await admin.wait_for_timeout(3_000)  # a dozen samples, a few seconds' worth
    line = admin.locator("#chart-active polyline")
    await expect(line).to_have_count(1)
    xs = [float(p.split(",")[0]) for p in (await line.get_attribute("points") or "").split()]
    # 3 s of a 30 s span: a tenth of the width at least, not a sliver of ten minutes
    assert max(xs) - min(xs) > 0.07 * 530, xs
    await expect(admin.locator("#chart-active text").nth(2)).to_have_text("-30 s")
