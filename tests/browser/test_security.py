"""Every page of the suite works under its Content-Security-Policy (no inline scripts), and
refuses to be framed by another site."""

from __future__ import annotations

from apps.chat import make_app as chat_app
from apps.whiteboard import make_app as whiteboard_app
from examples.counter import app as counter_app
from tests.browser.conftest import new_page, until


async def test_pages_run_under_their_csp_without_violations(serve, browser, pages) -> None:
    server = await serve(apps=(chat_app(), whiteboard_app(), counter_app))
    page = await new_page(browser, pages)
    complaints: list[str] = []
    page.on(
        "console",
        lambda m: (
            complaints.append(m.text)
            if "Content Security Policy" in m.text or "Refused to" in m.text
            else None
        ),
    )
    for path in ("/", "/chat/", "/whiteboard/", "/whiteboard/b/csp-check", "/counter/"):
        await page.goto(server.http + path)
        await page.wait_for_load_state("networkidle")
    # The board's bundle ran (its missing-script notice did not show), and the counter's
    # form (its script is a file) still works.
    await page.goto(server.http + "/whiteboard/b/csp-check")
    await until(page, "window.whiteboard !== undefined")
    assert "missing" not in await page.locator("#status").inner_text()
    await page.goto(server.http + "/counter/")
    await page.fill("#name", "csp")
    await page.click("#f button")
    await until(page, "document.getElementById('value').textContent === '0'")
    await until(page, "!document.getElementById('add').disabled")
    await page.click("#add")
    await until(page, "document.getElementById('value').textContent === '1'")
    assert complaints == []


async def test_a_page_of_another_site_cannot_frame_the_suite(serve, browser, pages) -> None:
    server = await serve(apps=(chat_app(),))
    page = await new_page(browser, pages)
    refusals: list[str] = []
    page.on("console", lambda m: refusals.append(m.text) if "frame" in m.text else None)
    # Another document framing the chat (even one of the same origin: frame-ancestors 'none').
    await page.set_content(f'<iframe id="f" src="{server.http}/chat/"></iframe>')
    await until(page, "document.getElementById('f') !== null")
    for _ in range(50):
        if refusals:
            break
        await page.wait_for_timeout(100)
    assert any("frame-ancestors" in r or "X-Frame-Options" in r for r in refusals), refusals
    assert await page.frame_locator("#f").locator("#join").count() == 0
