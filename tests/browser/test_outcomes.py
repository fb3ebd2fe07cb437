"""Pages retry what did not run, by themselves (docs/api.md, "Errors").

Each test stops the node's own Valkey under a page, has the person act once, sees the page
say it is trying again (the node answered 503 with ``X-Outcome: not-run``), brings Valkey
back, and sees the action done without a second click; pages whose socket the node closed
(its objects given up when Redis went away) come back by themselves.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page, expect

from apps.chat import ChatConfig
from apps.chat import make_app as chat_app
from apps.lobby import LobbyConfig
from apps.lobby import make_app as lobby_app
from apps.waiting_room import make_app as waiting_room_app
from apps.whiteboard import make_app as whiteboard_app
from examples.counter import app as counter_app
from runtime import App, Node, Settings
from runtime.storage.embedded import ValkeyProcess
from tests.browser.conftest import new_page
from tests.conftest import TEST_SETTINGS
from tests.support.servers import LocalServer


class Outage:
    """A node served in this process on a Valkey of its own, which the test stops and
    starts again (same port, same data)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.valkey = ValkeyProcess(directory, appendfsync="always").start()
        self.web: LocalServer | None = None

    async def serve(self, *apps: App, **settings: Any) -> str:
        node = Node(Settings(**{**TEST_SETTINGS, **settings}), self.valkey.url)
        self.web = await LocalServer(node, list(apps)).start()
        return self.web.http

    def stop(self) -> None:
        self.valkey.stop()

    def start(self) -> None:
        port = self.valkey.port
        self.valkey = ValkeyProcess(self.directory, port=port, appendfsync="always").start()

    async def close(self) -> None:
        if self.web is not None:
            await self.web.stop()
        self.valkey.stop()


@pytest.fixture
async def outage(tmp_path: Path) -> AsyncIterator[Outage]:
    served = Outage(tmp_path / "valkey")
    yield served
    await served.close()


async def busy_then_back(outage: Outage, page: Page, selector: str, said: str) -> None:
    """Once the page says it is trying again by itself, bring Valkey back."""
    await expect(page.locator(selector)).to_contain_text(said, timeout=10_000)
    outage.start()


async def test_the_counter_adds_one_by_itself_once_the_server_can(browser, pages, outage):
    base = await outage.serve(counter_app)
    page = await new_page(browser, pages)
    await page.goto(f"{base}/counter/#outage")
    await expect(page.locator("#state-text")).to_have_text("Live", timeout=10_000)
    await expect(page.locator("#value")).to_have_text("0")
    outage.stop()
    await page.click("#add")  # once
    await busy_then_back(outage, page, "#out", "The server is busy")
    await expect(page.locator("#value")).to_have_text("1", timeout=15_000)
    await expect(page.locator("#out")).to_be_hidden()


async def test_a_lobby_is_created_by_itself_once_the_server_can(browser, pages, outage):
    base = await outage.serve(lobby_app(LobbyConfig(create_rate=0, code_rate=0)))
    page = await new_page(browser, pages)
    await page.goto(f"{base}/lobby/")
    await page.fill("#my-name", "Ann")
    await page.fill("#lobby-name", "Through an outage")
    outage.stop()
    await page.click("#create")  # once
    await busy_then_back(outage, page, "#banner", "The server is busy")
    await expect(page.locator("#lobby-name-shown")).to_have_text(
        "Through an outage", timeout=15_000
    )
    await expect(page.locator(".player .name")).to_have_text(["Ann (you)"], timeout=10_000)


async def test_a_waiting_room_is_created_by_itself_once_the_server_can(browser, pages, outage):
    base = await outage.serve(waiting_room_app())
    page = await new_page(browser, pages)
    await page.goto(f"{base}/waiting-room/")
    await page.fill("input[name=name]", "Outage")
    await page.fill("input[name=total_active_users]", "5")
    await page.fill("input[name=new_users_per_minute]", "60")
    await page.fill("input[name=session_duration]", "120")
    outage.stop()
    await page.click("#create-button")  # once
    await busy_then_back(outage, page, "#create-button", "Busy")
    await expect(page.locator("#created")).to_be_visible(timeout=15_000)
    await expect(page.locator("#created-name")).to_have_text("Outage")
    admin = await page.input_value("#created-admin")
    assert re.fullmatch(r".*/waiting-room/admin/[0-9a-f]{64}#token=.+", admin)


async def test_a_chat_comes_back_by_itself_after_the_server_lost_its_storage(
    browser, pages, outage
):
    base = await outage.serve(chat_app(ChatConfig(rate_limit=False)))
    page = await new_page(browser, pages)
    await page.goto(f"{base}/chat/#outage")
    await page.fill("#name", "Ada")
    await page.click("#join-public")
    await expect(page.locator("#status")).to_have_text("connected", timeout=10_000)
    outage.stop()  # the node gives the room up (1012); reconnecting is refused meanwhile
    await expect(page.locator("#status")).not_to_have_text("connected", timeout=10_000)
    outage.start()
    await expect(page.locator("#status")).to_have_text("connected", timeout=20_000)
    await page.fill("#message", "still here")
    await page.press("#message", "Enter")
    await expect(page.locator(".log .msg .text")).to_have_text(["still here"])


async def test_a_board_comes_back_by_itself_after_the_server_lost_its_storage(
    browser, pages, outage
):
    base = await outage.serve(whiteboard_app(), secret_key="s" * 64)
    page = await new_page(browser, pages)
    await page.goto(f"{base}/whiteboard/b/outage-board")
    await expect(page.locator("#status")).to_have_text("connected", timeout=10_000)
    outage.stop()
    await expect(page.locator("#status")).not_to_have_text("connected", timeout=10_000)
    outage.start()
    await expect(page.locator("#status")).to_have_text("connected", timeout=20_000)
