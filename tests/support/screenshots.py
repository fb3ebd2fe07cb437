"""Screenshots of each app at a desktop and a phone size, for the README and the apps' docs.

    .venv/bin/python -m tests.support.screenshots            # writes docs/images/*.png

It starts a Valkey and a node of the whole suite (as ``make run`` does, on free ports, data
in a temporary folder), plays each app with two to four people in Debian's Chromium, and
keeps one picture per app and size: ``docs/images/<app>-desktop.png`` (1280 x 800) and
``docs/images/<app>-phone.png`` (390 x 844). Not a test: the pictures change whenever the
pages do, and people judge them by eye.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page, async_playwright, expect

from apps.chat import ChatConfig
from apps.chat import make_app as chat_app
from apps.lobby import LobbyConfig
from apps.lobby import make_app as lobby_app
from apps.waiting_room import WaitingRoomConfig
from apps.waiting_room import make_app as waiting_room_app
from apps.whiteboard import make_app as whiteboard_app
from examples.counter import app as counter_app
from runtime import Node, Settings
from runtime.storage.embedded import ValkeyProcess
from tests.browser.conftest import CHROMIUM, FLAGS
from tests.support.servers import ROOT, LocalServer

OUT = ROOT / "docs" / "images"
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


class Shots:
    def __init__(self, browser: Browser, base: str) -> None:
        self.browser = browser
        self.base = base

    async def page(self, size: dict[str, Any], user: str | None = None) -> Page:
        context = await self.browser.new_context(**size)
        if user is not None:  # the whiteboard's kept name
            await context.add_init_script(
                "localStorage.setItem('whiteboard.user', JSON.stringify("
                f"{{name: {json.dumps(user)}, color: '#1971c2'}}))"
            )
        return await context.new_page()

    async def save(self, page: Page, name: str) -> None:
        await page.wait_for_timeout(400)  # (animations settle)
        path = OUT / f"{name}.png"
        await page.screenshot(path=str(path))
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1024} KiB")


async def landing(s: Shots) -> None:
    for size, label in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page = await s.page(size)
        await page.goto(s.base + "/")
        await expect(page.locator('.live[data-app="chat"]')).not_to_be_empty(timeout=10_000)
        await s.save(page, f"landing-{label}")


async def chat(s: Shots) -> None:
    people = [("Ada", DESKTOP), ("Ada", PHONE), ("Grace", PHONE)]
    pages = []
    for name, size in people:
        page = await s.page(size)
        await page.goto(s.base + "/chat/#design-review")
        await page.fill("#name", name)
        await page.click("#join-public")
        await expect(page.locator("#status")).to_have_text("connected", timeout=10_000)
        pages.append(page)
    lines = [
        (2, "Morning! The draft is up: https://example.org/specs/board-v2"),
        (0, "Reading it now. The export section looks good."),
        (1, "Two of us called Ada today, it seems"),
        (0, "Ha, the tags tell us apart. I am the one on the laptop."),
        (2, "Let's meet at 11 to go through the open questions."),
    ]
    for who, text in lines:
        await pages[who].fill("#message", text)
        await pages[who].press("#message", "Enter")
        await expect(pages[0].locator(".log .msg .text").last).to_have_text(text)
    await s.save(pages[0], "chat-desktop")
    await s.save(pages[1], "chat-phone")


async def drag(page: Page, points: list[tuple[float, float]]) -> None:
    box = await page.locator("#canvas").bounding_box()
    assert box is not None
    await page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    await page.mouse.down()
    for x, y in points[1:]:
        await page.mouse.move(box["x"] + x, box["y"] + y, steps=4)
    await page.mouse.up()


async def whiteboard(s: Shots) -> None:
    ada = await s.page(DESKTOP, "Ada Lovelace")
    await ada.goto(s.base + "/whiteboard/")
    await ada.click("#new-board")
    await ada.wait_for_url("**/whiteboard/b/*")
    await expect(ada.locator("#status")).to_have_text("connected", timeout=10_000)
    await ada.fill("#title", "Kitchen layout")
    await ada.press("#title", "Enter")
    await ada.click("[data-tool=rect]")
    await drag(ada, [(330, 170), (760, 470)])
    await ada.click("[data-color='#1971c2']")
    await drag(ada, [(360, 200), (520, 300)])
    await ada.click("[data-tool=ellipse]")
    await ada.click("[data-color='#2f9e44']")
    await drag(ada, [(580, 330), (720, 440)])
    await ada.click("[data-tool=pen]")
    await ada.click("[data-color='#e03131']")
    await drag(ada, [(400, 520), (480, 560), (560, 520), (640, 570), (700, 540)])
    await ada.click("[data-tool=text]")
    box = await ada.locator("#canvas").bounding_box()
    assert box is not None
    await ada.mouse.click(box["x"] + 380, box["y"] + 130)
    await ada.keyboard.type("Window side")
    await ada.keyboard.press("Escape")
    await ada.click("[data-tool=select]")
    bob = await s.page(PHONE, "Bob")
    await bob.goto(ada.url)
    await expect(bob.locator("#status")).to_have_text("connected", timeout=10_000)
    cy = await s.page(DESKTOP, "Cy Twombly")
    await cy.goto(ada.url)
    await expect(cy.locator("#status")).to_have_text("connected", timeout=10_000)
    cbox = await cy.locator("#canvas").bounding_box()
    assert cbox is not None
    await cy.mouse.move(cbox["x"] + 820, cbox["y"] + 260)
    await bob.locator("#zoom-fit").click()
    await s.save(ada, "whiteboard-desktop")
    await s.save(bob, "whiteboard-phone")


async def waiting_room(s: Shots) -> None:
    admin = await s.page(DESKTOP)
    await admin.goto(s.base + "/waiting-room/")
    for name, value in (
        ("name", "Gig tickets"),
        ("total_active_users", "2"),
        ("new_users_per_minute", "30"),
        ("session_duration", "120"),
    ):
        await admin.fill(f"input[name={name}]", value)
    await admin.click("#create-button")
    await expect(admin.locator("#created")).to_be_visible()
    site = await admin.input_value("#created-site")
    admin_url = await admin.input_value("#created-admin")
    visitors = []
    for _ in range(5):
        page = await s.page(PHONE)
        await page.goto(site)
        visitors.append(page)
    await admin.goto(admin_url)
    await expect(admin.locator("#state")).to_contain_text("Live", timeout=10_000)
    await admin.wait_for_timeout(6_000)  # some samples for the charts
    await visitors[1].click("#leave")  # one leaves: the line moves
    await admin.wait_for_timeout(4_000)
    await s.save(admin, "waiting-room-desktop")
    await expect(visitors[-1].locator("#position")).to_have_text("2", timeout=10_000)
    await s.save(visitors[-1], "waiting-room-phone")


async def lobby(s: Shots) -> None:
    ann = await s.page(DESKTOP)
    await ann.goto(s.base + "/lobby/")
    await ann.fill("#my-name", "Ann")
    await ann.fill("#lobby-name", "Friday night")
    await ann.select_option("#max-players", "4")
    await ann.click("#create")
    await expect(ann.locator("#lobby-code")).not_to_be_empty()
    code = (await ann.locator("#lobby-code").text_content() or "").strip()
    others = []
    for name in ("Bob", "Cy"):
        page = await s.page(PHONE)
        await page.goto(s.base + "/lobby/")
        await page.fill("#my-name", name)
        await page.fill("#code", code)
        await page.click("#join-code")
        await expect(page.locator(".player.me")).to_have_count(1)
        others.append(page)
    bob, cy = others
    await cy.fill("#chat-text", "I'll play the winner")
    await cy.press("#chat-text", "Enter")
    for page in (bob, ann):
        await page.click("#ready")
    await expect(cy.locator("#start-hint")).to_contain_text("Starting seats Ann")
    await s.save(cy, "lobby-phone")
    await ann.click("#start")
    await expect(bob.locator("#game-view")).to_be_visible()
    for page, column in ((ann, 3), (bob, 3), (ann, 4), (bob, 2), (ann, 5)):
        await expect(page.locator("#turn")).to_have_text("Your turn", timeout=10_000)
        await page.locator(f".column[data-column='{column}']").click()
    await bob.fill("#chat-text", "good move")
    await bob.press("#chat-text", "Enter")
    await expect(ann.locator("#turn")).to_have_text("Bob's turn")
    await s.save(ann, "lobby-desktop")


async def ops(s: Shots) -> None:
    for size, label in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page = await s.page(size)
        await page.goto(s.base + "/ops")
        await page.wait_for_selector("#nodes .node")
        await page.wait_for_timeout(5_000)  # a few polls: rates and trends
        await s.save(page, f"ops-{label}")


SCENES: dict[str, Callable[[Shots], Awaitable[None]]] = {
    "landing": landing,
    "chat": chat,
    "whiteboard": whiteboard,
    "waiting-room": waiting_room,
    "lobby": lobby,
    "ops": ops,
}


async def main(only: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data:
        valkey = ValkeyProcess(Path(data), appendonly=False).start()
        apps = [
            chat_app(ChatConfig(rate_limit=False)),
            whiteboard_app(),
            waiting_room_app(WaitingRoomConfig(sample_interval=0.5)),
            lobby_app(LobbyConfig()),
            counter_app,
        ]
        node = Node(Settings(node_id="n1"), valkey.url)
        server = await LocalServer(node, apps).start()
        try:
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                shots = Shots(browser, server.http)
                for name, scene in SCENES.items():
                    if not only or name in only:
                        await scene(shots)
                await browser.close()
        finally:
            await server.stop()
            valkey.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
