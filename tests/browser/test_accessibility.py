"""Every page of the suite, in each of its states a person meets, checked with axe-core (the
npm package, injected by Playwright) at a desktop and a phone size: no serious or critical
violation of WCAG 2 A/AA.

axe is injected as an inline script, which the pages' Content-Security-Policy refuses; the
contexts bypass the CSP for that alone (test_security.py checks the pages under their CSP).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from apps.chat import ChatConfig
from apps.chat import make_app as chat_app
from apps.lobby import LobbyConfig
from apps.lobby import make_app as lobby_app
from apps.waiting_room import WaitingRoomConfig
from apps.waiting_room import make_app as waiting_room_app
from apps.whiteboard import make_app as whiteboard_app
from examples.counter import app as counter_app
from tests.browser.conftest import new_page

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
SIZES = {"desktop": (1280, 800), "phone": (390, 844)}
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BAD = ("serious", "critical")


@pytest.fixture
def axe_source() -> Path:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: `make test` installs it (npm ci, from package.json)")
    return AXE


async def violations(page: Page, axe: Path) -> list[str]:
    """What axe finds serious or critical on the page as it is now."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(axe))
    result: dict[str, Any] = await page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})", TAGS
    )
    found = []
    for v in result["violations"]:
        if v["impact"] in BAD:
            targets = [" ".join(map(str, n["target"])) for n in v["nodes"][:3]]
            found.append(f"{v['id']} ({v['impact']}): {v['help']} at {targets}")
    return found


class Audit:
    """Pages in both sizes, each checked in the states a test puts it in."""

    def __init__(self, browser: Browser, pages: list[Page], axe: Path) -> None:
        self.browser = browser
        self.pages = pages
        self.axe = axe
        self.problems: dict[str, list[str]] = {}
        self.checked: list[str] = []

    async def page(self, size: str, **context: Any) -> Page:
        w, h = SIZES[size]
        return await new_page(
            self.browser, self.pages, viewport={"width": w, "height": h}, bypass_csp=True, **context
        )

    async def check(self, page: Page, what: str) -> None:
        await page.wait_for_load_state("load")
        label = f"{what} @ {page.viewport_size['width'] if page.viewport_size else '?'}px"
        self.checked.append(label)
        found = await violations(page, self.axe)
        if found:
            self.problems[label] = found

    async def both(self, what: str, visit: Callable[[Page], Awaitable[None]]) -> None:
        for size in SIZES:
            page = await self.page(size)
            await visit(page)
            await self.check(page, what)

    def verdict(self) -> None:
        assert not self.problems, json.dumps(self.problems, indent=1)


@pytest.fixture
async def audit(browser, pages, axe_source) -> Audit:
    return Audit(browser, pages, axe_source)


async def test_the_landing_counter_404_and_ops_pages(serve, audit: Audit) -> None:
    server = await serve(apps=(counter_app, chat_app()))

    async def landing(page: Page) -> None:
        await page.goto(server.http + "/")
        await expect(page.locator('.live[data-app="chat"]')).not_to_be_empty(timeout=10_000)

    async def counter(page: Page) -> None:
        await page.goto(server.http + "/counter/")
        await expect(page.locator("#state")).to_have_attribute("data-kind", "ok")

    async def missing(page: Page) -> None:
        await page.goto(server.http + "/no/such/page")

    async def missing_in_app(page: Page) -> None:
        await page.goto(server.http + "/chat/no/such/page")

    async def ops(page: Page) -> None:
        await page.goto(server.http + "/ops")
        await page.wait_for_selector("#nodes .node")
        await page.fill("#key", "lobby")
        await page.click("#locate button")
        await page.wait_for_selector("#location strong")

    await audit.both("landing", landing)
    await audit.both("counter", counter)
    await audit.both("404", missing)
    await audit.both("404 in an app", missing_in_app)
    await audit.both("ops", ops)
    locked = await serve(apps=(counter_app,), ops_token="a-token-for-the-audit")

    async def ops_login(page: Page) -> None:
        await page.goto(locked.http + "/ops")
        await expect(page.locator("#token")).to_be_visible()

    await audit.both("ops login", ops_login)
    audit.verdict()


async def test_the_chat(serve, audit: Audit) -> None:
    server = await serve(apps=(chat_app(ChatConfig(rate_limit=False)),))
    for size in SIZES:
        page = await audit.page(size)
        await page.goto(server.http + "/chat/")
        await audit.check(page, "chat: join form")
        await page.fill("#name", "A name much longer than thirty-two characters")
        await page.click("#join-public")
        await expect(page.locator("#join-error")).to_be_visible()
        await audit.check(page, "chat: join form, refused")
        await page.fill("#name", "Ada")
        await page.click("#create-private")
        await expect(page.locator("#status")).to_have_text("connected", timeout=10_000)
        await audit.check(page, "chat: an empty private room")
        other = await audit.page(size)
        await other.goto(page.url)
        await other.fill("#name", "Ada")
        await other.click("#join-public")
        await expect(other.locator("#status")).to_have_text("connected", timeout=10_000)
        await other.fill("#message", "see https://example.org and reply")
        await other.press("#message", "Enter")
        await expect(page.locator(".log .msg")).to_have_count(1)
        await audit.check(page, "chat: two Adas talking")
    audit.verdict()


async def test_the_whiteboard(serve, audit: Audit) -> None:
    server = await serve(apps=(whiteboard_app(),))
    for size in SIZES:
        page = await audit.page(size)
        await page.goto(server.http + "/whiteboard/")
        await audit.check(page, "whiteboard: an empty list")
        await page.click("#new-board")
        await page.wait_for_url("**/whiteboard/b/*")
        await expect(page.locator("#name-dialog")).to_be_visible()
        await audit.check(page, "whiteboard: the name dialog")
        await page.press("#name", "Enter")
        await expect(page.locator("#status")).to_have_text("connected", timeout=10_000)
        await audit.check(page, "whiteboard: a new board")
        box = await page.locator("#canvas").bounding_box()
        assert box is not None
        await page.mouse.move(box["x"] + 100, box["y"] + 300)
        await page.mouse.down()
        await page.mouse.move(box["x"] + 250, box["y"] + 320, steps=5)
        await page.mouse.up()
        await page.click("#share")
        await audit.check(page, "whiteboard: the share dialog")
        view = await page.input_value("#view-link")
        await page.keyboard.press("Escape")
        await page.goto(server.http + "/whiteboard/")
        await expect(page.locator(".board-card")).to_have_count(1)
        await audit.check(page, "whiteboard: the list with a board")
        viewer = await audit.page(size)
        await viewer.goto(view)
        await expect(viewer.locator("#status")).to_have_text("connected", timeout=10_000)
        await audit.check(viewer, "whiteboard: view only")
        await viewer.goto(server.http + "/whiteboard/b/sprint-plna")
        await expect(viewer.locator("#new-notice")).to_be_visible()
        await audit.check(viewer, "whiteboard: a mistyped board")
        await viewer.goto(server.http + "/whiteboard/b/v-not-a-link")
        await audit.check(viewer, "whiteboard: a broken view link")
    audit.verdict()


async def test_the_waiting_room(serve, audit: Audit) -> None:
    config = WaitingRoomConfig(push_interval=0.05, sample_interval=0.25)
    server = await serve(apps=(waiting_room_app(config),))
    for size in SIZES:
        page = await audit.page(size)
        await page.goto(server.http + "/waiting-room/")
        await audit.check(page, "waiting room: start page")
        await page.click("#create-button")
        await expect(page.locator("#create-total_active_users-error")).to_be_visible()
        await audit.check(page, "waiting room: start page, refused")
        for name, value in (
            ("name", "Gig"),
            ("total_active_users", "1"),
            ("new_users_per_minute", "60"),
            ("session_duration", "60"),
        ):
            await page.fill(f"input[name={name}]", value)
        await page.click("#create-button")
        await expect(page.locator("#created")).to_be_visible()
        await audit.check(page, "waiting room: a room made")
        admin = await page.input_value("#created-admin")
        site = await page.input_value("#created-site")
        inside = await audit.page(size)
        await inside.goto(site)
        await expect(inside.locator("#site")).to_be_visible()
        await audit.check(inside, "waiting room: the site")
        waiting = await audit.page(size)
        await waiting.goto(site)
        await expect(waiting.locator("#freshness")).to_have_attribute("data-kind", "ok")
        await audit.check(waiting, "waiting room: the waiting page")
        await page.goto(admin)
        await expect(page.locator("#state")).to_contain_text("Live", timeout=10_000)
        await page.click("#pause")
        await expect(page.locator("#paused-banner")).to_be_visible()
        await audit.check(page, "waiting room: admin, paused")
        await expect(waiting.locator("#paused")).to_be_visible()
        await audit.check(waiting, "waiting room: the waiting page, paused")
        await page.click("#delete")
        await audit.check(page, "waiting room: admin, deleting")
        locked = await audit.page(size)
        await locked.goto(admin.split("#")[0])
        await expect(locked.locator("#unlock")).to_be_visible()
        await audit.check(locked, "waiting room: admin, locked")
        await waiting.click("#leave-line")
        await expect(waiting.locator("#bye-title")).to_be_visible()
        await audit.check(waiting, "waiting room: left the line")
        await inside.goto(server.http + "/waiting-room/r/" + "ab" * 32 + "/")
        await audit.check(inside, "waiting room: no such room")
    async with httpx.AsyncClient(base_url=server.http) as http:
        body = {
            "total_active_users": 1,
            "new_users_per_minute": 60,
            "session_duration": 60,
            "queueing_method": "reject",
        }
        made = (await http.post("/waiting-room/api/rooms", json=body)).json()
    for size in SIZES:
        first, second = await audit.page(size), await audit.page(size)
        await first.goto(server.http + made["site_url"])
        await second.goto(server.http + made["site_url"])
        await expect(second.locator("#retry")).to_be_visible()
        await audit.check(second, "waiting room: full (reject)")
    audit.verdict()


async def test_the_lobby(serve, audit: Audit) -> None:
    server = await serve(apps=(lobby_app(LobbyConfig(directory_tick=0.02, claim_after=1.0)),))
    for size in SIZES:
        ann = await audit.page(size)
        await ann.goto(server.http + "/lobby/")
        await expect(ann.locator("#status")).to_have_text("connected")
        await audit.check(ann, "lobby: the directory")
        await ann.fill("#my-name", "Ann")
        await ann.click("#create")
        await expect(ann.locator("#lobby-code")).not_to_be_empty()
        bob = await audit.page(size)
        await bob.goto(server.http + "/lobby/")
        await expect(bob.locator(".lobby-item")).not_to_have_count(0)
        await audit.check(bob, "lobby: the directory with lobbies")
        await bob.goto(
            server.http + "/lobby/#/join/" + await ann.locator("#lobby-code").inner_text()
        )
        await expect(bob.locator("#enter")).to_be_visible()
        await audit.check(bob, "lobby: a join link")
        await bob.fill("#enter-name", "Bob")
        await bob.click("#enter-join")
        await bob.fill("#chat-text", "hello")
        await bob.press("#chat-text", "Enter")
        await bob.click("#ready")
        await ann.click("#ready")
        await expect(ann.locator("#start")).to_be_enabled()
        await audit.check(ann, "lobby: a lobby, both ready")
        await ann.click("#start")
        await expect(bob.locator("#game-view")).to_be_visible()
        await expect(ann.locator("#turn")).to_have_text("Your turn")
        await ann.locator(".column[data-column='3']").click()
        await expect(bob.locator("#turn")).to_have_text("Your turn")
        await bob.click("#offer-draw")
        await audit.check(ann, "lobby: a game, a draw offered")
        await bob.context.close()
        await expect(ann.locator("#claim-win")).to_be_enabled(timeout=10_000)
        await audit.check(ann, "lobby: a game, the opponent left")
        await ann.click("#claim-win")
        await expect(ann.locator("#result")).to_be_visible()
        await audit.check(ann, "lobby: a game won")
    audit.verdict()
