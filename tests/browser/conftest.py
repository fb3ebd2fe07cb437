"""A real Chromium (Debian's /usr/bin/chromium) driven by Playwright; screenshots on failure."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.cluster.conftest import nodes  # noqa: F401 (browser tests of many nodes use it)
from tests.conftest import ARTIFACTS

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(f"{CHROMIUM} not found: `make test` installs it (apt-get install chromium)")
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield browser
        await browser.close()


@pytest.fixture
async def pages(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[list[Page]]:
    """Open pages (each in its own context, like separate users); screenshot them on failure."""
    opened: list[Page] = []
    yield opened
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.nodeid)
        for i, page in enumerate(opened):
            try:
                await page.screenshot(path=str(ARTIFACTS / f"{name}-{i}.png"), full_page=True)
            except Exception:
                pass


async def new_page(browser: Browser, pages: list[Page], **context: object) -> Page:
    ctx = await browser.new_context(**context)  # type: ignore[arg-type]
    page = await ctx.new_page()
    pages.append(page)
    return page


async def until(page: Page, expression: str, arg: object = None, timeout: float = 10.0) -> object:
    """Wait until a JavaScript expression is truthy on ``page``; its value. (Playwright's
    wait_for_function polls with eval(), which the pages' Content-Security-Policy refuses
    once the first check is false; page.evaluate is not subject to it.)"""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await page.evaluate(expression, arg)
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still false after {timeout} s: {expression}")
        await asyncio.sleep(0.05)
